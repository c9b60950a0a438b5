"""Scoring a trained policy: exact figures on LQ plants, sampled episode returns everywhere.

* :func:`lq_report` — the exact costs of a linear policy on a state-feedback
  plant (:mod:`pgcontrol.lqr`), against the Riccati optimum; training logs a
  subset of it every iteration;
* :func:`evaluate` — run a checkpoint's policy for whole episodes and
  summarise the returns;
* :func:`evaluate_policy` — score any policy (a pgcontrol policy, a callable
  ``obs -> action``, a Stable-Baselines3 model) on a plant against J*, or on
  a Gymnasium task by its returns;
* :func:`record_video` — one episode of a checkpoint's policy as a video
  (:func:`video_env` checks first that it can be written).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from . import lqr
from .checkpoint import checkpoint_plant, load_checkpoint, load_normaliser_state, policy_from_checkpoint
from .config import resolve_device
from .envs import LinearGaussianEnv, check_env_name, is_plant, make_vec_env, wrapper_options
from .errors import ConfigError
from .plants import LinearGaussianPlant
from .plants import make as make_plant
from .rollout import Collector

__all__ = ["lq_report", "lq_row", "evaluate", "evaluate_policy", "video_env", "record_video", "MAX_EPISODES"]

MAX_EPISODES = 10_000_000
MAX_PLANT_BATCH = 65_536
"""Most episodes :func:`evaluate` runs at once on a plant by default (memory grows with the batch)."""


@functools.lru_cache(maxsize=16)  # plants are frozen: training asks for the same optimum every iteration
def _optimum(plant: LinearGaussianPlant):
    """``(K*, J*, T)``: the Riccati gain and its cost, the T-step one (T = horizon) where γ = 1 and noise make
    every infinite-horizon cost infinite (T = None otherwise)."""
    K_opt, _ = lqr.optimal_gain(plant)
    J_opt = lqr.policy_cost(plant, K_opt)
    T = None if np.isfinite(J_opt) else plant.horizon
    if T is not None:
        J_opt = lqr.policy_cost(plant, K_opt, horizon=T)
    K_opt.setflags(write=False)
    return K_opt, J_opt, T


def lq_report(plant: LinearGaussianPlant, K, std, *, expected_return: bool = True) -> dict:
    """Exact figures of a linear policy ``u = -Kx + ε`` on a state-feedback plant.

    ``J`` are the infinite-horizon discounted costs of :func:`pgcontrol.lqr.policy_cost`
    (the T-step costs, with an ``objective`` entry saying so, where γ = 1 and
    noise make every infinite-horizon cost infinite):
    ``J`` = J(K, σ), ``J_K`` = J(K, 0) (the gain alone, as in training's
    ``gap``), ``J_opt`` = J(K*, 0); ``gap`` = (J_K − J*)/J*
    (:func:`~pgcontrol.lqr.cost_gap`), ``gain_error`` = ‖K − K*‖/‖K*‖.
    With ``expected_return``, also ``expected_return``, the exact mean of
    one episode's undiscounted return, −J_T with γ = 1 over the horizon T,
    which is what :func:`evaluate` samples.
    """
    K = np.asarray(K, dtype=float)
    std = np.asarray(std, dtype=float)
    K_opt, J_opt, T = _optimum(plant)
    J_K = lqr.policy_cost(plant, K, 0.0, horizon=T)
    out = {
        "K": K.tolist(), "std": std.tolist(), "K_opt": K_opt.tolist(), "J_opt": J_opt,
        "J": lqr.policy_cost(plant, K, std, horizon=T), "J_K": J_K,
        "gap": lqr.cost_gap(J_K, J_opt), "gain_error": lqr.gain_error(K, K_opt),
    }
    if T is not None:
        out["objective"] = f"{T}-step cost (gamma = 1 with noise: every infinite-horizon cost is infinite)"
    if expected_return:
        out["expected_return"] = -lqr.policy_cost(plant.replace(gamma=1.0), K, std, horizon=plant.horizon)
        out["horizon"] = plant.horizon
    return out


def lq_row(plant: LinearGaussianPlant, policy) -> dict:
    """What ``train`` logs each iteration for a linear policy on a state-feedback plant (:func:`lq_report`).

    ``J``, ``J_K``, ``gap``, ``gain_error``, and the gain ``K`` and ``std`` rounded to 8 digits. Reported
    only: no learner reads them.
    """
    K, std = policy.K, policy.std
    rep = lq_report(plant, K, std, expected_return=False)
    return {"J": rep["J"], "J_K": rep["J_K"], "gap": rep["gap"], "gain_error": rep["gain_error"],
            "K": K.round(8).tolist(), "std": std.round(8).tolist()}


def _number(value):
    """``value`` if it is a real number (not a bool), else None: history rows come from files."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _wrapper_options(cfg: dict) -> dict:
    """The checkpoint config's wrapper options, checked (they come from a file)."""
    opts = wrapper_options(cfg if isinstance(cfg, dict) else {})
    for key in ("normalize_obs", "normalize_reward", "clip_actions"):
        if not isinstance(opts[key], bool):
            raise ConfigError(f"the checkpoint's config.{key} must be true or false; got {str(opts[key])[:80]}")
    clip = opts["normalize_clip"]
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip < 1e30):
        raise ConfigError(f"the checkpoint's config.normalize_clip must be a positive number or null; "
                          f"got {str(clip)[:80]}")
    return opts


def evaluate(checkpoint, episodes: int = 100, *, seed: int = 0, device="cpu", batch_size: int | None = None,
             env_modules=()) -> dict:
    """Run a trained policy for ``episodes`` whole episodes and summarise the returns.

    The policy is rebuilt from the checkpoint (:func:`~pgcontrol.checkpoint.policy_from_checkpoint`),
    the environment from its recorded name (or plant), and the observation
    normaliser (``normalize_obs`` configs) gets the checkpoint's running
    statistics, frozen. Rewards are never normalised here: the returns are the
    environment's undiscounted episode returns, as training's ``return_mean``
    (which is their mean over one training batch). Actions are sampled from
    the stochastic policy, exactly as in training. Episodes are run
    ``batch_size`` at a time (default: all at once on plants, up to
    :data:`MAX_PLANT_BATCH`, 16 otherwise),
    each batch by :meth:`pgcontrol.rollout.Collector.collect` with
    ``episodes=True``; with ``batch_size = episodes = num_envs`` and the
    training seed, the first evaluation batch is the first training batch.

    Parameters
    ----------
    checkpoint : path or dict
        A ``checkpoint.pt`` (or its folder), or a dict from :func:`~pgcontrol.checkpoint.load_checkpoint`.
    env_modules : iterable of str
        Modules that the checkpoint's environment name may import, for a
        Gymnasium ``"module:EnvId"`` name (:func:`pgcontrol.envs.check_env_name`);
        by default none: a name read from a checkpoint is data.

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
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or not 1 <= episodes <= MAX_EPISODES:
        raise ConfigError(f"episodes must be an integer from 1 to {MAX_EPISODES}; got {episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    env = ckpt.get("env")
    if isinstance(env, str):
        check_env_name(env, env_modules=env_modules)  # before anything is made: a name from a file imports nothing
    plant = checkpoint_plant(ckpt)
    env = plant if isinstance(env, dict) else env
    if env is None:
        raise ConfigError("the checkpoint does not record its environment (it was trained on a ready vector env)")
    dev = resolve_device(device)
    policy = policy_from_checkpoint(ckpt, dev)
    cfg = ckpt.get("config") or {}
    options = _wrapper_options(cfg)
    batch = int(batch_size or (min(episodes, MAX_PLANT_BATCH) if is_plant(env) else 16))
    batch = max(1, min(batch, episodes))
    returns, lengths, diverged = [], [], 0
    vec = collector = None
    torch.manual_seed(seed)
    while len(returns) < episodes:
        n = min(batch, episodes - len(returns))
        if vec is None or vec.num_envs != n:
            if vec is not None:
                vec.close()
            # the training wrappers but reward normalisation: the returns stay the environment's
            vec = make_vec_env(env, n, device=dev, env_modules=env_modules, **{**options, "normalize_reward": False})
            _check_fit(policy, vec)
            try:
                load_normaliser_state(vec, ckpt.get("normaliser") or {}, freeze=True)
            except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
                raise ConfigError(f"the checkpoint's normaliser statistics are malformed ({type(exc).__name__})") \
                    from None
            collector = Collector(vec, policy, dev, seed=seed, rng=None if collector is None else collector.rng_state())
        b = collector.collect(episodes=True)
        if not b.episode_returns:
            raise ConfigError(f"no episode of {env!r} ended within 100000 steps; it cannot be evaluated by episodes")
        returns += b.episode_returns[: episodes - len(returns)]  # exactly what training logs as return_mean
        lengths += b.episode_lengths[: episodes - len(lengths)]
        diverged += int(b.diverged)
    vec.close()
    r = np.asarray(returns)
    hist = [row for row in ckpt.get("history") or [] if isinstance(row, dict)]
    train_rows = [row for row in hist if _number(row.get("return_mean")) is not None]
    out = {
        "env": env if isinstance(env, str) else env.name, "algo": ckpt.get("algo"),
        "iteration": ckpt.get("iteration"), "steps": (_number(hist[-1].get("steps")) or 0) if hist else 0,
        "episodes": int(episodes), "seed": int(seed),
        "returns": r.tolist(), "lengths": [int(x) for x in lengths],
        "mean": float(r.mean()), "std": float(r.std()),
        "stderr": float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else float("nan"),
        "diverged_batches": diverged,
        "train_return_mean": train_rows[-1]["return_mean"] if train_rows else None,
    }
    if plant is not None and getattr(policy, "is_linear", False) and not plant.has_output:
        out["lq"] = lq_report(plant, policy.K, policy.std)
    return out


def _check_fit(policy, vec) -> None:
    """The policy's observation and action sizes are the environment's (a checkpoint may pair them wrongly)."""
    obs_dim = int(np.prod(vec.single_observation_space.shape))
    act_dim = int(np.prod(vec.single_action_space.shape))
    if (getattr(policy, "obs_dim", obs_dim), getattr(policy, "act_dim", act_dim)) != (obs_dim, act_dim):
        vec.close()
        raise ConfigError(f"the checkpoint's policy takes {policy.obs_dim} observations to {policy.act_dim} actions, "
                          f"but its environment has {obs_dim} observations and {act_dim} actions")


def _as_action_function(policy, deterministic: bool, generator: torch.Generator):
    """``obs (n,) ndarray -> action (m,) ndarray`` for a pgcontrol policy, an SB3 model or a callable."""
    if hasattr(policy, "act") and hasattr(policy, "log_prob"):  # a pgcontrol policy
        def act(obs):
            x = torch.as_tensor(np.asarray(obs, dtype=np.float64)[None], dtype=next(policy.parameters()).dtype)
            with torch.no_grad():
                u = policy.mean(x) if deterministic else policy.act(x, generator=generator)[0]
            return u[0].cpu().numpy().astype(np.float64)
        return act
    if hasattr(policy, "predict"):  # a Stable-Baselines3 model
        return lambda obs: np.asarray(policy.predict(obs, deterministic=deterministic)[0], dtype=np.float64)
    if callable(policy):
        return lambda obs: np.asarray(policy(obs), dtype=np.float64)
    raise ConfigError(f"policy must be a pgcontrol policy, a Stable-Baselines3 model (with .predict) or a callable "
                      f"obs -> action; got {type(policy).__name__}")


def evaluate_policy(policy, env, *, episodes: int = 100, seed: int = 0, deterministic: bool = False,
                    env_modules=()) -> dict:
    """Score any policy on a plant (against the Riccati optimum) or a Gymnasium task.

    Parameters
    ----------
    policy
        A pgcontrol policy, a Stable-Baselines3 model (anything with
        ``predict(obs, deterministic)``) or any callable ``obs -> action``.
    env : str or LinearGaussianPlant
        A plant (name or object) or a Gymnasium id.
    episodes, seed : int
        Monte Carlo episodes (each of the plant's horizon T) and their seed.
    deterministic : bool
        Act with the mean action (pgcontrol policies: σ = 0; SB3:
        ``deterministic=True``) instead of sampling.
    env_modules : iterable of str
        Modules that a Gymnasium ``"module:EnvId"`` name may import (:func:`pgcontrol.envs.check_env_name`).

    Returns
    -------
    dict
        On a plant: ``J_T`` — the T-step discounted cost Σ_{t<T} γᵗ c_t,
        exact for a linear pgcontrol policy (``exact: True``), otherwise the
        Monte Carlo mean with its 95 % confidence half-width ``J_T_ci95`` —,
        ``J_T_opt`` (the LQR gain's exact T-step cost), ``gap`` =
        (J_T − J_T*)/J_T*, and the sampled undiscounted ``returns``. On a
        Gymnasium task: ``returns``, ``mean``, ``std`` and ``ci95``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or not 1 <= episodes <= MAX_EPISODES:
        raise ConfigError(f"episodes must be an integer from 1 to {MAX_EPISODES}; got {episodes!r}")
    import gymnasium

    check_env_name(env, env_modules=env_modules)
    g = torch.Generator().manual_seed(int(seed))
    act = _as_action_function(policy, deterministic, g)
    plant = make_plant(env) if is_plant(env) else None
    e = LinearGaussianEnv(plant) if plant is not None else gymnasium.make(env)
    returns, costs = [], []
    for i in range(int(episodes)):
        obs, _ = e.reset(seed=int(seed) + i)
        done, ret, disc_cost, disc = False, 0.0, 0.0, 1.0
        while not done:
            obs, r, term, trunc, info = e.step(act(obs))
            ret += float(r)
            if plant is not None:
                disc_cost += disc * info["cost"]
                disc *= plant.gamma
            done = term or trunc
        returns.append(ret)
        costs.append(disc_cost)
    e.close()
    r = np.asarray(returns)
    out = {"env": env if isinstance(env, str) else getattr(env, "name", str(env)), "episodes": int(episodes),
           "seed": int(seed), "deterministic": bool(deterministic), "returns": r.tolist(),
           "mean": float(r.mean()), "std": float(r.std()),
           "ci95": float(1.96 * r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else float("inf")}
    if plant is None:
        return out
    T = plant.horizon
    J_opt = lqr.policy_cost(plant, lqr.optimal_gain(plant)[0], 0.0, horizon=T)
    c = np.asarray(costs)
    if getattr(policy, "is_linear", False) and not plant.has_output:  # exact
        J = lqr.policy_cost(plant, policy.K, 0.0 if deterministic else policy.std, horizon=T)
        out.update(J_T=J, J_T_ci95=0.0, exact=True)
    else:
        out.update(J_T=float(c.mean()), J_T_ci95=float(1.96 * c.std(ddof=1) / np.sqrt(len(c))) if len(c) > 1
                   else float("inf"), exact=False)
    gap = float("nan") if np.isnan(out["J_T"]) else lqr.cost_gap(out["J_T"], J_opt)  # a NaN sample: no gap
    out.update(J_T_opt=J_opt, gap=gap, horizon=T, gamma=plant.gamma)
    return out


def video_env(checkpoint: dict, path, *, seed: int = 0, env_modules=()):
    """The render env (``render_mode="rgb_array"``) for a video of a checkpoint, or a one-line error.

    Checks, before any episode is run, that the checkpoint names its environment, that imageio (and,
    for a format other than ``.gif``, imageio-ffmpeg or PyAV) is installed, and that the environment
    renders a frame headless. Plants render themselves (the phase plane, or bars); MuJoCo tasks need
    ``MUJOCO_GL=egl`` or ``osmesa`` set before mujoco is imported (``pgcontrol eval --video`` sets egl).

    Raises
    ------
    ConfigError
        Naming what is missing.
    """
    import gymnasium

    env = checkpoint.get("env")
    if isinstance(env, str):
        check_env_name(env, env_modules=env_modules)  # a name from a file imports nothing
    plant = checkpoint_plant(checkpoint)
    if plant is None and not isinstance(env, str):
        raise ConfigError("cannot record a video: the checkpoint does not record its environment")
    suffix = Path(path).suffix.lower()
    try:
        import imageio.v3  # noqa: F401  (only whether it is installed)
    except ImportError:
        raise ConfigError("cannot record a video: the imageio package is not installed (pip install imageio)") from None
    if suffix != ".gif" and not (importlib.util.find_spec("imageio_ffmpeg") or importlib.util.find_spec("av")):
        raise ConfigError(f"cannot write the video {str(path)!r}: {suffix or 'this format'} needs imageio-ffmpeg "
                          "(pip install imageio-ffmpeg) or PyAV; or give a .gif file name")
    if plant is not None:
        e = LinearGaussianEnv(plant, render_mode="rgb_array")
        e.reset(seed=seed)
        return e
    try:
        try:  # MuJoCo tasks take a frame size; 320 x 320 keeps a 1000-step episode's frames ~300 MB
            e = gymnasium.make(env, render_mode="rgb_array", width=320, height=320)
        except TypeError:
            e = gymnasium.make(env, render_mode="rgb_array")
        e.reset(seed=seed)
        frame = e.render()
    except Exception as exc:  # noqa: BLE001 - renderers fail in many ways (no GL context, no display)
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot render {env!r} headless ({type(exc).__name__}: {msg}); MuJoCo needs "
                          f"MUJOCO_GL=egl or MUJOCO_GL=osmesa (now {os.environ.get('MUJOCO_GL')!r})") from None
    if not (isinstance(frame, np.ndarray) and frame.ndim == 3):
        raise ConfigError(f"cannot record a video: {env!r} returned no rgb_array frame")
    return e


def record_video(checkpoint: dict, path, *, seed: int = 0, env=None, env_modules=()) -> int:
    """Write one episode of a checkpoint's (stochastic) policy as a video (``.gif``, ``.mp4``, ...).

    ``env`` is the render env of :func:`video_env` (made here when None). Observation normalisation is
    applied, frozen, as in training. Returns the number of frames (the episode's steps + 1).
    """
    import imageio.v3 as iio
    from gymnasium.wrappers import NormalizeObservation

    from .envs import clip_observations

    env = video_env(checkpoint, path, seed=seed, env_modules=env_modules) if env is None else env
    policy = policy_from_checkpoint(checkpoint)
    normaliser = checkpoint.get("normaliser") or {}
    if "NormalizeObservation" in normaliser:
        env = NormalizeObservation(env)
        load_normaliser_state(env, normaliser, freeze=True)
        bound = (checkpoint.get("config") or {}).get("normalize_clip")
        if bound is not None:  # as in training
            env = clip_observations(env, bound)
    gen = torch.Generator().manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    done = False
    while not done:
        u, _ = policy.act(torch.as_tensor(np.asarray(obs)[None]), generator=gen)
        obs, _, term, trunc, _ = env.step(u[0].numpy())
        frames.append(env.render())
        done = term or trunc
    fps = int(env.metadata.get("render_fps") or 30)
    try:
        if Path(path).suffix.lower() == ".gif":
            iio.imwrite(path, np.stack(frames), duration=1000.0 / fps, loop=0)
        else:
            iio.imwrite(path, np.stack(frames), fps=fps)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"cannot write the video {str(path)!r} ({type(exc).__name__}: "
                          f"{(str(exc).strip().splitlines() or [''])[0]})") from None
    env.close()
    return len(frames)
