"""experiments/bench_vs_sb3.py: its command line and its report (the runs themselves are too long for CI)."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("bench_vs_sb3", Path(__file__).parents[1] / "experiments" / "bench_vs_sb3.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_quick_and_full_settings():
    q = bench.parse(["--quick"])
    assert (q.envs, q.steps, q.seeds, q.num_envs) == (["InvertedPendulum-v5"], 20_000, 1, 1)
    f = bench.parse(["--num-envs", "8"])
    assert (f.envs, f.steps, f.seeds, f.num_envs) == (["HalfCheetah-v5", "Hopper-v5"], 1_000_000, 3, 8)


def test_report_prints_rates_returns_and_the_ratio_line():
    results = {"HalfCheetah-v5": {"pgcontrol": [{"steps": 2000, "seconds": 1.0, "return": 10.0},
                                                {"steps": 2000, "seconds": 1.0, "return": 20.0}],
                                  "sb3": [{"steps": 1000, "seconds": 1.0, "return": 12.0}]}}
    lines = bench.report(results)
    assert lines[0].startswith("HalfCheetah-v5: pgcontrol 2000 steps/s, SB3 1000 steps/s (ratio 2.00)")
    assert "pgcontrol 15.0 ± 7.1 (n = 2)" in lines[0] and lines[-1] == "ratio: 2.000"
    assert float(lines[-1].split(":")[1]) == pytest.approx(2.0)
