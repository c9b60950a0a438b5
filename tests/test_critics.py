"""Critics: the exact quadratic fit of (4.20) and the MLP value's shapes and initialisation."""

import numpy as np
import pytest
import torch

from pgcontrol.critics import MLPValue, QuadraticValue


def test_quadratic_value_recovers_P_and_c_exactly():
    rng = np.random.default_rng(4)
    n = 3
    M = rng.normal(size=(n, n))
    P, c = M @ M.T + 0.5 * np.eye(n) - 1.0, 2.5  # symmetric, not necessarily PSD
    x = rng.normal(size=(50, n))
    y = np.einsum("bi,ij,bj->b", x, P, x) + c
    V = QuadraticValue(n).fit_least_squares(x, y)
    np.testing.assert_allclose(V.P, P, atol=1e-7)
    assert V.c == pytest.approx(c, abs=1e-7)
    np.testing.assert_allclose(V(x).detach().numpy(), y, atol=1e-6)
    assert V(torch.as_tensor(x).reshape(5, 10, n)).shape == (5, 10)
    V2 = QuadraticValue(n)
    V2.set_params(P, c)
    np.testing.assert_allclose(V2(x).detach().numpy(), y, rtol=1e-12)
    assert V2.n_features == n * (n + 1) // 2 + 1


def test_mlp_value_shapes_and_init():
    V = MLPValue(4, generator=torch.Generator().manual_seed(0))
    last = V.net[-1]
    torch.testing.assert_close(last.weight @ last.weight.T, torch.ones(1, 1), atol=1e-5, rtol=0)
    assert V(torch.zeros(7, 4)).shape == (7,) and V(np.zeros((2, 3, 4))).shape == (2, 3)
    assert V(np.zeros(4)).shape == ()


# ----------------------------------------------------------------- bad input
