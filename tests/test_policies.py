"""Gaussian policies: log-density (4.26) by hand, the score and the
Fisher block formula, the std floor, initialisation."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, vmap

from pgcontrol import lqr
from pgcontrol.critics import MLPValue, QuadraticValue
from pgcontrol.plants import LinearGaussianPlant
from pgcontrol.policies import (
    LinearGaussianPolicy,
    MLPGaussianPolicy,
    PolicyError,
    make_policy,
)

K_TRUE = np.array([[0.5, -1.0, 0.25], [2.0, 0.0, -0.75]])  # m = 2, n = 3
STD_TRUE = np.array([0.7, 1.3])


def _policy(std_param="std", **kw):
    return LinearGaussianPolicy(3, 2, K0=K_TRUE, std0=STD_TRUE, std_param=std_param, **kw)


def _logpdf_by_hand(x, u, K, s):
    """Eq. (4.26) for one (x, u), in plain NumPy."""
    mu = -K @ x
    return -sum((u[j] - mu[j]) ** 2 / (2 * s[j] ** 2) + 0.5 * math.log(2 * math.pi * s[j] ** 2) for j in range(len(s)))


# --------------------------------------------------------------- linear policy


@pytest.mark.parametrize("std_param", ["std", "log_std"])
def test_linear_mean_std_and_log_prob_match_eq_4_26(std_param):
    pol = _policy(std_param)
    rng = np.random.default_rng(0)
    x, u = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    dist = pol(x)
    assert isinstance(dist, torch.distributions.Independent)
    assert isinstance(dist.base_dist, torch.distributions.Normal)
    assert dist.batch_shape == (5,) and dist.event_shape == (2,)
    np.testing.assert_allclose(dist.mean.detach().numpy(), -x @ K_TRUE.T, rtol=1e-14)
    np.testing.assert_allclose(dist.stddev.detach().numpy(), np.broadcast_to(STD_TRUE, (5, 2)), rtol=1e-14)
    np.testing.assert_allclose(pol.K, K_TRUE)
    np.testing.assert_allclose(pol.std, STD_TRUE, rtol=1e-14)
    lp = pol.log_prob(x, u).detach().numpy()
    assert lp.shape == (5,)
    np.testing.assert_allclose(lp, [_logpdf_by_hand(x[i], u[i], K_TRUE, STD_TRUE) for i in range(5)], rtol=1e-12)
    # a single observation gives batch_shape (), and a deeper batch keeps its shape
    assert pol(x[0]).batch_shape == ()
    assert pol(torch.zeros(4, 5, 3)).batch_shape == (4, 5)


def test_score_matches_analytic_formula():
    pol = _policy("std")
    x = np.array([0.3, -1.2, 2.0])
    u = np.array([1.1, 0.4])
    pol.log_prob(x, u).backward()
    eps = u - (-K_TRUE @ x)
    dK = -np.outer(eps / STD_TRUE**2, x)  # d log pi / dK_ij = -(u_i - mean_i) x_j / sigma_i^2
    ds = eps**2 / STD_TRUE**3 - 1 / STD_TRUE
    np.testing.assert_allclose(pol.gain.grad.numpy(), dK, rtol=1e-12)
    np.testing.assert_allclose(pol.raw_std.grad.numpy(), ds, rtol=1e-12)
    np.testing.assert_allclose(pol.flat_grad(), np.concatenate([dK.ravel(), ds]), rtol=1e-12)
    # with log sigma the chain rule multiplies by sigma
    pol_log = _policy("log_std")
    pol_log.log_prob(x, u).backward()
    np.testing.assert_allclose(pol_log.raw_std.grad.numpy(), ds * STD_TRUE, rtol=1e-12)


@pytest.mark.parametrize("std_param,raw", [("std", 0.0), ("std", -1.0), ("log_std", -100.0)])
def test_std_floor(std_param, raw):
    pol = _policy(std_param, min_std=1e-3)
    with torch.no_grad():
        pol.raw_std.fill_(raw)
    x, u = np.ones((4, 3)), np.zeros((4, 2))
    dist = pol(x)
    np.testing.assert_allclose(dist.stddev.detach().numpy(), 1e-3)
    np.testing.assert_allclose(pol.std, [1e-3, 1e-3])
    lp = pol.log_prob(x, u)
    assert torch.isfinite(lp).all()
    lp.sum().backward()
    # below the floor the std gradient is exactly zero: the zero-exploration plateau
    assert torch.all(pol.raw_std.grad == 0)
    a, logp = pol.act(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(a).all() and torch.isfinite(logp).all()


def test_act_is_deterministic_with_a_seeded_generator():
    pol = _policy()
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a1, lp1 = pol.act(x, generator=torch.Generator().manual_seed(7))
    a2, lp2 = pol.act(x, generator=torch.Generator().manual_seed(7))
    a3, _ = pol.act(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a1, a2) and torch.equal(lp1, lp2) and not torch.equal(a1, a3)
    assert a1.shape == (10, 2) and lp1.shape == (10,) and not a1.requires_grad
    # u = mean + std * z with z drawn by torch.randn from the generator
    z = torch.randn(10, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    np.testing.assert_allclose(a1.numpy(), -x.numpy() @ K_TRUE.T + STD_TRUE * z.numpy(), rtol=1e-12)
    torch.testing.assert_close(lp1, pol.log_prob(x, a1).detach())


@pytest.mark.parametrize("make", [lambda: _policy("std"), lambda: _policy("log_std"),
                                  lambda: MLPGaussianPolicy(3, 2, hidden=(8,), log_std0=-0.5, dtype=torch.float64)])
def test_sample_and_log_prob_at_mean_are_act_and_log_prob_bit_for_bit(make):
    """The collector's split of ``act`` (sample now, log-densities for the whole batch later) changes no number."""
    pol = make()
    x = torch.randn(7, 5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u, mu = pol.sample(x, torch.Generator().manual_seed(3))
    u_act, lp_act = pol.act(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(u, u_act) and torch.equal(mu, pol.mean(x).detach())
    with torch.no_grad():
        lp = pol.log_prob(x, u)
        assert torch.equal(pol.log_prob_at_mean(mu, u), lp) and torch.equal(lp_act, lp)
        assert torch.equal(pol.distribution_at_mean(mu).log_prob(u), lp)
        # the entropy does not depend on the state: one number, that of every π(·|x)
        torch.testing.assert_close(pol.entropy().expand(7, 5), pol(x).entropy(), rtol=0, atol=1e-15)
    # eq. (4.26) by hand, per sample
    s = pol.std
    by_hand = (-0.5 * ((u - mu).numpy() / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)).sum(-1)
    np.testing.assert_allclose(pol.log_prob_at_mean(mu, u).detach().numpy(), by_hand, rtol=1e-13)


def test_flat_params_roundtrip_and_ordering():
    pol = _policy("std")
    theta = pol.flat_params()
    np.testing.assert_array_equal(theta, np.concatenate([K_TRUE.ravel(), STD_TRUE]))
    new = np.arange(8, dtype=float) + 1
    pol.set_flat_params(new)
    np.testing.assert_array_equal(pol.K, new[:6].reshape(2, 3))
    np.testing.assert_array_equal(pol.std, new[6:])
    pol_log = _policy("log_std")
    np.testing.assert_allclose(pol_log.flat_params()[6:], np.log(STD_TRUE))
    pol.set_params(std=0.5)
    np.testing.assert_array_equal(pol.std, [0.5, 0.5])
    np.testing.assert_array_equal(pol.K, new[:6].reshape(2, 3))
    assert pol.is_linear and not MLPGaussianPolicy(3, 2).is_linear


def test_sample_fisher_matches_block_formula_and_lqr_fisher():
    n, m = 2, 2
    S = np.array([[1.5, 0.4], [0.4, 0.6]])
    K = np.array([[0.3, -0.2], [0.1, 0.5]])
    s = np.array([0.5, 1.2])
    pol = LinearGaussianPolicy(n, m, K0=K, std0=s)
    N = 100_000
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N, n, generator=g, dtype=torch.float64) @ torch.as_tensor(np.linalg.cholesky(S).T)
    u, _ = pol.act(x, generator=g)
    params = {k: v.detach() for k, v in pol.named_parameters()}

    def logp(p, xi, ui):
        return functional_call(pol, p, (xi,)).log_prob(ui)

    scores = vmap(grad(logp), in_dims=(None, 0, 0))(params, x, u)
    score = torch.cat([scores["gain"].reshape(N, -1), scores["raw_std"]], dim=1).numpy()
    F_hat = score.T @ score / N
    F = np.zeros((m * n + m, m * n + m))
    for i in range(m):
        F[i * n:(i + 1) * n, i * n:(i + 1) * n] = S / s[i] ** 2  # F_KK = S / sigma_i^2 per output row
        F[m * n + i, m * n + i] = 2 / s[i] ** 2  # F_ss = 2 / sigma^2
    assert np.abs(F_hat - F).max() < 0.04 * np.abs(F).max()
    # the same ordering and formula as pgcontrol.lqr.fisher: a plant whose states are all N(0, S)
    plant = LinearGaussianPlant(A=np.zeros((n, n)), B=np.zeros((n, m)), Q=np.eye(n), R=np.eye(m), W=S,
                                x0_cov=S, gamma=0.5)
    np.testing.assert_allclose(lqr.fisher(plant, pol.K, pol.std), F, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ MLP policy


def test_mlp_policy_init_and_distribution():
    pol = MLPGaussianPolicy(5, 3, hidden=(64, 64), generator=torch.Generator().manual_seed(0))
    assert pol.dtype == torch.float32
    lin = [mod for mod in pol.mean_net if isinstance(mod, torch.nn.Linear)]
    assert [tuple(layer.weight.shape) for layer in lin] == [(64, 5), (64, 64), (3, 64)]
    eye = lambda k: torch.eye(k)  # noqa: E731
    torch.testing.assert_close(lin[0].weight.T @ lin[0].weight, 2.0 * eye(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(lin[1].weight @ lin[1].weight.T, 2.0 * eye(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(lin[2].weight @ lin[2].weight.T, 1e-4 * eye(3), atol=1e-7, rtol=0)
    assert all(torch.all(layer.bias == 0) for layer in lin)
    x = torch.randn(1000, 5, generator=torch.Generator().manual_seed(1))
    dist = pol(x)
    assert dist.batch_shape == (1000,) and dist.event_shape == (3,)
    assert dist.mean.std().item() < 0.05
    np.testing.assert_allclose(pol.std, np.ones(3))
    mu = dist.mean.detach().numpy().astype(float)
    u = np.random.default_rng(2).normal(size=(1000, 3))
    lp = pol.log_prob(x, u).detach().numpy()
    expected = -np.sum((u - mu) ** 2 / 2 + 0.5 * math.log(2 * math.pi), axis=1)
    np.testing.assert_allclose(lp, expected, rtol=1e-5)
    a1, _ = pol.act(x[:3], generator=torch.Generator().manual_seed(3))
    a2, _ = pol.act(x[:3], generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2) and a1.dtype == torch.float32
    with torch.no_grad():
        pol.raw_std.fill_(-100.0)
    np.testing.assert_allclose(pol(x).stddev.detach().numpy(), 1e-3, rtol=1e-6)
    assert torch.isfinite(pol.log_prob(x, u)).all()


def test_make_policy():
    assert isinstance(make_policy("linear", 2, 1, std0=0.3), LinearGaussianPolicy)
    assert isinstance(make_policy("mlp", 2, 1, hidden=(8,)), MLPGaussianPolicy)
    with pytest.raises(ValueError, match="unknown policy kind 'cnn'"):
        make_policy("cnn", 2, 1)


# ---------------------------------------------------------------------- critics


def test_shape_errors_name_the_expected_shape():
    pol = _policy()
    with pytest.raises(ValueError, match=r"obs has the wrong shape: expected \(\.\.\., obs_dim\) = \(\.\.\., 3\)"):
        pol(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"act has the wrong shape: expected \(\.\.\., act_dim\) = \(\.\.\., 2\)"):
        pol.log_prob(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="does not broadcast"):
        pol.log_prob(np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(PolicyError, match=r"K has the wrong shape: expected \(act_dim, obs_dim\) = \(2, 3\)"):
        pol.set_params(K=np.zeros((3, 2)))
    with pytest.raises(PolicyError, match=r"std has the wrong shape: expected a scalar or \(act_dim,\) = \(2,\)"):
        pol.set_params(std=[1.0, 1.0, 1.0])
    with pytest.raises(PolicyError, match=r"vec has the wrong shape: expected \(8,\)"):
        pol.set_flat_params(np.zeros(7))
    with pytest.raises(PolicyError, match="non-negative"):
        pol.set_params(std=-1.0)
    with pytest.raises(PolicyError, match="log_std"):
        _policy("log_std").set_params(std=0.0)
    with pytest.raises(PolicyError, match="non-finite"):
        pol(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(PolicyError, match="std_param"):
        LinearGaussianPolicy(3, 2, std_param="sigma")
    with pytest.raises(PolicyError, match="min_std"):
        LinearGaussianPolicy(3, 2, min_std=0.0)
    with pytest.raises(PolicyError, match="obs_dim must be an integer >= 1"):
        MLPGaussianPolicy(0, 2)
    with pytest.raises(PolicyError, match=r"P has the wrong shape: expected \(obs_dim, obs_dim\) = \(3, 3\)"):
        QuadraticValue(3).set_params(np.eye(2))
    with pytest.raises(PolicyError, match=r"targets has the wrong shape: expected obs.shape\[:-1\] = \(10,\)"):
        QuadraticValue(3).fit_least_squares(np.zeros((10, 3)), np.zeros(9))
    with pytest.raises(ValueError, match=r"\(\.\.\., obs_dim\) = \(\.\.\., 4\)"):
        MLPValue(4)(np.zeros((3, 5)))
