"""Plant construction, validation and the catalog."""

import numpy as np
import pytest

from pgcontrol import plants
from pgcontrol.plants import InvalidPlantError, LinearGaussianPlant


def test_catalog_builds_every_plant():
    for name in plants.names():
        p = plants.make(name)
        assert p.name == name
        assert p.A.shape == (p.n, p.n) and p.B.shape == (p.n, p.m)
    assert set(plants.describe()) == set(plants.names())


def test_catalog_values_from_the_issue():
    s = plants.make("scalar-lqg")
    assert (s.A.item(), s.B.item(), s.Q.item(), s.R.item(), s.gamma, s.horizon) == (1, 1, 1, 0.1, 0.9, 50)
    assert s.x0_mean.tolist() == [0.3] and s.x0_cov.item() == pytest.approx(1e-4)
    d = plants.make("double-integrator")
    np.testing.assert_array_equal(d.A, [[1, 1], [0, 1]])
    np.testing.assert_array_equal(d.W, 1e-4 * np.eye(2))
    lap = plants.make("laplacian-3")
    assert np.abs(np.linalg.eigvals(lap.A)).max() > 1  # open-loop unstable
    cp = plants.make("cartpole-linearized")
    assert cp.n == 4 and cp.m == 1
    assert np.abs(np.linalg.eigvals(cp.A)).max() > 1  # upright is unstable


def test_cartpole_matches_continuous_linearisation():
    # For small dt the ZOH discretisation is I + dt*Ac to first order.
    cp = plants.cartpole_linearized(dt=1e-5)
    Ac = (cp.A - np.eye(4)) / 1e-5
    Mt, ell, mp, g = 1.1, 0.5, 0.1, 9.8
    a_th = g / (ell * (4 / 3 - mp / Mt))
    assert Ac[3, 2] == pytest.approx(a_th, rel=1e-3)
    assert Ac[0, 1] == pytest.approx(1.0, rel=1e-3)


def test_overrides_and_frozen():
    p = plants.make("scalar-lqg", gamma=1.0, horizon=20)
    assert p.gamma == 1.0 and p.horizon == 20
    with pytest.raises(Exception):
        p.gamma = 0.5  # frozen
    with pytest.raises(InvalidPlantError, match="unknown plant field"):
        plants.make("scalar-lqg", gama=0.5)
    with pytest.raises(InvalidPlantError, match="unknown plant 'nope'"):
        plants.make("nope")


def test_matrices_are_read_only():
    p = plants.make("double-integrator")
    with pytest.raises(ValueError):
        p.A[0, 0] = 5.0


GOOD = dict(A=np.eye(2), B=np.ones((2, 1)), Q=np.eye(2), R=1.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(A=np.ones((2, 3))), r"A must be square: expected shape \(2, 2\), got \(2, 3\)"),
        (dict(B=np.ones((3, 1))), r"B has the wrong shape: expected \(2, any\), got \(3, 1\)"),
        (dict(Q=np.ones((3, 3))), r"Q has the wrong shape: expected \(2, 2\), got \(3, 3\)"),
        (dict(Q=[[1, 2], [0, 1]]), "Q must be symmetric"),
        (dict(Q=-np.eye(2)), "Q must be symmetric positive semidefinite"),
        (dict(R=0.0), "R must be symmetric positive definite"),
        (dict(W=-1.0), "W must be symmetric positive semidefinite"),
        (dict(x0_cov=[[1, 0], [0, -1]]), "x0_cov must be symmetric positive semidefinite"),
        (dict(A=[[np.nan, 0], [0, 1]]), "A has non-finite entries"),
        (dict(gamma=0.0), r"gamma must lie in \(0, 1\]"),
        (dict(gamma=1.5), r"gamma must lie in \(0, 1\]"),
        (dict(horizon=0), "horizon must be an integer from 1 to"),
        (dict(horizon=2.5), "horizon must be an integer from 1 to"),
        (dict(C=np.ones((1, 3))), r"C has the wrong shape: expected \(any, 2\), got \(1, 3\)"),
        (dict(C=np.ones((1, 2)), V=-1.0), "V must be symmetric positive semidefinite"),
        (dict(V=1.0), "V .* without C"),
        (dict(x0_mean=[1, 2, 3]), r"x0_mean has the wrong shape"),
    ],
)
def test_validation_names_the_matrix(change, message):
    with pytest.raises(InvalidPlantError, match=message):
        LinearGaussianPlant(**{**GOOD, **change})
    assert issubclass(InvalidPlantError, ValueError)


def test_check_gain_shapes():
    p = plants.make("double-integrator")
    K, s = p.check_gain([[1.0, 2.0]], 0.5)
    assert K.shape == (1, 2) and s.tolist() == [0.5]
    with pytest.raises(InvalidPlantError, match=r"expected \(m, n\) = \(1, 2\)"):
        p.check_gain(np.ones((2, 2)))
    with pytest.raises(InvalidPlantError, match="std must be finite and non-negative"):
        p.check_gain([[1.0, 2.0]], -1.0)


def test_random_plants_are_controllable_and_seeded():
    import control

    a = plants.random(4, 2, seed=3)
    b = plants.random(4, 2, seed=3)
    np.testing.assert_array_equal(a.A, b.A)
    assert np.linalg.matrix_rank(control.ctrb(a.A, a.B)) == 4
    assert np.abs(np.linalg.eigvals(a.A)).max() == pytest.approx(1.05)
