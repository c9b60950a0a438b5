"""Lab 6: output feedback and the Kalman filter (LQG).

The student writes

* ``kalman_gain(A, C, W, V) -> (L, S)``: the steady-state Kalman *predictor*
  for :math:`x_{t+1} = Ax_t + Bu_t + w_t`, :math:`y_t = Cx_t + v_t`
  (:math:`w \\sim \\mathcal N(0, W)`, :math:`v \\sim \\mathcal N(0, V)`):
  the prediction error covariance :math:`S = \\mathrm{Cov}(x_t - \\hat x_{t|t-1})`
  solves the filter Riccati equation (handout (L6.1))

  .. math::

      S = ASA^\\top + W - ASC^\\top (CSC^\\top + V)^{-1} CSA^\\top,

  and the predictor gain is :math:`L = ASC^\\top(CSC^\\top + V)^{-1}` (L6.2), used as
  :math:`\\hat x_{t+1|t} = A\\hat x_{t|t-1} + Bu_t + L(y_t - C\\hat x_{t|t-1})`.
  (:func:`pgcontrol.lqr.kalman_filter` returns the *measurement-update* gain
  :math:`L_f = SC^\\top(CSC^\\top+V)^{-1}` and the same S; :math:`L = AL_f`.)

``lqg_cost`` is not asked: the lab compares the student's predictor-based
controller :math:`u_t = -K\\hat x_{t|t-1}` (K the LQR gain) with the best
static output feedback :math:`u_t = -K_y y_t` on ``double-integrator-output``
by simulation (:func:`pgcontrol.labs.drivers.observer_controller_cost`).
Information patterns: the predictor controller uses y_0 … y_{t−1} and is the
(steady-state) optimum for that pattern; the static gain uses y_t; the LQR
gain on the filtered estimate x̂_{t|t} uses y_0 … y_t and is the optimum for
the static gain's information (about 3.20 against the predictor's 3.64 and
the static gain's 31.2; the handout's figure shows all three).

Statistical item (stated test and power)
----------------------------------------
*Filter vs static gain*: 6000 simulated episodes (T = 150, seed derived from
the check's seed) of the controller built on the student's L. The item
passes when (a) the Monte Carlo mean cost agrees with the exact cost of the
controller built on the correct L (computed on the augmented closed loop
(x, x̂), (L6.3)) within 4.5 standard errors — for a correct L this fails
with probability < 1e-4 (Gaussian tail; the standard error of the mean
cost is about 0.15 % of it; the z of 30 simulated checks ranged over
[−2.5, 2.3]) — and (b) it is below the exact cost of the best static
output gain (about 31.2 against 3.64). A wrong L whose exact cost differs
from the correct one by more than 6.8 standard errors (about 1 %) fails (a)
with probability > 0.99; the measurement-update gain L_f in place of the
predictor gain costs 3.684 against 3.636 (z ≈ 9), so that mistake fails
this item as well as the exact one.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .. import lqr, plants
from . import drivers
from ._core import Item, Lab, Mismatch, as_array, as_tuple, code_inputs, compare
from ._pg import static_reference  # the best static output gain (one copy, shared with the figure's driver)

PLANT = "double-integrator-output"
EPISODES = 6000
Z_MAX = 4.5


def predictor_ref(A, C, W, V):
    """(L6.1)–(L6.2) through :func:`pgcontrol.lqr.kalman_filter` (S) and L = A L_f."""
    n = A.shape[0]
    plant = plants.LinearGaussianPlant(A=A, B=np.zeros((n, 1)) + 1.0, Q=np.eye(n), R=1.0, W=W, C=C, V=V)
    Lf, S = lqr.kalman_filter(plant)
    return A @ Lf, S, Lf


def observer_cost_exact(L, plant=None) -> float:
    """Exact discounted T-step cost of u = −K x̂ with the predictor x̂' = Ax̂ + Bu + L(y − Cx̂) (L6.3).

    Augmented state z = (x, x̂): x' = Ax − BKx̂ + w, x̂' = LCx + (A − BK − LC)x̂ + Lv,
    stage cost xᵀQx + x̂ᵀKᵀRKx̂; z₀ = (x₀, x̄₀).
    """
    p = plants.make(PLANT) if plant is None else plant
    K, _ = lqr.optimal_gain(p)
    A, B, C, Q, R, W, V = p.A, p.B, p.C, p.Q, p.R, p.W, p.V
    L = np.asarray(L, dtype=float).reshape(p.n, p.p)
    F = np.block([[A, -B @ K], [L @ C, A - B @ K - L @ C]])
    G = np.vstack([np.zeros((p.n, p.p)), L])
    N = scipy.linalg.block_diag(W, np.zeros((p.n, p.n))) + G @ V @ G.T
    M = scipy.linalg.block_diag(Q, K.T @ R @ K)
    mean = np.concatenate([p.x0_mean, p.x0_mean])
    S = np.outer(mean, mean) + scipy.linalg.block_diag(p.x0_cov, np.zeros((p.n, p.n)))
    cost, disc = 0.0, 1.0
    for _ in range(p.horizon):
        cost += disc * float(np.trace(M @ S))
        S = F @ S @ F.T + N
        disc *= p.gamma
    return cost


def _call(sub, A, C, W, V):
    n, p = A.shape[0], C.shape[0]
    L, S = as_tuple(sub.call("kalman_gain", A, C, W, V), "kalman_gain", 2)
    return as_array(L, "L returned by kalman_gain", (n, p)), as_array(S, "S returned by kalman_gain", (n, n))


def _mistakes(A, C, W, V, L, S, Lf):
    post = S - S @ C.T @ np.linalg.solve(C @ S @ C.T + V, C @ S)
    out = [
        (Lf, "the measurement-update (filter) gain SCᵀ(CSCᵀ + V)⁻¹; the predictor gain asked here is "
             "L = ASCᵀ(CSCᵀ + V)⁻¹ (L6.2)"),
        (post, "the posterior (filtered) covariance S − SCᵀ(CSCᵀ + V)⁻¹CS; S asked here is the prediction error "
               "covariance, the fixed point of (L6.1)"),
    ]
    try:
        Sd = scipy.linalg.solve_discrete_are(A, C.T, W, V)
        out.append((Sd, "A instead of Aᵀ: the filter Riccati equation (L6.1) is the control one for the dual pair "
                        "(Aᵀ, Cᵀ): scipy.linalg.solve_discrete_are(A.T, C.T, W, V)"))
    except (np.linalg.LinAlgError, ValueError):
        pass
    return out


def check_scalar(sub, rng) -> str:
    """A = C = W = V = 1: S = φ (golden ratio) solves S = S + 1 − S²/(S + 1), L = S/(S + 1) = 1/φ."""
    one = np.ones((1, 1))
    L, S = _call(sub, one, one, one, one)
    phi = (1 + 5**0.5) / 2
    inputs = "A = C = W = V = np.array([[1.0]])"
    compare(S, [[phi]], what="S", inputs=inputs, mistakes=[
        ([[1 / phi]], "the posterior (filtered) covariance S − S²/(S + 1); S asked here is the prediction error "
                      "covariance, the fixed point of (L6.1)")])
    compare(L, [[1 / phi]], what="L", inputs=inputs)
    return "S = golden ratio, L = 1/φ"


def check_random(sub, rng) -> str:
    """Random (A, C) with n = 3, p = 1 and n = 4, p = 2, random SPD W, V, against lqr.kalman_filter."""
    for n, p in ((3, 1), (4, 2)):
        A = rng.standard_normal((n, n))
        A *= rng.uniform(0.8, 1.1) / lqr.spectral_radius(A)
        C = rng.standard_normal((p, n))
        Gw, Gv = rng.standard_normal((n, n)), rng.standard_normal((p, p))
        W, V = Gw @ Gw.T / n + 0.05 * np.eye(n), Gv @ Gv.T / p + 0.1 * np.eye(p)
        L_exp, S_exp, Lf = predictor_ref(A, C, W, V)
        L, S = _call(sub, A, C, W, V)
        inputs = code_inputs(A=A, C=C, W=W, V=V)
        mistakes = _mistakes(A, C, W, V, L_exp, S_exp, Lf)
        compare(S, S_exp, what="S", inputs=inputs, mistakes=mistakes, rtol=1e-6, atol=1e-9)
        compare(L, L_exp, what="L", inputs=inputs, mistakes=mistakes, rtol=1e-6, atol=1e-9)
    return "matches lqr.kalman_filter (L = A·L_f) on 2 random systems"


def _repro(seed: int) -> str:
    return (f"\ninputs: A, C, W, V of plants.make({PLANT!r}) (from pgcontrol import plants); the simulation is "
            f"drivers.observer_controller_cost(L, episodes={EPISODES}, seed={seed}) (from pgcontrol.labs import drivers)")


def check_vs_static(sub, rng) -> str:
    """The controller on the student's predictor against the best static output gain (module docstring)."""
    p = plants.make(PLANT)
    L, _ = _call(sub, p.A.copy(), p.C.copy(), p.W.copy(), p.V.copy())
    L_ref, _, _ = predictor_ref(p.A, p.C, p.W, p.V)
    seed = int(np.random.SeedSequence([sub.seed, 6]).generate_state(1)[0])
    mc = drivers.observer_controller_cost(L, episodes=EPISODES, seed=seed)
    K_y, J_static = static_reference()
    J_ref = observer_cost_exact(L_ref, p)
    J_lqr = lqr.policy_cost(p, lqr.optimal_gain(p)[0], 0.0, horizon=p.horizon)
    z = (mc["mean"] - J_ref) / mc["se"] if mc["se"] > 0 else np.inf
    text = (f"{PLANT}, T = {p.horizon}: LQR gain on your predictor x̂_(t|t−1) (uses y_0 … y_(t−1)), "
            f"{EPISODES} simulated episodes: "
            f"J = {mc['mean']:.4g} ± {mc['se']:.2g}\n"
            f"exact: LQR on the correct predictor {J_ref:.4g} (z = {z:.2f}); best static output gain "
            f"k_y = {K_y.ravel()[0]:.4g} (uses y_t): {J_static:.4g}; LQR with the full state {J_lqr:.4g}")
    if not np.isfinite(mc["mean"]):
        raise Mismatch("the controller built on your L diverged (non-finite cost)\n" + text + _repro(seed))
    if mc["mean"] >= J_static:
        raise Mismatch("your predictor-based controller does not beat the best static output gain\n" + text
                       + _repro(seed))
    if abs(z) >= Z_MAX:
        raise Mismatch(f"the simulated cost differs from that of the correct predictor by {abs(z):.1f} standard "
                       f"errors (more than {Z_MAX}): L is not the steady-state predictor gain (L6.2)\n" + text
                       + _repro(seed))
    return text


LAB = Lab(
    number=6,
    title="Output feedback and the Kalman filter (LQG)",
    equations="(L6.1)–(L6.3): filter Riccati equation, predictor gain, observer-based controller",
    functions={"kalman_gain": "kalman_gain(A, C, W, V) -> (L, S)"},
    summary="the steady-state Kalman predictor as the dual Riccati equation, and why a filter (separation "
            "principle) beats any static output gain on the double integrator observed through its position",
    items=(
        Item("kalman_gain.scalar", "kalman_gain: scalar case A = C = W = V = 1 (S = golden ratio) (L6.1)", 2,
             ("kalman_gain",), check_scalar),
        Item("kalman_gain.random", "kalman_gain: random systems vs lqr.kalman_filter (L6.1)–(L6.2)", 4,
             ("kalman_gain",), check_random),
        Item("filter_vs_static", "LQR on your predictor x̂_(t|t−1) beats the best static output gain on "
             "double-integrator-output (statistical, 6000 episodes) (L6.3)", 3, ("kalman_gain",), check_vs_static, statistical=True),
    ),
)
