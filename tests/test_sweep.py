"""Sweeps: the same histories serially, on a local pool and on Ray; resume after a kill; failures isolated."""

import json

import pytest

from pgcontrol.cli import main as cli_main
from pgcontrol.sweep import RunSpec, grid, grid_from_toml, run_sweep, summary_table

SPECS = grid(["npg", "ac"], "scalar-lqg", [0, 1, 2], steps=1000)  # 6 runs, about a second each


def _histories(results):
    return [[{k: v for k, v in row.items()} for row in r["history"]] for r in results]


def test_grid_and_folders_follow_the_specification(tmp_path):
    assert len(SPECS) == 6 and len({s.folder for s in SPECS}) == 6
    assert RunSpec("npg", "scalar-lqg", seed=1).folder == RunSpec("npg", "scalar-lqg", seed=1).folder
    assert RunSpec("npg", "scalar-lqg", (("kl_bound", 0.1),)).folder != RunSpec("npg", "scalar-lqg").folder
    (tmp_path / "g.toml").write_text('algo = "npg"\nenv = ["scalar-lqg", "double-integrator"]\nseeds = [0, 1]\n'
                                     'steps = 500\n[config]\nkl_bound = [0.01, 0.02]\nnum_envs = 4\n')
    specs = grid_from_toml(tmp_path / "g.toml")
    assert len(specs) == 8 and specs[0].overrides == (("kl_bound", 0.01), ("num_envs", 4))
    (tmp_path / "bad.toml").write_text('algo = "npg"\nenv = "scalar-lqg"\nlearning_rate = 1\n')
    with pytest.raises(ValueError, match="unknown: learning_rate"):
        grid_from_toml(tmp_path / "bad.toml")


def test_pool_and_serial_give_identical_histories(tmp_path):
    serial = run_sweep(SPECS, tmp_path / "serial", workers=1, progress=False)
    pooled = run_sweep(SPECS, tmp_path / "pool", workers=2, progress=False)
    assert all(r["status"] == "ok" for r in serial + pooled)
    assert _histories(serial) == _histories(pooled)
    assert json.loads((tmp_path / "pool" / SPECS[3].folder / "result.json").read_text())["history"] == \
        serial[3]["history"]


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path, monkeypatch):
    root = tmp_path / "s"
    first = run_sweep(SPECS[:3], root, workers=1, progress=False)  # the part done before the kill
    (root / f".{SPECS[3].folder}.tmp-12345").mkdir()  # a run the kill interrupted halfway
    (root / f".{SPECS[3].folder}.tmp-12345" / "checkpoint.pt").write_bytes(b"half")
    import pgcontrol.train

    calls = []
    real = pgcontrol.train.train

    def counting(algo, env, **kw):
        calls.append((algo, kw["seed"]))
        return real(algo, env, **kw)

    monkeypatch.setattr(pgcontrol.train, "train", counting)
    again = run_sweep(SPECS, root, workers=1, progress=False)
    assert not list(root.glob(".*.tmp-*"))
    assert sorted(calls) == sorted((s.algo, s.seed) for s in SPECS[3:])  # only the unfinished runs trained
    assert _histories(again[:3]) == _histories(first)
    fresh = run_sweep(SPECS, tmp_path / "fresh", workers=1, progress=False)
    assert _histories(again) == _histories(fresh)


def test_a_failing_run_is_reported_and_does_not_stop_the_others(tmp_path, capsys):
    specs = SPECS[:2] + [RunSpec("npg", "scalar-lqg", (("kl_bound", -1.0),), seed=0, steps=500),
                         RunSpec("npg", "NoSuchEnv-v0", seed=0, steps=500)]
    results = run_sweep(specs, tmp_path, workers=2, retries=1, progress=False)
    assert [r["status"] for r in results] == ["ok", "ok", "failed", "failed"]
    assert "kl_bound" in results[2]["error"] and "unknown environment" in results[3]["error"]
    csv_text, md = summary_table(results)
    assert "failed" in csv_text and "| npg on scalar-lqg (kl_bound=-1.0) | 0 / 0 / 1 |" in md


def test_the_sweep_command(tmp_path, capsys):
    (tmp_path / "g.toml").write_text('algo = "npg"\nenv = "scalar-lqg"\nseeds = [0, 1]\nsteps = 500\n')
    assert cli_main(["sweep", str(tmp_path / "g.toml"), "--workers", "1", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "| npg on scalar-lqg | 2 / 0 / 0 |" in out and (tmp_path / "o" / "summary.csv").is_file()
    assert cli_main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ray_gives_the_same_histories(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        on_ray = run_sweep(SPECS, tmp_path / "ray", ray="", progress=False)
        serial = run_sweep(SPECS, tmp_path / "serial", workers=1, progress=False)
        assert _histories(on_ray) == _histories(serial)
    finally:
        ray.shutdown()
