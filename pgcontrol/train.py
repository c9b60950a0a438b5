"""The training loop shared by every learner.

``train(algo, env, ...)`` builds (or takes) a vector environment and a policy,
then repeats: collect a batch (:class:`pgcontrol.rollout.Collector`), update
(the algorithm's file), check for divergence, log, checkpoint. The learners
themselves (``pgcontrol/algos/*.py``) only implement ``update``; configs and
budgets are in :mod:`pgcontrol.config`, the files in :mod:`pgcontrol.checkpoint`,
scoring in :mod:`pgcontrol.evaluate`.

Files written to ``out_dir`` (:func:`pgcontrol.checkpoint.save_run`):
``progress.csv``, ``history.json``, ``timing.csv`` and ``checkpoint.pt``; a
resumed run first copies its checkpoint to ``checkpoint.prev.pt``.

Divergence — a non-finite loss, parameter, observation or reward, a state
that left the plant's ``state_bound``, or, for a linear policy on an LQ
plant, an update to a gain that does not stabilise √γ(A − BK) (exact
spectral test through J(K) = inf) — raises :class:`TrainingDiverged` before
anything is written for that iteration, so the last checkpoint on disk is
the last good one; the message names its iteration. A new run saves its
starting policy first (``iteration`` −1), so even a first update that
diverges leaves a good checkpoint.

Determinism: same seed, same device, same numbers (CPU). Resuming restores
parameters, optimisers, critics, normaliser statistics, RNG streams and,
on LQ plants, the episodes in flight (the vector env's state), so every
learner continues with exactly the numbers of an uninterrupted run with the
same config. The learning-rate schedules (``anneal_lr``) follow the config's
``iterations``: extending a finished run's budget re-plans them over the new
total. On Gymnasium tasks the continuously collecting learners (A2C, PPO)
restart their in-flight episodes at the resume point (a MuJoCo simulator
state is not saved).

Threads: torch's intra-op threads and NumPy's BLAS threads (threadpoolctl)
are set to ``threads`` (default :data:`pgcontrol.config.DEFAULT_THREADS`,
one) for the duration of the call and restored afterwards: on minibatches of
64 more threads cost more than they save, and PPO's NumPy step
(:mod:`pgcontrol.algos.ppo_numpy`) multiplies its matrices with BLAS.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import lqr
from .algos import get_algorithm
from .checkpoint import (atomic_write, load_checkpoint, normaliser_state, read_timing, remove_stale_temporaries,
                         restore_run, save_run)
from .config import check_run_settings, default_budget, resolve_config, resolve_device, set_threads
from .envs import find_plant, is_plant, make_vec_env, wrapper_options
from .errors import ConfigError, TrainingDiverged
from .evaluate import lq_report
from .plants import LinearGaussianPlant
from .plants import make as make_plant
from .policies import build_policy
from .rollout import Collector, concat_batches

__all__ = ["train", "TrainingDiverged", "ConfigError"]


def _check_finite_params(modules, iteration: int) -> None:
    for m in modules:
        if m is None:
            continue
        for name, p in m.named_parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(f"iteration {iteration}: parameter {name!r} became non-finite")


def _lq_row(plant, policy) -> dict:
    """The exact figures training logs for a linear policy on a state-feedback plant."""
    K, std = policy.K, policy.std
    rep = lq_report(plant, K, std, expected_return=False)
    return {"J": rep["J"], "J_K": rep["J_K"], "gap": rep["gap"], "gain_error": rep["gain_error"],
            "K": K.round(8).tolist(), "std": std.round(8).tolist()}


def train(algo, env, policy=None, config=None, *, seed: int = 0, device="cpu", out_dir=None, resume=False,
          progress: bool = True, policy_kind: str = "linear", checkpoint_every: int = 10, critic=None,
          max_steps: int | None = None, threads: int | None = None, overrides: dict | None = None, callback=None,
          env_modules=()):
    """Train a policy with one of the learners.

    Parameters
    ----------
    algo : str or Algorithm class
        ``"vpg"``, ``"npg"``, ``"trpo"``, ``"ac"`` or ``"ppo"`` (see :mod:`pgcontrol.algos`).
    env : str, LinearGaussianPlant or gymnasium.vector.VectorEnv
        A plant name (``"double-integrator"``), a plant, a Gymnasium id
        (``"InvertedPendulum-v5"``) or a ready vector env.
    policy : torch.nn.Module, optional
        Default: :func:`pgcontrol.policies.build_policy` ``(policy_kind, ...)``
        (linear policies start at :func:`~pgcontrol.policies.default_initial_gain` on plants).
    config : frozen dataclass, optional
        The algorithm's ``Config`` (e.g. :class:`pgcontrol.algos.ppo.PPOConfig`); if None, the
        (algorithm, environment) preset of :data:`pgcontrol.config.PRESETS`, or the defaults.
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

        Stopping: on a plant with no config given, ``max_steps`` defaults to
        :func:`pgcontrol.config.default_budget` (n, m and horizon). A run ends at
        the first of ``config.iterations``, ``max_steps``
        and the learner's own stopping rule (the adaptive REINFORCE family stops
        once its gradient is not statistically different from zero at its largest
        batch, :mod:`pgcontrol.algos.vpg`). The last history row says why in
        ``stop_reason``: ``"iterations"``, ``"max_steps"`` or the learner's
        sentence. A row with ``rejected`` is an update that was taken back and
        halved (the rollouts after it blew up, or, the last guard on plants, the
        exact spectral radius of the new gain was ≥ 1).
    threads : int, optional
        Torch intra-op threads and NumPy BLAS threads during training (default one; see the module docstring).
    overrides : dict, optional
        With ``resume``: the config fields the caller changed from the run's
        own config (``pgcontrol train --resume --override``), recorded in the
        first history row after the resume point.
    callback : callable, optional
        Called with each iteration's metrics row (e.g. a TensorBoard logger, :mod:`pgcontrol.tensorboard`).
    env_modules : iterable of str
        Modules that a Gymnasium ``"module:EnvId"`` name may import
        (:func:`pgcontrol.envs.check_env_name`); by default none is imported.

    Returns
    -------
    list of dict
        One row of metrics per iteration.
    """
    previous_threads = torch.get_num_threads()
    n = set_threads(threads)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            return _train(algo, env, policy, config, seed=seed, device=device, out_dir=out_dir, resume=resume,
                          progress=progress, policy_kind=policy_kind, checkpoint_every=checkpoint_every,
                          critic=critic, max_steps=max_steps, overrides=overrides, callback=callback,
                          env_modules=env_modules)
    finally:
        torch.set_num_threads(previous_threads)


def _train(algo, env, policy, config, *, seed, device, out_dir, resume, progress, policy_kind, checkpoint_every,
           critic, max_steps, overrides, callback, env_modules):
    Algo, algo_name = get_algorithm(algo)
    defaults = config is None
    config = resolve_config(algo, env)[0] if config is None else config  # the preset, or the defaults
    if not isinstance(config, Algo.Config):
        raise ConfigError(f"config for {algo_name!r} must be a {Algo.Config.__name__}, got {type(config).__name__}")
    check_run_settings(seed=seed, checkpoint_every=checkpoint_every, max_steps=max_steps)
    if out_dir is not None:
        if not isinstance(out_dir, (str, Path)):
            raise ConfigError(f"out_dir must be a folder path or None; got {type(out_dir).__name__}")
        if Path(out_dir).exists() and not Path(out_dir).is_dir():
            raise ConfigError(f"out_dir {str(out_dir)!r} exists and is not a folder; give a folder for the run's files")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    gamma_env = make_plant(env).gamma if is_plant(env) else None
    gamma = config.gamma if config.gamma is not None else (gamma_env if gamma_env is not None else 0.99)
    vec = make_vec_env(env, config.num_envs, device=dev, gamma=gamma, env_modules=env_modules,
                       **wrapper_options(config))
    plant = find_plant(vec)
    if max_steps is None and defaults and plant is not None and is_plant(env):
        max_steps = default_budget(plant)  # the defaults' budget follows the plant (n, m, horizon)
    obs_dim = int(np.prod(vec.single_observation_space.shape))
    act_dim = int(np.prod(vec.single_action_space.shape))
    if policy is None:
        policy = build_policy(policy_kind, obs_dim, act_dim, plant=plant, device=dev, config=config)
    policy = policy.to(dev)
    learner = Algo(policy, config, gamma=gamma, obs_dim=obs_dim, device=dev, critic=critic, plant=plant)
    collector = Collector(vec, policy, dev, seed=seed)

    out = Path(out_dir) if out_dir is not None else None
    if out is not None and out.is_dir():
        remove_stale_temporaries(out)
    history: list[dict] = []
    timing: list[dict] = []
    start, last_saved = 0, None
    if resume:
        if out is None:
            raise ConfigError("resume=True needs out_dir (where the checkpoint is)")
        ckpt = load_checkpoint(out / "checkpoint.pt")
        if ckpt["algo"] != algo_name:
            raise ConfigError(f"checkpoint in {str(out)!r} is for {ckpt['algo']!r}, not {algo_name!r}")
        restore_run(ckpt, out / "checkpoint.pt", policy=policy, learner=learner, vec=vec, collector=collector)
        # the run as it was stays on disk, whatever the resumed part does
        atomic_write(out / "checkpoint.prev.pt", (out / "checkpoint.pt").read_bytes())
        history, start = ckpt["history"], ckpt["iteration"] + 1
        last_saved = ckpt["iteration"]
        timing = read_timing(out / "timing.csv", before=start)  # the rows of the run so far

    def save(it):
        nonlocal last_saved
        if out is None:
            return
        save_run(out, history, timing, {
            "algo": algo_name, "iteration": it, "config": dataclasses.asdict(config),
            "env": env if isinstance(env, (str, LinearGaussianPlant)) else None, "gamma": gamma, "seed": seed,
            "policy_spec": policy.spec() if hasattr(policy, "spec") else None,
            "policy": policy.state_dict(), "learner": learner.state_dict(), "normaliser": normaliser_state(vec),
            "rng": {**collector.rng_state(), "torch": torch.get_rng_state()}, "episodes": collector.episode_state(),
            "history": history,
        })
        last_saved = it

    def diverged(it, what: str):
        kept = ("nothing was saved (no out_dir)" if out is None else
                f"the starting policy's checkpoint is kept in {out}" if last_saved == -1 else
                f"the checkpoint of iteration {last_saved} is kept in {out}")
        return TrainingDiverged(f"iteration {it}: {what}; {kept}. Lower the learning rate (or the KL bound) "
                                "or start from a stabilising gain.")

    if out is not None and not resume:
        save(-1)  # the starting policy: a diverging first update still leaves a good checkpoint
    iterations = range(start, config.iterations)
    bar = None
    if progress:
        from tqdm.auto import tqdm  # tqdm.auto probes for Jupyter: only when a bar is wanted

        bar = tqdm(total=len(iterations), desc=f"{algo_name}", unit="it", dynamic_ncols=True)
    total_steps = history[-1]["steps"] if history else 0
    vecs = {1: vec}

    def collect(spec):
        """A batch; ``rounds`` > 1 (an adaptive batch of rounds × num_envs whole episodes): on a plant one
        pass of a vector env that many times wider, elsewhere that many passes side by side."""
        spec = dict(spec)
        rounds = spec.pop("rounds", 1)
        left = None if max_steps is None else max_steps - total_steps  # a grown batch never overshoots the budget
        if left is not None and rounds > 1 and plant is not None:
            rounds = max(1, min(rounds, left // (config.num_envs * plant.horizon)))
        base_n = getattr(config, "n_steps", None)
        if left is not None and spec.get("n_steps") and base_n and spec["n_steps"] > base_n:
            spec["n_steps"] = max(base_n, min(spec["n_steps"], left // (config.num_envs * base_n) * base_n))
        if rounds == 1 or not spec.get("episodes") or not is_plant(env):
            return concat_batches([collector.collect(**spec) for _ in range(rounds)])
        if rounds not in vecs:
            vecs[rounds] = make_vec_env(env, config.num_envs * rounds, device=dev, gamma=gamma,
                                        **wrapper_options(config))
        collector.envs = vecs[rounds]
        try:
            return collector.collect(**spec)
        finally:  # the next collection resets (whole episodes): nothing in flight to save
            collector.envs, collector._obs = vec, None

    guard = getattr(learner, "guard", None)  # model-free: shortens a destabilising step (pgcontrol.algos.base.StepGuard)
    stop_reason = None
    try:
        for it in iterations:
            t0 = time.perf_counter()
            batch = collect(learner.collect_spec())
            if guard is not None and not guard.accept(batch, policy.parameters()):
                total_steps += batch.n_valid  # the batch showed a blow-up: the step was taken back and halved
                row = {"iteration": it, "steps": total_steps, "rejected": "cost blow-up in the rollouts",
                       "step_shrink": guard.shrink}
                if guard.rejected > 20:
                    raise diverged(it, "20 shortened steps in a row still blow up")
                history.append(row)
                if max_steps is not None and total_steps >= max_steps:
                    stop_reason = "max_steps"
                    save(it)
                    break
                continue
            if batch.diverged:
                raise diverged(it, "a state left the plant's bound or became non-finite (the closed loop is unstable)")
            metrics = learner.update(batch, it)
            for k, v in metrics.items():
                if isinstance(v, float) and k.startswith("loss") and not np.isfinite(v):
                    raise diverged(it, f"{k} is {v}")
            try:
                _check_finite_params([policy, learner.critic], it)
            except TrainingDiverged as exc:
                raise diverged(it, str(exc).split(": ", 1)[1]) from None
            elapsed = time.perf_counter() - t0
            total_steps += batch.n_valid
            row: dict[str, Any] = {"iteration": it, "steps": total_steps}
            if batch.episode_returns:
                row["return_mean"] = float(np.mean(batch.episode_returns))
                row["return_std"] = float(np.std(batch.episode_returns))
                row["episodes"] = len(batch.episode_returns)
            row.update(metrics)
            if plant is not None and getattr(policy, "is_linear", False) and not plant.has_output:
                row.update(_lq_row(plant, policy))
                rho = lqr.spectral_radius(np.sqrt(plant.gamma) * (plant.A - plant.B @ policy.K))
                if not rho < 1:  # exact, the last guard: √γ(A − BK) is not Schur stable, the update is no good
                    if guard is None or guard.rejected > 20 or not guard.retreat(policy.parameters()):
                        raise diverged(it, f"the update made the gain destabilising (K = {row['K']}, spectral "
                                           f"radius of √γ(A − BK) = {rho:.4g} ≥ 1)")
                    row.update(_lq_row(plant, policy))  # the gain before the step, which was taken back
                    row["rejected"] = f"exact check: spectral radius {rho:.4g} >= 1"
            if overrides and it == start:
                row["overrides"] = dict(overrides)
            history.append(row)
            if callback is not None:
                callback(row)
            timing.append({"iteration": it, "seconds": elapsed, "steps_per_s": batch.n_valid / elapsed})
            if bar is not None:  # updated inside the body, so that a run ending on its budget shows N/N
                bar.set_postfix({k: f"{row[k]:.4g}" for k in ("return_mean", "gap") if k in row and np.isfinite(row[k])},
                                refresh=False)
                bar.update(1)
            done = max_steps is not None and total_steps >= max_steps
            if getattr(learner, "stop_reason", None):
                stop_reason = learner.stop_reason
            elif done:
                stop_reason = "max_steps"
            elif it + 1 == config.iterations:
                stop_reason = "iterations"
            if stop_reason:
                row["stop_reason"] = stop_reason
            if (it + 1) % checkpoint_every == 0 or it + 1 == config.iterations or stop_reason:
                save(it)
            if stop_reason:
                break
    finally:  # a diverging run's last line is its error message, not the bar
        if bar is not None:
            bar.close()
    return history
