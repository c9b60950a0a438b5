"""Quick modes of the `variance` and `lqg` reproductions, their claims and the exact calculus behind them."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pgcontrol import plants
from pgcontrol.algos.vpg import surrogate_loss
from pgcontrol.policies import LinearGaussianPolicy
from pgcontrol.reproduce import run
from pgcontrol.reproduce import variance as var_mod
from pgcontrol.sim import rollout_linear


# The reproductions' quick runs, once per module: their claims below, the command line's end-to-end run
# (which resumes them: every finished run is reused) and the sweep's backend test read the same runs. They
# live in this one file because the suite's workers take whole files (``--dist loadfile``): a fixture
# shared across files would run once on each worker.


@pytest.fixture(scope="module")
def variance_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("variance")
    return run("variance", quick=True, out=out, progress=False), out


@pytest.fixture(scope="module")
def lqg_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("lqg")
    return run("lqg", quick=True, out=out, progress=False, workers=1), out



# ------------------------------------------------------------------ variance


def test_analytic_scores_give_the_vpg_surrogate_gradient():
    """The per-episode terms averaged over episodes are −(autograd gradient of the VPG loss (3.26)), negated for cost."""
    p = plants.make("double-integrator")
    K, s = p.check_gain(var_mod.GAIN, var_mod.STD)
    ro = rollout_linear(p, K, s, n_traj=8, seed=1)
    batch = var_mod._batch(ro, 8, 1)
    from pgcontrol.rollout import pg_advantages

    psi, _ = pg_advantages(batch, estimator="rtg", baseline="mean", gamma=p.gamma)
    g = var_mod._per_episode(var_mod.scores(batch, K, s), psi).mean(0)[0].numpy()
    pol = LinearGaussianPolicy(2, 1, K0=K, std0=s)
    loss = surrogate_loss(pol, batch, psi, 8)
    loss.backward()
    auto = np.concatenate([pol.gain.grad.numpy().ravel(), pol.raw_std.grad.numpy()])
    np.testing.assert_allclose(g, auto, rtol=1e-8)  # loss gradient = −ĝ_return = +ĝ_cost


@pytest.fixture(scope="module")
def variance_summary(variance_quick):
    s, out = variance_quick
    assert (out / "variance.png").stat().st_size > 10_000
    assert json.loads((out / "variance.json").read_text())["headline"] == s["headline"]
    return s


def test_variance_ordering_total_rtg_baseline(variance_summary):
    s = variance_summary
    st, n = s["stats"], str(s["n_ref"])
    v = {k: st[k][n]["var_trace"] for k in st}
    assert v["total"] > v["rtg"] > v["rtg_mean"]
    assert v["rtg"] > v["rtg_value"]
    # GAE with λ < 1 on the exact value: less variance than λ = 1 (= rtg − V)
    assert v["gae_exact_0"] < v["gae_exact_0.5"] < v["gae_exact_0.9"] < v["rtg_value"]
    # variance falls like 1/N for the i.i.d. estimators
    ns = s["ns"]
    ratio = st["rtg"][str(ns[0])]["var_trace"] / st["rtg"][str(ns[-1])]["var_trace"]
    assert ratio == pytest.approx(ns[-1] / ns[0], rel=0.35)


def test_unbiased_estimators_have_no_detectable_bias(variance_summary):
    s = variance_summary
    n_max = str(max(s["ns"]))
    for k in s["unbiased_by_construction"]:
        row = s["stats"][k][n_max]
        assert row["max_abs_z"] < 4.0, (k, row)
        assert row["p_value"] > 1e-3, (k, row)


def test_biased_estimators_are_detected(variance_summary):
    """GAE(λ=0) with the fitted critic and reward-to-go without γ^t (3.21) are measurably biased."""
    s = variance_summary
    n_max = str(max(s["ns"]))
    for k in ("gae_fitted_0", "rtg_nodisc"):
        row = s["stats"][k][n_max]
        assert row["p_value"] < 1e-6 and row["rel_bias"] > 3 * row["rel_bias_noise"], (k, row)
    # the same λ = 0 is unbiased with the exact value
    assert s["stats"]["gae_exact_0"][n_max]["p_value"] > 1e-3


# ----------------------------------------------------------------------- lqg


@pytest.fixture(scope="module")
def lqg_summary(lqg_quick):
    s, out = lqg_quick
    assert (out / "lqg.png").stat().st_size > 10_000
    assert json.loads((out / "lqg.json").read_text())["headline"] == s["headline"]
    return s


def test_lqg_claims(lqg_summary):
    s = lqg_summary
    J_lqg, J_star = s["J_lqg"], s["J_static_star"]
    final = np.array(s["J_learned_final"])
    assert not s["diverged"]
    # the exact-gradient-descent optimum is the grid optimum (global over the gains with finite cost)
    assert J_star <= s["grid_check"]["J_best"] * (1 + 1e-9)
    assert abs(s["K_static_star"][0][0] - s["grid_check"]["k_best"]) < 1e-3
    # LQG (a Kalman filter) beats every static output feedback, by a wide margin on the double integrator
    assert J_lqg < J_star / 5
    # learned static gains: never better than the best static gain, never near LQG, close to J_static*
    assert np.all(final >= J_star * (1 - 1e-9))
    assert np.all(final > 5 * J_lqg)
    assert np.all(final < s["J_start"] / 5)
    assert np.median(final) < 1.25 * J_star


# ------------------------------------------------------------------ through the command line and the sweep


def test_reproduce_end_to_end_through_the_command(tmp_path, variance_quick):
    """The real experiment through the console entry point: files written, headline printed. The runs of the
    module's ``reproduce variance --quick`` are copied in, so the command resumes them (nothing is recomputed)."""
    import shutil

    shutil.copytree(variance_quick[1] / "runs", tmp_path / "runs")
    r = subprocess.run([sys.executable, "-m", "pgcontrol", "reproduce", "variance", "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "variance.json").read_text())["headline"] == variance_quick[0]["headline"]
    assert (tmp_path / "variance.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "variance.json").read_text())["headline"][0] in r.stdout
    assert "variance.png" in r.stdout


def test_a_reproduction_is_the_same_on_any_backend_and_resumes(tmp_path, monkeypatch, lqg_quick):
    """``reproduce lqg`` (2 seeds) serially (the module's run) and on two workers: the same numbers; a rerun
    reuses every run."""
    serial = lqg_quick[0]
    pooled = run("lqg", quick=True, out=tmp_path / "pool", progress=False, workers=2)
    strip = lambda s: {k: v for k, v in s.items() if k not in ("seconds", "headline", "wall_s")}  # noqa: E731
    assert strip(serial) == strip(pooled)
    assert len(list((tmp_path / "pool" / "runs" / "lqg").iterdir())) == serial["seeds"]
    import pgcontrol.reproduce.lqg as lqg

    monkeypatch.setattr(lqg, "_train_seed", lambda *a: pytest.fail("a finished run was recomputed"))
    assert strip(run("lqg", quick=True, out=tmp_path / "pool", progress=False, workers=1)) == strip(serial)
