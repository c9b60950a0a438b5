"""python-control in and out: plants from StateSpace objects (discrete, or continuous with ZOH), back again,
and learned closed loops, checked against python-control's own dlqr, c2d, dlyap and poles."""

import control
import numpy as np
import pytest

from pgcontrol import lqr, plants
from pgcontrol.plants import InvalidPlantError, from_statespace


def _random_ss(seed, n=3, m=2, dt=True):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    A *= 0.9 / np.abs(np.linalg.eigvals(A)).max()
    return control.ss(A, rng.standard_normal((n, m)), np.eye(n), np.zeros((n, m)), dt)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discrete_statespace_gives_the_same_lqr_as_dlqr(seed):
    sys = _random_ss(seed)
    p = from_statespace(sys, Q=np.eye(3), R=np.eye(2), gamma=1.0)
    assert not p.has_output and p.dt is None  # C = I: state feedback; dt = True: period unspecified
    np.testing.assert_array_equal(p.A, sys.A)
    K, P = lqr.optimal_gain(p)
    Kc, Pc, _ = control.dlqr(sys.A, sys.B, np.eye(3), np.eye(2))
    np.testing.assert_allclose(K, Kc, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(P, Pc, rtol=1e-8, atol=1e-10)


def test_exact_cost_agrees_with_dlyap():
    sys = _random_ss(3)
    p = from_statespace(sys, Q=np.eye(3), R=np.eye(2), gamma=0.9, x0_cov=np.eye(3))
    K = lqr.optimal_gain(p)[0]
    Acl = np.sqrt(0.9) * (p.A - p.B @ K)
    P = control.dlyap(Acl.T, np.eye(3) + K.T @ K)  # P = Acl' P Acl + Q + K'RK
    assert lqr.policy_cost(p, K) == pytest.approx(np.trace(P), rel=1e-9)


def test_continuous_statespace_is_discretised_by_zoh_with_its_noise():
    Ac, Bc, dt = np.array([[0.0, 1.0], [-1.0, -0.1]]), np.array([[0.0], [1.0]]), 0.1
    sys = control.ss(Ac, Bc, np.eye(2), np.zeros((2, 1)))
    Wc = np.array([[1e-3, 2e-4], [2e-4, 5e-3]])
    p = from_statespace(sys, Q=np.eye(2), R=1.0, W=Wc, dt=dt)
    sysd = control.c2d(sys, dt, method="zoh")
    np.testing.assert_allclose(p.A, sysd.A, rtol=1e-12)
    np.testing.assert_allclose(p.B, sysd.B, rtol=1e-12)
    assert p.dt == dt
    # W_d = ∫_0^dt e^{As} W_c e^{Aᵀs} ds, by a fine midpoint rule
    import scipy.linalg

    s = (np.arange(400) + 0.5) * dt / 400  # midpoint error ~ (dt/400)² ‖A‖² / 24, far below the rtol
    Wd = sum(scipy.linalg.expm(Ac * t) @ Wc @ scipy.linalg.expm(Ac * t).T for t in s) * dt / 400
    np.testing.assert_allclose(p.W, Wd, rtol=1e-6)
    assert plants.make("mass-spring-damper").dt == 0.1


def test_round_trip_and_output_plants():
    p = plants.make("double-integrator-output")
    sys = p.to_statespace()
    assert sys.dt is True and sys.C.shape == (1, 2)
    q = from_statespace(sys, Q=p.Q, R=p.R, W=p.W, V=p.V, x0_mean=p.x0_mean, x0_cov=p.x0_cov, gamma=p.gamma,
                        horizon=p.horizon, name=p.name)
    for field in ("A", "B", "C", "V", "W", "Q", "R"):
        np.testing.assert_array_equal(getattr(q, field), getattr(p, field))
    # C = I with V = 0 is state feedback; C = I with measurement noise is an output plant
    sysI = plants.make("double-integrator").to_statespace()
    assert not from_statespace(sysI, Q=np.eye(2), R=1.0).has_output
    assert from_statespace(sysI, Q=np.eye(2), R=1.0, V=0.1).has_output


def test_closed_loop_poles_and_step_response():
    p = plants.make("mass-spring-damper")
    K = lqr.optimal_gain(p)[0]
    cl = lqr.closed_loop(p, K)
    np.testing.assert_allclose(np.sort_complex(control.poles(cl)), np.sort_complex(np.linalg.eigvals(p.A - p.B @ K)))
    assert cl.dt == 0.1
    t, y = control.step_response(cl, T=np.arange(0, 30, 0.1))
    assert np.all(np.isfinite(y)) and abs(y[0, 0, -1] - y[0, 0, -2]) < 1e-6  # settled: the loop is stable


def test_bad_statespace_inputs_are_clear():
    sys = control.ss([[0.0, 1.0], [0.0, 0.0]], [[0.0], [1.0]], np.eye(2), np.zeros((2, 1)))
    with pytest.raises(InvalidPlantError, match="continuous-time system: give dt="):
        from_statespace(sys, Q=np.eye(2), R=1.0)
    with pytest.raises(InvalidPlantError, match="D must be zero"):
        from_statespace(control.ss(0.5, 1.0, 1.0, 2.0, True), Q=1.0, R=1.0)
    with pytest.raises(InvalidPlantError, match="already discrete"):
        from_statespace(_random_ss(0, dt=0.1), Q=np.eye(3), R=np.eye(2), dt=0.2)
    with pytest.raises(InvalidPlantError, match="control.StateSpace"):
        from_statespace([[1.0]], Q=1.0, R=1.0)
