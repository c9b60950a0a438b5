"""The training loop shared by every learner.

``train(algo, env, ...)`` builds (or takes) a vector environment and a policy,
then repeats: collect a batch (:class:`pgcontrol.rollout.Collector`), update
(the algorithm's file), check for divergence, log, checkpoint. The learners
themselves (``pgcontrol/algos/*.py``) only implement ``update``.

Files written to ``out_dir`` (all atomically: a temporary file, then
:func:`os.replace`): ``checkpoint.pt`` (policy, critic, optimisers,
observation/reward normaliser statistics, RNG state, history),
``progress.csv`` and ``history.json``.

Divergence — a non-finite loss, parameter, observation or reward, or a state
that left the plant's ``state_bound`` — raises :class:`TrainingDiverged`
before anything is written for that iteration, so the last checkpoint on
disk is the last good one.

Determinism: same seed, same device, same numbers (CPU). Resuming restores
parameters, optimisers, normaliser statistics and RNG streams; for the
episodic learners (VPG, NPG, TRPO on LQ plants), which reset their
environments every iteration, a resumed run continues with exactly the
numbers of an uninterrupted one; learners that collect continuously (A2C,
PPO) restart their in-flight episodes at the resume point.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import lqr
from .plants import LinearGaussianPlant
from .plants import names as plant_names
from .rollout import Collector

__all__ = ["train", "TrainingDiverged", "ConfigError", "resolve_device", "make_vec_env", "atomic_write",
           "load_checkpoint", "build_policy", "default_initial_gain", "config_from_dict", "episode_length",
           "steps_per_iteration", "policy_from_checkpoint", "checkpoint_plant", "lq_report", "evaluate"]


class TrainingDiverged(RuntimeError):
    """Training produced a non-finite quantity or an exploding state; the last checkpoint is kept."""


class ConfigError(ValueError):
    """A training argument or configuration value is invalid."""


# ------------------------------------------------------------------ plumbing


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (CUDA when available)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'auto'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but CUDA is not available; use --device cpu or auto")
    return dev


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_plant(env) -> bool:
    return isinstance(env, LinearGaussianPlant) or (isinstance(env, str) and env in plant_names())


def make_vec_env(env, num_envs: int, *, device="cpu", normalize_obs=False, normalize_reward=False, gamma=0.99):
    """A Gymnasium vector env for a plant (name or object) or a Gymnasium id.

    Plants get the native batched :class:`pgcontrol.envs.LinearGaussianVectorEnv`
    (stepping on ``device``); other ids a ``SyncVectorEnv``. Optional
    Gymnasium normalisation wrappers are added outermost, after
    ``RecordEpisodeStatistics`` so logged returns stay unnormalised.
    """
    import gymnasium
    from gymnasium.wrappers import vector as vw

    from . import envs as _envs  # noqa: F401  (registers the pgcontrol/ ids)

    if _is_plant(env):
        vec = gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=num_envs,
                                 vectorization_mode="vector_entry_point", plant=env, device=device)
    elif isinstance(env, str):
        try:
            vec = gymnasium.make_vec(env, num_envs=num_envs, vectorization_mode="sync")
        except gymnasium.error.Error as exc:
            raise ConfigError(
                f"unknown environment {env!r} ({exc}); give a Gymnasium id such as 'InvertedPendulum-v5' "
                f"or a plant name: {', '.join(plant_names())}"
            ) from None
    else:
        vec = env  # already a vector env
    vec = vw.RecordEpisodeStatistics(vec)
    if normalize_obs:
        vec = vw.NormalizeObservation(vec)
    if normalize_reward:
        vec = vw.NormalizeReward(vec, gamma=gamma)
    return vec


def _find_plant(vec) -> LinearGaussianPlant | None:
    e = vec
    while e is not None:
        if isinstance(getattr(e, "plant", None), LinearGaussianPlant):
            return e.plant
        e = getattr(e, "env", None)
    return None


def _find_wrapper(vec, name: str):
    e = vec
    while e is not None:
        if type(e).__name__ == name:
            return e
        e = getattr(e, "env", None)
    return None


def normaliser_state(vec) -> dict:
    """Running statistics of Gymnasium's vector normalisation wrappers (for checkpoints)."""
    out = {}
    for name, attr in (("NormalizeObservation", "obs_rms"), ("NormalizeReward", "return_rms")):
        w = _find_wrapper(vec, name)
        if w is not None:
            rms = getattr(w, attr)
            out[name] = {"mean": np.array(rms.mean), "var": np.array(rms.var), "count": float(rms.count)}
    return out


def load_normaliser_state(vec, state: dict, *, freeze: bool = False) -> None:
    for name, attr in (("NormalizeObservation", "obs_rms"), ("NormalizeReward", "return_rms")):
        w = _find_wrapper(vec, name)
        if w is not None and name in state:
            rms = getattr(w, attr)
            rms.mean, rms.var, rms.count = (np.array(state[name]["mean"]), np.array(state[name]["var"]),
                                            state[name]["count"])
            if freeze:
                w.update_running_mean = False


def default_initial_gain(plant: LinearGaussianPlant) -> np.ndarray:
    """The documented starting gain of linear policies on a plant.

    ``scalar-lqg`` starts at Peters & Schaal's k = -0.2 (K = 0.2). Every other
    plant starts from the LQR gain of the same plant with its state weight
    multiplied by 100 (Q₀ = 100·Q): stabilising by construction (Riccati) and
    over-aggressive, hence far from K* (cost gaps at start: double-integrator
    0.48, laplacian-3 3.1, cartpole-linearized 2.3).
    """
    if plant.name == "scalar-lqg":
        return np.array([[0.2]])
    return lqr.optimal_gain(plant.replace(Q=100 * plant.Q))[0]


def build_policy(kind: str, obs_dim: int, act_dim: int, *, plant=None, device="cpu", **kw):
    """A policy for ``train``: ``"linear"`` (starting at :func:`default_initial_gain` on plants) or ``"mlp"``."""
    from .policies import make_policy

    if kind == "linear" and plant is not None and "K0" not in kw and not plant.has_output:
        kw["K0"] = default_initial_gain(plant)
        kw.setdefault("std0", 0.1 if plant.name == "scalar-lqg" else 0.5)
    return make_policy(kind, obs_dim, act_dim, **kw).to(device)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`train`, with a clear error if it is missing or corrupt."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ConfigError(f"checkpoint {str(path)!r} is corrupt or not a pgcontrol checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "pgcontrol-1":
        raise ConfigError(f"{str(path)!r} is not a pgcontrol checkpoint")
    return ckpt


# ----------------------------------------------------------------- the loop


def _lq_metrics(plant, policy) -> dict:
    """Exact cost of the learned linear policy (pgcontrol.lqr) and its gap to J*."""
    K, std = policy.K, policy.std
    K_opt, _ = lqr.optimal_gain(plant)
    J_opt = lqr.policy_cost(plant, K_opt)
    J_K = lqr.policy_cost(plant, K, 0.0)
    return {
        "J": lqr.policy_cost(plant, K, std),
        "J_K": J_K,
        "gap": (J_K - J_opt) / J_opt if np.isfinite(J_K) else float("inf"),
        "gain_error": float(np.linalg.norm(K - K_opt) / np.linalg.norm(K_opt)),
        "K": K.round(8).tolist(),
        "std": std.round(8).tolist(),
    }


def _check_finite_params(modules, iteration: int) -> None:
    for m in modules:
        if m is None:
            continue
        for name, p in m.named_parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(f"iteration {iteration}: parameter {name!r} became non-finite")


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


def train(algo, env, policy=None, config=None, *, seed: int = 0, device="cpu", out_dir=None, resume=False,
          progress: bool = True, policy_kind: str = "linear", checkpoint_every: int = 10, critic=None,
          max_steps: int | None = None):
    """Train a policy with one of the learners.

    Parameters
    ----------
    algo : str or Algorithm class
        ``"vpg"``, ``"npg"``, ``"trpo"``, ``"ac"`` or ``"ppo"`` (see :mod:`pgcontrol.algos`).
    env : str, LinearGaussianPlant or gymnasium.vector.VectorEnv
        A plant name (``"double-integrator"``), a plant, a Gymnasium id
        (``"InvertedPendulum-v5"``) or a ready vector env.
    policy : torch.nn.Module, optional
        Default: ``build_policy(policy_kind, ...)`` (linear policies start at
        :func:`default_initial_gain` on plants).
    config : frozen dataclass, optional
        The algorithm's ``Config`` (e.g. :class:`pgcontrol.algos.ppo.PPOConfig`); default values if None.
    seed, device : int, str
        Same seed and device give the same numbers. ``device`` may be ``"auto"``.
    out_dir : path, optional
        Where to write ``checkpoint.pt``, ``progress.csv``, ``history.json``.
    resume : bool
        Continue from ``out_dir/checkpoint.pt``.
    max_steps : int, optional
        An environment-step budget: stop after the iteration in which the
        total number of (valid) steps reaches it, even before
        ``config.iterations``. Episodic learners on tasks whose episodes
        end early (MuJoCo) use it to spend a budget exactly.

    Returns
    -------
    list of dict
        One row of metrics per iteration.
    """
    from .algos import get_algorithm

    Algo, algo_name = get_algorithm(algo)
    config = Algo.Config() if config is None else config
    if not isinstance(config, Algo.Config):
        raise ConfigError(f"config for {algo_name!r} must be a {Algo.Config.__name__}, got {type(config).__name__}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer))
                                  or max_steps < 1):
        raise ConfigError(f"max_steps must be a positive integer (an environment-step budget); got {max_steps!r}")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    gamma_env = None
    if _is_plant(env):
        from .plants import make as make_plant

        gamma_env = make_plant(env).gamma
    gamma = config.gamma if config.gamma is not None else (gamma_env if gamma_env is not None else 0.99)
    vec = make_vec_env(env, config.num_envs, device=dev, normalize_obs=getattr(config, "normalize_obs", False),
                       normalize_reward=getattr(config, "normalize_reward", False), gamma=gamma)
    plant = _find_plant(vec)
    obs_dim = int(np.prod(vec.single_observation_space.shape))
    act_dim = int(np.prod(vec.single_action_space.shape))
    if policy is None:
        policy = build_policy(policy_kind, obs_dim, act_dim, plant=plant, device=dev)
    policy = policy.to(dev)
    learner = Algo(policy, config, gamma=gamma, obs_dim=obs_dim, device=dev, critic=critic, plant=plant)
    collector = Collector(vec, policy, dev, seed=seed)

    out = Path(out_dir) if out_dir is not None else None
    history: list[dict] = []
    start = 0
    if resume:
        if out is None:
            raise ConfigError("resume=True needs out_dir (where the checkpoint is)")
        ckpt = load_checkpoint(out / "checkpoint.pt")
        if ckpt["algo"] != algo_name:
            raise ConfigError(f"checkpoint in {str(out)!r} is for {ckpt['algo']!r}, not {algo_name!r}")
        policy.load_state_dict(ckpt["policy"])
        learner.load_state_dict(ckpt["learner"])
        load_normaliser_state(vec, ckpt["normaliser"])
        collector.generator.set_state(ckpt["rng"]["collector"])
        collector._seed = ckpt["rng"]["reset_seed"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        history, start = ckpt["history"], ckpt["iteration"] + 1

    def save(it):
        if out is None:
            return
        buf = io.BytesIO()
        torch.save({
            "format": "pgcontrol-1", "algo": algo_name, "iteration": it, "config": dataclasses.asdict(config),
            "env": env if isinstance(env, (str, LinearGaussianPlant)) else None, "gamma": gamma, "seed": seed,
            "policy_spec": policy.spec() if hasattr(policy, "spec") else None,
            "policy": policy.state_dict(), "learner": learner.state_dict(), "normaliser": normaliser_state(vec),
            "rng": {"collector": collector.generator.get_state(), "reset_seed": collector._seed,
                    "torch": torch.get_rng_state()},
            "history": history,
        }, buf)
        atomic_write(out / "checkpoint.pt", buf.getvalue())
        atomic_write(out / "progress.csv", _history_csv(history))
        atomic_write(out / "history.json", json.dumps(history, indent=1, default=float))

    iterations = range(start, config.iterations)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(iterations, desc=f"{algo_name}", unit="it", dynamic_ncols=True)
        iterations = bar
    total_steps = history[-1]["steps"] if history else 0
    for it in iterations:
        t0 = time.perf_counter()
        batch = collector.collect(**learner.collect_spec())
        if batch.diverged:
            raise TrainingDiverged(
                f"iteration {it}: a state left the plant's bound or became non-finite (the closed loop is unstable); "
                f"the last good checkpoint is kept{'' if out is None else ' in ' + str(out)}. "
                "Lower the learning rate (or the KL bound) or start from a stabilising gain."
            )
        metrics = learner.update(batch, it)
        for k, v in metrics.items():
            if isinstance(v, float) and k.startswith("loss") and not np.isfinite(v):
                raise TrainingDiverged(f"iteration {it}: {k} is {v}; the last good checkpoint is kept")
        _check_finite_params([policy, learner.critic], it)
        elapsed = time.perf_counter() - t0
        total_steps += batch.n_valid
        row: dict[str, Any] = {"iteration": it, "steps": total_steps}
        if batch.episode_returns:
            row["return_mean"] = float(np.mean(batch.episode_returns))
            row["return_std"] = float(np.std(batch.episode_returns))
        row.update(metrics)
        row["steps_per_s"] = batch.n_valid / elapsed
        if plant is not None and getattr(policy, "is_linear", False) and not plant.has_output:
            row.update(_lq_metrics(plant, policy))
        history.append(row)
        if bar is not None:
            bar.set_postfix({k: f"{row[k]:.4g}" for k in ("return_mean", "gap") if k in row and np.isfinite(row[k])})
        done = max_steps is not None and total_steps >= max_steps
        if (it + 1) % checkpoint_every == 0 or it + 1 == config.iterations or done:
            save(it)
        if done:
            break
    if bar is not None:
        bar.close()
    return history


# ------------------------------------------- configs, step budgets, checkpoints


def config_from_dict(algo, values: dict, *, base=None, source: str = "config"):
    """The algorithm's ``Config`` from a dict of field values (a ``--config`` file).

    ``base`` (a dict of field values, e.g. a checkpoint's ``config``) is
    applied first, then ``values``. Each value is checked against the field's
    type (``int``, ``float`` — an int is accepted —, ``bool``, ``str``,
    optionally ``None``) before the Config's own validation runs.

    Raises
    ------
    ConfigError
        For a non-dict, an unknown key (the message lists the valid keys) or a
        bad value (the message names the key); ``source`` prefixes the message.
    """
    import typing

    from .algos import get_algorithm

    Algo, algo_name = get_algorithm(algo)
    Config = Algo.Config
    hints = typing.get_type_hints(Config)
    fields = [f.name for f in dataclasses.fields(Config) if f.init]
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a table of {Config.__name__} fields (key: value), "
                          f"got {type(values).__name__}")
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r} for {algo_name} ({Config.__name__}); "
                          f"valid keys: {', '.join(fields)}")
    merged = {k: v for k, v in (base or {}).items() if k in fields}
    merged.update(values)
    for key, value in merged.items():
        merged[key] = _check_field(source, Config.__name__, key, value, hints.get(key))
    try:
        return Config(**merged)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _check_field(source, cls, key, value, hint):
    import types
    import typing

    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    optional = type(None) in args
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    names = [words.get(a, getattr(a, "__name__", str(a))) for a in args if a is not type(None)]
    names += ["null"] if optional else []
    if value is None:
        if optional:
            return None
    elif bool in args:
        if isinstance(value, bool):
            return value
    elif int in args:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif float in args:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif str in args:
        if isinstance(value, str):
            return value
    else:  # a type this checker does not know: leave it to the Config
        return value
    raise ConfigError(f"{source}: {cls}.{key} must be {' or '.join(names)}; got {value!r}")


def episode_length(env) -> int | None:
    """Steps of one episode at most: the plant's horizon, or a Gymnasium id's ``max_episode_steps`` (None if unset)."""
    if _is_plant(env):
        from .plants import make as make_plant

        return int(make_plant(env).horizon)
    import gymnasium

    from . import envs as _envs  # noqa: F401

    try:
        spec = gymnasium.spec(env)
    except gymnasium.error.Error as exc:
        raise ConfigError(f"unknown environment {env!r} ({exc}); give a Gymnasium id such as "
                          f"'InvertedPendulum-v5' or a plant name: {', '.join(plant_names())}") from None
    if spec.max_episode_steps is not None:
        return int(spec.max_episode_steps)
    horizon = (spec.kwargs or {}).get("max_episode_steps")
    return None if horizon is None else int(horizon)


def steps_per_iteration(algo, config, env) -> int:
    """Environment steps one iteration of ``train`` takes (at most), for converting a step budget.

    * episodic learners (``vpg``, ``npg``, ``trpo``): ``num_envs`` whole
      episodes, ``num_envs × episode length`` (the plant's horizon, or the
      Gymnasium time limit ``max_episode_steps``; episodes that terminate
      earlier take fewer steps);
    * ``ac`` and ``ppo``: ``num_envs × n_steps`` (``n_steps = 1`` for
      ``ACConfig(online=True)``).
    """
    from .algos import get_algorithm

    _, name = get_algorithm(algo)
    if hasattr(config, "n_steps"):
        return int(config.num_envs) * int(config.n_steps)
    T = episode_length(env)
    if T is None:
        raise ConfigError(f"environment {env!r} has no time limit (max_episode_steps), so a step budget cannot "
                          f"be converted to iterations of the episodic learner {name!r}; set 'iterations' instead")
    return int(config.num_envs) * T


def policy_from_checkpoint(ckpt: dict, device="cpu"):
    """The trained policy of a checkpoint (a dict from :func:`load_checkpoint`), on ``device``, in eval mode.

    Built from the stored ``policy_spec`` (:func:`pgcontrol.policies.policy_from_spec`);
    checkpoints without one are recognised from their parameter names.
    """
    from .policies import PolicyError, policy_from_spec

    state = ckpt.get("policy")
    if not isinstance(state, dict):
        raise ConfigError("checkpoint holds no policy parameters")
    spec = ckpt.get("policy_spec")
    if spec is None:
        spec = _infer_policy_spec(state)
    try:
        policy = policy_from_spec(spec)
        policy.load_state_dict(state)
    except (PolicyError, RuntimeError, KeyError, TypeError) as exc:
        raise ConfigError(f"the checkpoint's policy cannot be rebuilt ({str(exc).splitlines()[0]})") from None
    return policy.to(resolve_device(device)).eval()


def _infer_policy_spec(state: dict) -> dict:
    if "gain" in state:
        m, n = state["gain"].shape
        return {"kind": "linear", "obs_dim": n, "act_dim": m, "dtype": str(state["gain"].dtype).removeprefix("torch.")}
    weights = [state[k] for k in sorted((k for k in state if k.startswith("mean_net.") and k.endswith(".weight")),
                                        key=lambda k: int(k.split(".")[1]))]
    if not weights:
        raise ConfigError("the checkpoint's policy has no spec and unknown parameters; it cannot be rebuilt")
    return {"kind": "mlp", "obs_dim": weights[0].shape[1], "act_dim": weights[-1].shape[0],
            "hidden": [w.shape[0] for w in weights[:-1]], "dtype": str(weights[0].dtype).removeprefix("torch.")}


def checkpoint_plant(ckpt: dict) -> LinearGaussianPlant | None:
    """The plant a checkpoint was trained on, or None for a Gymnasium environment."""
    env = ckpt.get("env")
    if isinstance(env, LinearGaussianPlant):
        return env
    if isinstance(env, str) and env in plant_names():
        from .plants import make as make_plant

        return make_plant(env)
    return None


def lq_report(plant: LinearGaussianPlant, K, std) -> dict:
    """Exact figures of a linear policy on a state-feedback plant: K*, J*, J(K, σ), J(K), gap, expected return.

    ``J`` are the infinite-horizon discounted costs of :func:`pgcontrol.lqr.policy_cost`
    (``J_K``: the gain alone, σ = 0, as in training's ``gap``);
    ``expected_return`` is the exact mean of one episode's undiscounted
    return, ``-J_T`` with γ = 1 over the horizon T, which is what evaluation
    samples.
    """
    K = np.asarray(K, dtype=float)
    std = np.asarray(std, dtype=float)
    K_opt, _ = lqr.optimal_gain(plant)
    J_opt = lqr.policy_cost(plant, K_opt)
    J_K = lqr.policy_cost(plant, K, 0.0)
    return {
        "K": K.tolist(), "std": std.tolist(), "K_opt": K_opt.tolist(), "J_opt": J_opt,
        "J": lqr.policy_cost(plant, K, std), "J_K": J_K,
        "gap": (J_K - J_opt) / J_opt if np.isfinite(J_K) else float("inf"),
        "gain_error": float(np.linalg.norm(K - K_opt) / np.linalg.norm(K_opt)),
        "expected_return": -lqr.policy_cost(plant.replace(gamma=1.0), K, std, horizon=plant.horizon),
        "horizon": plant.horizon,
    }


def evaluate(checkpoint, episodes: int = 100, *, seed: int = 0, device="cpu", batch_size: int | None = None) -> dict:
    """Run a trained policy for ``episodes`` whole episodes and summarise the returns.

    The policy is rebuilt from the checkpoint (:func:`policy_from_checkpoint`),
    the environment from its recorded name (or plant), and the observation
    normaliser (``normalize_obs`` configs) gets the checkpoint's running
    statistics, frozen. Rewards are never normalised here: the returns are the
    environment's undiscounted episode returns, as training's ``return_mean``
    (which is their mean over one training batch). Actions are sampled from
    the stochastic policy, exactly as in training. Episodes are run
    ``batch_size`` at a time (default: all at once on plants, 16 otherwise),
    each batch by :meth:`pgcontrol.rollout.Collector.collect` with
    ``episodes=True``; with ``batch_size = episodes = num_envs`` and the
    training seed, the first evaluation batch is the first training batch.

    Parameters
    ----------
    checkpoint : path or dict
        A ``checkpoint.pt`` (or its folder), or a dict from :func:`load_checkpoint`.

    Returns
    -------
    dict
        ``returns`` (list, in the order the episodes ended), ``mean``, ``std``
        (population), ``stderr``, ``lengths``, ``diverged`` (count), ``env``,
        ``algo``, ``iteration``, ``steps``, ``train_return_mean`` (the last
        training row's, if any) and, for a linear policy on a state-feedback
        plant, ``lq`` (:func:`lq_report`).
    """
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ConfigError(f"episodes must be a positive integer; got {episodes!r}")
    env = ckpt.get("env")
    if env is None:
        raise ConfigError("the checkpoint does not record its environment (it was trained on a ready vector env)")
    dev = resolve_device(device)
    policy = policy_from_checkpoint(ckpt, dev)
    cfg = ckpt.get("config") or {}
    batch = int(batch_size or (episodes if _is_plant(env) else 16))
    batch = max(1, min(batch, episodes))
    returns, lengths, diverged = [], [], 0
    vec = collector = None
    torch.manual_seed(seed)
    while len(returns) < episodes:
        n = min(batch, episodes - len(returns))
        if vec is None or vec.num_envs != n:
            if vec is not None:
                vec.close()
            vec = make_vec_env(env, n, device=dev, normalize_obs=bool(cfg.get("normalize_obs", False)))
            load_normaliser_state(vec, ckpt.get("normaliser") or {}, freeze=True)
            previous, collector = collector, Collector(vec, policy, dev, seed=seed)
            if previous is not None:  # continue the noise stream and the reset seeds
                collector.generator.set_state(previous.generator.get_state())
                collector._seed = previous._seed
        b = collector.collect(episodes=True)
        if not b.episode_returns:
            raise ConfigError(f"no episode of {env!r} ended within 100000 steps; it cannot be evaluated by episodes")
        returns += b.episode_returns[: episodes - len(returns)]  # exactly what training logs as return_mean
        lengths += b.episode_lengths[: episodes - len(lengths)]
        diverged += int(b.diverged)
    vec.close()
    r = np.asarray(returns)
    hist = ckpt.get("history") or []
    train_rows = [row for row in hist if "return_mean" in row]
    out = {
        "env": env if isinstance(env, str) else env.name, "algo": ckpt.get("algo"),
        "iteration": ckpt.get("iteration"), "steps": hist[-1]["steps"] if hist else 0,
        "episodes": int(episodes), "seed": int(seed),
        "returns": r.tolist(), "lengths": [int(x) for x in lengths],
        "mean": float(r.mean()), "std": float(r.std()),
        "stderr": float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else float("nan"),
        "diverged_batches": diverged,
        "train_return_mean": train_rows[-1]["return_mean"] if train_rows else None,
    }
    plant = checkpoint_plant(ckpt)
    if plant is not None and getattr(policy, "is_linear", False) and not plant.has_output:
        out["lq"] = lq_report(plant, policy.K, policy.std)
    return out
