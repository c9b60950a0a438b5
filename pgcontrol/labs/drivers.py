"""Drivers that run the student's functions in an experiment: what the handouts' figures call.

The student may import this module (``from pgcontrol.labs import drivers``):
it runs *their* functions, it does not implement them, and it exposes only
the functions below, the record of a run and the constants of lab 4. Its
internals live in a private module that a submission being graded may not
import: there, calling a driver fails with that refusal (figures are not
drawn while grading).

* :func:`policy_gradient_run`, :func:`sampled_runs`, :func:`trust_region`,
  :func:`exact_vanilla_path`, :func:`k_star` — lab 4: natural (or vanilla)
  policy gradient on ``scalar-lqg`` with the slides' policy u ~ N(kx, σ²),
  driven by the student's ``sample_fisher`` and ``natural_step``, with a
  shrinking trust region and a growing batch; each run is a :class:`PGRun`,
  the record :mod:`pgcontrol.reproduce.plateau` also uses;
* :func:`variance_vs_rollouts` — lab 2: the spread of the student's three
  REINFORCE estimators against the number of rollouts M;
* :func:`output_feedback_comparison`, :func:`observer_controller_cost` — lab 6:
  Monte Carlo cost of the LQR gain on a state estimate built with the
  student's Kalman predictor gain, against the best static output gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PGRun", "policy_gradient_run", "trust_region", "sampled_runs", "exact_vanilla_path", "k_star",
           "variance_vs_rollouts", "observer_controller_cost", "output_feedback_comparison",
           "K_START", "SIGMA_START", "SIGMA_FLOOR", "ROLLOUTS", "TOL", "EPS", "EPS_TAU", "GROWTH"]

#: the Peters & Schaal start, std floor and budget of lab 4 (see pgcontrol.reproduce.plateau)
K_START, SIGMA_START, SIGMA_FLOOR, ROLLOUTS = -0.2, 0.1, 1e-3, 5
TOL = 0.01
#: lab 4's schedule: the trust region ε_t = EPS / (1 + t/EPS_TAU)² shrinks while the batch M_t = ROLLOUTS + t grows
EPS, EPS_TAU, GROWTH = 0.05, 5.0, 1


@dataclass(frozen=True)
class PGRun:
    """One policy-gradient run on ``scalar-lqg``: the iterates (``k[0]``, ``sigma[0]``: the start), diverged or not.

    The record of lab 4's driver and of :mod:`pgcontrol.reproduce.plateau`.
    """

    k: np.ndarray
    sigma: np.ndarray
    diverged: bool

    @property
    def std(self) -> np.ndarray:
        """The same as :attr:`sigma` (the learners' name for the exploration std)."""
        return self.sigma

    def reached(self, k_opt: float, tol: float = TOL) -> int | None:
        """First update after which |k − k*|/|k*| < tol, or None."""
        hit = np.nonzero(np.abs(self.k - k_opt) / abs(k_opt) < tol)[0]
        return int(hit[0]) if hit.size else None


def k_star(plant=None) -> float:
    """The optimal slope k* = −K* of the (infinite-horizon discounted) ``scalar-lqg`` (−0.90755)."""
    from . import _pg

    return _pg.k_star(plant)


def trust_region(t: int, eps: float = EPS, tau: float | None = EPS_TAU) -> float:
    """ε_t = eps / (1 + t/tau)² of update t (``tau=None``: the constant eps)."""
    from . import _pg

    return _pg.trust_region(t, eps, tau)


def policy_gradient_run(step, *, updates: int = 40, seed: int = 0, rollouts: int = ROLLOUTS, growth: int = 0,
                        eps: float | None = None, eps_tau: float | None = None, k0: float = K_START,
                        sigma0: float = SIGMA_START, floor: float = SIGMA_FLOOR,
                        stop_within: float | None = None) -> PGRun:
    """Policy-gradient ascent on ``scalar-lqg`` with u ~ N(kx, σ²), θ = (k, σ).

    Update t simulates M_t = ``rollouts + growth·t`` episodes of T = 50 steps, estimates the gradient g of
    the return with reward-to-go, γᵗ and the leave-one-out baseline ((3.19), (4.8)), and applies
    ``θ ← θ + step(g, scores)``, where ``scores`` are the per-step score vectors (M_t·T, 2); σ is kept
    ≥ ``floor``. With ``eps`` given, the step is called as ``step(g, scores, eps_t)`` with the shrinking
    trust region ε_t = eps/(1 + t/eps_tau)² (:func:`trust_region`; ``eps_tau=None`` keeps ε fixed).
    With ``stop_within=tol`` the run stops as soon as |k − k*|/|k*| < tol.

    ``step`` is e.g. ``lambda g, S, eps: natural_step(g, sample_fisher(S), eps)`` (natural PG, with ``eps``)
    or ``lambda g, S: 0.03 * g`` (vanilla PG, (3.22)).
    """
    from . import _pg

    return _pg.policy_gradient_run(step, updates=updates, seed=seed, rollouts=rollouts, growth=growth, eps=eps,
                                   eps_tau=eps_tau, k0=k0, sigma0=sigma0, floor=floor, stop_within=stop_within)


def sampled_runs(step, *, seeds=range(8), updates: int = 60, **kwargs) -> dict:
    """:func:`policy_gradient_run` on several seeds: ``{"k", "sigma"}`` arrays (runs, updates + 1), NaN after a stop,
    and ``"diverged"`` (runs,). For lab 4's figure: draw the median over the runs and a band (``np.nanpercentile``).
    """
    from . import _pg

    return _pg.sampled_runs(step, seeds=seeds, updates=updates, **kwargs)


def exact_vanilla_path(alpha: float = 0.03, updates: int = 40) -> PGRun:
    """Vanilla ascent θ ← θ + α∇(−J) (3.22) with the *exact* gradient, from lab 4's start."""
    from . import _pg

    return _pg.exact_vanilla_path(alpha, updates)


def variance_vs_rollouts(reinforce_gradient, Ms=(2, 5, 10, 20, 50), batches: int = 200, seed: int = 0,
                         k: float = -0.5, sigma: float = 0.3) -> dict:
    """Standard deviation of the student's estimators of dk over ``batches`` batches of M rollouts, per M.

    Returns ``{"M": [...], "total": [...], "rtg": [...], "rtg_baseline": [...], "exact": dk}``.
    """
    from . import _pg

    return _pg.variance_vs_rollouts(reinforce_gradient, Ms=Ms, batches=batches, seed=seed, k=k, sigma=sigma)


def observer_controller_cost(L, *, episodes: int = 2000, seed: int = 0, plant="double-integrator-output",
                             S=None) -> dict:
    """Monte Carlo T-step cost of the LQR gain acting on a Kalman estimate built with the predictor gain ``L``.

    The controller is u_t = −K x̂_{t|t−1}, x̂_{t+1|t} = A x̂_{t|t−1} + B u_t + L(y_t − C x̂_{t|t−1}), x̂_{0|−1} = x̄_0,
    with K the discounted LQR gain: u_t uses y_0 … y_{t−1}. With ``S`` (the prediction error covariance) it acts
    on the filtered estimate x̂_{t|t} = x̂_{t|t−1} + L_f(y_t − C x̂_{t|t−1}), L_f = SCᵀ(CSCᵀ + V)⁻¹, which uses
    y_0 … y_t. Returns ``{"mean", "se", "episodes"}`` of the discounted T-step cost.
    """
    from . import _pg

    return _pg.observer_controller_cost(L, episodes=episodes, seed=seed, plant=plant, S=S)


def output_feedback_comparison(L, *, episodes: int = 2000, seed: int = 0, S=None) -> dict:
    """Lab 6's figure: the student's filter + LQR against the best static output gain on ``double-integrator-output``.

    Returns ``J_static``, ``k_static``, ``J_filter`` ± ``se_filter``, ``J_lqr`` and one simulated position
    trajectory under each output-feedback controller (``x_static``, ``x_filter``); with ``S`` (the prediction
    error covariance) also ``J_current`` ± ``se_current``, the LQR gain on the filtered estimate x̂_{t|t}.
    """
    from . import _pg

    return _pg.output_feedback_comparison(L, episodes=episodes, seed=seed, S=S)
