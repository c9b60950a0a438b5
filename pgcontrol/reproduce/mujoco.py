"""Learning curves of the four learners on MuJoCo tasks (InvertedPendulum-v5, HalfCheetah-v5).

Every learner trains an MLP Gaussian policy (tanh 64-64, state-independent
log-std) through :func:`pgcontrol.train.train`, on Gymnasium's
``SyncVectorEnv``; the curve is the mean undiscounted return of the
episodes that ended in each iteration, against environment steps, median
and min–max over seeds (interpolated onto a common step grid).

Budgets are short: this is a smoke-level comparison on two cores, not a
tuned benchmark (the figure's title states the budget). Where pgcontrol
ships a preset for the pair (:data:`pgcontrol.config.PRESETS`: PPO on
InvertedPendulum-v5) the run uses it, as ``pgcontrol train`` would, with the
budget as ``max_steps``; the other settings:

* VPG: REINFORCE with GAE(γ=0.99, λ=0.95) advantages against an MLP critic
  (6.46), Adam, whole episodes;
* NPG: the same estimator, the natural step with conjugate-gradient
  Fisher-vector products, ε = 0.01;
* AC: batch actor-critic, TD advantage (4.21)–(4.22) with an MLP critic
  trained by Adam, normalised advantages;
* PPO: clipped surrogate (6.37) with GAE, 10 epochs of minibatches,
  observation normalisation and reward scaling.

``quick=True``: InvertedPendulum-v5 only, one seed, about 6 000 steps per learner;
the full run: 30 000 (InvertedPendulum) and 100 000 (HalfCheetah) steps, 3 seeds.

Where ``figures/bench_vs_sb3.json`` (``experiments/bench_vs_sb3.py --out``)
holds Stable-Baselines3's PPO on the task, its learning curve up to the
budget is drawn as a dashed reference (the mean return of the last 10
episodes, mean over its seeds): read from that JSON, not re-run, and with
SB3's default settings, which the figure's legend says.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from ..algos.ac import ACConfig
from ..algos.npg import NPGConfig
from ..algos.ppo import PPOConfig
from ..algos.vpg import VPGConfig
from ..config import preset, resolve_config
from ..sweep import RunSpec
from . import save_figure, save_json, sweep

ENVS = ("InvertedPendulum-v5", "HalfCheetah-v5")
LEARNERS = ("vpg", "npg", "ac", "ppo")
BUDGET = {"InvertedPendulum-v5": 30_000, "HalfCheetah-v5": 100_000}  # environment steps per run (full)
QUICK_BUDGET = 6_000


def config(algo: str, env_id: str, budget: int):
    """The documented configuration of ``algo`` for a budget of about ``budget`` environment steps."""
    if algo in ("vpg", "npg"):  # whole episodes; ``train(max_steps=budget)`` ends the run
        num_envs = 4 if env_id.startswith("HalfCheetah") else 8
        common = dict(num_envs=num_envs, iterations=10_000, estimator="gae",
                      baseline="value", critic="mlp", critic_lr=1e-3, critic_epochs=10, lam=0.95, gamma=0.99)
        if algo == "vpg":
            return VPGConfig(lr=3e-3, optimizer="adam", max_grad_norm=0.5, **common)
        return NPGConfig(kl_bound=0.01, fisher="cg", cg_iters=10, damping=0.1, **common)
    if algo == "ac":
        return ACConfig(num_envs=8, n_steps=16, iterations=max(2, budget // 128), lr=3e-4, critic="mlp",
                        critic_optimizer="adam", critic_lr=1e-3, critic_steps=1, normalize_advantage=True,
                        max_grad_norm=0.5, gamma=0.99)
    n_steps = 256 if budget < 20_000 else 512
    return PPOConfig(num_envs=4, n_steps=n_steps, iterations=max(2, budget // (4 * n_steps)), update_epochs=10,
                     num_minibatches=8, normalize_obs=True, normalize_reward=True, gamma=0.99)


REFERENCE = Path("figures") / "bench_vs_sb3.json"
"""``experiments/bench_vs_sb3.py --out``: SB3's PPO (its defaults, one env) drawn as a reference curve, not re-run here."""
LAST = 10  # a reference point: the mean return of the last 10 episodes


def last_episodes_mean(curve, last: int = LAST) -> float | None:
    """The mean return of the last ``last`` episodes of ``[[steps, mean return, episodes], ...]``.

    A row may summarise several episodes (pgcontrol logs each iteration's
    mean and count): the last rows are taken whole until they hold at least
    ``last`` episodes, weighted by their counts.
    """
    total = count = 0.0
    for _, ret, n in reversed(curve):
        total, count = total + ret * n, count + n
        if count >= last:
            break
    return total / count if count else None


def rolling_return(curve, grid, last: int = LAST) -> np.ndarray:
    """:func:`last_episodes_mean` of the rows up to each step of ``grid`` (NaN before the first episode)."""
    steps = np.array([c[0] for c in curve], dtype=float)
    out = []
    for s in grid:
        k = int(np.searchsorted(steps, s, side="right"))
        out.append(last_episodes_mean(curve[:k], last) if k else np.nan)
    return np.array(out, dtype=float)


def reference_curve(env_id: str, budget: int, path: Path = REFERENCE) -> dict | None:
    """SB3's PPO on ``env_id`` from the benchmark's JSON, up to ``budget`` steps (mean over its seeds), or None."""
    if not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text())
    runs = data.get("results", {}).get(f"ppo {env_id}", {}).get("sb3") or []
    if not runs:
        return None
    grid = np.linspace(0, budget, 61)[1:]
    ys = np.array([rolling_return(r["curve"], grid) for r in runs])
    keep = ~np.isnan(ys).any(0)
    return {"source": str(path), "library": "Stable-Baselines3 PPO", "settings": data.get("settings", {}).get("ppo"),
            "num_envs": data.get("num_envs"), "seeds": len(runs), "steps": grid[keep].tolist(),
            "returns": ys[:, keep].mean(0).tolist()}


def overrides(algo: str, env_id: str, budget: int) -> tuple:
    """A run's config overrides: none where pgcontrol ships a preset for the pair (what ``pgcontrol train`` uses),
    else every field of :func:`config`."""
    if preset(algo, env_id) is not None:
        return ()
    return tuple(sorted(dataclasses.asdict(config(algo, env_id, budget)).items()))


def curve(history: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, mean episode return) over the iterations in which some episode ended."""
    pts = [(r["steps"], r["return_mean"]) for r in history if "return_mean" in r]
    if not pts:
        return np.zeros(0), np.zeros(0)
    s, r = np.array(pts, dtype=float).T
    return s, r


def run(*, quick: bool = False, seeds: int | None = None, out: Path, progress: bool = True,
        workers: int | None = None, ray: str | None = None) -> dict:
    """Make ``out/mujoco.png`` and ``out/mujoco.json``; see the module docstring."""

    t0 = time.perf_counter()
    envs = ENVS[:1] if quick else ENVS
    n_seeds = seeds if seeds is not None else (1 if quick else 3)
    # one training run per (task, learner, seed): the configuration in full, the budget as max_steps
    budget = {e: QUICK_BUDGET if quick else BUDGET[e] for e in envs}
    specs = [RunSpec(algo, env_id, overrides(algo, env_id, budget[env_id]), seed, budget[env_id], "mlp")
             for env_id in envs for algo in LEARNERS for seed in range(n_seeds)]
    runs: dict = {e: {a: [] for a in LEARNERS} for e in envs}
    for spec, res in zip(specs, sweep("mujoco", specs, out, workers=workers, ray=ray, progress=progress)):
        hist = res["history"]
        s, r = curve(hist)
        runs[spec.env][spec.algo].append({
            "seed": spec.seed, "steps": s.tolist(), "returns": r.tolist(),
            "status": "ok" if res["status"] == "ok" else f"diverged: {res['error']}",
            "total_steps": int(hist[-1]["steps"]) if hist else 0, "seconds": res["seconds"]})

    table = {}
    lines = [f"budget per run: {', '.join(f'{e} {budget[e]:,} steps' for e in envs)}; {n_seeds} seed(s); "
             f"presets used: {', '.join(f'{a} on {e}' for e in envs for a in LEARNERS if preset(a, e)) or 'none'}"]
    for env_id in envs:
        table[env_id] = {}
        for algo in LEARNERS:
            rs = runs[env_id][algo]
            first = [x["returns"][0] for x in rs if x["returns"]]
            last = [float(np.mean(x["returns"][-3:])) for x in rs if x["returns"]]
            table[env_id][algo] = {
                "first_return_median": float(np.median(first)) if first else None,
                "final_return_median": float(np.median(last)) if last else None,
                "final_return_range": [float(min(last)), float(max(last))] if last else None,
                "steps_median": float(np.median([x["total_steps"] for x in rs])),
                "diverged": sum(x["status"] != "ok" for x in rs),
                "steps_per_s": float(np.median([x["total_steps"] / x["seconds"] for x in rs])),
            }
            t_ = table[env_id][algo]
            lines.append(f"{env_id} {algo:>4}: return {t_['first_return_median']:.1f} -> {t_['final_return_median']:.1f} "
                         f"(median of {n_seeds} seeds, last 3 iterations) in {t_['steps_median']:.0f} steps; "
                         f"{t_['steps_per_s']:.0f} steps/s")
    summary = {"quick": quick, "seeds": n_seeds, "budget": {e: (QUICK_BUDGET if quick else BUDGET[e]) for e in envs},
               "configs": {e: {a: repr(resolve_config(a, e, dict(overrides(a, e, budget[e])))[0]) for a in LEARNERS}
                           for e in envs},
               "presets": {e: [a for a in LEARNERS if preset(a, e) is not None] for e in envs},
               "results": table, "runs": runs, "seconds": time.perf_counter() - t0, "headline": lines,
               "reference": {e: reference_curve(e, budget[e]) for e in envs}}
    _figure(runs, summary, out / "mujoco.png")
    save_json(out / "mujoco.json", summary)
    return summary


def _figure(runs, summary, path) -> None:
    from matplotlib.figure import Figure

    colors = {"vpg": "tab:red", "npg": "tab:blue", "ac": "tab:green", "ppo": "tab:purple"}
    envs = list(runs)
    fig = Figure(figsize=(6.2 * len(envs), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(envs)))
    for ax, env_id in zip(axes, envs):
        for algo, rs in runs[env_id].items():
            rs = [x for x in rs if len(x["steps"]) > 1]
            if not rs:
                continue
            hi = min(x["steps"][-1] for x in rs)
            grid = np.linspace(max(x["steps"][0] for x in rs), hi, 60)
            ys = np.array([np.interp(grid, x["steps"], x["returns"]) for x in rs])
            ax.plot(grid, np.median(ys, 0), color=colors[algo], label=algo.upper())
            ax.fill_between(grid, ys.min(0), ys.max(0), color=colors[algo], alpha=0.15)
        ref = summary.get("reference", {}).get(env_id)
        if ref:
            ax.plot(ref["steps"], ref["returns"], color="black", ls="--", lw=1.2,
                    label=f"SB3 PPO, defaults, {ref['num_envs']} env (mean of {ref['seeds']} seeds, "
                          f"last {LAST} episodes; {Path(ref['source']).name})")
        ax.set(xlabel="environment steps", ylabel="episode return",
               title=f"{env_id}: budget {summary['budget'][env_id]:,} steps, {summary['seeds']} seed(s)")
        ax.legend(fontsize=8)
    save_figure(fig, path)
