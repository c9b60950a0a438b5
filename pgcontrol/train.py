"""The training loop shared by every learner.

``train(algo, env, ...)`` plans the run (:func:`pgcontrol.config.plan_run`: config, seed, budget, resume
checks), builds a vector environment and a policy, then repeats: collect the batch the learner asks for
(:class:`pgcontrol.rollout.BatchSource`), update (the algorithm's file), check for divergence, log,
checkpoint (:mod:`pgcontrol.checkpoint`). The learners themselves (``pgcontrol/algos/*.py``) only
implement ``update``; scoring is in :mod:`pgcontrol.evaluate`.

Files written to ``out_dir``: ``progress.csv``, ``history.json``, ``timing.csv`` and ``checkpoint.pt``; a
resumed run first copies its checkpoint to ``checkpoint.prev.pt``.

Divergence (a non-finite loss, parameter, observation or reward, a state beyond the plant's
``state_bound``, a gain whose √γ(A − BK) is not Schur stable) raises :class:`TrainingDiverged` before
anything is written for that iteration, unless a learner's step guard
(:class:`pgcontrol.algos.base.StepGuard`) can take the step back and halve it. Same seed, same device,
same numbers, resumed or not. Torch and BLAS threads are held to ``threads`` (default one) during the
call. The promises in full: ``docs/reliability.md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import lqr
from .algos import get_algorithm
from .checkpoint import (atomic_write, load_checkpoint, read_timing, remove_stale_temporaries, restore_run,
                         run_state, save_run)
from .config import check_run_settings, plan_run, resolve_device, set_threads
from .envs import find_plant, is_plant, make_vec_env, wrapper_options
from .errors import ConfigError, TrainingDiverged
from .evaluate import lq_row
from .plants import make as make_plant
from .policies import build_policy
from .rollout import BatchSource, Collector

__all__ = ["train", "TrainingDiverged", "ConfigError"]


def _nonfinite(metrics: dict, modules) -> str | None:
    """What became non-finite in an update (a loss, or a parameter of the policy or critic), or None."""
    for k, v in metrics.items():
        if isinstance(v, float) and k.startswith("loss") and not np.isfinite(v):
            return f"{k} is {v}"
    return next((f"parameter {name!r} became non-finite" for m in modules if m is not None
                 for name, p in m.named_parameters() if not torch.isfinite(p).all()), None)


def train(algo, env, policy=None, config=None, *, seed: int | None = None, device="cpu", out_dir=None,
          resume=False, progress: bool = True, policy_kind: str | None = None, checkpoint_every: int = 10,
          critic=None, max_steps: int | None = None, threads: int | None = None, overrides: dict | None = None,
          callback=None, env_modules=()):
    """Train a policy with one of the learners.

    Parameters
    ----------
    algo : str or Algorithm class
        ``"vpg"``, ``"npg"``, ``"trpo"``, ``"ac"`` or ``"ppo"`` (see :mod:`pgcontrol.algos`).
    env : str, LinearGaussianPlant or gymnasium.vector.VectorEnv
        A plant name (``"double-integrator"``), a plant, a Gymnasium id
        (``"InvertedPendulum-v5"``) or a ready vector env.
    policy : torch.nn.Module, optional
        Default: :func:`pgcontrol.policies.build_policy` ``(policy_kind, ...)`` (linear policies start at
        :func:`~pgcontrol.policies.default_initial_gain` on plants).
    config : frozen dataclass, optional
        The algorithm's ``Config`` (e.g. :class:`pgcontrol.algos.ppo.PPOConfig`), used as it is; if None,
        the (algorithm, environment) preset of :data:`pgcontrol.config.PRESETS`, or the defaults, with
        ``iterations`` set by the budget (:func:`pgcontrol.config.plan_run`).
    seed, device : int, str
        Same seed and device give the same numbers. ``device`` may be ``"auto"``. The seed defaults
        to 0, or to a resumed run's own.
    out_dir : path, optional
        Where to write ``checkpoint.pt``, ``progress.csv``, ``history.json``.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (its algorithm, environment, seed and policy kind).
    policy_kind : {"linear", "mlp"}, optional
        Default: linear on a plant, an MLP on a Gymnasium task.
    max_steps : int, optional
        An environment-step budget: stop after the iteration in which the total number of (valid) steps
        reaches it (without a ``config``, on a plant: :func:`pgcontrol.config.default_budget`). A run ends
        at the first of ``config.iterations``, ``max_steps`` and the learner's stopping rule (the gradient
        is not statistically different from zero at the largest batch, :mod:`pgcontrol.algos.vpg`); the
        last row's ``stop_reason`` says which. A row with ``rejected`` is an update taken back and halved
        (its rollouts blew up, or, the last guard on plants, √γ(A − BK) was not Schur stable).
    threads : int, optional
        Torch intra-op threads and NumPy BLAS threads during training (default one).
    overrides : dict, optional
        With ``resume``: the config fields changed from the run's own config (``pgcontrol train
        --resume --override``), recorded in the first history row after the resume point.
    callback : callable, optional
        Called with each iteration's metrics row (e.g. :mod:`pgcontrol.tensorboard`).
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
    check_run_settings(seed=0 if seed is None else seed, checkpoint_every=checkpoint_every, max_steps=max_steps)
    out = None if out_dir is None else Path(out_dir) if isinstance(out_dir, (str, Path)) else False
    if out is False or (out is not None and out.exists() and not out.is_dir()):
        raise ConfigError(f"out_dir must be a folder path (not a file) or None; got {str(out_dir)[:200]!r}")
    if resume and out is None:
        raise ConfigError("resume=True needs out_dir (where the checkpoint is)")
    ckpt = load_checkpoint(out / "checkpoint.pt") if resume else None
    plan = plan_run(algo, env, config=config, steps=max_steps, seed=seed, policy_kind=policy_kind, checkpoint=ckpt)
    config, seed, max_steps = plan.config, plan.seed, plan.max_steps
    dev = resolve_device(device)
    torch.manual_seed(seed)
    gamma_env = make_plant(env).gamma if is_plant(env) else None
    gamma = config.gamma if config.gamma is not None else (gamma_env if gamma_env is not None else 0.99)
    vec = make_vec_env(env, config.num_envs, device=dev, gamma=gamma, env_modules=env_modules,
                       **wrapper_options(config))
    plant = find_plant(vec)
    obs_dim = int(np.prod(vec.single_observation_space.shape))
    act_dim = int(np.prod(vec.single_action_space.shape))
    if policy is None:
        kind = plan.policy_kind or ("linear" if plant is not None else "mlp")
        policy = build_policy(kind, obs_dim, act_dim, plant=plant, device=dev, config=config)
    policy = policy.to(dev)
    learner = Algo(policy, config, gamma=gamma, obs_dim=obs_dim, device=dev, critic=critic, plant=plant)
    collector = Collector(vec, policy, dev, seed=seed)
    widen = None if not is_plant(env) else lambda k: make_vec_env(env, config.num_envs * k, device=dev, gamma=gamma,
                                                                  **wrapper_options(config))
    collect = BatchSource(collector, num_envs=config.num_envs, n_steps=getattr(config, "n_steps", None),
                          horizon=plant.horizon if plant is not None else None, widen=widen)

    if out is not None and out.is_dir():
        remove_stale_temporaries(out)
    history: list[dict] = []
    timing: list[dict] = []
    start, last_saved = 0, None
    if resume:
        restore_run(ckpt, out / "checkpoint.pt", policy=policy, learner=learner, vec=vec, collector=collector)
        # the run as it was stays on disk, whatever the resumed part does
        atomic_write(out / "checkpoint.prev.pt", (out / "checkpoint.pt").read_bytes())
        history, start = ckpt["history"], ckpt["iteration"] + 1
        last_saved = ckpt["iteration"]
        timing = read_timing(out / "timing.csv", before=start)  # the rows of the run so far

    def save(it):
        nonlocal last_saved
        if out is not None:
            save_run(out, history, timing, run_state(
                algo=algo_name, iteration=it, config=config, env=env, gamma=gamma, seed=seed, policy=policy,
                learner=learner, vec=vec, collector=collector, history=history))
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
    guard = getattr(learner, "guard", None)  # model-free: shortens a destabilising step (pgcontrol.algos.base.StepGuard)
    stop_reason = None
    try:
        for it in iterations:
            t0 = time.perf_counter()
            batch = collect(learner.collect_spec(), None if max_steps is None else max_steps - total_steps)
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
            bad = _nonfinite(metrics, [policy, learner.critic])
            if bad:
                raise diverged(it, bad)
            elapsed = time.perf_counter() - t0
            total_steps += batch.n_valid
            row: dict[str, Any] = {"iteration": it, "steps": total_steps}
            if batch.episode_returns:
                rets = batch.episode_returns
                row.update(return_mean=float(np.mean(rets)), return_std=float(np.std(rets)), episodes=len(rets))
            row.update(metrics)
            if plant is not None and getattr(policy, "is_linear", False) and not plant.has_output:
                row.update(lq_row(plant, policy))
                rho = lqr.spectral_radius(np.sqrt(plant.gamma) * (plant.A - plant.B @ policy.K))
                if not rho < 1:  # exact, the last guard: √γ(A − BK) is not Schur stable, the update is no good
                    if guard is None or guard.rejected > 20 or not guard.retreat(policy.parameters()):
                        raise diverged(it, f"the update made the gain destabilising (K = {row['K']}, spectral "
                                           f"radius of √γ(A − BK) = {rho:.4g} ≥ 1)")
                    row.update(lq_row(plant, policy))  # the gain before the step, which was taken back
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
            stop_reason = (getattr(learner, "stop_reason", None)
                           or ("max_steps" if max_steps is not None and total_steps >= max_steps else None)
                           or ("iterations" if it + 1 == config.iterations else None))
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
