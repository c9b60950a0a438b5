"""Figure 2: learned linear gains of every learner against the Riccati gain K*.

For each state-feedback catalog plant (``scalar-lqg``, ``double-integrator``,
``laplacian-3``, ``cartpole-linearized``, ``mass-spring-damper``) and each
learner (VPG, NPG, TRPO, actor-critic, PPO) **with its default config** (no
preset and no config: ``train(algo, plant, seed=s, max_steps=1_000_000)``, the
adaptive rules of ``docs/learners.md``) and a linear Gaussian policy
``u = -K x + eps`` started from the documented gain
(:func:`pgcontrol.policies.default_initial_gain`) and σ₀, over several seeds,
this experiment records

* the relative gain error ``‖K − K*‖_F / ‖K*‖_F`` (``K*`` from the discounted
  Riccati equation, :func:`pgcontrol.lqr.optimal_gain`),
* the exact cost gap ``(J(K) − J*)/J*`` of the final mean gain (σ = 0;
  :func:`pgcontrol.lqr.policy_cost`),
* whether the run stayed stabilising: it finished without
  :class:`~pgcontrol.errors.TrainingDiverged` *and* every logged iterate had
  ``ρ(A − BK) < 1`` (a diverged run is recorded, counts as not stabilising and
  enters the medians with gain error and gap ``+inf``),
* the environment steps used (``history[-1]["steps"]``) and why the run
  stopped (the step budget, or the stopping rule's sentence).

Two exact, model-based reference rows start from the same initial gain:

* **policy iteration** (Hewer 1971): evaluate ``K`` by the discounted
  Lyapunov equation ``P = Q + KᵀRK + γ(A − BK)ᵀP(A − BK)``
  (:func:`scipy.linalg.solve_discrete_lyapunov`), improve
  ``K ← (R + γBᵀPB)⁻¹γBᵀPA``; until the gain error is below 1e-12 (≤ 100
  iterations);
* **exact-gradient descent**: ``K ← K − η ∇_K J(K)`` with the exact gradient
  :func:`pgcontrol.lqr.policy_gradient` at σ = 0 (infinite horizon), step
  size by Armijo backtracking (start η at twice the last accepted step,
  halve until ``J(K − η∇J) ≤ J(K) − ½η‖∇J‖² + 1e-13·J(K)``, the last term
  absorbing rounding in J near the optimum, which otherwise stalls the
  search at gain errors ~1e-8); until the gain error is below 1e-7
  (≤ 5000 iterations).

The budget is 1 M environment steps per run (:data:`CAP`, the cap of
``experiments/bench_plants.py``); ``--quick`` runs scalar-lqg and
double-integrator, 1 seed, 100 k steps (:data:`QUICK_CAP`). The cost of a run
is in ``gains.md``.

Outputs: ``gains.md`` (table), ``gains.png`` (one panel per plant: gain error
vs environment steps, median and min–max band over seeds, one colour per
learner, the references' result marked), ``gains.json`` (everything,
including every run's curve).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import lqr, plants
from ..checkpoint import atomic_write
from ..errors import TrainingDiverged
from ..policies import default_initial_gain
from ..sweep import TaskSpec
from ..train import train
from . import save_figure, save_json, sweep

PLANTS = ["scalar-lqg", "double-integrator", "laplacian-3", "cartpole-linearized", "mass-spring-damper"]
QUICK_PLANTS = ["scalar-lqg", "double-integrator"]
LEARNERS = {"VPG": "vpg", "NPG": "npg", "TRPO": "trpo", "actor-critic": "ac", "PPO": "ppo"}
COLORS = {"VPG": "tab:blue", "NPG": "tab:orange", "TRPO": "tab:purple", "actor-critic": "tab:green", "PPO": "tab:red"}
DEFAULT_SEEDS, QUICK_SEEDS = 3, 1
CAP, QUICK_CAP = 1_000_000, 100_000

PI_TOL, PI_MAX_ITER = 1e-12, 100
GD_TOL, GD_MAX_ITER = 1e-7, 5000
REACHED = 1e-6  # "K* reached": the reference rows report the iterations to get below this gain error


def cap(quick: bool = False) -> int:
    """Environment steps a run may spend (``max_steps``): 1 M, as in ``experiments/bench_plants.py``; 100 k quick."""
    return QUICK_CAP if quick else CAP


# ---------------------------------------------------------------- references


def gain_error(K, K_star) -> float:
    return lqr.gain_error(K, K_star)


def cost_gap(plant, K, J_star) -> float:
    return lqr.cost_gap(lqr.policy_cost(plant, K), J_star)


def policy_iteration(plant, K0, *, tol: float = PI_TOL, max_iter: int = PI_MAX_ITER) -> dict:
    """Hewer's policy iteration from ``K0`` (:func:`pgcontrol.lqr.policy_iteration`), summarised."""
    K_star, _ = lqr.optimal_gain(plant)
    K, iterates = lqr.policy_iteration(plant, K0, tol=tol, max_iter=max_iter, K_ref=K_star)
    return _reference_result(plant, K, K_star, [gain_error(Ki, K_star) for Ki in iterates])


def exact_gradient_descent(plant, K0, *, tol: float = GD_TOL, max_iter: int = GD_MAX_ITER) -> dict:
    """Exact-gradient descent with Armijo steps (:func:`pgcontrol.lqr.gradient_descent`), summarised."""
    K_star, _ = lqr.optimal_gain(plant)
    K, iterates, steps = lqr.gradient_descent(plant, K0, tol=tol, max_iter=max_iter, K_ref=K_star)
    out = _reference_result(plant, K, K_star, [gain_error(Ki, K_star) for Ki in iterates])
    out["step_size_median"] = float(np.median(steps))
    return out


def _reference_result(plant, K, K_star, errors) -> dict:
    J_star = lqr.policy_cost(plant, K_star)
    reached = next((i for i, e in enumerate(errors) if e < REACHED), None)
    return {
        "K": K.tolist(),
        "gain_error": errors[-1],
        "gap": cost_gap(plant, K, J_star),
        "iterations": len(errors) - 1,
        "iterations_to_1e-6": reached,
        "errors": errors,
    }


# ---------------------------------------------------------------- learners


def run_learner(plant_name: str, algo: str, seed: int, max_steps: int) -> dict:
    """One run of the learner's default config from the documented start; a ``TrainingDiverged`` is recorded, not raised."""
    plant = plants.make(plant_name)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        history = train(algo, plant_name, seed=seed, max_steps=max_steps, progress=False)
    except TrainingDiverged as exc:
        return {"seed": seed, "diverged": str(exc), "stabilising": False, "gain_error": math.inf,
                "gap": math.inf, "steps": None, "iterations": None,
                "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "curve": None}
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    gains = [r for r in history if "K" in r]  # rows of updates the guard took back hold no gain
    rho = [lqr.spectral_radius(plant.A - plant.B @ np.array(r["K"])) for r in gains]
    last = gains[-1]
    stabilising = all(r < 1 for r in rho) and all(np.isfinite(r["gap"]) for r in gains)
    return {
        "seed": seed,
        "diverged": None,
        "stabilising": bool(stabilising),
        "gain_error": float(last["gain_error"]),
        "gap": float(last["gap"]),
        "steps": int(history[-1]["steps"]),
        "iterations": len(history),
        "stop_reason": history[-1].get("stop_reason"),
        "K": last["K"],
        "std": last["std"],
        "max_spectral_radius": float(max(rho)),
        "wall_s": wall,
        "cpu_s": cpu,
        "curve": {"steps": [int(r["steps"]) for r in gains],
                  "gain_error": [float(r["gain_error"]) for r in gains],
                  "gap": [float(r["gap"]) for r in gains]},
    }


def _stats(values) -> dict:
    v = np.array(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def summarise(runs: list[dict]) -> dict:
    done = [r for r in runs if r["steps"] is not None]
    return {
        "seeds": len(runs),
        "gain_error": _stats([r["gain_error"] for r in runs]),
        "gap": _stats([r["gap"] for r in runs]),
        "stabilising": sum(r["stabilising"] for r in runs) / len(runs),
        "diverged": sum(r["diverged"] is not None for r in runs),
        "steps": int(np.median([r["steps"] for r in done])) if done else None,
        "iterations": int(np.median([r["iterations"] for r in done])) if done else None,
        "wall_s": float(sum(r["wall_s"] for r in runs)),
        "cpu_s": float(sum(r["cpu_s"] for r in runs)),
    }


# ---------------------------------------------------------------- output


def _f(x: float, digits: int = 2) -> str:
    if x is None:
        return "—"
    if not np.isfinite(x):
        return "∞"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e4:
        m, e = f"{x:.{digits - 1}e}".split("e")
        return f"{m}e{int(e)}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits + 1}g}"


def _range(s: dict) -> str:
    return f"{_f(s['median'])} [{_f(s['min'])}–{_f(s['max'])}]"


def markdown(result: dict) -> str:
    lines = [
        "# Learned gains vs the Riccati gain K*",
        "",
        f"Command: `{result['command']}` (seeds 0–{result['seeds'] - 1}; "
        f"{result['wall_s']:.0f} s wall with {result['workers']} worker process(es), {result['cpu_s']:.0f} s CPU "
        "in the training runs, on two CPU cores shared with other jobs).",
        "",
        "Gain error = ‖K − K*‖_F/‖K*‖_F of the final mean gain; gap = (J(K) − J*)/J* from the exact "
        "formula (σ = 0, infinite horizon); both as median [min–max] over seeds (a diverged run "
        "counts as ∞). Stabilising = finished without `TrainingDiverged` and ρ(A − BK) < 1 at every "
        "iteration. Env steps = transitions sampled per run. Reference rows are exact and model-based "
        "(no samples) and start from the same K₀; their iterations are to reach gain error < 1e-6 "
        "(total iterations in parentheses). The medians of gain error and gap need not come from the same "
        "seed. The stabilising criterion is strict (undiscounted): with γ < 1 a gain with "
        "1 ≤ ρ(A − BK) < 1/√γ still has a finite discounted cost (what the learners minimise, and what "
        "their last guard checks), so a run can pass through such gains, end with a finite gap and still "
        "count as not stabilising; the largest ρ(A − BK) of every run is in gains.json "
        "(laplacian-3: γ = 0.99, 1/√γ ≈ 1.005, open-loop unstable with ρ(A) = 1.024; "
        "cartpole-linearized: γ = 0.98, 1/√γ ≈ 1.010).",
        "",
        "Every learner runs its default config (no preset, no config: `train(algo, plant, seed=s, "
        f"max_steps={result['max_steps']})`, the adaptive rules of docs/learners.md) from the documented start "
        "`policies.default_initial_gain` with the default σ₀; env steps are the median over seeds of what the "
        "run used (its stopping rule may end it before the budget).",
        "",
        "| plant | method | seeds | gain error | cost gap | stabilising | env steps | iterations | budget |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in result["plants"]:
        ref = result["references"][p]
        lines.append(f"| {p} | initial gain K₀ | — | {_f(ref['initial']['gain_error'])} | "
                     f"{_f(ref['initial']['gap'])} | yes | — | — | `default_initial_gain` |")
        for name, key in (("policy iteration", "policy_iteration"), ("exact-gradient descent", "gradient_descent")):
            r = ref[key]
            lines.append(f"| {p} | {name} (reference) | — | {_f(r['gain_error'])} | {_f(r['gap'])} | yes | 0 | "
                         f"{r['iterations_to_1e-6']} ({r['iterations']}) | exact model |")
        for name in LEARNERS:
            entry = result["learners"][p].get(name)
            if entry is None:
                continue
            s = entry["summary"]
            n_stab = round(s["stabilising"] * s["seeds"])
            lines.append(
                f"| {p} | {name} | {s['seeds']} | {_range(s['gain_error'])} | {_range(s['gap'])} | "
                f"{n_stab}/{s['seeds']} | {_f(s['steps'], 3) if s['steps'] else '—'} | {s['iterations'] or '—'} | "
                f"≤ {entry['max_steps']:,} steps |")
    lines += ["", "CPU seconds for all seeds of a learner: " + "; ".join(
        f"{p} " + ", ".join(f"{n} {result['learners'][p][n]['summary']['cpu_s']:.0f}"
                           for n in LEARNERS if n in result["learners"][p]) for p in result["plants"]) + "."]
    lines += ["", "Why each run stopped (seeds 0, 1, …):", ""]
    for p in result["plants"]:
        for name in LEARNERS:
            entry = result["learners"][p].get(name)
            if entry is not None:
                why = "; ".join(str(r.get("stop_reason") or r.get("diverged")) for r in entry["runs"])
                lines.append(f"* {p}, {name}: {why}")
    if result.get("notes"):
        lines += ["", *result["notes"]]
    return "\n".join(lines) + "\n"


def _curve_band(runs: list[dict]):
    """Median and min–max of the gain-error curves on a common grid of env steps (log-interpolated)."""
    curves = [r["curve"] for r in runs if r["curve"] is not None]
    if not curves:
        return None
    lo = max(c["steps"][0] for c in curves)
    hi = min(c["steps"][-1] for c in curves)
    grid = np.geomspace(lo, hi, 200) if hi > lo else np.array([lo])
    ys = np.array([np.exp(np.interp(np.log(grid), np.log(c["steps"]), np.log(np.maximum(c["gain_error"], 1e-300))))
                   for c in curves])
    return grid, np.median(ys, axis=0), ys.min(axis=0), ys.max(axis=0)


def figure(result: dict):
    from matplotlib.figure import Figure

    names = result["plants"]
    ncols = 2 if len(names) > 1 else 1
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, p in zip(axes, names):
        ref = result["references"][p]
        for name in LEARNERS:
            entry = result["learners"][p].get(name)
            if entry is None:
                continue
            band = _curve_band(entry["runs"])
            s = entry["summary"]
            label = f"{name} ({round(s['stabilising'] * s['seeds'])}/{s['seeds']} stab.)"
            if band is None:
                ax.plot([], [], color=COLORS[name], label=label + ", all diverged")
                continue
            x, med, lo, hi = band
            ax.plot(x, med, color=COLORS[name], lw=1.8, label=label)
            ax.fill_between(x, lo, hi, color=COLORS[name], alpha=0.2, lw=0)
        ax.axhline(ref["initial"]["gain_error"], color="0.5", ls=":", lw=1, label="initial gain K₀")
        pi, gd = ref["policy_iteration"], ref["gradient_descent"]
        ax.axhline(REACHED, color="k", ls="--", lw=1,
                   label=f"K* by references (< 1e-6): PI {pi['iterations_to_1e-6']} it, "
                         f"exact GD {gd['iterations_to_1e-6']} it")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(p)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("‖K − K*‖ / ‖K*‖")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"Learned linear gains vs Riccati K*: median and min–max over {result['seeds']} seeds")
    return fig


# ---------------------------------------------------------------- entry point


def learner_run(plant: str, learner: str, quick: bool, seed: int) -> dict:
    """:func:`run_learner` as a sweep task (:class:`pgcontrol.sweep.TaskSpec`): ``learner`` is a key of :data:`LEARNERS`."""
    return run_learner(plant, LEARNERS[learner], seed, cap(quick))


def run(*, quick: bool = False, seeds: int | None = None, out: Path, progress: bool = True,
        workers: int | None = None, ray: str | None = None) -> dict:
    """Run the experiment; see the module docstring."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra intra-op threads only cost time on shared cores
    try:
        return _run(quick=quick, seeds=seeds, out=Path(out), progress=progress, workers=workers, ray=ray)
    finally:
        torch.set_num_threads(threads)


def _run(*, quick: bool, seeds: int | None, out: Path, progress: bool, workers, ray) -> dict:
    t_start = time.perf_counter()
    n_seeds = seeds if seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    plant_names = QUICK_PLANTS if quick else PLANTS
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)

    references, learners = {}, {}
    for p in plant_names:  # the model-based references, in this process (seconds)
        plant = plants.make(p)
        K_star, _ = lqr.optimal_gain(plant)
        J_star = lqr.policy_cost(plant, K_star)
        K0 = default_initial_gain(plant)
        references[p] = {
            "K_star": K_star.tolist(),
            "J_star": J_star,
            "initial": {"K": K0.tolist(), "gain_error": gain_error(K0, K_star), "gap": cost_gap(plant, K0, J_star)},
            "policy_iteration": policy_iteration(plant, K0),
            "gradient_descent": exact_gradient_descent(plant, K0),
        }
        r = references[p]
        log(f"[gains] {p}: PI {r['policy_iteration']['iterations']} it "
            f"(err {r['policy_iteration']['gain_error']:.1e}), exact GD {r['gradient_descent']['iterations']} it "
            f"(err {r['gradient_descent']['gain_error']:.1e})")
    # the learners: one sweep run per (plant, learner, seed)
    specs = [TaskSpec.make(f"{__name__}:learner_run", seed, plant=p, learner=name, quick=quick)
             for p in plant_names for name in LEARNERS for seed in range(n_seeds)]
    results = iter(sweep("gains", specs, out, workers=workers, ray=ray, progress=progress))
    for p in plant_names:
        learners[p] = {}
        for name, algo in LEARNERS.items():
            runs = [next(results)["output"] for _ in range(n_seeds)]
            learners[p][name] = {"algo": algo, "max_steps": cap(quick), "summary": summarise(runs), "runs": runs}
    result = _result(quick, seeds, n_seeds, plant_names, references, learners, t_start,
                     (workers or os.cpu_count() or 1) if ray is None else f"Ray ({ray or 'local'})")
    _write(out, result)
    return result


def _result(quick, seeds, n_seeds, done, references, learners, t_start, workers) -> dict:
    command = "python experiments/gains.py" + (" --quick" if quick else "") + (
        f" --seeds {seeds}" if seeds is not None else "")
    result = {
        "experiment": "gains",
        "quick": quick,
        "seeds": n_seeds,
        "plants": list(done),
        "max_steps": cap(quick),
        "command": command,
        "references": references,
        "learners": learners,
        "notes": [],
        "wall_s": time.perf_counter() - t_start,
        "cpu_s": sum(e["summary"]["cpu_s"] for p in done for e in learners[p].values()),
        "workers": workers,
    }
    result["headline"] = _headline(result)
    return result


def _write(out: Path, result: dict) -> None:
    atomic_write(out / "gains.md", markdown(result))
    save_figure(figure(result), out / "gains.png")
    save_json(out / "gains.json", result)



def _headline(result: dict) -> list[str]:
    lines = []
    for p in result["plants"]:
        ref = result["references"][p]
        parts = []
        for name in LEARNERS:
            e = result["learners"][p].get(name)
            if e is None:
                continue
            s = e["summary"]
            parts.append(f"{name} {_f(s['gain_error']['median'])}/{_f(s['gap']['median'])}"
                         f" ({round(s['stabilising'] * s['seeds'])}/{s['seeds']} stab.)")
        lines.append(
            f"{p}: median gain error/gap " + ", ".join(parts)
            + f"; PI reaches K* (<1e-6) in {ref['policy_iteration']['iterations_to_1e-6']} it, "
              f"exact GD in {ref['gradient_descent']['iterations_to_1e-6']} it")
    return lines
