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


def test_sample_keys_is_a_fixed_draw_without_replacement_from_the_grid():
    keys, starts, seeds = bench.plant_keys(False), ["default", "far"], [0, 1, 2]
    grid = {(k, s, sd) for k in keys for s in starts for sd in seeds}
    sample = bench.sample_keys(12, keys, starts, seeds)
    assert sample == bench.sample_keys(12, keys, starts, seeds)
    assert len(set(sample)) == 12 and set(sample) <= grid
    assert sample[:2] == [("random-7-1-107", "far", 2), ("random-6-4-115", "default", 2)]  # the documented sample
    assert set(bench.sample_keys(len(grid), keys, starts, seeds)) == grid
    with pytest.raises(ValueError, match="--sample"):
        bench.sample_keys(len(grid) + 1, keys, starts, seeds)


@pytest.mark.parametrize("count", ["0", "151"])
def test_a_sample_outside_the_grid_is_a_one_line_usage_error(count, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--table", "--sample", count, "--out", str(tmp_path / "new" / "out.jsonl")])
    assert exc.value.code == 2 and not (tmp_path / "new").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"--sample must be an integer from 1 to the grid's 150 keys; got {count}")


def test_table_reads_the_also_files_and_out_wins_on_a_clash(tmp_path, capsys):
    import json

    def row(learner, gap):
        return dict(plant="double-integrator", start="default", seed=0, cap=1000, start_gap=0.5, diverged=False,
                    steps=1000, learner=learner, final_gap=gap)

    older, out = tmp_path / "older.jsonl", tmp_path / "out.jsonl"
    older.write_text(json.dumps(row("npg", 0.5)) + "\n" + json.dumps(row("sb3-trpo", 0.02)) + "\n")
    out.write_text(json.dumps(row("npg", 0.001)) + "\n")
    bench.main(["--table", "--plants", "double-integrator", "--starts", "default", "--seeds", "0", "--cap", "1000",
                "--learners", "npg", "sb3-trpo", "--out", str(out), "--also", str(older)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("| npg | 1 | 100% | 0.100% |")
    assert lines[3].startswith("| sb3-trpo | 1 | 0% | 2.000% |")


def test_per_key_table_has_a_line_per_key_and_a_dash_where_a_learner_did_not_run():
    row = dict(plant="double-integrator", start="default", seed=0, cap=1000, start_gap=0.5, diverged=False, steps=1000)
    rows = [dict(row, learner="sb3-trpo", final_gap=0.02), dict(row, learner="npg", final_gap=0.001),
            dict(row, seed=1, learner="npg", final_gap=math.inf, diverged=True)]
    lines = bench.per_key_table(rows).splitlines()
    assert lines[0] == "| plant | start | seed | start gap | npg | sb3-trpo |"
    assert lines[2:] == ["| double-integrator | default | 0 | 50.000% | 0.100% | 2.000% |",
                         "| double-integrator | default | 1 | 50.000% | inf% | - |"]
