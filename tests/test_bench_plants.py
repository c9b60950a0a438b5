"""experiments/bench_plants.py: its table (the runs themselves are too long for CI)."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

spec = importlib.util.spec_from_file_location("bench_plants", Path(__file__).parents[1] / "experiments" / "bench_plants.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_percentile_is_numpys_and_inf_where_it_reaches_a_diverged_run():
    values = np.random.default_rng(0).random(27)
    assert bench.percentile(values, 90) == pytest.approx(np.percentile(values, 90))
    assert bench.percentile([0.1] * 10 + [math.inf], 90) == 0.1
    assert bench.percentile([0.1] * 9 + [math.inf], 90) == math.inf  # NumPy: nan


def test_table_has_a_row_per_learner_with_sb3_and_diverged_runs():
    row = dict(plant="double-integrator", start="default", seed=0, cap=1000, start_gap=0.5, diverged=False, steps=1000)
    rows = [dict(row, learner="npg", final_gap=0.001), dict(row, learner="sb3-ppo", final_gap=0.02),
            dict(row, learner="sb3-a2c", final_gap=math.inf, diverged=True, steps=300)]
    lines = bench.table(rows).splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| npg", "| sb3-ppo", "| sb3-a2c"]
    assert lines[-1] == "| sb3-a2c | 1 | 0% | inf% | inf% | 1/1 | 1 | 300 |"
