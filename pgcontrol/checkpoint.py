"""Checkpoints: what a run saves, how it is written, and how it is read back safely.

A checkpoint (``checkpoint.pt``, written by :func:`save_checkpoint`) is a
dict of tensors and plain data only::

    {"format": "pgcontrol-2", "algo", "iteration", "config" (dict), "env" (a name, or a plant's matrices),
     "gamma", "seed", "policy_spec" (dict), "policy" (state dict), "learner" (state dict),
     "normaliser" (lists), "rng" (byte tensors), "history" (list of dicts)}

It is read with ``torch.load(..., weights_only=True)``, so a file cannot run
code when it is loaded (a crafted pickle raises :class:`CheckpointError`):
students exchange checkpoints. Plants are stored as their matrices and
rebuilt (and validated again) by :class:`~pgcontrol.plants.LinearGaussianPlant`.

Every file is written atomically (:func:`atomic_write`: a temporary file in
the same folder, ``fsync``, then :func:`os.replace`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from .envs import find_wrapper
from .errors import CheckpointError, PolicyError
from .files import atomic_write, json_safe
from .plants import LinearGaussianPlant
from .plants import make as make_plant
from .plants import names as plant_names
from .policies import policy_from_spec

__all__ = ["FORMAT", "atomic_write", "save_checkpoint", "save_run", "remove_stale_temporaries",
           "check_resumable", "restore_run", "load_checkpoint", "checkpoint_plant", "plant_to_dict",
           "plant_from_dict", "normaliser_state", "load_normaliser_state", "policy_from_checkpoint",
           "policy_kind"]

FORMAT = "pgcontrol-2"
_FORMATS = ("pgcontrol-1", FORMAT)


# ------------------------------------------------------------------ plants


def plant_to_dict(plant: LinearGaussianPlant) -> dict:
    """A plant as plain data (nested lists, floats, a string): safe to store in a checkpoint."""
    out = {}
    for f in dataclasses.fields(plant):
        v = getattr(plant, f.name)
        out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def plant_from_dict(d: dict) -> LinearGaussianPlant:
    """Rebuild (and validate) a plant stored by :func:`plant_to_dict`."""
    fields = {f.name for f in dataclasses.fields(LinearGaussianPlant)}
    if not isinstance(d, dict) or not {"A", "B", "Q", "R"} <= set(d) or not set(d) <= fields:
        raise CheckpointError("the checkpoint's plant is not a table of LinearGaussianPlant fields")
    return LinearGaussianPlant(**d)


def checkpoint_plant(ckpt: dict) -> LinearGaussianPlant | None:
    """The plant a checkpoint was trained on, or None for a Gymnasium environment."""
    env = ckpt.get("env")
    if isinstance(env, LinearGaussianPlant):
        return env
    if isinstance(env, dict):
        return plant_from_dict(env)
    if isinstance(env, str) and env in plant_names():
        return make_plant(env)
    return None


# ------------------------------------------------------- normaliser statistics

_NORMALISERS = (("NormalizeObservation", "obs_rms"), ("NormalizeReward", "return_rms"))


def normaliser_state(vec) -> dict:
    """Running statistics of Gymnasium's vector normalisation wrappers, as lists (for checkpoints)."""
    out = {}
    for name, attr in _NORMALISERS:
        w = find_wrapper(vec, name)
        if w is not None:
            rms = getattr(w, attr)
            out[name] = {"mean": np.asarray(rms.mean).tolist(), "var": np.asarray(rms.var).tolist(),
                         "count": float(rms.count)}
    return out


def load_normaliser_state(vec, state: dict, *, freeze: bool = False) -> None:
    """Restore :func:`normaliser_state` into the wrappers of ``vec`` (``freeze``: stop updating them).

    ``vec`` may also be a single-env ``NormalizeObservation`` wrapper.
    """
    for name, attr in _NORMALISERS:
        w = find_wrapper(vec, name)
        if w is not None and name in state:
            rms = getattr(w, attr)
            s = state[name]
            rms.mean, rms.var, rms.count = np.array(s["mean"], dtype=float), np.array(s["var"], dtype=float), \
                float(s["count"])
            if freeze:
                w.update_running_mean = False


# --------------------------------------------------------------- save / load


def save_checkpoint(path: str | Path, ckpt: dict) -> None:
    """Write a checkpoint dict atomically; plants become their matrices (:func:`plant_to_dict`)."""
    ckpt = dict(ckpt, format=FORMAT)
    if isinstance(ckpt.get("env"), LinearGaussianPlant):
        ckpt["env"] = plant_to_dict(ckpt["env"])
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write(path, buf.getvalue())


_REQUIRED = {"algo": str, "iteration": int, "policy": dict, "history": list}
_FOR_RESUME = {"learner": dict, "rng": dict, "config": dict, "normaliser": dict}


def check_resumable(ckpt: dict, path) -> None:
    """What a resume needs beyond :func:`load_checkpoint`'s checks: learner state, RNG streams, config, normaliser."""
    for key, typ in _FOR_RESUME.items():
        if not isinstance(ckpt.get(key), typ):
            raise CheckpointError(f"checkpoint {str(path)!r} cannot be resumed: {key!r} must be a {typ.__name__}, "
                                  f"got {type(ckpt.get(key)).__name__}")
    rng = ckpt["rng"]
    if not (isinstance(rng.get("collector"), torch.Tensor) and isinstance(rng.get("torch"), torch.Tensor)
            and isinstance(rng.get("reset_seed"), int)):
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be resumed: its 'rng' entry lacks the random "
                              "generators' states")


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (the file, or its run folder).

    Loads with ``weights_only=True``: only tensors and plain data are
    accepted, never code.

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, not a pgcontrol checkpoint, holds
        anything but tensors and plain data, or lacks a required entry.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # plain pickles of other protocols warn before they are refused
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged or unsafe file
        unsafe = re.search(r"unsupported (GLOBAL|global)|Unsupported class", str(exc))
        what = "holds objects other than tensors and plain data (refused: loading it could run code)" if unsafe \
            else f"is corrupt or not a pgcontrol checkpoint ({type(exc).__name__})"
        raise CheckpointError(f"checkpoint {str(path)!r} {what}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in _FORMATS:
        raise CheckpointError(f"{str(path)!r} is not a pgcontrol checkpoint")
    for key, typ in _REQUIRED.items():
        if not isinstance(ckpt.get(key), typ):
            raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: {key!r} must be a {typ.__name__}, "
                                  f"got {type(ckpt.get(key)).__name__}")
    env = ckpt.get("env")
    if env is not None and not isinstance(env, (str, dict)):
        raise CheckpointError(f"checkpoint {str(path)!r}: 'env' must be a name or a plant's matrices; "
                              f"got {type(env).__name__}")
    return ckpt


# ------------------------------------------------------------------ policies


def _infer_policy_spec(state: dict) -> dict:
    if "gain" in state:
        m, n = state["gain"].shape
        return {"kind": "linear", "obs_dim": n, "act_dim": m, "dtype": str(state["gain"].dtype).removeprefix("torch.")}
    weights = [state[k] for k in sorted((k for k in state if k.startswith("mean_net.") and k.endswith(".weight")),
                                        key=lambda k: int(k.split(".")[1]))]
    if not weights:
        raise CheckpointError("the checkpoint's policy has no spec and unknown parameters; it cannot be rebuilt")
    return {"kind": "mlp", "obs_dim": weights[0].shape[1], "act_dim": weights[-1].shape[0],
            "hidden": [w.shape[0] for w in weights[:-1]], "dtype": str(weights[0].dtype).removeprefix("torch.")}


def policy_kind(ckpt: dict) -> str:
    """``"linear"`` or ``"mlp"``: the kind of policy a checkpoint holds."""
    spec = ckpt.get("policy_spec")
    return (spec if isinstance(spec, dict) and "kind" in spec else _infer_policy_spec(ckpt["policy"]))["kind"]


def policy_from_checkpoint(ckpt: dict, device="cpu"):
    """The trained policy of a checkpoint (a dict from :func:`load_checkpoint`), on ``device``, in eval mode.

    Built from the stored ``policy_spec`` (:func:`pgcontrol.policies.policy_from_spec`);
    checkpoints without one are recognised from their parameter names.
    """
    state = ckpt.get("policy")
    if not isinstance(state, dict):
        raise CheckpointError("checkpoint holds no policy parameters")
    spec = ckpt.get("policy_spec")
    if spec is None:
        spec = _infer_policy_spec(state)
    try:
        policy = policy_from_spec(spec)
        policy.load_state_dict(state)
    except (PolicyError, RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint's policy cannot be rebuilt ({str(exc).splitlines()[0]})") from None
    return policy.to(device).eval()


# ------------------------------------------------------------------ run files


def _history_csv(history: list[dict]) -> str:
    keys = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for row in history:
        w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return buf.getvalue()


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files of a save that was killed halfway (``atomic_write`` names them ``.NAME.*.tmp``)."""
    for tmp in out.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def save_run(out: Path, history: list[dict], timing: list[dict], ckpt: dict) -> None:
    """Write a run's files: ``progress.csv``, ``history.json``, ``timing.csv``, then ``checkpoint.pt``.

    The checkpoint goes last, so that after a kill it is never ahead of the
    files it summarises. ``history.json`` is standard JSON (non-finite values
    as null); wall-clock fields live in ``timing.csv`` only.
    """
    atomic_write(out / "progress.csv", _history_csv(history))
    atomic_write(out / "history.json", json.dumps(json_safe(history), indent=1, allow_nan=False) + "\n")
    atomic_write(out / "timing.csv", _history_csv(timing))
    save_checkpoint(out / "checkpoint.pt", ckpt)


def restore_run(ckpt: dict, path, *, policy, learner, vec, collector) -> None:
    """Put a resumed run back where the checkpoint left it: parameters, learner, normalisers, RNG, episodes.

    Raises :class:`CheckpointError` (one line) for a checkpoint that lacks
    what a resume needs or does not fit the run's policy or learner.
    """
    check_resumable(ckpt, path)
    try:
        policy.load_state_dict(ckpt["policy"])
        learner.load_state_dict(ckpt["learner"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint {str(path)!r} does not fit this run's policy or learner "
                              f"({str(exc).splitlines()[0]})") from None
    load_normaliser_state(vec, ckpt["normaliser"])
    collector.load_rng_state(ckpt["rng"])
    collector.load_episode_state(ckpt.get("episodes"))  # A2C and PPO on plants: the episodes in flight
    torch.set_rng_state(ckpt["rng"]["torch"])
