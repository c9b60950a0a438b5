"""The plateau of zero exploration: vanilla PG against the natural gradient on scalar LQG.

Peters & Schaal, "Reinforcement learning of motor skills with policy
gradients", Neural Networks 2008, as shown on the slides of
``reference/004`` ("Example: Vanilla / Natural Policy Gradient for LQG"):
the plant ``scalar-lqg`` (x' = x + u, cost x² + 0.1u², γ = 0.9, T = 50,
x₀ ≈ 0.3, no process noise) and the policy u ~ N(k x, σ²) with θ₁ = k and
θ₂ = σ (our convention is u = −Kx, so k = −K; ``std_param="std"``).

Decreasing σ lowers the cost at once (∂J/∂σ = 2σ(R + γBᵀPB)/(1 − γ)), so the
vanilla gradient mostly points down in σ; σ collapses onto its floor while k
is still far from k*, and there the sampled gradient in k, whose score is
(u − kx)x/σ², becomes noise: the "plateau of zero exploration". The natural
gradient F⁻¹∇J rescales each direction by the policy's own Fisher
information (slides: steepest ascent in the KL metric), so a step moves k
and σ by the same statistical distance.

What is run
-----------
(a) The exact cost J(k, σ) (:func:`pgcontrol.lqr.policy_cost`, infinite
    horizon) on k ∈ [−1.7, −0.1], σ ∈ [0, 1] with the exact vanilla
    (:func:`pgcontrol.lqr.policy_gradient`) and natural
    (:func:`pgcontrol.lqr.natural_gradient`) ascent directions of the return.
(b) Sampled learning: the package's own learners (:class:`pgcontrol.algos.vpg.VPG`,
    plain gradient ascent θ ← θ + αĝ (3.22), and :class:`pgcontrol.algos.npg.NPG`,
    δθ = sqrt(2ε/ĝᵀF̂⁻¹ĝ) F̂⁻¹ĝ with the sample Fisher) with the same
    estimator for both: M = 5 rollouts of T = 50 steps per update,
    reward-to-go with the γᵗ factor (3.19) and the leave-one-out mean
    baseline (4.8), std floor 1e-3, start k = −0.2, σ = 0.1. Each method
    gets its best step size from a documented grid (vanilla: α, NPG: the
    KL bound ε), chosen by the fraction of seeds that reach
    |k − k*|/|k*| < 1 %, then by the median number of updates.
    The same updates with the exact gradient / exact Fisher are drawn too.
(c) The exact expected return −J(k, σ) of every iterate against the update number.

``quick=True`` skips the grid search and runs the best step sizes of the
last full run (:data:`BEST`) on 10 seeds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import lqr
from ..algos.npg import NPG, NPGConfig
from ..algos.vpg import VPG, VPGConfig
from ..plants import make
from ..policies import SCALAR_LQG_START, LinearGaussianPolicy
from ..rollout import Batch, batch_from_rollout
from ..sim import rollout_linear
from ..labs.drivers import PGRun
from ..sweep import TaskSpec
from . import save_figure, save_json, sweep

PLANT = "scalar-lqg"
K_START, STD_START = SCALAR_LQG_START  # k = θ₁ (u = k x), σ = θ₂: Peters & Schaal's start
STD_FLOOR = 1e-3
ROLLOUTS = 5  # M, rollouts of T = 50 steps per update
TOL = 0.01  # |k − k*| / |k*|
STEP_GRID = (0.003, 0.01, 0.03, 0.05, 0.1, 0.3)  # the same values for α (VPG) and ε (NPG)
GRID = {"vpg": STEP_GRID, "npg": STEP_GRID}
BEST = {"vpg": 0.03, "npg": 0.05}  # the grid's best in the full run (see README); used by --quick
UPDATES = {"vpg": 300, "npg": 300}
LABEL = {"vpg": "vanilla PG", "npg": "natural PG"}
STEP_NAME = {"vpg": "α", "npg": "ε"}


#: one seed's trajectory of (k, σ) over the updates: the record lab 4's driver uses too
RunResult = PGRun


def _config(algo: str, step: float):
    common = dict(num_envs=ROLLOUTS, iterations=1, estimator="rtg", baseline="mean", discount_weighting=True,
                  adaptive=False)  # the plain steps of the experiment, not the adaptive defaults
    if algo == "vpg":
        return VPGConfig(lr=step, optimizer="sgd", **common)
    return NPGConfig(kl_bound=step, fisher="sample", damping=1e-6, **common)


def _batch(policy, plant, generator) -> Batch:
    """M aligned episodes of the plant under the policy, as the learners' :class:`~pgcontrol.rollout.Batch`."""
    r = rollout_linear(plant, policy.K, policy.std, ROLLOUTS, plant.horizon, seed=generator)
    with torch.no_grad():
        logp = policy.log_prob(r.states[:-1], r.actions)
    return batch_from_rollout(r, logp)


def learn(algo: str, step: float, seed: int, updates: int, plant=None) -> RunResult:
    """Run one seed of the sampled learner ``algo`` ("vpg" or "npg") with step size ``step``."""
    plant = make(PLANT) if plant is None else plant
    policy = LinearGaussianPolicy(1, 1, K0=[[-K_START]], std0=STD_START, std_param="std", min_std=STD_FLOOR)
    Learner = VPG if algo == "vpg" else NPG
    learner = Learner(policy, _config(algo, step), gamma=plant.gamma, obs_dim=1, device="cpu", plant=plant)
    g = torch.Generator().manual_seed(seed)
    k, s = [K_START], [STD_START]
    for it in range(updates):
        batch = _batch(policy, plant, g)
        if batch.diverged:
            return RunResult(np.array(k), np.array(s), True)
        learner.update(batch, it)
        kk, ss = -float(policy.K[0, 0]), float(policy.std[0])
        if not (np.isfinite(kk) and np.isfinite(ss)) or not np.isfinite(lqr.policy_cost(plant, [[-kk]], ss)):
            return RunResult(np.array(k), np.array(s), True)
        k.append(kk)
        s.append(ss)
    return RunResult(np.array(k), np.array(s), False)


def learn_run(algo: str, step: float, updates: int, seed: int) -> dict:
    """:func:`learn` as a sweep task (:class:`pgcontrol.sweep.TaskSpec`): the trajectory as JSON-able lists."""
    r = learn(algo, step, seed, updates)
    return {"k": r.k.tolist(), "std": r.std.tolist(), "diverged": r.diverged}


def exact_path(algo: str, step: float, updates: int, plant=None) -> RunResult:
    """The same update rule with the exact gradient (and exact Fisher), from the same start."""
    plant = make(PLANT) if plant is None else plant
    k, s = K_START, STD_START
    ks, ss = [k], [s]
    for _ in range(updates):
        dK, ds = lqr.policy_gradient(plant, [[-k]], s, horizon=plant.horizon)
        g = np.array([dK[0, 0], -ds[0] if s > STD_FLOOR else 0.0])  # ∇ of the return −J in θ = (K, σ)
        if algo == "vpg":
            d = step * g
        else:
            F = lqr.fisher(plant, [[-k]], s, horizon=plant.horizon)
            x = np.linalg.solve(F + 1e-6 * np.eye(2), g)
            d = np.sqrt(2 * step / (g @ x)) * x
        k, s = k + d[0], max(s + d[1], STD_FLOOR)
        if not np.isfinite(lqr.policy_cost(plant, [[-k]], s)):
            return RunResult(np.array(ks), np.array(ss), True)
        ks.append(k)
        ss.append(s)
    return RunResult(np.array(ks), np.array(ss), False)


def summarise(runs: list[RunResult], k_opt: float) -> dict:
    """Median updates to 1 %, and the fractions that reach, stall at the std floor, or diverge."""
    hits = [r.reached(k_opt) for r in runs]
    reached = [h for h in hits if h is not None]
    stalled = [h is None and not r.diverged and r.std[-1] <= 2 * STD_FLOOR for h, r in zip(hits, runs)]
    return {
        "seeds": len(runs),
        "reached": len(reached) / len(runs),
        "median_updates": float(np.median(reached)) if reached else None,
        "updates_range": [int(min(reached)), int(max(reached))] if reached else None,
        "stalled_at_floor": float(np.mean(stalled)),
        "diverged": float(np.mean([r.diverged for r in runs])),
        "final_std_median": float(np.median([r.std[-1] for r in runs])),
        "final_k_error_median": float(np.median([abs(r.k[-1] - k_opt) / abs(k_opt) for r in runs])),
    }


def _rank(s: dict) -> tuple:
    return (-s["reached"], s["median_updates"] if s["median_updates"] is not None else np.inf)


def run(*, quick: bool = False, seeds: int | None = None, out: Path, progress: bool = True,
        workers: int | None = None, ray: str | None = None) -> dict:
    """Make ``out/plateau.png`` and ``out/plateau.json``; see the module docstring."""
    t_start = time.perf_counter()
    plant = make(PLANT)
    k_opt = -float(lqr.optimal_gain(plant)[0][0, 0])
    J_opt = lqr.policy_cost(plant, [[-k_opt]], 0.0)
    n_seeds = seeds if seeds is not None else 10
    grid = {a: ((BEST[a],) if quick else GRID[a]) for a in GRID}
    # one sweep run per (learner, step size, seed)
    specs = [TaskSpec.make(f"{__name__}:learn_run", seed, algo=a, step=step, updates=UPDATES[a])
             for a in grid for step in grid[a] for seed in range(n_seeds)]
    results: dict[str, dict[float, list[RunResult]]] = {a: {} for a in grid}
    for spec, res in zip(specs, sweep("plateau", specs, out, workers=workers, ray=ray, progress=progress)):
        a, step = dict(spec.kwargs)["algo"], dict(spec.kwargs)["step"]
        o = res["output"]
        results[a].setdefault(step, []).append(RunResult(np.array(o["k"]), np.array(o["std"]), o["diverged"]))
    table = {a: {str(step): summarise(runs, k_opt) for step, runs in results[a].items()} for a in results}
    best = {a: min(results[a], key=lambda st: _rank(table[a][str(st)])) for a in results}
    exact = {a: exact_path(a, best[a], UPDATES[a], plant) for a in results}

    summary = {
        "plant": PLANT, "k_opt": k_opt, "J_opt": J_opt, "start": {"k": K_START, "std": STD_START},
        "std_floor": STD_FLOOR, "rollouts_per_update": ROLLOUTS, "horizon": plant.horizon, "tolerance": TOL,
        "updates": UPDATES, "grid": {a: list(v) for a, v in grid.items()}, "quick": quick, "seeds": n_seeds,
        "best_step": best, "by_step": table, "best": {a: table[a][str(best[a])] for a in results},
        "exact": {a: {"reached": exact[a].reached(k_opt), "final_k": float(exact[a].k[-1]),
                      "final_std": float(exact[a].std[-1])} for a in results},
    }
    lines = [f"scalar-lqg: k* = {k_opt:.5f}, start k = {K_START}, σ = {STD_START}, floor {STD_FLOOR}, "
             f"{ROLLOUTS} rollouts/update, {n_seeds} seeds"]
    for a in results:
        s = summary["best"][a]
        med = "never" if s["median_updates"] is None else f"median {s['median_updates']:.0f} updates"
        lines.append(f"{LABEL[a]:>10} ({STEP_NAME[a]} = {best[a]}): reached 1 % on {s['reached']:.0%} ({med}), "
                     f"stalled at σ floor {s['stalled_at_floor']:.0%}, diverged {s['diverged']:.0%}, "
                     f"final σ median {s['final_std_median']:.2g}")
    for a in results:
        e = summary["exact"][a]
        reached = (f"reached 1 % at update {e['reached']}" if e["reached"] is not None
                   else f"did not reach 1 % in {UPDATES[a]} updates (k = {e['final_k']:.4g})")
        lines.append(f"{LABEL[a]:>10} exact gradient: {reached}, final σ {e['final_std']:.2g}")
    if not quick:
        for a in results:
            lines.append(f"{LABEL[a]:>10} grid " + ", ".join(
                f"{STEP_NAME[a]}={st}: {table[a][st]['reached']:.0%}/"
                f"{'-' if table[a][st]['median_updates'] is None else int(table[a][st]['median_updates'])}"
                for st in table[a]))
    summary["seconds"] = time.perf_counter() - t_start
    summary["headline"] = lines
    _figure(plant, k_opt, J_opt, {a: results[a][best[a]] for a in results}, exact, best, out / "plateau.png")
    save_json(out / "plateau.json", summary)
    return summary


def _figure(plant, k_opt, J_opt, runs, exact, best, path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    colors = {"vpg": "tab:red", "npg": "tab:blue"}
    fig = Figure(figsize=(13, 10.5), layout="constrained")
    (ax_a, ax_b), (ax_c, ax_d) = fig.subplots(2, 2)
    fig.suptitle("The plateau of zero exploration (Peters & Schaal 2008): on the scalar LQG x' = x + u, "
                 "u ~ N(k x, σ²), cost x² + 0.1 u², γ = 0.9,\nvanilla policy gradient drives σ onto its floor and "
                 f"then crawls in k; the natural gradient turns towards k* = {k_opt:.4f}", fontsize=12)
    log_sigma = FuncFormatter(lambda v, _: f"$10^{{{v:.0f}}}$" if abs(v - round(v)) < 1e-9 else "")
    s_lo, s_hi = np.log10(STD_FLOOR), 0.0  # (a) and (b) share the axis: log10 σ from the floor to 1

    # (a) exact landscape in (k, log σ) with the two normalised ascent directions
    ks, ls = np.linspace(-1.7, -0.1, 161), np.linspace(s_lo, s_hi, 121)
    J = np.array([[lqr.policy_cost(plant, [[-k]], 10**l) for k in ks] for l in ls])
    excess = np.log10(np.where(np.isfinite(J), J, np.nan) / J_opt)  # log10 J/J*: 0 at the optimum
    cs = ax_a.contourf(ks, ls, excess, levels=np.linspace(0.0, 1.5, 16), cmap="Greys", extend="max", alpha=0.8)
    fig.colorbar(cs, ax=ax_a, location="left", label="log₁₀ J(k, σ)/J*  (white: optimal)")
    kq, lq = np.meshgrid(np.linspace(-1.6, -0.2, 9), np.linspace(s_lo + 0.25, s_hi - 0.15, 9))
    for algo, off in (("vpg", -0.02), ("npg", 0.02)):
        U, V = np.zeros_like(kq), np.zeros_like(kq)
        for idx in np.ndindex(kq.shape):
            k, sd = kq[idx], 10 ** lq[idx]
            dK, ds = (lqr.policy_gradient if algo == "vpg" else lqr.natural_gradient)(plant, [[-k]], sd)
            # ascent on −J in (k, log10 σ): dk = +∂J/∂K, d log10 σ = −∂J/∂σ / (σ ln 10); normalised on the axes
            v = np.array([dK[0, 0] / 1.6, -ds[0] / (sd * np.log(10)) / (s_hi - s_lo)])
            U[idx], V[idx] = v / np.linalg.norm(v) * np.array([1.6, s_hi - s_lo])
        ax_a.quiver(kq + off, lq, U, V, color=colors[algo], angles="xy", scale_units="xy", scale=14,
                    width=0.005, label=f"{LABEL[algo]} direction (exact, normalised)")
    ax_a.axvline(k_opt, color="k", ls=":", lw=1)
    ax_a.set(xlabel="k = θ₁", ylabel="σ = θ₂ (log scale)", ylim=(s_lo, s_hi),
             title="(a) exact cost and the two ascent directions")
    ax_a.yaxis.set_major_formatter(log_sigma)
    ax_a.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)

    # (b) the learning paths on the same axes
    for algo, rs in runs.items():
        for i, r in enumerate(rs):
            ax_b.plot(r.k, np.log10(r.std), color=colors[algo], lw=0.8, alpha=0.45,
                      label=f"{LABEL[algo]}, sampled ({len(rs)} seeds)" if i == 0 else None)
        e = exact[algo]
        ax_b.plot(e.k, np.log10(e.std), color=colors[algo], lw=2.4, ls="--", label=f"{LABEL[algo]}, exact gradient")
    ax_b.plot([K_START], [np.log10(STD_START)], "ko", ms=6, label="start (k = −0.2, σ = 0.1)")
    ax_b.axvline(k_opt, color="k", ls=":", lw=1, label=f"k* = {k_opt:.4f}")
    ax_b.axhline(np.log10(STD_FLOOR), color="gray", lw=2, alpha=0.5, label="σ floor 1e-3: the plateau")
    ax_b.set(xlabel="k", ylabel="σ (log scale)", xlim=(-1.7, -0.1), ylim=(s_lo - 0.05, s_hi),
             title=f"(b) learning paths (α = {best['vpg']}, ε = {best['npg']})")
    ax_b.yaxis.set_major_formatter(log_sigma)
    ax_b.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8)

    # (c) exact expected return of the iterates; (d) σ of the iterates: the stall
    for algo, rs in runs.items():
        n = max(len(r.k) for r in rs)
        curves, sig = np.full((len(rs), n), np.nan), np.full((len(rs), n), np.nan)
        for i, r in enumerate(rs):
            curves[i, :len(r.k)] = [-lqr.policy_cost(plant, [[-k]], sd) for k, sd in zip(r.k, r.std)]
            sig[i, :len(r.std)] = r.std
        x = np.arange(n)
        ax_c.plot(x, np.nanmedian(curves, 0), color=colors[algo], lw=1.8, label=f"{LABEL[algo]}, sampled (median)")
        ax_c.fill_between(x, np.nanmin(curves, 0), np.nanmax(curves, 0), color=colors[algo], alpha=0.15)
        ax_d.plot(x, np.nanmedian(sig, 0), color=colors[algo], lw=1.8, label=f"{LABEL[algo]}, sampled (median)")
        e = exact[algo]
        ax_c.plot(np.arange(len(e.k)), [-lqr.policy_cost(plant, [[-k]], sd) for k, sd in zip(e.k, e.std)],
                  color=colors[algo], ls="--", lw=1.5, label=f"{LABEL[algo]}, exact gradient")
        ax_d.plot(np.arange(len(e.std)), e.std, color=colors[algo], ls="--", lw=1.5, label=f"{LABEL[algo]}, exact gradient")
    ax_c.axhline(-J_opt, color="k", ls=":", lw=1, label="J* (Riccati)")
    ax_c.set_xscale("symlog", linthresh=10)
    ax_c.set_xlim(0, max(UPDATES.values()))
    ax_c.set_ylim(-0.5, -0.9 * J_opt)  # a few vanilla excursions towards instability go below (clipped)
    ax_c.set(xlabel="update", ylabel="expected return −J (exact)", title="(c) return vs updates (band: min–max, clipped)")
    ax_c.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8)
    ax_d.axhline(STD_FLOOR, color="gray", lw=2, alpha=0.5, label="σ floor: zero exploration")
    ax_d.set_xscale("symlog", linthresh=10)
    ax_d.set_yscale("log")
    ax_d.set_xlim(0, max(UPDATES.values()))
    ax_d.set(xlabel="update", ylabel="σ", title="(d) the stall: vanilla PG's σ sits on its floor while k crawls")
    ax_d.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8)
    save_figure(fig, path)
