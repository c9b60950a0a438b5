"""Checkpoints: what a run saves, how it is written, and how it is read back safely.

A checkpoint (``checkpoint.pt``, written by :func:`save_checkpoint`) is a
dict of tensors and plain data only::

    {"format": "pgcontrol-2", "algo", "iteration", "config" (dict), "env" (a name, or a plant's matrices),
     "gamma", "seed", "policy_spec" (dict), "policy" (state dict), "learner" (state dict),
     "normaliser" (lists), "rng" (byte tensors), "history" (list of dicts)}

It is read with ``torch.load(..., weights_only=True)``, so a file cannot run
code when it is loaded (a crafted pickle raises :class:`CheckpointError`):
students exchange checkpoints. Loading is bounded too: only a regular file
of at most :data:`MAX_CHECKPOINT_BYTES`, a zip archive whose entries are
stored uncompressed (as ``torch.save`` writes them, so nothing is inflated
beyond the file's size), is read; a policy is built only once its spec's
size is checked against the tensors the file holds. Plants are stored as
their matrices (at most :data:`MAX_PLANT_DIM` states) and rebuilt (and
validated again) by :class:`~pgcontrol.plants.LinearGaussianPlant`.

Every file is written atomically (:func:`atomic_write`: a temporary file in
the same folder, ``fsync``, then :func:`os.replace`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import stat
import warnings
import zipfile
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
           "policy_kind", "run_state"]

FORMAT = "pgcontrol-2"
_FORMATS = ("pgcontrol-1", FORMAT)

MAX_CHECKPOINT_BYTES = 256 * 2**20
"""Largest checkpoint file read (256 MiB); a bigger one is refused before it is read."""
MAX_ENTRIES = 10_000
"""Most entries (tensors) a checkpoint archive may hold."""
MAX_PLANT_DIM = 1000
"""Most states (and inputs, outputs) of a plant stored in a checkpoint."""
MAX_TIMING_BYTES = 64 * 2**20
"""Largest ``timing.csv`` a resumed run reads back."""


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
    for key in ("A", "B", "C", "Q", "R"):
        rows = d.get(key)
        if isinstance(rows, (list, tuple)) and (len(rows) > MAX_PLANT_DIM or any(
                isinstance(r, (list, tuple)) and len(r) > MAX_PLANT_DIM for r in rows)):
            raise CheckpointError(f"the checkpoint's plant matrix {key} is larger than {MAX_PLANT_DIM} x "
                                  f"{MAX_PLANT_DIM} (MAX_PLANT_DIM)")
    try:
        return LinearGaussianPlant(**d)
    except (TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise CheckpointError(f"the checkpoint's plant cannot be rebuilt ({type(exc).__name__}: "
                              f"{(str(exc).splitlines() or [''])[0][:200]})") from None


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
    hist = ckpt["history"]
    if hist:
        steps, it = hist[-1].get("steps"), hist[-1].get("iteration")
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps < 2**62:
            raise CheckpointError(f"checkpoint {str(path)!r} cannot be resumed: its last history row's 'steps' must "
                                  f"be a non-negative integer; got {str(steps)[:80]}")
        if it != ckpt["iteration"] or isinstance(it, bool):
            raise CheckpointError(f"checkpoint {str(path)!r} cannot be resumed: its last history row's 'iteration' "
                                  f"({str(it)[:80]}) is not the checkpoint's ({ckpt['iteration']})")
    elif ckpt["iteration"] != -1:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be resumed: iteration {ckpt['iteration']} but no "
                              "history")


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_CHECKPOINT_BYTES` (a FIFO or a device is never opened
    for reading: it could block or never end)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"checkpoint {str(path)!r} is not a regular file")
    if st.st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"checkpoint {str(path)!r} is {st.st_size} bytes; at most {MAX_CHECKPOINT_BYTES} "
                              "(MAX_CHECKPOINT_BYTES) are read")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced since the check above
                raise CheckpointError(f"checkpoint {str(path)!r} is not a regular file")
            data = f.read(MAX_CHECKPOINT_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"checkpoint {str(path)!r} is larger than {MAX_CHECKPOINT_BYTES} bytes "
                              "(MAX_CHECKPOINT_BYTES)")
    return data


def _check_archive(data: bytes, path: Path) -> None:
    """A ``torch.save`` zip archive whose entries are stored, not compressed: nothing inflates beyond the file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not a pgcontrol checkpoint (not a torch.save "
                              "zip archive)") from None
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(f"checkpoint {str(path)!r} holds {len(infos)} entries; at most {MAX_ENTRIES}")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise CheckpointError(f"checkpoint {str(path)!r} holds a compressed entry ({info.filename[:100]!r}); "
                                  "torch.save stores its entries uncompressed, so it is refused (a small "
                                  "compressed file can inflate to gigabytes)")
        total += info.file_size
    if total > len(data):
        raise CheckpointError(f"checkpoint {str(path)!r} declares {total} bytes of entries in a file of {len(data)}")


def _check_fields(ckpt: dict, path: Path) -> None:
    """The types (and ranges) of the entries every reader relies on."""
    where = f"checkpoint {str(path)!r}"
    it = ckpt["iteration"]
    if isinstance(it, bool) or it < -1:
        raise CheckpointError(f"{where}: 'iteration' must be an integer >= -1 (-1: before the first update); "
                              f"got {it!r}")
    if not all(isinstance(row, dict) for row in ckpt["history"]):
        raise CheckpointError(f"{where}: 'history' must be a list of tables (one per iteration)")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt["policy"].items()):
        raise CheckpointError(f"{where}: 'policy' must map parameter names to tensors")
    for key, typ in (("config", dict), ("policy_spec", dict), ("normaliser", dict), ("learner", dict),
                     ("rng", dict), ("episodes", dict)):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], typ):
            raise CheckpointError(f"{where}: {key!r} must be a {typ.__name__} or absent; got "
                                  f"{type(ckpt[key]).__name__}")
    seed = ckpt.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise CheckpointError(f"{where}: 'seed' must be a non-negative integer; got {str(seed)[:80]}")
    env = ckpt.get("env")
    if env is not None and not isinstance(env, (str, dict)):
        raise CheckpointError(f"{where}: 'env' must be a name or a plant's matrices; got {type(env).__name__}")


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (the file, or its run folder).

    Loads with ``weights_only=True``: only tensors and plain data are
    accepted, never code. Only a regular file of at most
    :data:`MAX_CHECKPOINT_BYTES` is read, and only if it is a zip archive of
    uncompressed entries, as ``torch.save`` writes (memory stays of the
    order of the file's size).

    Raises
    ------
    CheckpointError
        If the file is missing, not a regular file, too large, compressed,
        corrupt, not a pgcontrol checkpoint, holds anything but tensors and
        plain data, or lacks a required entry (or has one of the wrong type).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not os.path.lexists(path):
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    data = _read_bounded(path)
    _check_archive(data, path)
    try:
        with warnings.catch_warnings():  # plain pickles of other protocols warn before they are refused
            warnings.simplefilter("ignore")
            ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
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
    _check_fields(ckpt, path)
    return ckpt


# ------------------------------------------------------------------ policies


def _infer_policy_spec(state: dict) -> dict:
    if any(v.dim() != 2 for k, v in state.items() if k == "gain" or k.endswith(".weight")):
        raise CheckpointError("the checkpoint's policy has weights that are not matrices")
    if "gain" in state:
        m, n = state["gain"].shape
        return {"kind": "linear", "obs_dim": n, "act_dim": m, "dtype": str(state["gain"].dtype).removeprefix("torch.")}
    weights = [state[k] for k in sorted((k for k in state if k.startswith("mean_net.") and k.endswith(".weight")),
                                        key=lambda k: int(k.split(".")[1]) if k.split(".")[1].isdigit() else -1)]
    if not weights:
        raise CheckpointError("the checkpoint's policy has no spec and unknown parameters; it cannot be rebuilt")
    return {"kind": "mlp", "obs_dim": weights[0].shape[1], "act_dim": weights[-1].shape[0],
            "hidden": [w.shape[0] for w in weights[:-1]], "dtype": str(weights[0].dtype).removeprefix("torch.")}


def policy_kind(ckpt: dict) -> str:
    """``"linear"`` or ``"mlp"``: the kind of policy a checkpoint holds."""
    spec = ckpt.get("policy_spec")
    kind = (spec if isinstance(spec, dict) and "kind" in spec else _infer_policy_spec(ckpt["policy"]))["kind"]
    if kind not in ("linear", "mlp"):
        raise CheckpointError(f"the checkpoint's policy_spec has kind {str(kind)[:80]!r}; expected 'linear' or 'mlp'")
    return kind


def policy_from_checkpoint(ckpt: dict, device="cpu"):
    """The trained policy of a checkpoint (a dict from :func:`load_checkpoint`), on ``device``, in eval mode.

    Built from the stored ``policy_spec`` (:func:`pgcontrol.policies.policy_from_spec`);
    checkpoints without one are recognised from their parameter names.
    """
    state = ckpt.get("policy")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("checkpoint holds no policy parameters (a table of tensors)")
    spec = ckpt.get("policy_spec")
    try:
        if spec is None:
            spec = _infer_policy_spec(state)
        # the spec's size against the values the file holds, before anything is allocated
        policy = policy_from_spec(spec, max_parameters=sum(v.numel() for v in state.values()))
        policy.load_state_dict(state)
    except (PolicyError, RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"the checkpoint's policy cannot be rebuilt "
                              f"({(str(exc).splitlines() or [type(exc).__name__])[0][:300]})") from None
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


def read_timing(path: Path, *, before: int) -> list[dict]:
    """The rows of a run's ``timing.csv`` for iterations ``< before`` (what a resumed run keeps); [] if unreadable.

    Values are read back as numbers; a file that is not a regular file, is
    larger than :data:`MAX_TIMING_BYTES` or is malformed gives no rows (the
    timings are informative only; the run's numbers never depend on them).
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_TIMING_BYTES:
            return []
        rows = []
        for row in csv.DictReader(io.StringIO(Path(path).read_text())):
            parsed = {k: float(v) for k, v in row.items() if isinstance(k, str) and isinstance(v, str) and v}
            it = parsed.get("iteration")
            if it is None or not it.is_integer() or not -1 <= it < before:
                continue
            parsed["iteration"] = int(it)
            rows.append(parsed)
        return rows
    except (OSError, ValueError, csv.Error, UnicodeDecodeError):
        return []


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files of a save that was killed halfway (``atomic_write`` names them ``.NAME.*.tmp``)."""
    for tmp in out.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def run_state(*, algo: str, iteration: int, config, env, gamma, seed: int, policy, learner, vec, collector,
              history: list[dict]) -> dict:
    """Everything a checkpoint holds of a run after ``iteration`` (−1: the starting policy), for :func:`save_run`.

    Parameters, optimisers and critics (``learner.state_dict()``), normaliser statistics, the RNG streams and
    the episodes in flight: what :func:`restore_run` needs to continue with the numbers of an uninterrupted run.
    """
    return {"algo": algo, "iteration": iteration, "config": dataclasses.asdict(config),
            "env": env if isinstance(env, (str, LinearGaussianPlant)) else None, "gamma": gamma, "seed": seed,
            "policy_spec": policy.spec() if hasattr(policy, "spec") else None,
            "policy": policy.state_dict(), "learner": learner.state_dict(), "normaliser": normaliser_state(vec),
            "rng": {**collector.rng_state(), "torch": torch.get_rng_state()}, "episodes": collector.episode_state(),
            "history": history}


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
    _check_like(ckpt["rng"], {**collector.rng_state(), "torch": torch.get_rng_state()},
                f"checkpoint {str(path)!r}: rng")
    episodes = ckpt.get("episodes")
    if episodes is not None:
        _check_episodes(episodes, collector, path)
    _check_normaliser(ckpt["normaliser"], vec, path)
    try:
        policy.load_state_dict(ckpt["policy"])
        learner.load_state_dict(ckpt["learner"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"the checkpoint {str(path)!r} does not fit this run's policy or learner "
                              f"({(str(exc).splitlines() or [type(exc).__name__])[0][:300]})") from None
    try:
        load_normaliser_state(vec, ckpt["normaliser"])
        collector.load_rng_state(ckpt["rng"])
        collector.load_episode_state(episodes)  # A2C and PPO on plants: the episodes in flight
        torch.set_rng_state(ckpt["rng"]["torch"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"the checkpoint {str(path)!r} cannot be resumed: its random or episode state does "
                              f"not fit this run ({(str(exc).splitlines() or [type(exc).__name__])[0][:300]})") \
            from None


def _check_like(value, ref, where: str) -> None:
    """``value`` has the structure of ``ref``: the same keys, tensors of the same shape and dtype, numbers."""
    if isinstance(ref, torch.Tensor):
        if not (isinstance(value, torch.Tensor) and value.shape == ref.shape and value.dtype == ref.dtype):
            got = f"a {value.dtype} tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) \
                else type(value).__name__
            raise CheckpointError(f"{where} must be a {ref.dtype} tensor of shape {tuple(ref.shape)}; got {got}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{where} has non-finite entries")
    elif isinstance(ref, dict):
        if not isinstance(value, dict) or set(value) != set(ref):
            raise CheckpointError(f"{where} must be a table of {sorted(ref)}; got "
                                  f"{sorted(map(str, value))[:10] if isinstance(value, dict) else type(value).__name__}")
        for k in ref:
            _check_like(value[k], ref[k], f"{where}.{k}")
    elif isinstance(ref, bool):
        if not isinstance(value, bool):
            raise CheckpointError(f"{where} must be true or false; got {str(value)[:80]}")
    elif isinstance(ref, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{where} must be a non-negative integer; got {str(value)[:80]}")


def _check_episodes(episodes, collector, path) -> None:
    """The episodes in flight have the shapes of this run's vector env (``num_envs``, observation size)."""
    envs = collector.envs
    if not hasattr(envs, "state_dict"):
        raise CheckpointError(f"checkpoint {str(path)!r} holds episodes in flight, which this environment cannot "
                              "restore")
    n = envs.num_envs
    if not isinstance(episodes, dict) or set(episodes) != {"obs", "resetting", "tau", "ep_ret", "env"}:
        raise CheckpointError(f"checkpoint {str(path)!r}: 'episodes' must be a table of obs, resetting, tau, ep_ret "
                              "and env")
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    for key, shape in (("obs", (n, obs_dim)), ("resetting", (n,)), ("tau", (n,)), ("ep_ret", (n,))):
        t = episodes[key]
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
            raise CheckpointError(f"checkpoint {str(path)!r}: episodes.{key} must be a tensor of shape {shape}; "
                                  f"got {tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    _check_like(episodes["env"], envs.state_dict(), f"checkpoint {str(path)!r}: episodes.env")


def _check_normaliser(state, vec, path) -> None:
    """Normaliser statistics: for the wrappers this run has, lists of the observation's size (or scalars)."""
    current = normaliser_state(vec)
    for name, stats in state.items():
        if name not in current:
            continue
        ref = current[name]
        try:
            ok = isinstance(stats, dict) and set(stats) == set(ref) and all(
                np.shape(stats[k]) == np.shape(ref[k]) and np.isfinite(np.asarray(stats[k], dtype=float)).all()
                for k in ref)
        except (TypeError, ValueError, OverflowError, RecursionError):
            ok = False
        if not ok:
            raise CheckpointError(f"checkpoint {str(path)!r}: normaliser {name!r} does not fit this run (mean, var "
                                  "of the observation's shape and a count, all finite)")
