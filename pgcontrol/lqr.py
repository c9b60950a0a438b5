"""Riccati baselines and the exact calculus of linear Gaussian policies.

Pure NumPy/SciPy (and python-control for the undiscounted cross-check); no
torch. Conventions, used throughout pgcontrol:

* policy ``u = -K x + eps``, ``eps ~ N(0, diag(std**2))``; ``K`` is ``(m, n)``;
* ``J`` is an expected **cost** (the return is ``-J``), so gradients here are
  gradients of cost and learning *descends* them;
* ``horizon=None`` means the infinite-horizon discounted objective
  :math:`J = \\mathbb E \\sum_{t\\ge 0} \\gamma^t c_t`; an integer ``T`` means
  the finite-horizon objective :math:`J_T = \\mathbb E \\sum_{t=0}^{T-1}
  \\gamma^t c_t` (T controls, no terminal cost), which is exactly what one
  episode of :mod:`pgcontrol.envs` accumulates. Pass ``horizon=plant.horizon``
  for the episodic objective.

The formulas are those of the LQ example in the course slides
(the documentation's equation index, ``docs/equations.md``) and of Fazel et al. (2018), "Global
convergence of policy gradient methods for the linear quadratic regulator",
with the discount folded in by :math:`A \\to \\sqrt\\gamma A`,
:math:`B \\to \\sqrt\\gamma B`.
"""

from __future__ import annotations

import functools
import math
import inspect
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .errors import InvalidPlantError, NotStabilizableError
from .plants import MAX_HORIZON, LinearGaussianPlant, make, names


class NotDetectableWarning(UserWarning):
    """(√γA, Q^½) is not detectable: a growing mode costs nothing, so the Riccati gain may not stabilise it."""


def _as_plant(plant) -> LinearGaussianPlant:
    if isinstance(plant, LinearGaussianPlant):
        return plant
    if isinstance(plant, str):
        return make(plant)
    raise InvalidPlantError(f"plant must be a LinearGaussianPlant or a catalog name ({', '.join(names())}); "
                            f"got {type(plant).__name__} {plant!r}")


def _as_horizon(horizon) -> int | None:
    """None (infinite / the plant's), or an integer from 1 to :data:`pgcontrol.plants.MAX_HORIZON`."""
    if horizon is None:
        return None
    if (isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= MAX_HORIZON):
        raise InvalidPlantError(f"horizon must be None or an integer from 1 to {MAX_HORIZON}; got {horizon!r}")
    return int(horizon)


def _checked(f):
    """Public functions take a plant or a catalog name, and a horizon checked by :func:`_as_horizon`."""
    sig = inspect.signature(f)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidPlantError(f"{f.__name__}: {exc}") from None
        bound.arguments["plant"] = _as_plant(bound.arguments["plant"])
        if "horizon" in bound.arguments:
            bound.arguments["horizon"] = _as_horizon(bound.arguments["horizon"])
        for name in ("max_iter", "iters"):  # iteration budgets: positive integers, never truncated
            v = bound.arguments.get(name)
            if name in bound.arguments and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise InvalidPlantError(f"{f.__name__}: {name} must be a positive integer; got {v!r}")
        for name in ("tol", "eta0"):
            v = bound.arguments.get(name)
            if name in bound.arguments and (isinstance(v, bool) or not isinstance(v, (int, float, np.floating))
                                            or not (math.isfinite(v) and v > 0)):
                raise InvalidPlantError(f"{f.__name__}: {name} must be a finite number > 0; got {v!r}")
        return f(*bound.args, **bound.kwargs)

    return wrapper

__all__ = [
    "NotStabilizableError",
    "NotDetectableWarning",
    "optimal_gain",
    "dare_residual",
    "finite_horizon_gains",
    "policy_cost",
    "policy_gradient",
    "natural_gradient",
    "action_hessian",
    "fisher",
    "state_moments",
    "spectral_radius",
    "kalman_filter",
    "LQGController",
    "lqg_controller",
    "gain_error",
    "cost_gap",
    "closed_loop",
    "policy_iteration",
    "gradient_descent",
    "finite_horizon_value",
    "static_output_cost",
    "static_output_gradient",
    "best_static_output_gain",
]


# --------------------------------------------------------------------- helpers


def spectral_radius(M: np.ndarray) -> float:
    """Largest eigenvalue modulus of a square matrix."""
    return float(np.abs(np.linalg.eigvals(np.atleast_2d(M))).max())


def _discounted_lyapunov(F: np.ndarray, M: np.ndarray, gamma: float, *, transpose: bool) -> np.ndarray | None:
    """Solve ``X = M + gamma F^T X F`` (``transpose=True``) or ``X = M + gamma F X F^T``.

    Returns ``None`` when :math:`\\sqrt\\gamma F` is not Schur stable (the sum
    diverges). Uses :func:`scipy.linalg.solve_discrete_lyapunov`.
    """
    Fg = np.sqrt(gamma) * F
    if Fg.shape == (1, 1):  # one state: x = m / (1 − γf²), in closed form (scipy's solver costs 0.3 ms a call)
        f2 = float(Fg[0, 0]) ** 2
        return None if not f2 < 1.0 else M / (1.0 - f2)
    if spectral_radius(Fg) >= 1.0:
        return None
    X = scipy.linalg.solve_discrete_lyapunov(Fg.T if transpose else Fg, M)
    return (X + X.T) / 2


@_checked
def dare_residual(plant: LinearGaussianPlant, P: np.ndarray) -> np.ndarray:
    """Residual of the discounted algebraic Riccati equation at ``P``.

    .. math::

        \\mathcal R(P) = Q + \\gamma A^\\top P A
            - \\gamma^2 A^\\top P B (R + \\gamma B^\\top P B)^{-1} B^\\top P A - P .
    """
    A, B, Q, R, g = plant.A, plant.B, plant.Q, plant.R, plant.gamma
    G = R + g * B.T @ P @ B
    return Q + g * A.T @ P @ A - g**2 * A.T @ P @ B @ np.linalg.solve(G, B.T @ P @ A) - P


def _gain_from_P(plant: LinearGaussianPlant, P: np.ndarray) -> np.ndarray:
    """Greedy gain ``K = (R + γBᵀPB)⁻¹ γBᵀPA`` for the cost-to-go ``xᵀPx``."""
    A, B, R, g = plant.A, plant.B, plant.R, plant.gamma
    return np.linalg.solve(R + g * B.T @ P @ B, g * B.T @ P @ A)


def _check_stabilizable(plant: LinearGaussianPlant) -> None:
    """PBH test for the discounted pair (√γA, √γB): every mode with |λ| ≥ 1 is controllable."""
    Ag, Bg = np.sqrt(plant.gamma) * plant.A, np.sqrt(plant.gamma) * plant.B
    n = plant.n
    for lam in np.linalg.eigvals(Ag):
        if abs(lam) >= 1.0 - 1e-12:
            pbh = np.hstack([lam * np.eye(n) - Ag, Bg.astype(complex)])
            if np.linalg.matrix_rank(pbh, tol=1e-9 * max(1.0, np.abs(pbh).max())) < n:
                raise NotStabilizableError(
                    f"(A, B) of plant {plant.name!r} is not stabilisable: the mode with eigenvalue "
                    f"{lam / np.sqrt(plant.gamma):.4g} of A (|λ|·√γ ≥ 1) cannot be moved by B. "
                    "Give B a component along that mode, or lower gamma so that √γ|λ| < 1."
                )


def _warn_if_not_detectable(plant: LinearGaussianPlant) -> None:
    """PBH test for (√γA, Q): a mode with √γ|λ| ≥ 1 that Q does not see gets :class:`NotDetectableWarning`."""
    Ag, n = np.sqrt(plant.gamma) * plant.A, plant.n
    for lam in np.linalg.eigvals(Ag):
        if abs(lam) >= 1.0 - 1e-12:
            pbh = np.vstack([lam * np.eye(n) - Ag, plant.Q.astype(complex)])
            if np.linalg.matrix_rank(pbh, tol=1e-9 * max(1.0, np.abs(pbh).max())) < n:
                warnings.warn(
                    f"plant {plant.name!r}: (√γA, Q^½) is not detectable: the mode λ = {lam / np.sqrt(plant.gamma):.4g} "
                    "of A grows (√γ|λ| ≥ 1) and Q does not see it, so the cost does not penalise it; the Riccati "
                    "solution may not stabilise it (give Q a component along that mode)",
                    NotDetectableWarning, stacklevel=3)
                return


# ------------------------------------------------------------------------ LQR


@_checked
def optimal_gain(plant: LinearGaussianPlant) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-horizon discounted LQR gain.

    Solves the discrete algebraic Riccati equation (DARE) for the pair
    :math:`(\\sqrt\\gamma A, \\sqrt\\gamma B)` with :func:`scipy.linalg.solve_discrete_are`:

    .. math::

        P = Q + \\gamma A^\\top P A - \\gamma^2 A^\\top P B (R + \\gamma B^\\top P B)^{-1} B^\\top P A,
        \\qquad K^\\star = (R + \\gamma B^\\top P B)^{-1} \\gamma B^\\top P A .

    With ``gamma = 1`` this is :func:`control.dlqr`. The optimal policy is
    ``u = -K* x`` whatever the noise; the noise only adds a constant to the cost.

    Returns
    -------
    K : (m, n) ndarray
    P : (n, n) ndarray
        Cost-to-go matrix: optimal cost from ``x`` is ``xᵀPx`` plus a noise constant.

    Raises
    ------
    NotStabilizableError
        When (√γA, √γB) is not stabilisable (e.g. ``A = 2, B = 0``).
    """
    _check_stabilizable(plant)
    _warn_if_not_detectable(plant)
    g = plant.gamma
    try:
        P = scipy.linalg.solve_discrete_are(np.sqrt(g) * plant.A, np.sqrt(g) * plant.B, plant.Q, plant.R)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise NotStabilizableError(
            f"the discounted Riccati equation of plant {plant.name!r} has no stabilising solution "
            f"({exc}); check that (A, B) is stabilisable and (A, Q) detectable"
        ) from None
    P = (P + P.T) / 2
    K = _gain_from_P(plant, P)
    if spectral_radius(np.sqrt(g) * (plant.A - plant.B @ K)) >= 1.0:
        raise NotStabilizableError(
            f"the Riccati solution of plant {plant.name!r} does not stabilise √γ(A - BK); "
            "(A, Q^{1/2}) is probably not detectable"
        )
    return K, P


@_checked
def finite_horizon_gains(
    plant: LinearGaussianPlant, horizon: int | None = None, terminal: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Finite-horizon discounted Riccati recursion (dynamic programming).

    With :math:`P_T = Q_f` (``terminal``, default 0), for t = T-1..0:

    .. math::

        K_t = (R + \\gamma B^\\top P_{t+1} B)^{-1} \\gamma B^\\top P_{t+1} A,\\qquad
        P_t = Q + K_t^\\top R K_t + \\gamma (A - B K_t)^\\top P_{t+1} (A - B K_t).

    Returns
    -------
    K : (T, m, n) ndarray
        Time-varying gains, ``u_t = -K[t] x_t``.
    P : (T+1, n, n) ndarray
        Cost-to-go matrices, ``P[T] = terminal``.
    """
    T = plant.horizon if horizon is None else horizon
    if terminal is not None:
        terminal = np.asarray(terminal, dtype=float)
        if terminal.size != plant.n**2 or not np.all(np.isfinite(terminal)):
            raise InvalidPlantError(f"terminal must be a finite ({plant.n}, {plant.n}) matrix; got {terminal.tolist()}")
    n, m = plant.n, plant.m
    Ps = np.zeros((T + 1, n, n))
    Ks = np.zeros((T, m, n))
    if terminal is not None:
        Ps[T] = np.asarray(terminal, dtype=float).reshape(n, n)
    A, B, Q, R, g = plant.A, plant.B, plant.Q, plant.R, plant.gamma
    for t in range(T - 1, -1, -1):
        K = _gain_from_P(plant, Ps[t + 1])
        Acl = A - B @ K
        Pt = Q + K.T @ R @ K + g * Acl.T @ Ps[t + 1] @ Acl
        Ks[t], Ps[t] = K, (Pt + Pt.T) / 2
    return Ks, Ps


# ------------------------------------------------- exact cost of a linear policy


@dataclass(frozen=True)
class _Moments:
    """Closed-loop quantities of ``u = -K x + eps`` used by the gradients (internal).

    ``E = Σ_t γ^t [(R + γBᵀP_{t+1}B)K − γBᵀP_{t+1}A] S_t`` (so ∇_K J = 2E),
    ``Gd = Σ_t γ^t diag(R + γBᵀP_{t+1}B)`` (so ∂J/∂σ = 2σ·Gd),
    ``Sigma = Σ_t γ^t S_t`` with ``S_t = E[x_t x_tᵀ]``, and ``weight = Σ_t γ^t``;
    for the infinite horizon ``P_{t+1} = P_K`` for all t.
    """

    E: np.ndarray
    Gd: np.ndarray
    Sigma: np.ndarray
    weight: float


def _noise_terms(plant: LinearGaussianPlant, K: np.ndarray, s: np.ndarray):
    """``(A_K, M_x, c0, N)``: closed loop, state weight, noise cost, injected covariance.

    ``E[c | x] = xᵀ(Q + KᵀRK)x + tr(R Σε)`` and ``Cov(x' | x) = B Σε Bᵀ + W``.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # huge gains or stds overflow to inf: an infinite cost
        Se = np.diag(s**2)
        return (plant.A - plant.B @ K, plant.Q + K.T @ plant.R @ K,
                float(np.trace(plant.R @ Se)), plant.B @ Se @ plant.B.T + plant.W)


def _moments(plant: LinearGaussianPlant, K: np.ndarray, s: np.ndarray, horizon: int | None) -> _Moments | None:
    """``None`` when the cost is infinite. Each Lyapunov equation is solved once (O(n³) each)."""
    if horizon is not None and not np.isfinite(policy_cost(plant, K, s, horizon)):
        return None
    A, B, R, g = plant.A, plant.B, plant.R, plant.gamma
    Acl, Mx, c0, N = _noise_terms(plant, K, s)
    S0 = np.outer(plant.x0_mean, plant.x0_mean) + plant.x0_cov
    if horizon is None:
        noisy = c0 > 0 or np.any(N != 0)
        P = None if g == 1.0 and noisy else _discounted_lyapunov(Acl, Mx, g, transpose=True)  # P = Mx + γ AclᵀP Acl
        if P is None:  # exactly where policy_cost is infinite: unstable, or γ = 1 with noise
            return None
        # Σ = S0 + γ/(1-γ) N + γ Acl Σ Aclᵀ   (discounted second moment)
        Sigma = _discounted_lyapunov(Acl, S0 + (g / (1 - g) * N if noisy else 0.0), g, transpose=False)
        G = R + g * B.T @ P @ B
        weight = 1.0 / (1.0 - g) if g < 1 else np.inf
        Gd = np.diag(G) * weight if g < 1 else np.zeros(plant.m)
        return _Moments((G @ K - g * B.T @ P @ A) @ Sigma, Gd, Sigma, weight)
    T = int(horizon)
    Ps = [np.zeros_like(A)] * (T + 1)  # backward: P_t = Mx + γ AclᵀP_{t+1}Acl, P_T = 0
    for t in range(T - 1, -1, -1):
        Ps[t] = Mx + g * Acl.T @ Ps[t + 1] @ Acl
    St, Sigma, E, Gd, weight, disc = S0, np.zeros_like(A), np.zeros_like(K), np.zeros(plant.m), 0.0, 1.0
    for t in range(T):  # forward: S_{t+1} = Acl S_t Aclᵀ + N
        G = R + g * B.T @ Ps[t + 1] @ B
        E = E + disc * (G @ K - g * B.T @ Ps[t + 1] @ A) @ St
        Gd = Gd + disc * np.diag(G)
        Sigma = Sigma + disc * St
        weight += disc
        St = Acl @ St @ Acl.T + N
        disc *= g
    return _Moments(E, Gd, Sigma, weight)


@_checked
def policy_cost(plant: LinearGaussianPlant, K, std=0.0, horizon: int | None = None) -> float:
    """Exact expected cost of the linear Gaussian policy ``u = -K x + eps``.

    Infinite horizon (``horizon=None``): with :math:`A_K = A - BK`,
    :math:`\\Sigma_\\varepsilon = \\mathrm{diag}(\\sigma^2)` and
    :math:`N = B\\Sigma_\\varepsilon B^\\top + W`, the value is
    :math:`V(x) = x^\\top P_K x + q` where

    .. math::

        P_K = Q + K^\\top R K + \\gamma A_K^\\top P_K A_K,\\qquad
        q = \\frac{\\operatorname{tr}(R\\Sigma_\\varepsilon) + \\gamma \\operatorname{tr}(P_K N)}{1-\\gamma},

    so :math:`J = \\operatorname{tr}(P_K(\\bar x_0 \\bar x_0^\\top + \\Sigma_0)) + q`.
    Returns ``+inf`` when :math:`\\sqrt\\gamma A_K` is not Schur stable, or
    when ``gamma = 1`` and there is noise (the undiscounted sum diverges).

    Finite horizon ``T``: :math:`J_T = \\sum_{t=0}^{T-1} \\gamma^t
    [\\operatorname{tr}((Q+K^\\top RK) S_t) + \\operatorname{tr}(R\\Sigma_\\varepsilon)]`
    with :math:`S_{t+1} = A_K S_t A_K^\\top + N`; always finite for finite inputs
    (may overflow to ``inf``).

    Parameters
    ----------
    plant : LinearGaussianPlant
    K : (m, n) array_like
        Gain, ``u = -K x``.
    std : float or (m,) array_like
        Exploration standard deviation(s), >= 0.
    horizon : int or None
        ``None`` for the infinite-horizon discounted cost, ``T`` for T steps.
    """
    K, s = plant.check_gain(K, std)
    Acl, Mx, c0, N = _noise_terms(plant, K, s)
    with np.errstate(over="ignore", invalid="ignore"):
        J = _linear_system_cost(Acl, N, Mx, c0, plant.x0_mean, plant.x0_cov, plant.gamma, horizon)
    return J if not np.isnan(J) else float("inf")  # inf - inf of an overflowing cost (e.g. std = 1e200)


@_checked
def policy_gradient(plant: LinearGaussianPlant, K, std=0.0, horizon: int | None = None):
    """Exact gradient of :func:`policy_cost` with respect to ``K`` and ``std``.

    Infinite horizon (Fazel et al. 2018, with discount):

    .. math::

        \\nabla_K J = 2\\big[(R + \\gamma B^\\top P_K B) K - \\gamma B^\\top P_K A\\big]\\,\\Sigma_K,
        \\qquad \\Sigma_K = \\sum_{t\\ge0}\\gamma^t\\,\\mathbb E[x_t x_t^\\top],

        \\frac{\\partial J}{\\partial \\sigma_j} = \\frac{2\\sigma_j}{1-\\gamma}\\,(R + \\gamma B^\\top P_K B)_{jj}.

    Finite horizon: the same terms summed over t with :math:`P_{t+1}` and
    :math:`\\gamma^t S_t` in place of :math:`P_K` and :math:`\\Sigma_K`.

    Returns
    -------
    dK : (m, n) ndarray
    dstd : (m,) ndarray

    Raises
    ------
    ValueError
        When the cost is infinite (unstable closed loop): there is no gradient.
    """
    K, s = plant.check_gain(K, std)
    mom = _moments(plant, K, s, horizon)
    if mom is None:
        raise InvalidPlantError(
            f"the cost of gain K={K.tolist()} on plant {plant.name!r} is infinite "
            "(√γ(A - BK) unstable, or gamma = 1 with noise): no gradient. Start from a stabilising gain."
        )
    return 2.0 * mom.E, 2.0 * s * mom.Gd


@_checked
def action_hessian(plant: LinearGaussianPlant, K, horizon: int | None = None) -> np.ndarray:
    """The curvature of the cost in the action, :math:`H = R + \\gamma B^\\top P_K B` (half of :math:`\\nabla^2_u Q_K`).

    :math:`Q_K(x, u) = x^\\top Q x + u^\\top R u + \\gamma\\,\\mathbb E[V_K(Ax + Bu + w)]` with
    :math:`V_K(x) = x^\\top P_K x + \\text{const}`, so :math:`\\nabla^2_u Q_K = 2H` for every x: the
    matrix of the Gauss-Newton step :math:`K \\leftarrow K - H^{-1}E_K` (Fazel et al. 2018; one step of
    :func:`policy_iteration`), which :class:`pgcontrol.algos.npg.NPG` estimates from rollouts
    (:func:`pgcontrol.algos.npg.action_hessian`). Finite horizon T: the discounted mean
    :math:`\\sum_t \\gamma^t H_t / \\sum_t \\gamma^t` with :math:`H_t = R + \\gamma B^\\top P_{t+1} B`.

    Returns
    -------
    H : (m, m) ndarray

    Raises
    ------
    InvalidPlantError
        When √γ(A − BK) is not Schur stable (infinite horizon): P_K does not exist.
    """
    K, _ = plant.check_gain(K)
    B, R, g = plant.B, plant.R, plant.gamma
    if horizon is None:
        P = _discounted_lyapunov(plant.A - B @ K, plant.Q + K.T @ R @ K, g, transpose=True)
        if P is None:
            raise InvalidPlantError(f"the gain K={K.tolist()} does not stabilise √γ(A − BK) on plant "
                                    f"{plant.name!r}: its cost-to-go P_K, and H, do not exist")
        return R + g * B.T @ P @ B
    P, _ = finite_horizon_value(plant, K, np.zeros(plant.m), horizon)  # P_0 … P_T
    w = g ** np.arange(len(P) - 1)  # γ^t for H_t = R + γBᵀP_{t+1}B
    return R + g * B.T @ np.tensordot(w / w.sum(), P[1:], axes=1) @ B


@_checked
def state_moments(plant: LinearGaussianPlant, K, std=0.0, horizon: int | None = None):
    """Normalised discounted state second moment of the closed loop.

    Returns ``(Sigma_bar, weight)`` with :math:`\\bar\\Sigma = \\Sigma_K / w`,
    :math:`w = \\sum_t \\gamma^t` (``1/(1-γ)`` for the infinite horizon): the
    second moment :math:`\\mathbb E_{x\\sim d^\\pi}[x x^\\top]` under the normalised
    discounted state distribution :math:`d^\\pi` of the slides.
    """
    K, s = plant.check_gain(K, std)
    mom = _moments(plant, K, s, horizon)
    if mom is None or not np.isfinite(mom.weight):
        raise InvalidPlantError(
            f"the discounted state distribution of gain K={K.tolist()} on plant {plant.name!r} "
            "does not exist (unstable closed loop, or gamma = 1 with an infinite horizon)"
        )
    return mom.Sigma / mom.weight, mom.weight


@_checked
def fisher(plant: LinearGaussianPlant, K, std, horizon: int | None = None) -> np.ndarray:
    """Exact Fisher information of the policy under the discounted state distribution.

    :math:`F = \\mathbb E_{x\\sim d^\\pi,\\,u\\sim\\pi}[\\nabla\\log\\pi\\,\\nabla\\log\\pi^\\top]`
    (slides, "Fisher information matrix"), parameters ordered
    ``θ = (K.ravel(), std)`` (``K`` row-major). For ``u ~ N(-Kx, diag(σ²))``
    the score is :math:`\\partial_{K_{ij}}\\log\\pi = -\\varepsilon_i x_j/\\sigma_i^2`,
    :math:`\\partial_{\\sigma_i}\\log\\pi = \\varepsilon_i^2/\\sigma_i^3 - 1/\\sigma_i`, so

    .. math::

        F_{K_{i\\cdot},K_{i\\cdot}} = \\bar\\Sigma / \\sigma_i^2,\\qquad
        F_{\\sigma_i\\sigma_i} = 2/\\sigma_i^2,\\qquad \\text{all other blocks } 0.

    Requires ``std > 0``.
    """
    K, s = plant.check_gain(K, std)
    if np.any(s <= 0):
        raise InvalidPlantError(f"the Fisher information needs std > 0 (got {s.tolist()}); it is singular at std = 0")
    Sbar, _ = state_moments(plant, K, s, horizon)
    m, n = K.shape
    F = np.zeros((m * n + m, m * n + m))
    for i in range(m):
        F[i * n:(i + 1) * n, i * n:(i + 1) * n] = Sbar / s[i] ** 2
        F[m * n + i, m * n + i] = 2.0 / s[i] ** 2
    return F


@_checked
def natural_gradient(plant: LinearGaussianPlant, K, std, horizon: int | None = None):
    """Exact natural gradient :math:`F^{-1}\\nabla J` (slides: steepest descent in the Fisher metric).

    With the block structure of :func:`fisher`, and :math:`\\nabla_K J = 2E_K\\Sigma_K`,

    .. math::

        (F^{-1}\\nabla J)_K = \\mathrm{diag}(\\sigma^2)\\,\\nabla_K J\\,\\bar\\Sigma^{-1}
            = 2\\,w\\,\\mathrm{diag}(\\sigma^2)\\,E_K,\\qquad
        (F^{-1}\\nabla J)_{\\sigma} = \\tfrac{\\sigma^2}{2}\\,\\partial_\\sigma J,

    with :math:`E_K = (R+\\gamma B^\\top P B)K - \\gamma B^\\top P A` and
    :math:`w = \\sum_t\\gamma^t`. The direction is a natural gradient of the
    **cost**: step against it to improve.

    Returns
    -------
    nK : (m, n) ndarray
    nstd : (m,) ndarray
    """
    K, s = plant.check_gain(K, std)
    if np.any(s <= 0):
        raise InvalidPlantError(f"the natural gradient needs std > 0 (got {s.tolist()}); the Fisher is singular at std = 0")
    mom = _moments(plant, K, s, horizon)  # once: the gradient and Σ̄ share it
    if mom is None or not np.isfinite(mom.weight):
        raise InvalidPlantError(
            f"the cost of gain K={K.tolist()} on plant {plant.name!r} is infinite or its discounted state "
            "distribution does not exist (√γ(A - BK) unstable, or gamma = 1): no natural gradient"
        )
    dK, ds = 2.0 * mom.E, 2.0 * s * mom.Gd  # policy_gradient
    Sbar = mom.Sigma / mom.weight  # state_moments
    nK = (s[:, None] ** 2) * np.linalg.solve(Sbar.T, dK.T).T  # diag(σ²) ∇_K J Σ̄⁻¹
    return nK, 0.5 * s**2 * ds


# ------------------------------------------------------------ Kalman and LQG


@_checked
def kalman_filter(plant: LinearGaussianPlant) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state Kalman filter for an output plant ``y = C x + v``.

    Solves the filtering DARE (the dual of the control one) for the *prior*
    (one-step prediction) error covariance

    .. math::

        \\Sigma = A\\Sigma A^\\top + W - A\\Sigma C^\\top (C\\Sigma C^\\top + V)^{-1} C\\Sigma A^\\top,

    and returns the measurement-update gain :math:`L = \\Sigma C^\\top (C\\Sigma C^\\top + V)^{-1}`
    used as :math:`\\hat x_{t|t} = \\hat x_{t|t-1} + L (y_t - C\\hat x_{t|t-1})`.

    Returns
    -------
    L : (n, p) ndarray
    Sigma : (n, n) ndarray
        Steady-state prior error covariance.
    """
    if not plant.has_output:
        raise InvalidPlantError(f"plant {plant.name!r} has no output matrix C; the Kalman filter needs y = C x + v")
    A, C, W, V = plant.A, plant.C, plant.W, plant.V
    try:
        S = scipy.linalg.solve_discrete_are(A.T, C.T, W, V)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise NotStabilizableError(
            f"the filter Riccati equation of plant {plant.name!r} has no solution ({exc}); "
            "check that (A, C) is detectable, (A, W^{1/2}) stabilisable and V positive definite"
        ) from None
    S = (S + S.T) / 2
    L = S @ C.T @ np.linalg.inv(C @ S @ C.T + V)
    return L, S


@dataclass(frozen=True)
class LQGController:
    """Output-feedback LQG controller ``u_t = -K x̂_{t|t}`` with a steady-state Kalman filter.

    Attributes
    ----------
    K : (m, n) ndarray
        Discounted LQR gain (:func:`optimal_gain`).
    L : (n, p) ndarray
        Kalman measurement-update gain (:func:`kalman_filter`).
    cost : float
        Exact expected cost of this controller on the plant, with the filter
        started at the prior ``x̂_{0|-1} = x0_mean`` (see :func:`lqg_controller`).
    """

    K: np.ndarray
    L: np.ndarray
    cost: float


@_checked
def lqg_controller(plant: LinearGaussianPlant, horizon: int | None = None) -> LQGController:
    """The separation-principle LQG controller and its exact expected cost.

    By separation, the optimal output-feedback controller is the LQR gain
    applied to the Kalman estimate. We use the steady-state filter (the
    time-varying filter from the prior would be exactly optimal; the two
    agree as the filter converges). Its cost is computed exactly on the
    augmented closed loop :math:`z = (x, e)`, :math:`e_t = x_t - \\hat x_{t|t-1}`:

    .. math::

        e_{t+1} = A(I - LC)e_t - ALv_t + w_t,\\quad
        x_{t+1} = (A - BK)x_t + BK(I-LC)e_t - BKLv_t + w_t,\\quad
        u_t = -Kx_t + K(I-LC)e_t - KLv_t .
    """
    K, _ = optimal_gain(plant)
    L, _ = kalman_filter(plant)
    n = plant.n
    A, B, C, Q, R, W, V, g = plant.A, plant.B, plant.C, plant.Q, plant.R, plant.W, plant.V, plant.gamma
    I = np.eye(n)
    H = np.hstack([-K, K @ (I - L @ C)])  # u = H z + Jv v
    Jv = -K @ L
    F = np.block([[A - B @ K, B @ K @ (I - L @ C)], [np.zeros((n, n)), A @ (I - L @ C)]])
    Gw = np.vstack([I, I])
    Gv = np.vstack([-B @ K @ L, -A @ L])
    N = Gw @ W @ Gw.T + Gv @ V @ Gv.T
    M = np.block([[Q, np.zeros((n, n))], [np.zeros((n, n)), np.zeros((n, n))]]) + H.T @ R @ H
    c0 = float(np.trace(Jv.T @ R @ Jv @ V))
    z_mean = np.concatenate([plant.x0_mean, np.zeros(n)])
    z_cov = np.block([[plant.x0_cov, plant.x0_cov], [plant.x0_cov, plant.x0_cov]])
    cost = _linear_system_cost(F, N, M, c0, z_mean, z_cov, g, horizon)
    return LQGController(K=K, L=L, cost=cost)


def _observable_subspace(F, M) -> np.ndarray:
    """Orthonormal basis ``U (n, r)`` of the observable subspace of (F, M), M symmetric PSD.

    Its complement ker[M; MF; …; MF^{n−1}] is F-invariant and M vanishes on
    it, so ``a = Uᵀx`` evolves on its own, ``a' = UᵀFU a + Uᵀξ``, and
    ``xᵀMx = aᵀUᵀMU a``: the cost is that of the reduced system.
    """
    n = F.shape[0]
    blocks, Fk = [], np.eye(n)
    for _ in range(n):
        blocks.append(M @ Fk)
        Fk = Fk @ F
    _, sv, vt = np.linalg.svd(np.vstack(blocks))
    r = int((sv > 1e-10 * max(1.0, sv.max(initial=0.0))).sum())
    return vt[:r].T


def _linear_system_cost(F, N, M, c0, z_mean, z_cov, gamma, horizon) -> float:
    """Expected :math:`\\sum_t \\gamma^t (z_t^\\top M z_t + c_0)` for :math:`z_{t+1} = F z_t + \\xi_t`.

    ``Cov(ξ) = N``, ``z_0 ~ (z_mean, z_cov)``; the sum runs over t < horizon, or
    forever when ``horizon`` is None (``+inf`` if it diverges). Shared by
    :func:`policy_cost` and :func:`lqg_controller`.
    """
    S0 = np.outer(z_mean, z_mean) + z_cov
    if horizon is None:
        noisy = c0 > 0 or np.any(N != 0)
        if gamma == 1.0 and noisy:
            return np.inf
        if not (np.all(np.isfinite(F)) and np.all(np.isfinite(M)) and np.all(np.isfinite(N))):
            return np.inf  # an overflowing gain or noise (e.g. K = 1e308)
        P = _discounted_lyapunov(F, M, gamma, transpose=True)
        if P is None:  # growing modes: the cost is still finite if M never sees them (unobservable in (F, M))
            U = _observable_subspace(F, M)
            if U.shape[1] == F.shape[0]:
                return np.inf
            F, M, N, S0 = U.T @ F @ U, U.T @ M @ U, U.T @ N @ U, U.T @ S0 @ U
            P = _discounted_lyapunov(F, M, gamma, transpose=True) if U.shape[1] else np.zeros((0, 0))
            if P is None:
                return np.inf
        const = (c0 + gamma * float(np.trace(P @ N))) / (1 - gamma) if noisy else 0.0
        return float(np.trace(P @ S0)) + const
    cost, S, disc = 0.0, S0, 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(int(horizon)):
            cost += disc * (float(np.trace(M @ S)) + c0)
            S = F @ S @ F.T + N
            disc *= gamma
    return cost if np.isfinite(cost) else np.inf


# ------------------------------------------------------------ comparing to K*


def gain_error(K, K_opt) -> float:
    """Relative gain error :math:`\\|K - K^\\star\\|_F / \\|K^\\star\\|_F` (shapes must match)."""
    K, K_opt = np.asarray(K, dtype=float), np.asarray(K_opt, dtype=float)
    if K.shape != K_opt.shape:
        raise InvalidPlantError(f"gain_error: K has shape {K.shape} but K* has shape {K_opt.shape}")
    return float(np.linalg.norm(K - K_opt) / np.linalg.norm(K_opt))


def cost_gap(J, J_opt) -> float:
    """Relative cost gap :math:`(J - J^\\star)/J^\\star`; ``inf`` when ``J`` is infinite (an unstable gain).

    Raises :class:`InvalidPlantError` unless ``J_opt`` is finite and > 0 and ``J`` is a number or +inf.
    """
    try:
        J, J_opt = float(J), float(J_opt)
    except (TypeError, ValueError, OverflowError):
        raise InvalidPlantError(f"cost_gap: J and J_opt must be numbers; got J={J!r}, J_opt={J_opt!r}") from None
    if not (math.isfinite(J_opt) and J_opt > 0):
        raise InvalidPlantError(f"cost_gap: J_opt (the optimal cost J*) must be a finite number > 0; got {J_opt!r}")
    if math.isnan(J) or J == -math.inf:
        raise InvalidPlantError(f"cost_gap: J must be a number or +inf (an unstable gain); got {J!r}")
    return (J - J_opt) / J_opt if math.isfinite(J) else float("inf")


# ------------------------------------------------- model-based reference methods


def _stop(K, K_prev, K_ref, tol) -> bool:
    """Stopping rule of the iterative methods: within ``tol`` of ``K_ref``, or a relative change below ``tol``."""
    return gain_error(K, K_ref) < tol if K_ref is not None else gain_error(K, K_prev) < tol


@_checked
def policy_iteration(plant: LinearGaussianPlant, K0, *, tol: float = 1e-10, max_iter: int = 100, K_ref=None):
    """Hewer's policy iteration for the discounted LQR, from a stabilising gain ``K0``.

    Alternates exact policy evaluation, the discounted Lyapunov equation
    :math:`P_K = Q + K^\\top R K + \\gamma (A - BK)^\\top P_K (A - BK)`, and the
    greedy improvement :math:`K \\leftarrow (R + \\gamma B^\\top P_K B)^{-1}\\gamma B^\\top P_K A`.
    Every iterate stabilises √γ(A − BK) and the cost decreases monotonically;
    convergence to K* is quadratic (Hewer 1971).

    Parameters
    ----------
    plant : LinearGaussianPlant
    K0 : (m, n) array_like
        Stabilising starting gain (u = −Kx).
    tol : float
        Stop when ‖K − K_ref‖/‖K_ref‖ < tol (with ``K_ref``), else when the
        relative change of K in one iteration is below ``tol``.
    max_iter : int
    K_ref : (m, n) array_like, optional
        A reference gain, e.g. ``optimal_gain(plant)[0]``.

    Returns
    -------
    K : (m, n) ndarray
        The last iterate.
    iterates : list of (m, n) ndarray
        ``K0, K1, ...`` (``len = iterations + 1``).

    Raises
    ------
    NotStabilizableError
        If an iterate (``K0`` included) does not stabilise √γ(A − BK).
    """
    K, _ = plant.check_gain(K0)
    A, B, Q, R, g = plant.A, plant.B, plant.Q, plant.R, plant.gamma
    iterates = [K]
    for _ in range(int(max_iter)):
        Acl = np.sqrt(g) * (A - B @ K)
        if spectral_radius(Acl) >= 1:
            raise NotStabilizableError(f"policy iteration on {plant.name!r}: the gain {K.tolist()} is not "
                                       "stabilising; start from a stabilising K0")
        P = scipy.linalg.solve_discrete_lyapunov(Acl.T, Q + K.T @ R @ K)  # P = Q + KᵀRK + γ A_Kᵀ P A_K
        P = (P + P.T) / 2
        K_prev, K = K, np.linalg.solve(R + g * B.T @ P @ B, g * B.T @ P @ A)
        iterates.append(K)
        if _stop(K, K_prev, K_ref, tol):
            break
    return K, iterates


@_checked
def gradient_descent(plant: LinearGaussianPlant, K0, *, tol: float = 1e-10, max_iter: int = 5000, K_ref=None,
                     eta0: float = 1e-3):
    """Gradient descent on the exact cost J(K) (σ = 0) with Armijo backtracking.

    Each step :math:`K \\leftarrow K - \\eta \\nabla J(K)` (:func:`policy_gradient`)
    first doubles η, then halves it until the Armijo condition
    :math:`J(K - \\eta G) \\le J(K) - \\tfrac12 \\eta \\|G\\|^2` holds (with a
    slack of 1e-13·J for steps below rounding). J is gradient dominated on
    the stabilising set, so this converges to K* (Fazel et al. 2018).

    Parameters
    ----------
    plant, K0, tol, max_iter, K_ref
        As in :func:`policy_iteration`.
    eta0 : float
        The first trial step (before its doubling).

    Returns
    -------
    K : (m, n) ndarray
    iterates : list of (m, n) ndarray
    steps : list of float
        The accepted step sizes η.

    Raises
    ------
    NotStabilizableError
        If ``K0`` does not stabilise (J(K0) = inf).
    RuntimeError
        If the line search cannot find a decrease (η < 1e-300).
    """
    K, _ = plant.check_gain(K0)
    J = policy_cost(plant, K)
    if not np.isfinite(J):
        raise NotStabilizableError(f"gradient descent on {plant.name!r}: the starting gain {K.tolist()} has "
                                   "infinite cost; start from a stabilising K0")
    eta = float(eta0)
    iterates, steps = [K], []
    for _ in range(int(max_iter)):
        G, _ = policy_gradient(plant, K)
        gg = float(np.sum(G * G))
        eta *= 2.0
        while True:
            K_new = K - eta * G
            J_new = policy_cost(plant, K_new)
            if np.isfinite(J_new) and J_new <= J - 0.5 * eta * gg + 1e-13 * abs(J):
                break
            eta *= 0.5
            if eta < 1e-300:
                raise RuntimeError(f"exact gradient descent on {plant.name!r}: the line search failed")
        K_prev, K, J = K, K_new, J_new
        steps.append(eta)
        iterates.append(K)
        if _stop(K, K_prev, K_ref, tol):
            break
    return K, iterates, steps


@_checked
def finite_horizon_value(plant: LinearGaussianPlant, K, std, horizon: int):
    """Exact T-step cost-to-go :math:`V_t(x) = x^\\top P_t x + q_t` of ``u = −Kx + ε`` (the value recursion).

    With :math:`A_K = A - BK`, :math:`\\Sigma_\\varepsilon = \\mathrm{diag}(\\sigma^2)`,
    :math:`P_T = 0`, :math:`q_T = 0` and, for t = T−1, ..., 0,

    .. math::

        P_t = Q + K^\\top R K + \\gamma A_K^\\top P_{t+1} A_K,\\qquad
        q_t = \\mathrm{tr}(R\\Sigma_\\varepsilon) + \\gamma\\,[q_{t+1} + \\mathrm{tr}(P_{t+1}(B\\Sigma_\\varepsilon B^\\top + W))].

    ``E[V_0(x_0)] = tr(P_0 S_0) + q_0`` equals :func:`policy_cost` ``(plant, K, std, horizon)``;
    V_t is the exact critic of (4.12) at time t.

    Returns
    -------
    P : (T+1, n, n) ndarray
    q : (T+1,) ndarray
    """
    K, s = plant.check_gain(K, std)
    T = _check_horizon(horizon)
    Se = np.diag(s**2)
    Acl = plant.A - plant.B @ K
    M = plant.Q + K.T @ plant.R @ K
    N = plant.B @ Se @ plant.B.T + plant.W
    c0 = float(np.trace(plant.R @ Se))
    g = plant.gamma
    P = np.zeros((T + 1, plant.n, plant.n))
    q = np.zeros(T + 1)
    for t in range(T - 1, -1, -1):
        P[t] = M + g * Acl.T @ P[t + 1] @ Acl
        q[t] = c0 + g * (q[t + 1] + float(np.trace(P[t + 1] @ N)))
    return P, q


def _check_horizon(horizon) -> int:
    if horizon is None:
        raise InvalidPlantError(f"horizon must be an integer from 1 to {MAX_HORIZON}; got None")
    return _as_horizon(horizon)


# ------------------------------------------------------- static output feedback


def _static_equivalent(plant: LinearGaussianPlant, K, std):
    """``(K, σ, KC, σ̃)``: the state-feedback policy with the same closed loop as ``u = −Ky + ε``."""
    if not plant.has_output:
        raise InvalidPlantError(f"plant {plant.name!r} has no output y = Cx + v; static output feedback needs one")
    if plant.m != 1:
        raise InvalidPlantError(f"the exact static output-feedback cost needs a single-input plant (m = 1); "
                                f"{plant.name!r} has m = {plant.m}")
    K, s = plant.check_gain(K, std, output_feedback=True)
    s_eff = np.sqrt(s**2 + np.diag(K @ plant.V @ K.T))
    return K, s, K @ plant.C, s_eff


@_checked
def static_output_cost(plant: LinearGaussianPlant, K, std=0.0, horizon: int | None = None) -> float:
    """Exact cost :math:`J_y(K, \\sigma)` of the static output feedback ``u = −K y + ε``, y = Cx + v.

    For one input the two Gaussian noises add up: ε − Kv ~ N(0, σ² + KVKᵀ),
    independent of the state, so the closed loop is the state-feedback policy
    with gain KC and std :math:`\\tilde\\sigma = \\sqrt{\\sigma^2 + KVK^\\top}`:
    :math:`J_y(K, \\sigma) = J(KC, \\tilde\\sigma)` (:func:`policy_cost`); ``inf`` if it diverges.

    Raises
    ------
    InvalidPlantError
        Without an output (C), or with more than one input.
    """
    _, _, Kt, s_eff = _static_equivalent(plant, K, std)
    return policy_cost(plant, Kt, s_eff, horizon=horizon)


@_checked
def static_output_gradient(plant: LinearGaussianPlant, K, std=0.0, horizon: int | None = None):
    """Exact ``(∇_K J_y, ∂J_y/∂σ)`` of :func:`static_output_cost` by the chain rule.

    .. math::

        \\nabla_K J_y = \\nabla_{\\tilde K} J\\, C^\\top + \\frac{\\partial J}{\\partial\\tilde\\sigma}\\frac{KV}{\\tilde\\sigma},\\qquad
        \\frac{\\partial J_y}{\\partial\\sigma} = \\frac{\\partial J}{\\partial\\tilde\\sigma}\\frac{\\sigma}{\\tilde\\sigma},

    where :math:`\\partial J/\\partial\\tilde\\sigma = 2\\tilde\\sigma G` with G independent
    of :math:`\\tilde\\sigma` (so the ratios stay finite at :math:`\\tilde\\sigma = 0`).
    """
    K, s, Kt, s_eff = _static_equivalent(plant, K, std)
    dKt, ds_eff = policy_gradient(plant, Kt, s_eff, horizon=horizon)
    if np.all(s_eff > 0):
        G = ds_eff / (2 * s_eff)
    else:  # G does not depend on σ̃: read it off at σ̃ = 1
        G = policy_gradient(plant, Kt, np.ones_like(s_eff), horizon=horizon)[1] / 2
    dK = dKt @ plant.C.T + (2 * G)[:, None] * (K @ plant.V)
    return dK, 2 * G * s


@_checked
def best_static_output_gain(plant: LinearGaussianPlant, K_init, horizon: int | None = None, *, iters: int = 500,
                            tol: float = 1e-10):
    """The best static output-feedback gain: exact gradient descent on :math:`J_y(K, 0)`, Armijo backtracking.

    Static output feedback is not convex in K; this finds the local optimum
    reached from ``K_init`` (check it against a grid for small problems).

    Returns
    -------
    K : (m, p) ndarray
    J : float
        :func:`static_output_cost` of K (σ = 0).
    steps : int
        Gradient steps taken.
    """
    K = np.array(K_init, dtype=float).reshape(plant.m, plant.p)
    J = static_output_cost(plant, K, 0.0, horizon)
    if not np.isfinite(J):
        raise InvalidPlantError(f"the starting gain {K.tolist()} has infinite cost; start from a finite-cost gain")
    alpha, steps = 1e-4, 0
    for steps in range(1, iters + 1):
        g, _ = static_output_gradient(plant, K, 0.0, horizon)
        g2 = float((g * g).sum())
        if g2 == 0:
            break
        while True:
            K_new = K - alpha * g
            J_new = static_output_cost(plant, K_new, 0.0, horizon)
            if np.isfinite(J_new) and J_new <= J - 1e-4 * alpha * g2:
                break
            alpha *= 0.5
            if alpha < 1e-16:
                return K, J, steps
        improvement = J - J_new
        K, J, alpha = K_new, J_new, alpha * 2.0
        if improvement < tol * max(1.0, abs(J)):
            break
    return K, J, steps


# ----------------------------------------------------------- python-control out


@_checked
def closed_loop(plant: LinearGaussianPlant, K):
    """The loop under ``u = −Kx + r`` as a discrete-time :class:`control.StateSpace` from r to y.

    :math:`x' = (A - BK)x + Br`, :math:`y = Cx` (``C = I`` for a state-feedback
    plant), ``dt`` the plant's sampling period (or True). Hand it to
    :func:`control.step_response`, :func:`control.poles` or :func:`control.bode_plot`
    to look at a learned gain (noise and costs are not part of it).
    """
    import control  # local: python-control takes ~1 s to import, keep `import pgcontrol.lqr` light

    K, _ = plant.check_gain(K)
    C = plant.C if plant.has_output else np.eye(plant.n)
    return control.ss(plant.A - plant.B @ K, plant.B, C, np.zeros((C.shape[0], plant.m)),
                      True if plant.dt is None else plant.dt)
