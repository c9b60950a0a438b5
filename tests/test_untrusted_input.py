"""Files and arguments from other people: damaged checkpoints, history files, sweep files, CLI arguments.

A derandomised fuzz suite, by category. Every case must end in one of two
ways: a correct result, or one line ``pgcontrol: error: ...`` with exit
status 2 (a :class:`ValueError` subclass in the library). Never a
traceback, an "internal error", a hang (each call runs under an alarm), a
large allocation (the peak resident memory may not grow by more than
:data:`MEMORY_MB`), or code imported through an environment name.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pgcontrol import lqr, plants
from pgcontrol.checkpoint import load_checkpoint
from pgcontrol.config import resolve_config
from pgcontrol.errors import ConfigError
from pgcontrol.sweep import grid, grid_from_toml
from pgcontrol.train import train

SECONDS = 20  # a call taking longer is a hang
MEMORY_MB = 250  # growth of the peak resident memory allowed to one call
FUZZ_SEED = 0


class Hang(BaseException):
    """Raised by the alarm (a BaseException: no ``except Exception`` swallows it)."""


def _alarm(signum, frame):
    raise Hang(f"no answer within {SECONDS} s")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def bounded(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under an alarm of SECONDS; fails on a hang or on a peak memory jump."""
    before = _peak_mb()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        grew = _peak_mb() - before
        assert grew < MEMORY_MB, f"peak memory grew by {grew:.0f} MB"


def cli(capsys, *args):
    """``pgcontrol ARGS`` in this process, bounded; returns (exit status, stdout, stderr)."""
    from pgcontrol.cli import main

    try:
        code = bounded(main, [str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_ok_or_one_line(code, out, err, what=""):
    """A success, or one line ``pgcontrol: error: ...`` and exit status 2."""
    assert "Traceback" not in err and "internal error" not in err, (what, err)
    if code != 0:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("pgcontrol: error:"), (what, code, err)


def assert_one_line(code, out, err, message="", what=""):
    assert code == 2, (what, code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgcontrol: error:") and message in lines[0], (what, err)


# ------------------------------------------------------------------ the runs damaged below


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny finished runs: NPG (episodic) and A2C (episodes in flight saved) on scalar-lqg."""
    root = tmp_path_factory.mktemp("good")
    for algo in ("npg", "ac"):
        cfg, _ = resolve_config(algo, "scalar-lqg", {"iterations": 2, "num_envs": 4})
        train(algo, "scalar-lqg", config=cfg, out_dir=root / algo, progress=False, checkpoint_every=1)
    return root


def _copy_run(runs, algo, dest: Path) -> Path:
    shutil.copytree(runs / algo, dest)
    return dest


def _raw(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _save_raw(ckpt: dict, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    path.write_bytes(buf.getvalue())


def _run_all(capsys, folder: Path, algo: str, what: str, plot: bool = False):
    """eval, resume and plot of a (damaged) run folder: each a success or one line.

    The figure itself (about 2 s) is drawn when ``plot`` asks; otherwise plot's reading of the
    run (:func:`pgcontrol.plot.load_run`) must succeed or raise a ValueError.
    """
    commands = [("eval", folder, "--episodes", "2"),
                ("train", "--algo", algo, "--env", "scalar-lqg", "--out", folder, "--resume")]
    results = []
    for args in commands:
        code, out, err = cli(capsys, *args)
        assert_ok_or_one_line(code, out, err, f"{what}: {args[0]}")
        results.append(code)
    if plot:
        code, out, err = cli(capsys, "plot", folder, "--out", folder.parent / f"{folder.name}.png")
        assert_ok_or_one_line(code, out, err, f"{what}: plot")
    else:
        from pgcontrol.plot import load_run

        try:
            bounded(load_run, folder)
        except ValueError:
            pass


# entry mutations, by category: each returns the damaged checkpoint dict (or None to skip)
def _set(key, value):
    def f(ck):
        ck[key] = value
        return ck
    f.__name__ = f"{key}={str(value)[:30]}"
    return f


def _nested(path, value):
    def f(ck):
        d = ck
        for k in path[:-1]:
            if not isinstance(d.get(k), dict):
                return None
            d = d[k]
        d[path[-1]] = value
        return ck
    f.__name__ = f"{'.'.join(path)}={str(value)[:30]}"
    return f


def _resize_tensors(section, factor):
    def f(ck):
        d = ck.get(section)
        if not isinstance(d, dict):
            return None
        for k, v in list(d.items()):
            if isinstance(v, torch.Tensor):
                n = max(1, int(v.numel() * factor))
                d[k] = torch.zeros(n, dtype=v.dtype)
        return ck
    f.__name__ = f"{section} tensors x{factor}"
    return f


def _nonfinite(section, value):
    def f(ck):
        d = ck.get(section)
        if not isinstance(d, dict):
            return None
        for k, v in d.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                d[k] = torch.full_like(v, value)
        return ck
    f.__name__ = f"{section} = {value}"
    return f


MUTATIONS = [
    # wrong types and ranges of the plain entries
    _set("iteration", -5), _set("iteration", "x"), _set("iteration", 1.5), _set("iteration", True),
    _set("iteration", 10**30), _set("seed", -1), _set("seed", "0"), _set("format", "pgcontrol-9"),
    _set("algo", "../../x"), _set("algo", 5), _set("history", 5), _set("history", [5, "x"]),
    _set("history", [{"iteration": 0, "steps": "x"}]), _set("history", [{"steps": 10**30}]),
    _set("history", [{"iteration": 0}]), _set("config", 7), _set("config", {"normalize_clip": 1e300}),
    _set("config", {"normalize_obs": "yes"}), _set("config", {"lr": float("nan")}),
    _set("config", {"lr": float("inf")}), _set("config", {"iterations": 10**30}),
    _set("config", {"critic_steps": 10**30}), _set("config", {"n_steps": 10**9}),
    _set("normaliser", 5), _set("normaliser", {"NormalizeObservation": {"mean": "x"}}),
    _set("learner", 5), _set("learner", {"x": 1}), _set("rng", 5), _set("rng", {}),
    _nested(("rng", "reset_seed"), "x"), _nested(("rng", "reset_seed"), -3),
    _nested(("rng", "torch"), torch.zeros(3, dtype=torch.uint8)),
    _nested(("rng", "collector"), torch.zeros(7, dtype=torch.uint8)),
    _set("episodes", 5), _set("episodes", {"x": 1}),
    _nested(("episodes", "obs"), torch.zeros(1, 1)), _nested(("episodes", "env"), {"x": 1}),
    # environment names: data, never imports
    _set("env", "this:Zen-v0"), _set("env", "pgc_fuzz_mod:X-v0"), _set("env", "NoSuchEnv-v0"), _set("env", 5),
    _set("env", ["scalar-lqg"]), _set("env", "a" * 100_000),
    _set("env", {"A": [[1.0]]}), _set("env", {"A": "x", "B": 1, "Q": 1, "R": 1}),
    _set("env", {"A": np.eye(400).tolist(), "B": np.ones((400, 1)).tolist(), "Q": np.eye(400).tolist(),
                 "R": [[1.0]]}),
    _set("env", {"A": [[1e308]], "B": [[1.0]], "Q": [[1.0]], "R": [[1.0]], "gamma": 2}),
    # policy specs declaring more than the tensors hold, and damaged tensors
    _set("policy_spec", {"kind": "mlp", "obs_dim": 1, "act_dim": 1, "hidden": [20000, 20000]}),
    _set("policy_spec", {"kind": "linear", "obs_dim": 10**6, "act_dim": 10**6}),
    _set("policy_spec", {"kind": "linear", "obs_dim": -1, "act_dim": 1}),
    _set("policy_spec", {"kind": "mlp", "obs_dim": 1, "act_dim": 1, "hidden": [4096] * 16}),
    _set("policy_spec", {"kind": "mlp", "obs_dim": 1, "act_dim": 1, "hidden": [4096] * 4}),  # within the caps
    _set("policy_spec", {"kind": "nope"}), _set("policy_spec", {"kind": ["linear"]}), _set("policy_spec", 5),
    _set("policy_spec", None),
    _set("policy", {}), _set("policy", {"gain": torch.zeros(5)}), _set("policy", {"gain": 5}),
    _set("policy", {"mean_net.x.weight": torch.zeros(2, 2)}),
    _resize_tensors("policy", 3), _resize_tensors("policy", 0.5),
    _nonfinite("policy", float("nan")), _nonfinite("policy", float("inf")),
]


@pytest.mark.parametrize("algo", ["npg", "ac"])
def test_damaged_entries_give_one_line(runs, tmp_path, capsys, monkeypatch, algo):
    """Each entry replaced by a wrong type, a wrong size or a wrong value: eval, resume, plot."""
    (tmp_path / "pgc_fuzz_mod.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable: only the guard keeps it from running
    monkeypatch.chdir(tmp_path)
    base = _raw(runs / algo / "checkpoint.pt")
    resume_state = ("rng", "episodes", "learner", "normaliser", "history", "iteration", "config")
    for i, mutate in enumerate(MUTATIONS):
        if algo == "ac" and not mutate.__name__.startswith(resume_state):
            continue  # A2C: the state only a resume reads (its episodes in flight)
        folder = _copy_run(runs, algo, tmp_path / f"m{i}")
        ck = mutate(copy.deepcopy(base))
        if ck is None:
            continue
        _save_raw(ck, folder / "checkpoint.pt")
        _run_all(capsys, folder, algo, mutate.__name__, plot=algo == "npg" and isinstance(ck.get("env"), dict))
    assert not (tmp_path / "pgc_fuzz_mod.py.ran").exists(), "an environment name imported a module"
    assert "Beautiful is better than ugly" not in capsys.readouterr().out


def test_bytes_damaged_give_one_line(runs, tmp_path, capsys):
    """Truncated files, flipped bytes, compressed archives, legacy pickles, foreign files."""
    good = (runs / "npg" / "checkpoint.pt").read_bytes()
    rng = random.Random(FUZZ_SEED)
    variants = {f"truncated at {n}": good[:n] for n in (0, 1, 30, len(good) // 2, len(good) - 1)}
    for k in range(12):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        variants[f"flipped {k}"] = bytes(data)
    deflated = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    variants["deflated archive"] = deflated.getvalue()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:  # 2 GB of zeros in a few MB
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        for j in range(2):
            z.writestr(f"archive/data/{j}", bytes(2**20))  # (kept small here: refused by its compression alone)
    variants["zip bomb"] = bomb.getvalue()
    legacy = io.BytesIO()
    torch.save({"format": "pgcontrol-2"}, legacy, _use_new_zipfile_serialization=False)
    variants["legacy format"] = legacy.getvalue()
    variants["plain pickle"] = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x05."
    variants["text"] = b"hello\n"
    for i, (name, data) in enumerate(variants.items()):
        folder = _copy_run(runs, "npg", tmp_path / name.replace(" ", "_"))
        (folder / "checkpoint.pt").write_bytes(data)
        _run_all(capsys, folder, "npg", name, plot=i == 0)


def _stream_deflated(path: Path, good: bytes, inflated_mb: int) -> None:
    """``good`` with its first tensor's entry replaced by ``inflated_mb`` MB of zeros, deflated (written in chunks)."""
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        names = [i.filename for i in src.infolist()]
        target = next(n for n in names if "/data/" in n)
        for name in names:
            if name != target:
                dst.writestr(name, src.read(name))
                continue
            with dst.open(name, "w") as f:
                chunk = bytes(2**20)
                for _ in range(inflated_mb):
                    f.write(chunk)


def test_compressed_checkpoints_are_refused(runs, tmp_path, capsys):
    """A deflated archive (torch.save never compresses): a few hundred KB could inflate to gigabytes."""
    good = (runs / "npg" / "checkpoint.pt").read_bytes()
    folder = _copy_run(runs, "npg", tmp_path / "bomb")
    _stream_deflated(folder / "checkpoint.pt", good, 600)
    assert (folder / "checkpoint.pt").stat().st_size < 2 * 2**20
    for args in (("eval", folder), ("train", "--algo", "npg", "--env", "scalar-lqg", "--out", folder, "--resume")):
        code, out, err = cli(capsys, *args)
        assert_one_line(code, out, err, "compressed entry", args[0])


def test_declared_sizes_are_checked_before_allocating(runs, tmp_path):
    """A spec of 20000 x 20000 hidden units in a small file: refused at once, nothing allocated."""
    ck = _raw(runs / "npg" / "checkpoint.pt")
    ck["policy_spec"] = {"kind": "mlp", "obs_dim": 1, "act_dim": 1, "hidden": [20000, 20000]}
    _save_raw(ck, tmp_path / "checkpoint.pt")
    from pgcontrol.evaluate import evaluate

    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="MAX_WIDTH|declares"):
        bounded(evaluate, tmp_path, 2)
    assert time.perf_counter() - t0 < 5


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_non_regular_files_are_refused(runs, tmp_path, capsys):
    """A FIFO (would block forever), a folder or a device where a file is expected."""
    for kind in ("fifo", "folder", "device"):
        folder = _copy_run(runs, "npg", tmp_path / kind)
        for name in ("checkpoint.pt", "history.json"):
            (folder / name).unlink()
            if kind == "fifo":
                os.mkfifo(folder / name)
            elif kind == "folder":
                (folder / name).mkdir()
            else:
                (folder / name).symlink_to("/dev/zero")
        _run_all(capsys, folder, "npg", kind)
        code, out, err = cli(capsys, "sweep", folder / "checkpoint.pt", "--out", tmp_path / "s")
        assert_one_line(code, out, err, "not a regular file", kind)
        code, out, err = cli(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--config",
                             folder / "checkpoint.pt", "--out", tmp_path / f"t{kind}")
        assert_one_line(code, out, err, "", kind)


# ------------------------------------------------------------------ environment names


def test_module_env_names_are_refused_unless_allowed(runs, tmp_path, capsys, monkeypatch):
    """``module:Env`` from a checkpoint or a sweep imports nothing; --allow-env-module lets it through."""
    (tmp_path / "pgc_env_mod.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    folder = _copy_run(runs, "npg", tmp_path / "run")
    ck = _raw(folder / "checkpoint.pt")
    ck["env"] = "pgc_env_mod:X-v0"
    _save_raw(ck, folder / "checkpoint.pt")
    code, out, err = cli(capsys, "eval", folder)
    assert_one_line(code, out, err, "--allow-env-module pgc_env_mod")
    from pgcontrol.evaluate import evaluate

    with pytest.raises(ConfigError, match=r"env_modules=\['pgc_env_mod'\]"):
        evaluate(folder)
    sweep = tmp_path / "s.toml"
    sweep.write_text('algo = "npg"\nenv = "pgc_env_mod:X-v0"\n')
    code, out, err = cli(capsys, "sweep", sweep, "--out", tmp_path / "sw")
    assert_one_line(code, out, err, "--allow-env-module pgc_env_mod")
    assert not (tmp_path / "pgc_env_mod.py.ran").exists()
    # allowed explicitly: the module is imported, and its unregistered id is then refused
    code, out, err = cli(capsys, "eval", folder, "--allow-env-module", "pgc_env_mod")
    assert_one_line(code, out, err, "unknown environment")
    assert (tmp_path / "pgc_env_mod.py.ran").exists()
    ck["env"] = "this:Zen-v0"
    _save_raw(ck, folder / "checkpoint.pt")
    code, out, err = cli(capsys, "eval", folder)
    assert_one_line(code, out, err, "names a module to import")
    assert "Beautiful" not in out


def test_module_env_name_in_a_subprocess(runs, tmp_path):
    """``python -m pgcontrol eval``, where the working folder is on sys.path, imports nothing either."""
    (tmp_path / "pgc_sub_mod.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    folder = _copy_run(runs, "npg", tmp_path / "run")
    ck = _raw(folder / "checkpoint.pt")
    ck["env"] = "pgc_sub_mod:X-v0"
    _save_raw(ck, folder / "checkpoint.pt")
    r = subprocess.run([sys.executable, "-m", "pgcontrol", "eval", "run"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "pgc_sub_mod.py.ran").exists()


# ------------------------------------------------------------------ history.json for plot


HISTORIES = {
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "huge number": '[{"steps": 1e999}]',
    "huge integer": '[{"steps": ' + "9" * 5000 + "}]",
    "steps a string": '[{"steps": "x"}]',
    "no steps": '[{"iteration": 0}]',
    "rows not tables": "[1, 2]",
    "empty": "[]",
    "not a list": '{"steps": 1}',
    "not JSON": "{",
    "NaN gap": '[{"steps": 1, "gap": NaN}]',
    "gap a string": '[{"steps": 1, "gap": "x"}]',
    "K wrong shape": '[{"steps": 1, "gap": 0.1, "K": [[1, 2, 3]], "std": [1]}]',
    "K strings": '[{"steps": 1, "gap": 0.1, "K": [["a"]], "std": [1]}]',
    "K missing in a row": '[{"steps": 1, "gap": 0.1}, {"steps": 2, "gap": 0.1, "K": [[0.5]]}]',
    "not UTF-8": b"\xff\xfe[",
}


def test_damaged_history_gives_one_line(runs, tmp_path, capsys):
    for name, text in HISTORIES.items():
        folder = _copy_run(runs, "npg", tmp_path / name.replace(" ", "_"))
        (folder / "history.json").write_bytes(text if isinstance(text, bytes) else text.encode())
        code, out, err = cli(capsys, "plot", folder, "--out", tmp_path / "p.png")
        assert_one_line(code, out, err, "", name)


def test_plot_unwritable_output_is_exit_2(runs, tmp_path, capsys):
    code, out, err = cli(capsys, "plot", runs / "npg", "--out", tmp_path)  # a folder
    assert_one_line(code, out, err, "is a folder")
    (tmp_path / "f").write_text("")
    code, out, err = cli(capsys, "plot", runs / "npg", "--out", tmp_path / "f" / "x.png")  # under a file
    assert_one_line(code, out, err, "cannot write")
    code, out, err = cli(capsys, "reproduce", "gains", "--quick", "--out", tmp_path / "f" / "x")
    assert_one_line(code, out, err, "cannot write")


# ------------------------------------------------------------------ sweep files


SWEEPS = {
    "seed a float": ('algo = "npg"\nenv = "scalar-lqg"\nseeds = [1.9]\n', "non-negative integers"),
    "seed a boolean": ('algo = "npg"\nenv = "scalar-lqg"\nseeds = [true]\n', "non-negative integers"),
    "seed negative": ('algo = "npg"\nenv = "scalar-lqg"\nseeds = [-1]\n', "non-negative integers"),
    "seed in exponent form": ('algo = "npg"\nenv = "scalar-lqg"\nseed = 1e3\n', "non-negative integers"),
    "seeds repeated": ('algo = "npg"\nenv = "scalar-lqg"\nseeds = [0, 0]\n', "more than once"),
    "seeds empty": ('algo = "npg"\nenv = "scalar-lqg"\nseeds = []\n', "empty list"),
    "algo a path": ('algo = "../../x"\nenv = "scalar-lqg"\n', "unknown algorithm"),
    "algo repeated": ('algo = ["npg", "npg"]\nenv = "scalar-lqg"\n', "more than once"),
    "env not a string": ('algo = "npg"\nenv = ["scalar-lqg", 5]\n', "env must be"),
    "env a module": ('algo = "npg"\nenv = "this:Zen-v0"\n', "names a module"),
    "env unknown": ('algo = "npg"\nenv = "NoSuchEnv-v0"\n', "unknown environment"),
    "env a path": ('algo = "npg"\nenv = "../../etc/x"\n', "unknown environment"),
    "steps zero": ('algo = "npg"\nenv = "scalar-lqg"\nsteps = 0\n', "steps must be"),
    "steps a string": ('algo = "npg"\nenv = "scalar-lqg"\nsteps = "x"\n', "steps must be"),
    "policy unknown": ('algo = "npg"\nenv = "scalar-lqg"\npolicy = "x"\n', "policy must be"),
    "config not a table": ('algo = "npg"\nenv = "scalar-lqg"\nconfig = 3\n', "config must be"),
    "config NaN": ('algo = "npg"\nenv = "scalar-lqg"\n[config]\nlr = nan\n', "finite numbers"),
    "config nested lists": ('algo = "npg"\nenv = "scalar-lqg"\n[config]\nhidden = [[[1]]]\n', "values must be"),
    "config a table": ('algo = "npg"\nenv = "scalar-lqg"\n[config]\nlr = {a = 1}\n', "values must be"),
    "deep array": ('algo = "npg"\nenv = "scalar-lqg"\nseeds = ' + "[" * 5000 + "]" * 5000 + "\n", "too deeply"),
    "unknown key": ('algo = "npg"\nenv = "scalar-lqg"\nfoo = 1\n', "unknown: foo"),
    "no env": ('algo = "npg"\n', "required"),
    "not TOML": ("algo = \n", "not valid TOML"),
    "huge grid": ('algo = "npg"\nenv = "scalar-lqg"\nseeds = [' + ", ".join(map(str, range(100))) + "]\n[config]\n"
                  + "".join(f"k{i} = [{', '.join(map(str, range(10)))}]\n" for i in range(9)), "--max-runs"),
}


def test_damaged_sweep_files_give_one_line(tmp_path, capsys):
    for name, (text, message) in SWEEPS.items():
        f = tmp_path / f"{name.replace(' ', '_')}.toml"
        f.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            bounded(grid_from_toml, f)
        code, out, err = cli(capsys, "sweep", f, "--out", tmp_path / "out", "--workers", "1")
        assert_one_line(code, out, err, message, name)
    assert not (tmp_path.parent / "x").exists()
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    code, out, err = cli(capsys, "sweep", tmp_path / "bin.toml", "--out", tmp_path / "out")
    assert_one_line(code, out, err, "UTF-8")


def test_grid_size_cap_and_max_runs():
    with pytest.raises(ConfigError, match="1000 runs, more than 999"):
        grid("npg", "scalar-lqg", list(range(1000)), max_runs=999)
    assert len(grid("npg", "scalar-lqg", list(range(1000)), max_runs=1000)) == 1000
    with pytest.raises(ConfigError, match="160000000000 runs"):  # counted, never built
        bounded(grid, "npg", "scalar-lqg", list(range(16)), config={f"k{i}": list(range(10)) for i in range(10)})


# ------------------------------------------------------------------ command-line arguments


def test_bad_cli_arguments_give_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    nan = tmp_path / "nan.json"
    nan.write_text('{"kl_bound": NaN}')
    inf = tmp_path / "inf.toml"
    inf.write_text("kl_bound = inf\n")
    train = ("train", "--algo", "npg", "--env", "scalar-lqg", "--out", tmp_path / "t")
    cases = [
        ((*train, "--config", deep), "too deeply"),
        ((*train, "--config", nan), "finite number"),
        ((*train, "--config", inf), "finite number"),
        ((*train, "--threads", "100000"), "--threads must be an integer from 1 to"),
        ((*train, "--threads", "0"), "positive"),
        ((*train, "--seed", "1.5"), "non-negative"),
        ((*train, "--seed", "-1"), "non-negative"),
        ((*train, "--steps", "9" * 5000), "positive"),
        (("train", "--algo", "npg", "--env", "pgc_nomod:X-v0"), "--allow-env-module pgc_nomod"),
        (("train", "--algo", "npg", "--env", "this:Zen-v0"), "names a module"),
        (("train", "--algo", "npg", "--env", "NoSuchEnv-v0"), "unknown environment"),
        (("eval", tmp_path / "nothing"), "does not exist"),
        (("eval", tmp_path, "--episodes", "0"), "positive"),
        (("sweep", tmp_path / "none.toml"), "does not exist"),
        (("sweep", deep, "--max-runs", "0"), "positive"),
        (("lqr", "scalar-lqg", "--horizon", "-3"), ""),
        (("lqr", "scalar-lqg", "--gamma", "nan"), ""),
        (("lqr", "scalar-lqg", "--std", "inf", "--json"), ""),
        (("plot", tmp_path / "nothing"), "no run"),
    ]
    for args, message in cases:
        code, out, err = cli(capsys, *args)
        if args[:2] == ("lqr", "scalar-lqg") and code == 0:
            json.loads(out) if "--json" in args else None
            continue
        assert_one_line(code, out, err, message, args)
    assert not Path("pgc_nomod.py.ran").exists()


def test_lqr_json_is_standard_json(capsys):
    code, out, err = cli(capsys, "lqr", "scalar-lqg", "--gain", "100", "--json")  # an unstable gain
    assert code == 0 and "Infinity" not in out and "NaN" not in out
    assert json.loads(out)["J"] is None and json.loads(out)["gap"] is None  # infinite costs are null


# ------------------------------------------------------------------ library calls


LIBRARY = [
    (lambda: plants.random(1.5, 1), "n must be an integer"),
    (lambda: plants.random("3", 1), "n must be an integer"),
    (lambda: plants.random(500, 1), "MAX_RANDOM_DIM"),
    (lambda: plants.random(3, 0), "m must be an integer"),
    (lambda: plants.random(3, 1, seed=-1), "seed"),
    (lambda: lqr.cost_gap(1, 0), "J_opt"),
    (lambda: lqr.cost_gap(float("nan"), 1), "J must be"),
    (lambda: lqr.cost_gap(1, -1), "J_opt"),
    (lambda: lqr.cost_gap("x", 1), "numbers"),
    (lambda: lqr.policy_iteration("double-integrator", [[1.0, 2.0]], max_iter=-1), "max_iter"),
    (lambda: lqr.gradient_descent("double-integrator", [[1.0, 2.0]], max_iter=0), "max_iter"),
    (lambda: lqr.gradient_descent("double-integrator", [[1.0, 2.0]], max_iter=1.5), "max_iter"),
    (lambda: lqr.gradient_descent("double-integrator", [[1.0, 2.0]], tol=float("nan")), "tol"),
    (lambda: lqr.best_static_output_gain("double-integrator-output", [[0.1]], iters=-1), "iters"),
    (lambda: train("vpg", 5), "env must be"),
    (lambda: train("vpg", "this:Zen-v0"), "names a module"),
    (lambda: resolve_config("vpg", "scalar-lqg", {"lr": float("nan")}), "finite number"),
    (lambda: resolve_config("vpg", "scalar-lqg", {"lr": float("inf")}), "finite number"),
    (lambda: resolve_config("ppo", "scalar-lqg", {"hidden": [20000]}), "MAX_WIDTH"),
    (lambda: load_checkpoint("/dev/null"), "not a regular file"),
]


@pytest.mark.parametrize("k", range(len(LIBRARY)))
def test_library_calls_raise_value_errors(k):
    call, message = LIBRARY[k]
    with pytest.raises(ValueError, match=message):
        bounded(call)


def test_train_out_dir_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="a folder path \\(not a file\\)"):
        train("npg", "scalar-lqg", out_dir=tmp_path / "f", progress=False)


def test_random_plants_are_drawn_up_to_the_cap():
    t0 = time.perf_counter()
    p = bounded(plants.random, 100, 1, 0)
    assert p.n == 100 and time.perf_counter() - t0 < 15


# ------------------------------------------------------------------ silent wrong results


def test_resume_keeps_timing_rows(tmp_path):
    cfg, _ = resolve_config("npg", "scalar-lqg", {"iterations": 2, "num_envs": 4})
    train("npg", "scalar-lqg", config=cfg, out_dir=tmp_path, progress=False, checkpoint_every=1)
    cfg4, _ = resolve_config("npg", "scalar-lqg", {"iterations": 4, "num_envs": 4})
    train("npg", "scalar-lqg", config=cfg4, out_dir=tmp_path, progress=False, resume=True, checkpoint_every=1)
    rows = (tmp_path / "timing.csv").read_text().strip().splitlines()
    assert [int(float(r.split(",")[0])) for r in rows[1:]] == [0, 1, 2, 3]


def test_negative_iteration_is_refused(runs, tmp_path):
    ck = _raw(runs / "npg" / "checkpoint.pt")
    ck["iteration"] = -5
    _save_raw(ck, tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError, match="'iteration' must be an integer >= -1"):
        load_checkpoint(tmp_path)


def test_sweep_folders_stay_inside_out(tmp_path):
    from pgcontrol.sweep import RunSpec, run_one

    spec = RunSpec("../../x", "scalar-lqg")
    assert "/" not in spec.folder and not spec.folder.startswith(".")
    with pytest.raises(ConfigError, match="leave the sweep's folder"):
        from pgcontrol.sweep import _inside

        _inside(tmp_path, "../x")
    with pytest.raises(ValueError):
        run_one(spec, tmp_path)  # refused by the algorithm's name, inside tmp_path
    assert not (tmp_path.parent.parent / "x").exists()
