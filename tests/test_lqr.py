"""Riccati baselines and exact LQ policy calculus, checked against closed forms,
finite differences, python-control and Monte Carlo."""

import control
import numpy as np
import pytest

from pgcontrol import lqr, plants
from pgcontrol.lqr import NotStabilizableError
from pgcontrol.plants import InvalidPlantError, LinearGaussianPlant
from pgcontrol.sim import rollout_linear

LQ_PLANTS = ["scalar-lqg", "double-integrator", "laplacian-3", "cartpole-linearized"]


@pytest.mark.parametrize("name", LQ_PLANTS)
def test_dare_residual_is_zero_and_closed_loop_stable(name):
    p = plants.make(name)
    K, P = lqr.optimal_gain(p)
    assert np.abs(lqr.dare_residual(p, P)).max() < 1e-9 * max(1.0, np.abs(P).max())
    assert np.allclose(P, P.T) and np.linalg.eigvalsh(P).min() >= -1e-12
    assert lqr.spectral_radius(np.sqrt(p.gamma) * (p.A - p.B @ K)) < 1


@pytest.mark.parametrize("name", ["double-integrator", "laplacian-3", "cartpole-linearized"])
def test_agrees_with_control_dlqr_when_undiscounted(name):
    p = plants.make(name, gamma=1.0)
    K, P = lqr.optimal_gain(p)
    Kc, Pc, _ = control.dlqr(p.A, p.B, p.Q, p.R)
    np.testing.assert_allclose(K, Kc, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(P, Pc, rtol=1e-8, atol=1e-10)


def test_scalar_lqg_optimum():
    K, P = lqr.optimal_gain(plants.make("scalar-lqg"))
    # slides' parameter k = -K; closed form of the scalar DARE: 0.9 P^2 - 0.89 P - 0.1 = 0
    P_exact = (0.89 + np.sqrt(0.89**2 + 0.36)) / 1.8
    assert P.item() == pytest.approx(P_exact, rel=1e-12)
    assert -K.item() == pytest.approx(-0.90755, abs=5e-6)


def test_not_stabilisable_raises_clear_error():
    p = LinearGaussianPlant(A=2.0, B=0.0, Q=1.0, R=1.0, gamma=1.0)
    with pytest.raises(NotStabilizableError, match="not stabilisable"):
        lqr.optimal_gain(p)
    assert issubclass(NotStabilizableError, ValueError)
    # a discount that hides the unstable mode makes it solvable: √0.2·2 < 1
    K, _ = lqr.optimal_gain(p.replace(gamma=0.2))
    assert K.item() == pytest.approx(0.0)


def test_finite_horizon_gains_approach_stationary_gain():
    p = plants.make("double-integrator")
    K_inf, P_inf = lqr.optimal_gain(p)
    errs = []
    for T in (2, 10, 50, 200):
        Ks, Ps = lqr.finite_horizon_gains(p, T)
        assert Ks.shape == (T, 1, 2) and Ps.shape == (T + 1, 2, 2)
        errs.append(np.abs(Ks[0] - K_inf).max())
    assert errs[-1] < 1e-8 and all(a >= b for a, b in zip(errs, errs[1:]))
    # last step: P_T = 0 gives K_{T-1} = 0 (no terminal cost)
    assert np.abs(Ks[-1]).max() == 0.0
    # dynamic programming value = exact cost of the time-varying policy from x0
    x0 = p.x0_mean
    assert x0 @ Ps[0] @ x0 <= lqr.policy_cost(p, K_inf, 0.0, horizon=200) + 1e-12


def _gauss(rng, mean, cov, n):
    """n draws of N(mean, cov) for a PSD (possibly singular) cov."""
    w, U = np.linalg.eigh(cov)
    return mean + rng.standard_normal((n, len(mean))) @ (U * np.sqrt(np.clip(w, 0, None))).T


def _mc_cost(p, K, std, T, n=20000, seed=0):
    """Independent NumPy Monte Carlo estimate of the T-step discounted cost and its standard error."""
    rng = np.random.default_rng(seed)
    x = _gauss(rng, p.x0_mean, p.x0_cov, n)
    total = np.zeros(n)
    for t in range(T):
        u = -x @ K.T + rng.standard_normal((n, p.m)) * std
        total += p.gamma**t * (np.einsum("ij,jk,ik->i", x, p.Q, x) + np.einsum("ij,jk,ik->i", u, p.R, u))
        w = _gauss(rng, np.zeros(p.n), p.W, n)
        x = x @ p.A.T + u @ p.B.T + w
    return total.mean(), total.std() / np.sqrt(n)


@pytest.mark.parametrize("name, std", [("scalar-lqg", 0.3), ("double-integrator", 0.2), ("laplacian-3", 0.5)])
def test_policy_cost_matches_monte_carlo(name, std):
    p = plants.make(name)
    K = lqr.optimal_gain(p)[0] * 0.8
    T = 60
    exact = lqr.policy_cost(p, K, std, horizon=T)
    mean, se = _mc_cost(p, K, std, T)
    assert abs(mean - exact) < 4 * se, (mean, exact, se)
    # infinite horizon = limit of the finite one
    assert lqr.policy_cost(p, K, std, horizon=4000) == pytest.approx(lqr.policy_cost(p, K, std), rel=1e-9)


def test_policy_cost_is_inf_for_unstable_loop_and_minimal_at_optimum():
    p = plants.make("laplacian-3")
    assert lqr.policy_cost(p.replace(gamma=1.0, W=0.0), np.zeros((3, 3))) == np.inf
    assert lqr.policy_cost(p, -np.eye(3)) == np.inf
    # gamma = 1 with noise: the undiscounted sum diverges even for a stable loop
    K, _ = lqr.optimal_gain(p.replace(gamma=1.0))
    assert lqr.policy_cost(p.replace(gamma=1.0), K) == np.inf
    assert np.isfinite(lqr.policy_cost(p.replace(gamma=1.0), K, horizon=50))
    K, _ = lqr.optimal_gain(p)
    J = lqr.policy_cost(p, K)
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert lqr.policy_cost(p, K + 0.01 * rng.standard_normal(K.shape)) > J


def _central_difference(f, x, h):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("name", LQ_PLANTS)
@pytest.mark.parametrize("horizon", [None, 30])
def test_policy_gradient_matches_finite_differences(name, horizon):
    p = plants.make(name)
    K = lqr.optimal_gain(p)[0] * 1.1 + 0.01
    std = np.linspace(0.2, 0.4, p.m)
    dK, dstd = lqr.policy_gradient(p, K, std, horizon)
    h = 1e-6 * max(1.0, np.abs(K).max())
    fK = _central_difference(lambda k: lqr.policy_cost(p, k, std, horizon), K, h)
    fs = _central_difference(lambda s: lqr.policy_cost(p, K, s, horizon), std, 1e-6)
    assert np.linalg.norm(dK - fK) / np.linalg.norm(fK) < 1e-5
    assert np.linalg.norm(dstd - fs) / np.linalg.norm(fs) < 1e-5


@pytest.mark.parametrize("name", LQ_PLANTS)
def test_optimal_gain_is_stationary(name):
    p = plants.make(name)
    K, _ = lqr.optimal_gain(p)
    dK, _ = lqr.policy_gradient(p, K, 0.3)
    dK_off, _ = lqr.policy_gradient(p, K * 1.05, 0.3)
    assert np.linalg.norm(dK) < 1e-8 * np.linalg.norm(dK_off)


def test_gradient_of_unstable_gain_raises():
    p = plants.make("scalar-lqg")
    with pytest.raises(InvalidPlantError, match="infinite"):
        lqr.policy_gradient(p, [[-5.0]], 0.1)


def _mean_kl(p, K, s, K2, s2, horizon):
    """Mean KL(π_θ || π_θ') under d^π (analytic Gaussian KL), for the Hessian check."""
    Sbar, _ = lqr.state_moments(p, K, s, horizon)
    D = K2 - K
    per_dim = np.log(s2 / s) + s**2 / (2 * s2**2) - 0.5
    return per_dim.sum() + 0.5 * np.trace(D.T @ np.diag(1 / s2**2) @ D @ Sbar)


@pytest.mark.parametrize("name, horizon", [("double-integrator", None), ("laplacian-3", 40), ("scalar-lqg", None)])
def test_fisher_is_the_hessian_of_the_mean_kl(name, horizon):
    p = plants.make(name)
    K = lqr.optimal_gain(p)[0] * 0.9
    s = np.linspace(0.3, 0.5, p.m)
    F = lqr.fisher(p, K, s, horizon)
    theta = np.concatenate([K.ravel(), s])
    mn = K.size

    def kl(th):
        return _mean_kl(p, K, s, th[:mn].reshape(K.shape), th[mn:], horizon)

    h = 1e-4
    H = np.zeros_like(F)
    for i in range(len(theta)):
        for j in range(len(theta)):
            ei, ej = np.eye(len(theta))[i] * h, np.eye(len(theta))[j] * h
            H[i, j] = (kl(theta + ei + ej) - kl(theta + ei - ej) - kl(theta - ei + ej) + kl(theta - ei - ej)) / (4 * h * h)
    np.testing.assert_allclose(F, H, rtol=1e-4, atol=1e-6 * np.abs(F).max())


@pytest.mark.parametrize("name", LQ_PLANTS)
@pytest.mark.parametrize("horizon", [None, 25])
def test_natural_gradient_solves_fisher_system(name, horizon):
    p = plants.make(name)
    K = lqr.optimal_gain(p)[0] * 1.2
    s = np.linspace(0.2, 0.6, p.m)
    nK, ns = lqr.natural_gradient(p, K, s, horizon)
    dK, ds = lqr.policy_gradient(p, K, s, horizon)
    F = lqr.fisher(p, K, s, horizon)
    expected = np.linalg.solve(F, np.concatenate([dK.ravel(), ds]))
    np.testing.assert_allclose(np.concatenate([nK.ravel(), ns]), expected, rtol=1e-8, atol=1e-12)


def test_natural_gradient_needs_positive_std():
    with pytest.raises(InvalidPlantError, match="std > 0"):
        lqr.natural_gradient(plants.make("scalar-lqg"), [[0.5]], 0.0)


def test_kalman_filter_solves_filter_riccati():
    p = plants.make("double-integrator-output")
    L, S = lqr.kalman_filter(p)
    A, C, W, V = p.A, p.C, p.W, p.V
    res = A @ S @ A.T + W - A @ S @ C.T @ np.linalg.solve(C @ S @ C.T + V, C @ S @ A.T) - S
    assert np.abs(res).max() < 1e-12
    assert L.shape == (2, 1)
    with pytest.raises(InvalidPlantError, match="no output matrix C"):
        lqr.kalman_filter(plants.make("double-integrator"))


def _mc_lqg_cost(p, ctrl, T, n=20000, seed=1):
    rng = np.random.default_rng(seed)
    x = _gauss(rng, p.x0_mean, p.x0_cov, n)
    xhat_prior = np.tile(p.x0_mean, (n, 1))
    total = np.zeros(n)
    for t in range(T):
        y = x @ p.C.T + _gauss(rng, np.zeros(p.p), p.V, n)
        xhat = xhat_prior + (y - xhat_prior @ p.C.T) @ ctrl.L.T
        u = -xhat @ ctrl.K.T
        total += p.gamma**t * (np.einsum("ij,jk,ik->i", x, p.Q, x) + np.einsum("ij,jk,ik->i", u, p.R, u))
        x = x @ p.A.T + u @ p.B.T + _gauss(rng, np.zeros(p.n), p.W, n)
        xhat_prior = xhat @ p.A.T + u @ p.B.T
    return total.mean(), total.std() / np.sqrt(n)


def test_lqg_cost_matches_monte_carlo_and_exceeds_full_state_cost():
    p = plants.make("double-integrator-output")
    T = 80
    ctrl = lqr.lqg_controller(p, horizon=T)
    mean, se = _mc_lqg_cost(p, ctrl, T)
    assert abs(mean - ctrl.cost) < 4 * se
    K, _ = lqr.optimal_gain(p)
    full = lqr.policy_cost(p, K)
    assert lqr.lqg_controller(p).cost > full
    # with a near-perfect full-state sensor, LQG cost -> LQR cost
    q = p.replace(C=np.eye(2), V=1e-10)
    assert lqr.lqg_controller(q).cost == pytest.approx(full, rel=1e-6)


# ------------------------------------------------------ model-based reference methods


def test_finite_horizon_value_matches_policy_cost():
    p = plants.make("double-integrator")
    P, q = lqr.finite_horizon_value(p, [[0.3, 0.9]], 0.4, p.horizon)
    S0 = np.outer(p.x0_mean, p.x0_mean) + p.x0_cov
    J = lqr.policy_cost(p, [[0.3, 0.9]], 0.4, horizon=p.horizon)
    assert np.trace(P[0] @ S0) + q[0] == pytest.approx(J, rel=1e-10)
    assert np.all(P[-1] == 0) and q[-1] == 0

    # the value recursion is the exact critic: V_t(x) = E[Σ_{k≥t} γ^{k-t} c_k | x_t = x]
    K, s = [[0.3, 0.9]], 0.4
    x = np.array([0.7, -0.2])
    ro = rollout_linear(p.replace(x0_mean=x, x0_cov=0.0), K, s, n_traj=4000, horizon=p.horizon - 5, seed=3)
    c = ro.discounted_cost(p.gamma).numpy()
    P5, q5 = P[5], q[5]
    assert abs(c.mean() - (x @ P5 @ x + q5)) < 4 * c.std() / np.sqrt(len(c))


def test_finite_horizon_value_rejects_bad_horizons():
    p = plants.make("double-integrator")
    for bad in (0, -5, 2.5, True):
        with pytest.raises(InvalidPlantError, match="horizon"):
            lqr.finite_horizon_value(p, [[0.3, 0.9]], 0.4, bad)


@pytest.mark.parametrize("name", LQ_PLANTS)
def test_policy_iteration_reaches_the_riccati_gain_with_decreasing_cost(name):
    from pgcontrol.policies import default_initial_gain

    p = plants.make(name)
    K_star, _ = lqr.optimal_gain(p)
    K, iterates = lqr.policy_iteration(p, default_initial_gain(p), tol=1e-12)
    assert lqr.gain_error(K, K_star) < 1e-8
    costs = [lqr.policy_cost(p, Ki) for Ki in iterates]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(costs, costs[1:]))  # Hewer: monotone
    assert len(iterates) <= 12  # quadratic convergence
    with pytest.raises(NotStabilizableError, match="not stabilising"):
        lqr.policy_iteration(p, 100 * np.ones_like(K_star) if name != "scalar-lqg" else [[-5.0]])


def test_policy_iteration_first_step_on_a_scalar_plant_by_hand():
    # x' = a x + b u, cost q x² + r u², γ: P_k = (q + r k²)/(1 − γ(a − bk)²), k' = γ b P a/(r + γ b² P)
    a, b, q, r, g, k = 1.2, 0.5, 1.0, 0.3, 0.9, 1.5
    p = LinearGaussianPlant(A=a, B=b, Q=q, R=r, gamma=g)
    P = (q + r * k**2) / (1 - g * (a - b * k) ** 2)
    k1 = g * b * P * a / (r + g * b**2 * P)
    _, iterates = lqr.policy_iteration(p, [[k]], max_iter=1)
    assert iterates[1][0, 0] == pytest.approx(k1, rel=1e-12)


@pytest.mark.parametrize("name", ["scalar-lqg", "double-integrator", "laplacian-3"])
def test_gradient_descent_reaches_the_riccati_gain(name):
    from pgcontrol.policies import default_initial_gain

    p = plants.make(name)
    K_star, _ = lqr.optimal_gain(p)
    K, iterates, steps = lqr.gradient_descent(p, default_initial_gain(p), tol=1e-6, K_ref=K_star)
    assert lqr.gain_error(K, K_star) < 1e-6 and len(steps) == len(iterates) - 1
    costs = [lqr.policy_cost(p, Ki) for Ki in iterates]
    assert all(b <= a + 1e-12 * abs(a) for a, b in zip(costs, costs[1:]))  # Armijo: never up
    with pytest.raises(NotStabilizableError, match="infinite cost"):
        lqr.gradient_descent(p, 1e3 * np.ones_like(K_star))


def test_gain_error_and_cost_gap_by_hand():
    assert lqr.gain_error([[3.0, 4.0]], [[0.0, 5.0]]) == pytest.approx(np.sqrt(10) / 5)
    assert lqr.cost_gap(12.0, 10.0) == pytest.approx(0.2)
    assert lqr.cost_gap(np.inf, 10.0) == np.inf
    with pytest.raises(InvalidPlantError, match="shape"):
        lqr.gain_error([[1.0]], [[1.0, 2.0]])


def test_static_output_cost_matches_monte_carlo_and_gradient_matches_differences():
    p = plants.make("double-integrator-output")
    T = p.horizon
    K, std = [[0.02]], 0.1
    ro = rollout_linear(p, K, std, n_traj=4000, seed=0, output_feedback=True)
    c = ro.discounted_cost(p.gamma).numpy()
    J = lqr.static_output_cost(p, K, std, T)
    assert abs(c.mean() - J) < 4 * c.std() / np.sqrt(len(c))
    dK, ds = lqr.static_output_gradient(p, K, std, T)
    h = 1e-7
    fdK = (lqr.static_output_cost(p, [[0.02 + h]], std, T) - lqr.static_output_cost(p, [[0.02 - h]], std, T)) / (2 * h)
    fds = (lqr.static_output_cost(p, K, std + h, T) - lqr.static_output_cost(p, K, std - h, T)) / (2 * h)
    assert dK[0, 0] == pytest.approx(fdK, rel=1e-5)
    assert ds[0] == pytest.approx(fds, rel=1e-5)


def test_best_static_output_gain_is_the_grid_minimum():
    p = plants.make("double-integrator-output")
    T = p.horizon
    K, J, steps = lqr.best_static_output_gain(p, [[0.0]], T)
    grid = np.linspace(0.0, 0.06, 601)
    J_grid = np.array([lqr.static_output_cost(p, [[k]], 0.0, T) for k in grid])
    assert J <= J_grid.min() + 1e-9 * J and abs(K[0, 0] - grid[J_grid.argmin()]) <= 2e-4
    assert abs(lqr.static_output_gradient(p, K, 0.0, T)[0][0, 0] * K[0, 0]) < 1e-4 * J  # stationary
    with pytest.raises(InvalidPlantError, match="no output"):
        lqr.static_output_cost(plants.make("double-integrator"), [[0.1]], 0.0, T)


def test_conventions_against_python_control_as_documented():
    """README "Conventions": the discounted K* is dlqr(√γA, √γB, Q, R), not dlqr(A, B, Q, R); our Kalman gain is the
    measurement-update gain, and control.dlqe's predictor gain is A·L; both share the error covariance S."""
    p = plants.make("double-integrator")
    K, P = lqr.optimal_gain(p)
    Kg, Pg, _ = control.dlqr(np.sqrt(p.gamma) * p.A, np.sqrt(p.gamma) * p.B, p.Q, p.R)
    np.testing.assert_allclose(K, Kg, rtol=1e-9)
    np.testing.assert_allclose(P, Pg, rtol=1e-9)
    Kd, _, _ = control.dlqr(p.A, p.B, p.Q, p.R)
    assert lqr.gain_error(K, Kd) > 0.02  # 2.7 % on double-integrator: the discount matters
    q = plants.make("double-integrator-output")
    L, S = lqr.kalman_filter(q)
    Lp, Sp, _ = control.dlqe(q.A, np.eye(q.n), q.C, q.W, q.V)
    np.testing.assert_allclose(q.A @ L, Lp, rtol=1e-9)
    np.testing.assert_allclose(S, Sp, rtol=1e-9)
