"""Defaults that work: with no config every learner converges on the LQ plants, and PPO balances InvertedPendulum-v5.

The LQ plants have no presets: ``train`` and the CLI use the learners' defaults there (their adaptive
rules, ``docs/learners.md``). The MuJoCo presets (:data:`pgcontrol.config.PRESETS`) stay.
Seed 0 of every learner on double-integrator runs in CI; the other plants and seeds are the slow test.
"""

import json

import pytest

from pgcontrol.cli import main as cli_main
from pgcontrol.config import PRESETS, preset, resolve_config
from pgcontrol.train import train

LEARNERS = ["vpg", "npg", "trpo", "ac", "ppo"]


def test_no_lq_plant_has_a_preset_and_the_mujoco_ones_stay():
    assert all(env.endswith("-v5") for _, env in PRESETS)
    assert preset("ppo", "InvertedPendulum-v5")["n_steps"] == 256 and preset("trpo", "HalfCheetah-v5") is not None
    assert all(preset(a, p) is None for a in LEARNERS for p in ("scalar-lqg", "double-integrator", "laplacian-3"))


def _balances(seed, steps=30_000):
    """PPO's InvertedPendulum-v5 preset: the first step count at which an iteration's mean return is 1000."""
    hist = train("ppo", "InvertedPendulum-v5", seed=seed, progress=False, policy_kind="mlp", max_steps=steps)
    return next((r["steps"] for r in hist if r.get("return_mean", 0) >= 1000), None)


def test_the_inverted_pendulum_preset_balances_within_20k_steps():
    pytest.importorskip("mujoco")
    reached = _balances(0)
    assert reached is not None and reached <= 20_000, reached


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_the_inverted_pendulum_preset_balances_on_more_seeds(seed):
    reached = _balances(seed)
    assert reached is not None and reached <= 20_000, reached


def _check(algo, plant, seed, max_steps, tol):
    hist = train(algo, plant, seed=seed, progress=False, max_steps=max_steps)  # no config: the defaults
    start = hist[0]["gap"] if "gap" in hist[0] else None
    assert hist[-1]["gap"] < tol, (algo, plant, seed, start, hist[-1]["gap"])
    assert hist[-1]["stop_reason"]  # why the run ended is recorded
    return hist


@pytest.mark.parametrize("algo", LEARNERS)
def test_every_default_converges_on_double_integrator_within_100k_steps(algo):
    """NPG, TRPO and PPO below 1 % (start 0.48); AC below 10 %; VPG (vanilla direction) only moves down."""
    _check(algo, "double-integrator", 0, 100_000, {"vpg": 0.45, "ac": 0.1}.get(algo, 0.01))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("plant", ["laplacian-3", "cartpole-linearized", "mass-spring-damper"])
@pytest.mark.parametrize("algo", LEARNERS)
def test_every_default_reaches_five_percent_on_the_catalog(algo, plant, seed):
    _check(algo, plant, seed, 1_000_000, 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("algo", LEARNERS)
def test_the_cli_with_a_100k_step_budget_on_double_integrator(algo, tmp_path, capsys):
    out = tmp_path / algo
    assert cli_main(["train", "--algo", algo, "--env", "double-integrator", "--steps", "100000",
                     "--out", str(out)]) == 0
    hist = json.loads((out / "history.json").read_text())
    assert hist[-1]["gap"] < 0.05 and hist[-1]["steps"] <= 100_000 + 4800  # at most a first batch over


def test_show_config_names_where_each_value_comes_from(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"kl_bound": 0.1}))
    assert cli_main(["train", "--algo", "vpg", "--env", "scalar-lqg", "--config", str(tmp_path / "c.json"),
                     "--show-config"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[1:]}
    assert rows["kl_bound"] == "user" and rows["num_envs"] == "default" and rows["gamma"] == "default"
    assert not (tmp_path / "runs").exists()
    assert cli_main(["train", "--algo", "ac", "--env", "Hopper-v5", "--show-config"]) == 0
    assert all(line.split()[-1] == "default" for line in capsys.readouterr().out.splitlines()[1:])
    assert preset("ac", "Hopper-v5") is None and preset("ppo", "InvertedPendulum-v5")["n_steps"] == 256
    assert preset("ppo", "Hopper-v5")["n_steps"] == 2048 and preset("ppo", "HalfCheetah-v5")["hidden"] == (256, 256)
    _, sources = resolve_config("npg", "laplacian-3", base={"kl_bound": 0.5})
    assert sources["kl_bound"] == "run" and sources["fisher"] == "default"  # a resumed run's own config wins


def test_the_trpo_halfcheetah_preset_is_the_benchmarked_config():
    """Its evidence is experiments/bench_vs_sb3.py --algos trpo (sb3-contrib's TRPO settings), which runs it."""
    import dataclasses
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench", Path(__file__).parents[1] / "experiments" / "bench_vs_sb3.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    preset_cfg, _ = resolve_config("trpo", "HalfCheetah-v5")
    bench_cfg = dataclasses.replace(bench.pgcontrol_config("trpo", 1_000_000, 1, 6), iterations=preset_cfg.iterations)
    assert preset_cfg == bench_cfg and (preset_cfg.iterations - 1) * preset_cfg.n_steps < 1_000_000 <= \
        preset_cfg.iterations * preset_cfg.n_steps


def test_the_ppo_hopper_preset_is_the_benchmarked_config_with_a_longer_horizon():
    """SB3's PPO defaults as experiments/bench_vs_sb3.py runs them (1 M steps), γ 0.995 in place of 0.99."""
    import dataclasses
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench", Path(__file__).parents[1] / "experiments" / "bench_vs_sb3.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    preset_cfg, _ = resolve_config("ppo", "Hopper-v5")
    bench_cfg = bench.pgcontrol_config("ppo", 1_000_000, 1, 3)
    assert bench_cfg.gamma == 0.99 and preset_cfg.gamma == 0.995
    assert preset_cfg == dataclasses.replace(bench_cfg, gamma=0.995) and bench_cfg.iterations == 489


def test_the_ppo_halfcheetah_preset_is_rl_zoos():
    cfg, _ = resolve_config("ppo", "HalfCheetah-v5")
    assert (cfg.hidden, cfg.activation, cfg.ortho_init, cfg.log_std0) == ((256, 256), "relu", False, -2.0)
    assert (cfg.n_steps, cfg.num_minibatches, cfg.update_epochs, cfg.clip_coef, cfg.gamma, cfg.lam) == \
        (512, 8, 20, 0.1, 0.98, 0.92) and cfg.n_steps * cfg.iterations >= 1_000_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_trpo_halfcheetah_preset_ends_above_1500(seed):
    """About 8 minutes a seed: 1 M steps, the mean return of the last 10 episodes (bench_vs_sb3's measure)."""
    from pgcontrol.reproduce.mujoco import last_episodes_mean

    hist = train("trpo", "HalfCheetah-v5", seed=seed, progress=False, policy_kind="mlp")
    curve = [[r["steps"], r["return_mean"], r["episodes"]] for r in hist if "return_mean" in r]
    assert hist[-1]["steps"] >= 1_000_000 and last_episodes_mean(curve) > 1500

