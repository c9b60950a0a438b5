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


# ------------------------------------------------- the learners' critic updates: one interface


def test_gradient_steps_take_the_steps_of_4_20_in_order_and_report_the_loss_after():
    """One epoch, whole batch, no generator: one SGD step on ½ mean (V − y)², the samples in order."""
    from pgcontrol.critics import GradientSteps

    torch.manual_seed(0)
    obs, y = torch.randn(12, 3, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    V, W = MLPValue(3, dtype=torch.float64), MLPValue(3, dtype=torch.float64)
    W.load_state_dict(V.state_dict())
    fit = GradientSteps(V, torch.optim.SGD(V.parameters(), lr=0.1))
    assert not fit.closed_form and fit.param_groups[0]["lr"] == 0.1
    loss_after = fit.fit(obs, y)
    loss = 0.5 * (W(obs) - y).pow(2).mean()  # W: V before the step
    grads = torch.autograd.grad(loss, list(W.parameters()))
    for p, q, g in zip(V.parameters(), W.parameters(), grads):
        torch.testing.assert_close(p, q - 0.1 * g, rtol=0, atol=1e-15)
    with torch.no_grad():
        assert loss_after == pytest.approx(float(0.5 * (V(obs) - y).pow(2).mean()), rel=1e-12)
    assert loss_after < loss.item()
    # several epochs of minibatches drive the loss down; the generator fixes their order
    runs = []
    for _ in range(2):
        U = MLPValue(3, dtype=torch.float64)
        U.load_state_dict(W.state_dict())
        steps = GradientSteps(U, torch.optim.Adam(U.parameters(), lr=1e-2), epochs=20, minibatch=4,
                              generator=torch.Generator().manual_seed(5))
        runs.append(steps.fit(obs, y))
    assert runs[0] == runs[1] < loss.item() / 2


def test_least_squares_step_reports_the_loss_of_the_minimiser():
    from pgcontrol.critics import LeastSquaresStep

    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.normal(size=(40, 2)))
    y = torch.as_tensor(rng.normal(size=40))
    V = QuadraticValue(2)
    fit = LeastSquaresStep(V, 1.0)
    assert fit.closed_form and fit.param_groups == () and fit.state_dict() is None
    loss = fit.fit(x, y)
    ref = QuadraticValue(2).fit_least_squares(x.numpy(), y.numpy())
    np.testing.assert_allclose(V.weight.detach().numpy(), ref.weight.detach().numpy(), atol=1e-8)
    assert loss == pytest.approx((0.5 * (ref(x) - y).pow(2).mean()).item(), rel=1e-8)


class _Recorder:
    """Stands in for a learner's ``critic_fit``: records each call (and the learner's policy at that time)."""

    def __init__(self, inner, calls, policy):
        self.inner, self.calls, self.policy = inner, calls, policy
        self.closed_form, self.param_groups = inner.closed_form, inner.param_groups

    def fit(self, obs, targets):
        self.calls.append(("fit", obs.shape[0], targets.shape, self.policy.K.copy()))
        return self.inner.fit(obs, targets)

    def state_dict(self):
        return self.inner.state_dict()


@pytest.mark.parametrize("algo, config, calls_per_update, closed_form", [
    ("vpg", dict(estimator="gae", baseline="value", critic="quadratic", critic_optimizer="lstsq"), 1, True),
    ("vpg", dict(estimator="gae", baseline="value", critic="mlp", critic_optimizer="adam"), 1, False),
    ("trpo", dict(critic_optimizer="adam", critic_epochs=2), 1, False),
    ("npg", dict(), 1, True),
    ("ac", dict(critic_steps=3), 3, True),
    ("ac", dict(critic="mlp", critic_optimizer="adam", critic_steps=2), 2, False),
    ("ppo", dict(), 1, True),
])
def test_every_learner_updates_its_critic_through_critic_fit(algo, config, calls_per_update, closed_form):
    """VPG, NPG, TRPO, AC and PPO call ``critic_fit.fit(obs, targets)`` on the batch's valid samples, whatever
    the critic's update; VPG/NPG/TRPO fit a closed-form critic before the policy step, a gradient one after."""
    from pgcontrol import plants
    from pgcontrol.algos import get_algorithm
    from pgcontrol.rollout import Collector
    from pgcontrol.envs import make_vec_env
    from pgcontrol.policies import LinearGaussianPolicy

    p = plants.make("double-integrator")
    cls, _ = get_algorithm(algo)
    extra = dict(num_envs=4, adaptive=False) if algo != "ac" else dict(num_envs=4, n_steps=16, adaptive=False)
    if algo == "ppo":
        extra.update(n_steps=32)
    cfg = cls.Config(**extra, **config)
    pol = LinearGaussianPolicy(p.n, p.m, K0=[[0.3, 0.9]], std0=0.4)
    learner = cls(pol, cfg, gamma=p.gamma, obs_dim=p.n, device="cpu")
    calls = []
    learner.critic_fit = _Recorder(learner.critic_fit, calls, pol)
    spec = learner.collect_spec()
    batch = Collector(make_vec_env("double-integrator", 4), pol, "cpu", seed=0).collect(**spec)
    K_before = pol.K.copy()
    out = learner.update(batch, 0)
    assert len(calls) == calls_per_update, calls
    n_valid = int(batch.valid.sum())
    assert all(c[1] == n_valid and c[2] == (n_valid,) for c in calls)
    assert not np.array_equal(pol.K, K_before)  # the policy moved
    if algo in ("vpg", "npg", "trpo"):  # the closed form first, on this batch; a gradient critic after the step
        np.testing.assert_array_equal(calls[0][3], K_before if closed_form else pol.K)
    assert np.isfinite(out["loss_value"])
