"""Output feedback: learned static gain vs the best static gain vs the Kalman-filter LQG controller.

Plant ``double-integrator-output``: the double integrator observed through
:math:`y_t = C x_t + v_t` (position only, :math:`V = 10^{-2}`). The learners'
environment observes :math:`y_t` (:mod:`pgcontrol.envs`), so a linear policy
trained on it is the static output feedback

.. math::

    u_t = -K y_t + \\varepsilon_t = -KC x_t - K v_t + \\varepsilon_t,
    \\qquad \\varepsilon_t \\sim \\mathcal N(0, \\sigma^2).

Exact cost of a static output-feedback gain. For a single-input plant the
two Gaussian noises add up to one, :math:`\\varepsilon_t - K v_t \\sim \\mathcal
N(0, \\sigma^2 + K V K^\\top)`, independent of the state, so the closed loop is
exactly the state-feedback policy with gain :math:`\\tilde K = KC` and
exploration :math:`\\tilde\\sigma = \\sqrt{\\sigma^2 + KVK^\\top}`:

.. math::

    J_y(K, \\sigma) = J(KC,\\ \\tilde\\sigma) \\quad (:func:`pgcontrol.lqr.policy_cost`),\\qquad
    \\nabla_K J_y = \\nabla_{\\tilde K} J\\, C^\\top + \\frac{\\partial J}{\\partial\\tilde\\sigma}\\frac{KV}{\\tilde\\sigma},\\qquad
    \\frac{\\partial J_y}{\\partial\\sigma} = \\frac{\\partial J}{\\partial\\tilde\\sigma}\\frac{\\sigma}{\\tilde\\sigma}

(:func:`pgcontrol.lqr.policy_gradient`; :math:`\\partial J/\\partial\\tilde\\sigma
= 2\\tilde\\sigma\\,G` with :math:`G` independent of :math:`\\tilde\\sigma`, so the
ratio is finite at :math:`\\tilde\\sigma = 0`). All costs here are the T-step
episodic cost (``horizon = plant.horizon``), the objective the learners'
episodes estimate; like :func:`pgcontrol.train.train`'s ``J_K`` the learned
policy is scored by its deterministic part (:math:`\\sigma = 0`).

References (lines in the figure):

* ``J_static*`` — the best static output-feedback gain, found by exact
  gradient descent on :math:`J_y(K, 0)` (Armijo backtracking) from the
  learners' starting gain, and checked against a dense grid of gains
  (the problem here is one-dimensional);
* ``J_LQG`` — :func:`pgcontrol.lqr.lqg_controller`: the LQR gain on the
  steady-state Kalman estimate (separation principle), its exact cost on
  the augmented closed loop.

Why static output feedback is so much worse here: with position feedback only,
:math:`A - BKC = [[1, 1], [-k, 1]]` has eigenvalues :math:`1 \\pm i\\sqrt{k}`, of
modulus :math:`\\sqrt{1+k} > 1` for every :math:`k > 0` (and a real root
:math:`> 1` for :math:`k < 0`): no static gain damps the double integrator. Only
the discount (:math:`\\gamma(1+k) < 1`) and the finite horizon keep the cost
finite; the Kalman filter's velocity estimate is what LQG adds.

Learning: natural policy gradient (:mod:`pgcontrol.algos.npg`) through
:func:`pgcontrol.train.train` on the output plant, a
:class:`~pgcontrol.policies.LinearGaussianPolicy` on the 1-D observation
starting at :math:`K_0 = 0` (no feedback, what ``build_policy`` gives an output
plant) with :math:`\\sigma_0 = 0.1`. ``train`` does not score output plants
itself (its ``J``/``gap`` metrics are for state feedback), so the run is
cut into chunks with ``out_dir``/``resume=True`` — for the episodic NPG a
resumed run continues with exactly the numbers of an uninterrupted one — and
the gain is scored exactly between chunks. ``seeds`` is the number of
training seeds.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from .. import lqr, plants
from ..algos.npg import NPGConfig
from ..policies import LinearGaussianPolicy
from ..errors import TrainingDiverged
from ..sweep import TaskSpec
from ..train import train
from . import save_figure, save_json, sweep

PLANT = "double-integrator-output"
K0 = 0.0
STD0 = 0.1
CONFIG = NPGConfig(num_envs=64, iterations=50, kl_bound=0.01, estimator="rtg", baseline="mean", fisher="cg",
                   adaptive=False)  # the plain natural step this experiment was measured with
#: iterations after which the gain is scored (denser at the start, where it moves most)
EVAL_AT = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200)


def seed_run(iterations: int, seed: int) -> dict:
    """One seed as a sweep task (:class:`pgcontrol.sweep.TaskSpec`): ``{"rows": [...], "diverged": message or None}``."""
    rows, diverged = _train_seed(plants.make(PLANT), seed, iterations)
    return {"rows": rows, "diverged": diverged}


def _train_seed(plant, seed: int, iterations: int):
    """One NPG run; exact scores of the gain after the iterations in :data:`EVAL_AT` (``resume`` chunks)."""
    T = plant.horizon
    cfg = dataclasses.replace(CONFIG, iterations=iterations)
    pol = LinearGaussianPolicy(plant.p, plant.m, K0=[[K0]], std0=STD0)
    rows = [{"iteration": 0, "steps": 0, "K": pol.K.tolist(), "std": pol.std.tolist(),
             "J": lqr.static_output_cost(plant, pol.K, 0.0, T), "J_explore": lqr.static_output_cost(plant, pol.K, pol.std, T)}]
    diverged = None
    with tempfile.TemporaryDirectory(prefix="pgcontrol-lqg-") as d:
        ends = sorted({e for e in EVAL_AT if e < iterations} | {iterations})
        done = 0
        for end in ends:
            try:  # train saves a checkpoint at its last iteration; the next chunk resumes from it
                hist = train("npg", plant, policy=pol, config=dataclasses.replace(cfg, iterations=end), seed=seed,
                             out_dir=d, resume=done > 0, progress=False, checkpoint_every=10**9)
            except TrainingDiverged as exc:
                diverged = str(exc)
                break
            rows.append({"iteration": end, "steps": int(hist[-1]["steps"]), "K": pol.K.tolist(),
                         "std": pol.std.tolist(), "J": lqr.static_output_cost(plant, pol.K, 0.0, T),
                         "J_explore": lqr.static_output_cost(plant, pol.K, pol.std, T)})
            done = end
    return rows, diverged


def _figure(runs, J_static, J_lqg, J_lqr, meta, grid, J_grid):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.4))
    ax, ax2, ax3 = fig.subplots(1, 3)
    ax2b = ax2.twinx()
    for i, rows in enumerate(runs):
        it = [r["iteration"] for r in rows]
        ax.semilogy(it, [r["J"] for r in rows], color="tab:blue", alpha=0.45, lw=1,
                    label="learned static $K$ (NPG), per seed" if i == 0 else None)
        ax2.plot(it, [r["K"][0][0] for r in rows], color="tab:blue", alpha=0.6, lw=1,
                 label="learned $k$ per seed" if i == 0 else None)
        ax2b.plot(it, [r["std"][0] for r in rows], color="tab:purple", alpha=0.5, lw=1, ls=":",
                  label="learned σ per seed" if i == 0 else None)
    it = [r["iteration"] for r in runs[0]]
    med = np.median(np.array([[r["J"] for r in rows] for rows in runs if len(rows) == len(runs[0])]), axis=0)
    ax.semilogy(it, med, color="tab:blue", lw=2.2, label="median over seeds")
    ax.axhline(J_static, color="tab:orange", ls="--", lw=1.8, label=f"best static output feedback $J^*_y$ = {J_static:.3g}")
    ax.axhline(J_lqg, color="tab:green", ls="-.", lw=1.8, label=f"Kalman-filter LQG = {J_lqg:.3g}")
    ax.axhline(J_lqr, color="gray", ls=":", lw=1.5, label=f"LQR with full state = {J_lqr:.3g}")
    ax.set_xlabel(f"NPG iteration ({meta['num_envs']} episodes × T = {meta['T']} steps each)")
    ax.set_ylabel("exact T-step cost of $u = -K y$ (σ = 0)")
    ax.set_title("(a) cost of the learned static output feedback", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5)
    ax2.axhline(meta["K_static"], color="tab:orange", ls="--", lw=1.8, label=f"$k^*_y$ = {meta['K_static']:.4g}")
    ax2.set_xlabel("NPG iteration")
    ax2.set_ylabel("gain $k$ in $u = -k\\,y$")
    ax2b.set_ylabel("exploration σ", color="tab:purple")
    ax2.set_title("(b) learned gain and exploration", fontsize=10)
    ax2.grid(True, alpha=0.3)
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax2b.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=7.5)
    ok = np.isfinite(J_grid)
    ax3.semilogy(grid[ok], J_grid[ok], color="k", lw=1.2, label="$J_y(k, σ=0)$, exact")
    ax3.axhline(J_lqg, color="tab:green", ls="-.", lw=1.5, label="LQG")
    ax3.plot([meta["K_static"]], [J_static], "o", color="tab:orange", label="$k^*_y$ (exact gradient descent)")
    kf = [rows[-1]["K"][0][0] for rows in runs]
    ax3.plot(kf, [rows[-1]["J"] for rows in runs], "x", color="tab:blue", ms=7, label="learned (final), per seed")
    ax3.set_ylim(J_lqr / 2, 1e4)
    ax3.set_xlabel("static output gain $k$")
    ax3.set_ylabel("exact T-step cost")
    ax3.set_title("(c) static output feedback: the whole landscape", fontsize=10)
    ax3.grid(True, which="both", alpha=0.3)
    ax3.legend(fontsize=7.5)
    fig.suptitle(f"{meta['plant']}: y = position + v (V = {meta['V']:g}), W = {meta['W']:g} I, γ = {meta['gamma']}, "
                 f"T = {meta['T']}; {len(runs)} seed{'s' * (len(runs) > 1)}", fontsize=10)
    fig.tight_layout()
    return fig


def run(*, quick: bool = False, seeds: int | None = None, out: Path, progress: bool = True,
        workers: int | None = None, ray: str | None = None) -> dict:
    """Run the experiment (see the module docstring)."""
    n_seeds = seeds if seeds is not None else (2 if quick else 5)
    iterations = 12 if quick else CONFIG.iterations
    plant = plants.make(PLANT)
    T = plant.horizon

    J_lqg = lqr.lqg_controller(plant, horizon=T).cost
    K_lqr, _ = lqr.optimal_gain(plant)
    J_lqr = lqr.policy_cost(plant, K_lqr, 0.0, horizon=T)
    J_start = lqr.static_output_cost(plant, [[K0]], 0.0, T)
    K_star, J_star, gd_steps = lqr.best_static_output_gain(plant, [[K0]], T)
    grid = np.linspace(-0.01, 0.1, 221)
    J_grid = np.array([lqr.static_output_cost(plant, [[k]], 0.0, T) for k in grid])
    k_grid = float(grid[np.nanargmin(J_grid)])

    # one sweep run per seed
    specs = [TaskSpec.make(f"{__name__}:seed_run", seed, iterations=iterations) for seed in range(n_seeds)]
    runs, diverged = [], {}
    for seed, res in enumerate(sweep("lqg", specs, out, workers=workers, ray=ray, progress=progress)):
        runs.append(res["output"]["rows"])
        if res["output"]["diverged"]:
            diverged[seed] = res["output"]["diverged"]

    final = np.array([rows[-1]["J"] for rows in runs])
    final_k = np.array([rows[-1]["K"][0][0] for rows in runs])
    final_std = np.array([rows[-1]["std"][0] for rows in runs])
    gap_static = (final - J_star) / J_star
    meta = {"plant": PLANT, "T": T, "gamma": plant.gamma, "V": float(plant.V[0, 0]), "W": float(plant.W[0, 0]),
            "num_envs": CONFIG.num_envs, "K_static": float(K_star[0, 0])}
    summary = {
        "experiment": "lqg",
        "quick": quick,
        "plant": PLANT,
        "horizon": T,
        "seeds": n_seeds,
        "iterations": iterations,
        "config": dataclasses.asdict(dataclasses.replace(CONFIG, iterations=iterations)),
        "K0": K0,
        "std0": STD0,
        "J_start": J_start,
        "J_lqg": J_lqg,
        "J_lqr_full_state": J_lqr,
        "K_static_star": K_star.tolist(),
        "J_static_star": J_star,
        "gradient_descent_steps": gd_steps,
        "grid_check": {"k_best": k_grid, "J_best": float(np.nanmin(J_grid)), "k_range": [float(grid[0]), float(grid[-1])],
                       "points": len(grid)},
        "J_learned_final": final.tolist(),
        "J_learned_median": float(np.median(final)),
        "K_learned_final": final_k.tolist(),
        "std_learned_final": final_std.tolist(),
        "gap_to_static_final": gap_static.tolist(),
        "gap_to_static_median": float(np.median(gap_static)),
        "ratio_static_to_lqg": J_star / J_lqg,
        "gap_learned_to_lqg_median": float((np.median(final) - J_lqg) / J_lqg),
        "diverged": diverged,
        "runs": runs,
    }
    summary["headline"] = [
        f"lqg: {PLANT}, T={T}, NPG (kl {CONFIG.kl_bound}, {CONFIG.num_envs} episodes/iter), {n_seeds} seeds × "
        f"{iterations} iterations from k0={K0:g} (J={J_start:.4g}), σ0={STD0:g}",
        f"  J_learned (σ=0) median {np.median(final):.4g} [min {final.min():.4g}, max {final.max():.4g}], "
        f"k = {np.round(final_k, 4).tolist()}",
        f"  J_static* = {J_star:.4g} at k* = {K_star[0, 0]:.5g} (exact gradient descent; grid: k = {k_grid:.4g}, "
        f"J = {np.nanmin(J_grid):.4g})",
        f"  J_LQG = {J_lqg:.4g} (Kalman filter + LQR), J_LQR full state = {J_lqr:.4g}",
        f"  gaps: (J_learned - J_static*)/J_static* median {np.median(gap_static):.3g}; "
        f"J_static*/J_LQG = {J_star / J_lqg:.3g}; (J_learned - J_LQG)/J_LQG median {(np.median(final) - J_lqg) / J_lqg:.3g}",
    ]
    if diverged:
        summary["headline"].append(f"  diverged seeds: {sorted(diverged)}")
    save_json(out / "lqg.json", summary)
    save_figure(_figure(runs, J_star, J_lqg, J_lqr, meta, grid, J_grid), out / "lqg.png")
    return summary
