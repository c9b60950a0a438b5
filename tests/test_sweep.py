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
    # a list of lists: each inner list is one value (hidden layer widths), kept as a tuple
    (tmp_path / "h.toml").write_text('algo = "ppo"\nenv = "scalar-lqg"\n[config]\nhidden = [[8, 8], [4]]\n')
    nets = grid_from_toml(tmp_path / "h.toml")
    assert [s.overrides for s in nets] == [(("hidden", (8, 8)),), (("hidden", (4,)),)] and len(set(nets)) == 2
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


# ------------------------------------------------------------------ tasks: the reproductions' runs

def test_a_task_is_a_call_of_pgcontrols_own_function(tmp_path):
    from pgcontrol.sweep import TaskSpec

    spec = TaskSpec.make("pgcontrol.reproduce.plateau:learn_run", 3, algo="npg", step=0.05, updates=4)
    assert spec == TaskSpec.make("pgcontrol.reproduce.plateau:learn_run", 3, updates=4, step=0.05, algo="npg")
    assert spec.folder.startswith("learn_run-seed3-") and spec.folder != TaskSpec.make(
        "pgcontrol.reproduce.plateau:learn_run", 4, algo="npg", step=0.05, updates=4).folder
    [res] = run_sweep([spec], tmp_path, workers=1, progress=False)
    from pgcontrol.reproduce.plateau import learn

    direct = learn("npg", 0.05, 3, 4)
    assert res["status"] == "ok" and res["output"]["k"] == direct.k.tolist()  # bit for bit, through JSON
    # only pgcontrol's own functions: a sweep never imports code its data names
    [bad] = run_sweep([TaskSpec.make("os:system", 0, command="true")], tmp_path, workers=1, progress=False)
    assert bad["status"] == "failed" and "pgcontrol.<module>:<function>" in bad["error"]


def test_results_keep_non_finite_numbers_and_stale_runs_are_recomputed(tmp_path, monkeypatch):
    import math

    from pgcontrol import sweep
    from pgcontrol.sweep import TaskSpec

    spec = TaskSpec.make("pgcontrol.reproduce.gains:learner_run", 0, plant="scalar-lqg", learner="NPG", quick=True)
    monkeypatch.setattr("pgcontrol.reproduce.gains.run_learner",
                        lambda *a: {"gap": math.inf, "nan": math.nan, "low": -math.inf, "x": [1.5, math.inf]})
    [res] = run_sweep([spec], tmp_path, workers=1, progress=False)
    out = res["output"]
    assert out["gap"] == math.inf and math.isnan(out["nan"]) and out["low"] == -math.inf and out["x"][1] == math.inf
    text = (tmp_path / spec.folder / "result.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))  # strict JSON on disk
    # a finished run is reused under the same code, recomputed under another
    calls = []
    monkeypatch.setattr("pgcontrol.reproduce.gains.run_learner", lambda *a: calls.append(a) or {"gap": 1.0})
    assert run_sweep([spec], tmp_path, workers=1, progress=False)[0]["output"]["gap"] == math.inf and not calls
    monkeypatch.setattr(sweep, "code_fingerprint", lambda: "edited")
    assert run_sweep([spec], tmp_path, workers=1, progress=False)[0]["output"]["gap"] == 1.0 and len(calls) == 1


def test_a_failed_cell_stops_a_reproduction_with_one_line(tmp_path, monkeypatch):
    from pgcontrol.errors import RunFailed
    from pgcontrol.reproduce import run

    def broken(iterations, seed):
        raise ValueError("seed 1 is broken" if seed == 1 else "")

    monkeypatch.setattr("pgcontrol.reproduce.lqg.seed_run", broken)
    with pytest.raises(RunFailed, match=r"reproduce lqg: 2 of 2 runs failed; seed_run-seed0-\w+: ValueError"):
        run("lqg", quick=True, out=tmp_path, progress=False, workers=1)
