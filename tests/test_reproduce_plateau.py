"""The plateau reproduction (``pgcontrol reproduce plateau --quick``) and its qualitative claim.

Peters & Schaal / slides 004: from k = -0.2, σ = 0.1 with 5 rollouts per
update, vanilla PG drives σ onto its floor (the plateau of zero exploration)
and reaches k* slowly or not at all, while the natural gradient reaches
|k - k*|/|k*| < 1 % on every seed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pgcontrol import lqr
from pgcontrol.plants import make
from pgcontrol.reproduce import UnknownExperimentError, plateau, run


SEEDS = 4  # the default suite's seeds; `pgcontrol reproduce plateau --quick` runs 10 (the slow test below)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("plateau")
    return run("plateau", quick=True, seeds=SEEDS, out=out, progress=False), out


def test_quick_writes_figure_and_summary(quick):
    summary, out = quick
    assert (out / "plateau.png").stat().st_size > 10_000
    on_disk = json.loads((out / "plateau.json").read_text())
    assert on_disk["best"] == json.loads(json.dumps(summary["best"]))
    assert summary["seeds"] == SEEDS and summary["rollouts_per_update"] == 5
    assert any("natural PG" in line for line in summary["headline"])


@pytest.mark.slow
def test_the_quick_command_shows_the_plateau_on_its_ten_seeds(tmp_path):
    """The claims below on the 10 seeds of `pgcontrol reproduce plateau --quick` (about a minute on 2 cores)."""
    summary = run("plateau", quick=True, out=tmp_path, progress=False)
    assert summary["seeds"] == 10
    test_quick_shows_the_plateau((summary, tmp_path))


def test_quick_shows_the_plateau(quick):
    """NPG reaches 1 % on every seed; VPG needs ≥ 2x NPG's median updates or fails on some seeds, and σ shrinks."""
    summary, _ = quick
    npg, vpg = summary["best"]["npg"], summary["best"]["vpg"]
    assert npg["reached"] == 1.0
    assert vpg["reached"] < 1.0 or vpg["median_updates"] >= 2 * npg["median_updates"]
    assert vpg["final_std_median"] < plateau.STD_START
    # the exact-gradient paths tell the same story
    assert summary["exact"]["npg"]["reached"] is not None
    vpg_exact = summary["exact"]["vpg"]["reached"]
    assert vpg_exact is None or vpg_exact >= 2 * summary["exact"]["npg"]["reached"]


def test_exact_path_follows_the_exact_gradient():
    """One exact vanilla step is θ + α ∇(-J): check against a finite difference of policy_cost."""
    plant = make("scalar-lqg")
    path = plateau.exact_path("vpg", 0.01, 1, plant)
    k, s = plateau.K_START, plateau.STD_START

    def ret(k, s):
        return -lqr.policy_cost(plant, [[-k]], s, horizon=plant.horizon)

    h = 1e-6
    g = np.array([(ret(k + h, s) - ret(k - h, s)) / (2 * h), (ret(k, s + h) - ret(k, s - h)) / (2 * h)])
    np.testing.assert_allclose([path.k[1] - k, path.std[1] - s], 0.01 * g, rtol=1e-5)


def test_learn_is_deterministic():
    a = plateau.learn("npg", 0.03, seed=3, updates=5)
    b = plateau.learn("npg", 0.03, seed=3, updates=5)
    np.testing.assert_array_equal(a.k, b.k)
    np.testing.assert_array_equal(a.std, b.std)
    assert a.k[0] == plateau.K_START and len(a.k) == 6


def test_unknown_experiment_and_bad_seeds(tmp_path):
    with pytest.raises(UnknownExperimentError, match="choose one of"):
        run("nope", out=tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        run("plateau", seeds=0, out=tmp_path)
