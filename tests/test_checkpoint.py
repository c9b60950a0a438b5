"""Checkpoints: safe loading (no code runs), a last good checkpoint that is good, files that agree, exact resume."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from pgcontrol import lqr, plants
from pgcontrol.algos.ppo import PPOConfig
from pgcontrol.algos.vpg import VPGConfig
from pgcontrol.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pgcontrol.cli import main as cli_main
from pgcontrol.errors import TrainingDiverged
from pgcontrol.train import train


class _Marker:
    """Unpickling this calls os.system: a checkpoint that would run code when loaded."""

    path = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _malicious(tmp_path, kind):
    _Marker.path = str(tmp_path / "PWNED")
    payload = {"format": "pgcontrol-2", "algo": "npg", "iteration": 0, "policy": {}, "history": [], "x": _Marker()}
    run = tmp_path / kind
    run.mkdir()
    if kind == "pickle":
        (run / "checkpoint.pt").write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, run / "checkpoint.pt")
    return run


@pytest.mark.parametrize("kind", ["pickle", "torch-zip"])
def test_a_malicious_checkpoint_never_runs_code(tmp_path, kind, capsys):
    run = _malicious(tmp_path, kind)
    with pytest.raises(CheckpointError):
        load_checkpoint(run)
    assert cli_main(["eval", str(run)]) == 2
    assert cli_main(["train", "--algo", "npg", "--env", "scalar-lqg", "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("pgcontrol: error:") for line in err), err
    assert not (tmp_path / "PWNED").exists()
    # the same object unpickled the unsafe way does run the code: the marker is a real test
    if kind == "torch-zip":
        torch.load(run / "checkpoint.pt", weights_only=False)
        assert (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("missing", ["algo", "iteration", "policy", "history"])
def test_incomplete_checkpoints_are_refused_with_one_line(tmp_path, missing, capsys):
    train("npg", "scalar-lqg", config=None, progress=False, out_dir=tmp_path / "r", max_steps=250)
    ckpt = load_checkpoint(tmp_path / "r")
    del ckpt[missing]
    save_checkpoint(tmp_path / "bad" / "checkpoint.pt", ckpt)
    with pytest.raises(CheckpointError, match=f"incomplete: '{missing}'"):
        load_checkpoint(tmp_path / "bad")
    assert cli_main(["eval", str(tmp_path / "bad")]) == 2
    assert "incomplete" in capsys.readouterr().err


@pytest.mark.parametrize("algo, cfg", [
    ("vpg", VPGConfig(lr=1.0, iterations=10, adaptive=False)), ("vpg", VPGConfig(lr=10.0, iterations=10, adaptive=False)),
    ("vpg", VPGConfig(lr=100.0, iterations=10, adaptive=False)),
    ("ppo", PPOConfig(lr=1000.0, iterations=10, adaptive=False)),
])
def test_forced_divergence_keeps_a_checkpoint_with_finite_exact_cost(tmp_path, algo, cfg):
    with pytest.raises(TrainingDiverged, match="is kept in"):
        train(algo, "double-integrator", config=cfg, progress=False, out_dir=tmp_path, checkpoint_every=1)
    ckpt = load_checkpoint(tmp_path)
    K = ckpt["policy"]["gain"].numpy()
    assert np.isfinite(lqr.policy_cost(plants.make("double-integrator"), K))


def test_run_files_agree_are_standard_json_and_keep_wall_clock_apart(tmp_path):
    cfg = VPGConfig(num_envs=4, iterations=3, lr=0.003)
    for d in ("a", "b"):
        train("vpg", "double-integrator", config=cfg, seed=3, progress=False, out_dir=tmp_path / d, checkpoint_every=1)
    for name in ("history.json", "progress.csv"):  # same seed: byte-identical metric files
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    hist = json.loads((tmp_path / "a" / "history.json").read_text())  # strict JSON: no Infinity/NaN
    assert hist == load_checkpoint(tmp_path / "a")["history"] and "steps_per_s" not in hist[0]
    assert (tmp_path / "a" / "timing.csv").read_text().splitlines()[0] == "iteration,seconds,steps_per_s"
    (tmp_path / "a" / ".checkpoint.pt.x.tmp").write_bytes(b"half a save")  # a kill during a save
    train("vpg", "double-integrator", config=VPGConfig(num_envs=4, iterations=4, lr=0.003), seed=3, progress=False,
          out_dir=tmp_path / "a", resume=True)
    assert not list((tmp_path / "a").glob(".*.tmp"))
    assert load_checkpoint(tmp_path / "a" / "checkpoint.prev.pt")["iteration"] == 2  # the run before the resume


def test_infinite_values_are_null_in_history_json(tmp_path):
    from pgcontrol.checkpoint import save_run

    save_run(tmp_path, [{"gap": float("inf"), "K": [[1.0]]}], [], {"algo": "vpg", "iteration": 0, "policy": {},
                                                                    "history": []})
    assert json.loads((tmp_path / "history.json").read_text()) == [{"gap": None, "K": [[1.0]]}]
    assert "inf" in (tmp_path / "progress.csv").read_text()


@pytest.mark.parametrize("algo, cfg", [
    ("ac", "AC"), ("ppo", "PPO"),
])
def test_continuing_learners_resume_exactly_on_plants(tmp_path, algo, cfg):
    """A2C and PPO (anneal_lr on): stopped by a step budget and resumed = uninterrupted, numbers and all.

    Fails if the learner state, the episodes in flight or the RNG streams are not restored.
    """
    from pgcontrol.algos.ac import ACConfig

    cfg = (ACConfig(num_envs=8, n_steps=16, iterations=6, lr=0.05, anneal_lr=True) if algo == "ac" else
           PPOConfig(num_envs=8, n_steps=32, iterations=6, lr=0.005, critic="quadratic", critic_optimizer="lstsq",
                     lam=0.0, anneal_lr=True))
    full = train(algo, "double-integrator", config=cfg, seed=2, progress=False)
    per = cfg.num_envs * cfg.n_steps
    train(algo, "double-integrator", config=cfg, seed=2, progress=False, out_dir=tmp_path, max_steps=3 * per)
    resumed = train(algo, "double-integrator", config=cfg, seed=2, progress=False, out_dir=tmp_path, resume=True)
    for key in ("K", "std", "loss_value", "loss_policy"):
        assert [r[key] for r in resumed] == [r[key] for r in full], key


@pytest.mark.parametrize("damage", ["no rng", "no learner", "no policy", "no history", "bad gain shape", "env an int",
                                    "rng without generators"])
def test_damaged_checkpoints_fail_with_one_line_in_eval_and_resume(tmp_path, damage, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "800", "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)
    if damage == "bad gain shape":
        ckpt["policy"]["gain"] = torch.zeros(3, 3, dtype=torch.float64)
    elif damage == "env an int":
        ckpt["env"] = 7
    elif damage == "rng without generators":
        ckpt["rng"] = {"reset_seed": 1}
    else:
        del ckpt[damage.split()[1]]
    save_checkpoint(out / "checkpoint.pt", ckpt)
    capsys.readouterr()
    codes = [cli_main(["eval", str(out), "--episodes", "4"]),
             cli_main(["train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "1600", "--out", str(out),
                       "--resume"])]
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pgcontrol: error:")]
    assert 2 in codes and "Traceback" not in "".join(err) and err, (codes, err)
    assert codes[1] == 2  # a damaged checkpoint can never be resumed
