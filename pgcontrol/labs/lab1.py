"""Lab 1: Riccati and the exact cost of a linear Gaussian policy.

The student writes

* ``dare_gain(A, B, Q, R, gamma) -> (K, P)``: the discounted LQR gain of
  ``u = -K x`` and the cost-to-go matrix, from the discounted Riccati equation
  (handout eq. (L1.1); :func:`pgcontrol.lqr.optimal_gain`)

  .. math::

      P = Q + \\gamma A^\\top P A - \\gamma^2 A^\\top P B (R + \\gamma B^\\top P B)^{-1} B^\\top P A,
      \\qquad K = (R + \\gamma B^\\top P B)^{-1} \\gamma B^\\top P A ;

* ``policy_cost(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov) -> float``:
  the infinite-horizon discounted expected cost of ``u = -K x + ε``,
  ``ε ~ N(0, diag(std²))`` (handout (L1.2)–(L1.3); :func:`pgcontrol.lqr.policy_cost`):
  :math:`P_K = Q + K^\\top R K + \\gamma A_K^\\top P_K A_K` (a Lyapunov
  equation, :math:`A_K = A - BK`) and
  :math:`J = \\operatorname{tr}(P_K(\\bar x_0\\bar x_0^\\top + \\Sigma_0))
  + [\\operatorname{tr}(R\\Sigma_\\varepsilon) + \\gamma\\operatorname{tr}(P_K(B\\Sigma_\\varepsilon B^\\top + W))]/(1-\\gamma)`,
  ``inf`` when :math:`\\sqrt\\gamma A_K` is not Schur stable.

All items are deterministic (exact comparisons, relative tolerance 1e-6) on
plants drawn at check time with :func:`pgcontrol.plants.random`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .. import lqr, plants
from ._core import Item, Lab, Mismatch, as_array, as_float, as_tuple, code_inputs, compare, fmt, inputs_block

DARE_DISCOUNTED = ("the discounted Riccati equation (L1.1) has γ in front of AᵀPA and BᵀPB: "
                   "P = Q + γAᵀPA − γ²AᵀPB(R + γBᵀPB)⁻¹BᵀPA, K = (R + γBᵀPB)⁻¹γBᵀPA")


def _random_problem(rng: np.random.Generator, n: int, m: int):
    """A random stabilisable plant with random SPD Q, R and a discount in [0.8, 0.99]."""
    base = plants.random(n, m, seed=int(rng.integers(2**31)), gamma=float(rng.uniform(0.8, 0.99)))
    Gq, Gr = rng.standard_normal((n, n)), rng.standard_normal((m, m))
    Q = Gq @ Gq.T / n + 0.1 * np.eye(n)
    R = Gr @ Gr.T / m + 0.1 * np.eye(m)
    return base.replace(Q=Q, R=R)


def _dare_args(p):
    return (p.A.copy(), p.B.copy(), p.Q.copy(), p.R.copy(), p.gamma)


def _call_dare(sub, p):
    K, P = as_tuple(sub.call("dare_gain", *_dare_args(p)), "dare_gain", 2)
    return as_array(K, "K returned by dare_gain", (p.m, p.n)), as_array(P, "P returned by dare_gain", (p.n, p.n))


def check_dare_scalar(sub, rng) -> str:
    """A = B = Q = R = 1, γ = 1: P = φ = (1 + √5)/2 solves P = 1 + P − P²/(1 + P), K = P/(1 + P) = 1/φ."""
    p = plants.LinearGaussianPlant(A=1.0, B=1.0, Q=1.0, R=1.0, gamma=1.0)
    K, P = _call_dare(sub, p)
    phi = (1 + 5**0.5) / 2
    inputs = "A = B = Q = R = np.array([[1.0]]); gamma = 1.0"
    compare(P, [[phi]], what="P", inputs=inputs, mistakes=[([[1.0]], "P = Q: the Riccati recursion was not iterated to its fixed point (L1.1)")])
    compare(K, [[1 / phi]], what="K", inputs=inputs,
            mistakes=[([[-1 / phi]], "sign: pgcontrol's convention is u = −Kx, so K = (R + γBᵀPB)⁻¹γBᵀPA is positive here (L1.1)")])
    return "P = golden ratio 1.618..., K = 0.618..."


def check_dare_discounted(sub, rng) -> str:
    """Three random plants (n, m) = (1, 1), (3, 1), (4, 2) with γ ∈ [0.8, 0.99] against :func:`pgcontrol.lqr.optimal_gain`."""
    for n, m in ((1, 1), (3, 1), (4, 2)):
        p = _random_problem(rng, n, m)
        K_star, P_star = lqr.optimal_gain(p)
        K, P = _call_dare(sub, p)
        inputs = code_inputs(A=p.A, B=p.B, Q=p.Q, R=p.R, gamma=p.gamma)
        mistakes = []
        try:
            K1, P1 = lqr.optimal_gain(p.replace(gamma=1.0))
            mistakes += [(K1, "a Riccati gain of the undiscounted problem (γ = 1); " + DARE_DISCOUNTED),
                         (P1, "the cost-to-go of the undiscounted problem (γ = 1); " + DARE_DISCOUNTED)]
        except ValueError:
            pass
        K_no_gamma = np.linalg.solve(p.R + p.B.T @ P_star @ p.B, p.B.T @ P_star @ p.A)
        mistakes += [(K_no_gamma, "K without the discount: K = (R + γBᵀPB)⁻¹ γBᵀPA has γ in both places (L1.1)"),
                     (-K_star, "sign: pgcontrol's convention is u = −Kx (L1.1)")]
        compare(K, K_star, what="K", inputs=inputs, mistakes=mistakes, rtol=1e-6, atol=1e-8)
        compare(P, P_star, what="P", inputs=inputs, mistakes=mistakes, rtol=1e-6, atol=1e-8)
    return "matches lqr.optimal_gain on 3 random discounted plants"


def _cost_args(p, K, std):
    return (p.A.copy(), p.B.copy(), p.Q.copy(), p.R.copy(), p.W.copy(), p.gamma, np.array(K, float),
            np.array(std, float), p.x0_mean.copy(), p.x0_cov.copy())


def _lyap(F, M, g):
    return scipy.linalg.solve_discrete_lyapunov(np.sqrt(g) * F.T, M)


def _cost_mistakes(p, K, std):
    """The known mistakes of ``policy_cost``, computed on this input: (value, message)."""
    n = p.n
    PK = _lyap(p.A - p.B @ K, p.Q + K.T @ p.R @ K, p.gamma)
    S0 = np.outer(p.x0_mean, p.x0_mean) + p.x0_cov
    Se = np.diag(np.asarray(std, float) ** 2)
    N = p.B @ Se @ p.B.T + p.W
    g = p.gamma
    return [
        (lqr.policy_cost(p, K, 0.0), "the exploration noise ε is missing: it costs tr(RΣε) at every step and enters "
         "the state through BΣεBᵀ (L1.3)"),
        (lqr.policy_cost(p.replace(W=np.zeros((n, n))), K, std), "the process noise W is missing from the "
         "injected covariance N = BΣεBᵀ + W (L1.3)"),
        (np.trace(PK @ S0) + np.trace(p.R @ Se) + g * np.trace(PK @ N),
         "the noise constant is paid once, not at every step: it is divided by (1 − γ) (L1.3)"),
        (np.trace(PK @ np.outer(p.x0_mean, p.x0_mean)) + (np.trace(p.R @ Se) + g * np.trace(PK @ N)) / (1 - g),
         "the initial covariance x0_cov is missing: E[x0 x0ᵀ] = x̄0x̄0ᵀ + Σ0 (L1.3)"),
    ]


def check_cost(sub, rng) -> str:
    """Random plants, W, x0 ~ N(mean, cov), stabilising K near K*, std > 0, against :func:`pgcontrol.lqr.policy_cost`."""
    for n, m in ((1, 1), (3, 2)):
        p = _random_problem(rng, n, m)
        G = rng.standard_normal((n, n))
        p = p.replace(W=0.05 * G @ G.T, x0_mean=rng.standard_normal(n), x0_cov=np.eye(n) * rng.uniform(0.2, 1.0))
        K_star, _ = lqr.optimal_gain(p)
        for _ in range(100):
            K = K_star + 0.2 * rng.standard_normal((m, n))
            if lqr.spectral_radius(np.sqrt(p.gamma) * (p.A - p.B @ K)) < 0.95:
                break
        std = rng.uniform(0.1, 0.8, m)
        expected = lqr.policy_cost(p, K, std)
        actual = as_float(sub.call("policy_cost", *_cost_args(p, K, std)), "policy_cost")
        mistakes = _cost_mistakes(p, K, std)
        compare(actual, expected, what="J", inputs=_cost_inputs(p, K, std), mistakes=mistakes, rtol=1e-6)
    return "matches lqr.policy_cost on 2 random noisy plants"


def _cost_inputs(p, K, std) -> str:
    return code_inputs(A=p.A, B=p.B, Q=p.Q, R=p.R, W=p.W, gamma=p.gamma, K=np.asarray(K, float),
                       std=np.asarray(std, float), x0_mean=p.x0_mean, x0_cov=p.x0_cov)


def _closed_loop_problem(rng, n: int, m: int, gamma: float, sqrt_gamma_rho: float):
    """A random noisy plant and gain K whose closed loop A − BK has √γ·ρ(A − BK) = ``sqrt_gamma_rho``.

    Built backwards: a random F scaled to the spectral radius ρ = sqrt_gamma_rho/√γ, a random K, A = F + BK.
    """
    p = _random_problem(rng, n, m).replace(gamma=gamma)
    F = rng.standard_normal((n, n))
    F *= sqrt_gamma_rho / np.sqrt(gamma) / lqr.spectral_radius(F)
    K = rng.standard_normal((m, n))
    G = rng.standard_normal((n, n))
    p = p.replace(A=F + p.B @ K, W=0.05 * G @ G.T, x0_mean=rng.standard_normal(n),
                  x0_cov=np.eye(n) * rng.uniform(0.2, 1.0))
    return p, K


RHO_NOT_DISCOUNTED = ("stability tested on ρ(A − BK) instead of ρ(√γ(A − BK)) = √γ·ρ(A − BK): the discounted sum "
                      "Σγᵗ E[xₜᵀ(Q + KᵀRK)xₜ] converges when √γ·ρ(A − BK) < 1 (L1.2), even when the closed loop itself "
                      "is unstable (ρ(A − BK) ≥ 1): the cost is finite there")


def check_cost_unstable(sub, rng) -> str:
    """Where the discounted cost is finite and where it is ``inf`` (L1.2), two cases on every seed.

    1. A finite cost on an unstable closed loop: γ ∈ [0.8, 0.88], √γ·ρ(A − BK) ∈ [0.95, 0.98], so
       ρ(A − BK) ≥ 0.95/√0.88 > 1.01 — a stability test on ρ(A − BK) instead of √γ·ρ(A − BK) returns ``inf`` here.
    2. ``inf`` where the discounted sum diverges: γ = 0.99, √γ·ρ(A − BK) ∈ [1.05, 1.3] (a function that never
       returns ``inf``, or returns it always, fails one of the two).
    """
    g = float(rng.uniform(0.8, 0.88))
    p, K = _closed_loop_problem(rng, 3, 1, g, float(rng.uniform(0.95, 0.98)))
    std = rng.uniform(0.1, 0.8, 1)
    expected = lqr.policy_cost(p, K, std)
    rho = lqr.spectral_radius(p.A - p.B @ K)
    actual = as_float(sub.call("policy_cost", *_cost_args(p, K, std)), "policy_cost")
    compare(actual, expected, what=f"J on a closed loop with ρ(A − BK) = {rho:.4f} ≥ 1 but "
                                   f"√γ·ρ(A − BK) = {np.sqrt(g) * rho:.4f} < 1 (finite)",
            inputs=_cost_inputs(p, K, std), mistakes=[(np.inf, RHO_NOT_DISCOUNTED)] + _cost_mistakes(p, K, std),
            rtol=1e-6)
    p, K = _closed_loop_problem(rng, 3, 1, 0.99, float(rng.uniform(1.05, 1.3)))
    std = rng.uniform(0.1, 0.8, 1)
    actual = as_float(sub.call("policy_cost", *_cost_args(p, K, std)), "policy_cost")
    rho = lqr.spectral_radius(np.sqrt(p.gamma) * (p.A - p.B @ K))
    if actual == np.inf:
        return "finite where only √γ·ρ(A − BK) < 1, inf where √γ·ρ(A − BK) ≥ 1"
    raise Mismatch(f"J on a closed loop with √γ·ρ(A − BK) = {rho:.4f} ≥ 1: the discounted sum diverges and the "
                   f"cost is inf (a Lyapunov solver returns a meaningless matrix there: test stability first, (L1.2)); "
                   f"got {fmt(actual)}" + inputs_block(_cost_inputs(p, K, std)))


LAB = Lab(
    number=1,
    title="Riccati and the exact cost of a linear Gaussian policy",
    equations="(L1.1)–(L1.3): discounted DARE, Lyapunov equation, exact cost",
    functions={
        "dare_gain": "dare_gain(A, B, Q, R, gamma) -> (K, P)",
        "policy_cost": "policy_cost(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov) -> float",
    },
    summary="the discounted LQR gain from the Riccati equation, and the exact expected cost of u = −Kx + ε "
            "from a Lyapunov equation (the ground truth every later lab is checked against)",
    items=(
        Item("dare_gain.scalar", "dare_gain: scalar case A = B = Q = R = 1, γ = 1 (P = golden ratio) (L1.1)", 2,
             ("dare_gain",), check_dare_scalar),
        Item("dare_gain.discounted", "dare_gain: random discounted plants vs lqr.optimal_gain (L1.1)", 3,
             ("dare_gain",), check_dare_discounted),
        Item("policy_cost.exact", "policy_cost: exact cost with exploration and process noise (L1.2)–(L1.3)", 3,
             ("policy_cost",), check_cost),
        Item("policy_cost.unstable", "policy_cost: finite when √γ·ρ(A − BK) < 1 ≤ ρ(A − BK), inf when "
             "√γ·ρ(A − BK) ≥ 1 (L1.2)", 2,
             ("policy_cost",), check_cost_unstable),
    ),
)
