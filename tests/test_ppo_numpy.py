"""PPO's NumPy minibatch step (pgcontrol.algos.ppo_numpy) against autograd and torch's Adam: the same
gradients, the same steps, the same metrics, and the same checkpointed state; which learners take it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from pgcontrol.algos.ppo import PPO, PPOConfig
from pgcontrol.algos.ppo_numpy import NumpyStep
from pgcontrol.critics import QuadraticValue
from pgcontrol.errors import ConfigError
from pgcontrol.policies import LinearGaussianPolicy, MLPGaussianPolicy

OBS, ACT, N = 5, 3, 96


def _learner(backend, *, dtype=torch.float64, hidden=(16, 16), activation="tanh", log_std0=0.0, min_std=1e-3,
             seed=0, **cfg):
    torch.manual_seed(seed)
    pol = MLPGaussianPolicy(OBS, ACT, hidden=hidden, activation=activation, log_std0=log_std0, min_std=min_std,
                            ortho_init=False, dtype=dtype)
    config = PPOConfig(backend=backend, hidden=hidden, activation=activation, ortho_init=False, **cfg)
    return PPO(pol, config, gamma=0.99, obs_dim=OBS, device="cpu")


def _data(ppo, seed=1):
    """A minibatch source whose ratios spread well beyond 1 ± ε and whose values sit off the returns."""
    g = torch.Generator().manual_seed(seed)
    dtype = ppo.policy.dtype
    obs = torch.randn(N, OBS, generator=g, dtype=dtype)
    with torch.no_grad():
        actions = ppo.policy(obs).mean + torch.randn(N, ACT, generator=g, dtype=dtype)
        logp_old = ppo.policy.log_prob(obs, actions) + 0.4 * torch.randn(N, generator=g, dtype=dtype)
        values = ppo.critic(obs)
    adv = torch.randn(N, generator=g, dtype=dtype)
    returns = values + torch.randn(N, generator=g, dtype=dtype)
    return obs, actions, logp_old, adv, returns, values


def _grads(ppo):
    return np.concatenate([p.grad.numpy().ravel() for p in ppo.opt.param_groups[0]["params"] + ppo.opt.param_groups[1]["params"]])


def _params(ppo):
    return np.concatenate([p.detach().numpy().ravel() for p in (*ppo.policy.parameters(), *ppo.critic.parameters())])


CASES = [dict(activation=a, clip_vloss=c, ent_coef=e, norm_adv=n)
         for a, c, e, n in itertools.product(("tanh", "relu"), (False, True), (0.0, 0.01), (True, False))]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_the_gradient_is_autograds(case):
    """One minibatch without the norm clip: every parameter's gradient equals autograd's of the torch loss."""
    torch_ppo, numpy_ppo = (_learner(b, max_grad_norm=None, vf_coef=0.7, **case) for b in ("torch", "numpy"))
    data = _data(torch_ppo)
    idx = torch.arange(0, N, 2)
    stats_t = torch_ppo.minibatch_step(idx, *data)
    stats_n = NumpyStep(numpy_ppo.policy, numpy_ppo.critic, numpy_ppo.opt, numpy_ppo.cfg, *data).step(idx.numpy())
    g_t, g_n = _grads(torch_ppo), _grads(numpy_ppo)
    assert np.count_nonzero(g_t) > 0.9 * g_t.size  # a gradient nearly everywhere to compare (ReLU zeroes some)
    np.testing.assert_allclose(g_n, g_t, rtol=1e-10, atol=1e-12 * np.abs(g_t).max())
    np.testing.assert_allclose(stats_n, stats_t, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(_params(numpy_ppo), _params(torch_ppo), rtol=1e-10, atol=1e-14)  # Adam's first step


def test_the_clipped_samples_do_not_pull():
    """The batch has samples on both sides of the clip; with all of them clipped the policy's gradient is 0."""
    torch_ppo, numpy_ppo = (_learner(b, max_grad_norm=None, norm_adv=False) for b in ("torch", "numpy"))
    obs, actions, logp_old, adv, returns, values = _data(torch_ppo)
    with torch.no_grad():
        logp = torch_ppo.policy.log_prob(obs, actions)
    adv = torch.where(logp > logp_old, 1.0, -1.0).to(adv.dtype)  # r > 1 with Â > 0, r < 1 with Â < 0
    logp_old = logp - 0.5 * torch.sign(adv)  # every ratio 1.65 or 0.61: outside [0.8, 1.2] on the stopped side
    NumpyStep(numpy_ppo.policy, numpy_ppo.critic, numpy_ppo.opt, numpy_ppo.cfg,
              obs, actions, logp_old, adv, returns, values).step(np.arange(N))
    policy_grad = np.concatenate([p.grad.numpy().ravel() for p in numpy_ppo.policy.parameters()])
    assert np.all(policy_grad == 0)
    assert np.any(numpy_ppo.critic.net[0].weight.grad.numpy() != 0)


def test_the_std_floor_stops_the_gradient_of_log_sigma():
    """σ = max(e^{log σ}, σ_min): the dimension held at the floor gets no gradient, the others autograd's."""
    kw = dict(max_grad_norm=None, ent_coef=0.1, log_std0=[-9.0, 0.0, -0.5], min_std=1e-3)
    torch_ppo, numpy_ppo = (_learner(b, **kw) for b in ("torch", "numpy"))
    data = _data(torch_ppo)
    torch_ppo.minibatch_step(torch.arange(N), *data)
    NumpyStep(numpy_ppo.policy, numpy_ppo.critic, numpy_ppo.opt, numpy_ppo.cfg, *data).step(np.arange(N))
    g_t, g_n = torch_ppo.policy.raw_std.grad.numpy(), numpy_ppo.policy.raw_std.grad.numpy()
    assert g_n[0] == 0 and g_t[0] == 0 and np.all(g_n[1:] != 0)
    np.testing.assert_allclose(g_n, g_t, rtol=1e-8)  # log π ~ 1e6 at the floor: its rounding is 1e6 times larger


@settings(max_examples=15, deadline=None)
@given(hidden=st.sampled_from([(), (8,), (16, 16), (7, 9, 5)]), max_grad_norm=st.sampled_from([None, 0.05, 0.5, 100.0]),
       epochs=st.integers(1, 4), minibatches=st.integers(1, 5), lr=st.sampled_from([1e-4, 3e-3, 3e-2]),
       seed=st.integers(0, 2**16))
def test_whole_updates_match_the_torch_path(hidden, max_grad_norm, epochs, minibatches, lr, seed):
    """Several epochs of shuffled minibatches (clip, Adam, its bias correction): parameters, Adam's state and
    the metrics agree with the autograd path to float64 rounding."""
    kw = dict(hidden=hidden, max_grad_norm=max_grad_norm, update_epochs=epochs, num_minibatches=minibatches, lr=lr,
              clip_vloss=True, ent_coef=0.01, seed=seed % 7)
    learners = [_learner(b, **kw) for b in ("torch", "numpy")]
    data = _data(learners[0], seed=seed)
    for ppo in learners:
        ppo.advantages = lambda batch: (data[5], data[3], data[4])
        batch = type("B", (), dict(valid=torch.ones(N, dtype=torch.bool), obs=data[0], actions=data[1], logp=data[2]))
        ppo.out = ppo.update(batch, 0)
    (t, n) = learners
    np.testing.assert_allclose(_params(n), _params(t), rtol=1e-9, atol=1e-12)
    for s_t, s_n in zip(t.opt.state_dict()["state"].values(), n.opt.state_dict()["state"].values()):
        assert float(s_t["step"]) == float(s_n["step"]) == epochs * min(minibatches, N)
        np.testing.assert_allclose(s_n["exp_avg_sq"].numpy(), s_t["exp_avg_sq"].numpy(), rtol=1e-8, atol=1e-20)
    assert t.out.keys() == n.out.keys()
    np.testing.assert_allclose([n.out[k] for k in t.out], [t.out[k] for k in t.out], rtol=1e-8, atol=1e-12)


def test_float32_agrees_to_single_precision():
    learners = [_learner(b, dtype=torch.float32, update_epochs=3, num_minibatches=3) for b in ("torch", "numpy")]
    data = _data(learners[0])
    for ppo in learners:
        ppo.advantages = lambda batch: (data[5], data[3], data[4])
        batch = type("B", (), dict(valid=torch.ones(N, dtype=torch.bool), obs=data[0], actions=data[1], logp=data[2]))
        ppo.update(batch, 0)
        assert all(p.dtype == torch.float32 for p in ppo.policy.parameters())
    np.testing.assert_allclose(_params(learners[1]), _params(learners[0]), rtol=2e-4, atol=1e-5)


def test_auto_takes_numpy_for_mlps_on_the_cpu_and_torch_otherwise():
    assert _learner("auto").numpy and not _learner("torch").numpy
    lin = LinearGaussianPolicy(2, 1, K0=[[0.3, 0.9]], std0=0.4)
    quad = dict(critic="quadratic", critic_optimizer="lstsq")
    assert not PPO(lin, PPOConfig(**quad), gamma=0.99, obs_dim=2, device="cpu").numpy
    mlp = MLPGaussianPolicy(2, 1)
    assert not PPO(mlp, PPOConfig(critic="quadratic"), gamma=0.99, obs_dim=2, device="cpu",
                   critic=QuadraticValue(2)).numpy
    with pytest.raises(ConfigError, match="backend.*LinearGaussianPolicy"):
        PPO(lin, PPOConfig(backend="numpy", **quad), gamma=0.99, obs_dim=2, device="cpu")
    with pytest.raises(ConfigError, match="backend"):
        PPOConfig(backend="jax")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_takes_the_torch_path():
    pol = MLPGaussianPolicy(2, 1).cuda()
    assert not PPO(pol, PPOConfig(), gamma=0.99, obs_dim=2, device="cuda").numpy
