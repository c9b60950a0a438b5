"""experiments/bench_vs_sb3.py: its command line, its configs and its report (the runs themselves are too long for CI)."""

import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("bench_vs_sb3", Path(__file__).parents[1] / "experiments" / "bench_vs_sb3.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_quick_and_full_settings():
    q = bench.parse(["--quick"])
    assert (q.algos, q.envs, q.steps, q.seeds, q.num_envs) == (["ppo", "trpo"], ["InvertedPendulum-v5"], 20_000, 1, 1)
    f = bench.parse(["--num-envs", "8"])
    assert (f.algos, f.envs, f.steps, f.seeds, f.num_envs) == (["ppo"], ["HalfCheetah-v5", "Hopper-v5"], 1_000_000, 3, 8)


def test_pgcontrol_configs_carry_the_shared_settings():
    ppo = bench.pgcontrol_config("ppo", 1_000_000, 8)
    assert (ppo.n_steps, ppo.num_minibatches, ppo.update_epochs, ppo.lr, ppo.anneal_lr) == (2048, 256, 10, 3e-4, False)
    assert ppo.normalize_obs and ppo.normalize_reward and ppo.max_grad_norm == 0.5 and not ppo.clip_vloss
    assert ppo.normalize_clip == 10.0  # VecNormalize's clip_obs and clip_reward
    trpo = bench.pgcontrol_config("trpo", 1_000_000, 1)
    assert trpo.line_search and (trpo.kl_bound, trpo.cg_iters, trpo.damping, trpo.backtrack_coef) == (0.01, 15, 0.1, 0.8)
    assert (trpo.critic_epochs, trpo.critic_minibatch, trpo.critic_lr, trpo.num_envs, trpo.n_steps) == (10, 128, 1e-3, 1, 2048)
    assert not trpo.discount_weighting  # sb3-contrib weighs every state and step equally
    assert trpo.normalize_obs and trpo.normalize_reward and trpo.normalize_clip == 10.0
    assert trpo.value_target == "lambda" and trpo.normalize_advantage  # sb3-contrib's critic targets and advantages


def test_the_last_ten_episodes():
    # (steps, mean return of the iteration, episodes in it): the last iterations holding >= 10 episodes
    curve = [[1000, 0.0, 5], [2000, 10.0, 4], [3000, 20.0, 6]]
    assert bench.last_episodes_mean(curve) == pytest.approx((10 * 4 + 20 * 6) / 10)
    assert bench.last_episodes_mean(curve[-1:]) == 20.0 and bench.last_episodes_mean([]) is None


def test_report_prints_rates_returns_the_test_and_the_ratio_line():
    results = {"ppo HalfCheetah-v5": {"pgcontrol": [{"steps": 2000, "seconds": 1.0, "return": 10.0},
                                                    {"steps": 2000, "seconds": 1.0, "return": 20.0}],
                                      "sb3": [{"steps": 1000, "seconds": 1.0, "return": 12.0},
                                              {"steps": 1000, "seconds": 1.0, "return": 14.0}]}}
    lines = bench.report(results)
    assert lines[0].startswith("ppo HalfCheetah-v5: pgcontrol 2000 steps/s, SB3 1000 steps/s (ratio 2.00)")
    assert "pgcontrol 15.0 ± 7.1 (n = 2)" in lines[0] and "Welch t-test p = 0.758" in lines[0]  # t = 2/√26, Welch df = 676/626
    assert lines[-1] == "ratio: 2.000" and float(lines[-1].split(":")[1]) == pytest.approx(2.0)
    assert bench.welch([1.0], [2.0, 3.0]) is None


def test_plot_redraws_the_figure_from_the_json(tmp_path, capsys):
    curve = [[500, 1.0, 3], [1000, 2.0, 9]]
    data = {"num_envs": 1, "steps": 1000, "results": {"ppo InvertedPendulum-v5": {
        "pgcontrol": [{"steps": 1000, "seconds": 1.0, "return": 2.0, "curve": curve}],
        "sb3": [{"steps": 1000, "seconds": 2.0, "return": 1.5, "curve": [[300, 1.0, 1], [900, 2.0, 1]]}]}}}
    (tmp_path / "b.json").write_text(json.dumps(data))
    bench.main(["--plot", str(tmp_path / "b.json")])
    assert (tmp_path / "b.png").stat().st_size > 10_000 and "ratio: 2.000" in capsys.readouterr().out


def test_merge_takes_each_side_from_the_file_that_ran_it(tmp_path, capsys):
    run = {"steps": 1000, "seconds": 1.0, "return": 2.0, "curve": [[500, 1.0, 3], [1000, 2.0, 9]]}
    a = {"settings": {"ppo": {}}, "num_envs": 1, "steps": 1000,
         "results": {"ppo Hopper-v5": {"pgcontrol": [run], "sb3": []}}}
    b = {"settings": {"ppo": {}}, "num_envs": 1, "steps": 1000,
         "results": {"ppo Hopper-v5": {"pgcontrol": [], "sb3": [dict(run, seconds=4.0)]},
                     "trpo Hopper-v5": {"pgcontrol": [run], "sb3": [run]}}}
    for name, d in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(d))
    bench.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json")])
    merged = json.loads((tmp_path / "m.json").read_text())["results"]
    assert [len(merged["ppo Hopper-v5"][s]) for s in ("pgcontrol", "sb3")] == [1, 1]
    assert list(merged) == ["ppo Hopper-v5", "trpo Hopper-v5"] and (tmp_path / "m.png").exists()
    assert "ratio: 4.000" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="different settings"):
        bench.merge([a, dict(b, steps=2000)])
