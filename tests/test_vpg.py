"""VPG: the REINFORCE estimators (3.15), (3.19) against the exact gradient of pgcontrol.lqr, and the surrogate (3.26)."""

import numpy as np
import pytest

from _lq import episodes, per_episode_cost_gradients
from pgcontrol import lqr
from pgcontrol.algos.vpg import VPG, VPGConfig
from pgcontrol.rollout import pg_advantages


@pytest.mark.parametrize("name, K, std, n", [("scalar-lqg", [[0.5]], 0.3, 20000),
                                             ("double-integrator", [[0.3, 0.9]], 0.4, 6000)])
def test_reinforce_estimators_are_unbiased_and_baselines_reduce_variance(name, K, std, n):
    p, pol, batch = episodes(name, K, std, n)
    dK, ds = lqr.policy_gradient(p, K, std, horizon=p.horizon)
    exact = np.concatenate([dK.ravel(), ds])
    variances = {}
    for est, base in [("total", "none"), ("rtg", "none"), ("rtg", "mean")]:
        psi, _ = pg_advantages(batch, estimator=est, baseline=base, gamma=p.gamma)
        g = per_episode_cost_gradients(pol, batch, psi)
        mean, se = g.mean(0), g.std(0) / np.sqrt(n)
        assert np.all(np.abs(mean - exact) < 4 * se), (est, base, mean, exact, se)
        variances[(est, base)] = g.var(0).sum()
    assert variances[("total", "none")] > variances[("rtg", "none")] > variances[("rtg", "mean")]


def test_vpg_surrogate_gradient_is_the_estimator():
    """The autograd gradient of the VPG loss (3.26) is -ĝ, the mean of the per-episode terms."""
    p, pol, batch = episodes("double-integrator", [[0.3, 0.9]], 0.4, 64)
    vpg = VPG(pol, VPGConfig(num_envs=64, adaptive=False), gamma=p.gamma, obs_dim=2, device="cpu")  # σ learned
    _, psi = vpg.gradient_estimate(batch)
    auto = np.concatenate([pol.gain.grad.numpy().ravel(), pol.raw_std.grad.numpy()])
    np.testing.assert_allclose(auto, per_episode_cost_gradients(pol, batch, psi).mean(0), rtol=1e-8)


def test_n_steps_collects_pieces_of_episodes():
    """n_steps: num_envs × n_steps steps an iteration, episodes running on (sb3-contrib's TRPO batches)."""
    from pgcontrol.algos.npg import NPGConfig
    from pgcontrol.config import ConfigError, steps_per_iteration
    from pgcontrol.policies import LinearGaussianPolicy
    from pgcontrol.train import train

    cfg = NPGConfig(num_envs=4, n_steps=30, iterations=3, estimator="gae", baseline="value", discount_weighting=False)
    hist = train("trpo", "double-integrator", config=cfg, seed=0, progress=False)
    assert [h["steps"] for h in hist] == [120, 240, 360]  # the horizon is 200: no episode ended yet
    assert "return_mean" not in hist[0] and steps_per_iteration("trpo", cfg, "double-integrator") == 120
    policy = LinearGaussianPolicy(2, 1, K0=[[0.3, 0.9]], std0=0.4)
    assert VPG(policy, VPGConfig(n_steps=30), gamma=0.99, obs_dim=2, device="cpu").collect_spec() == {"n_steps": 30}
    with pytest.raises(ConfigError, match="n_steps"):
        VPGConfig(n_steps=0)
    with pytest.raises(ConfigError, match="total"):
        VPGConfig(n_steps=16, estimator="total", baseline="mean")



def test_lambda_value_targets_are_ppos_lambda_returns():
    """value_target="lambda": the critic regresses on Â^GAE + V (6.46), PPO's targets, from the same critic."""
    import torch

    from pgcontrol.algos.ppo import PPO, PPOConfig
    from pgcontrol.config import ConfigError

    p, pol, batch = episodes("double-integrator", [[0.3, 0.9]], 0.4, 16)
    m = batch.valid
    cfg = VPGConfig(num_envs=16, estimator="gae", baseline="value", critic="mlp", value_target="lambda", lam=0.9)
    torch.manual_seed(0)
    vpg = VPG(pol, cfg, gamma=p.gamma, obs_dim=2, device="cpu")
    ppo = PPO(pol, PPOConfig(lam=0.9), gamma=p.gamma, obs_dim=2, device="cpu", critic=vpg.critic)
    values, targets = vpg._value_targets(batch)
    _, _, returns = ppo.advantages(batch)
    torch.testing.assert_close(targets[m].to(returns.dtype), returns)
    rtg = VPG(pol, cfg.__class__(**{**cfg.__dict__, "value_target": "rtg"}), gamma=p.gamma, obs_dim=2, device="cpu",
              critic=vpg.critic)._value_targets(batch)[1]
    assert not torch.allclose(rtg[m].to(returns.dtype), returns)  # the two targets differ
    with pytest.raises(ConfigError, match="value_target"):
        VPGConfig(value_target="td")


def test_normalize_advantage_standardises_the_weights_of_valid_steps():
    import torch

    p, pol, batch = episodes("double-integrator", [[0.3, 0.9]], 0.4, 16)
    m = batch.valid
    weights = []
    for norm in (False, True):
        cfg = VPGConfig(num_envs=16, estimator="gae", baseline="value", critic="mlp", normalize_advantage=norm)
        torch.manual_seed(0)
        weights.append(VPG(pol, cfg, gamma=p.gamma, obs_dim=2, device="cpu").gradient_estimate(batch)[1])
    raw, psi = weights
    torch.testing.assert_close(psi[m], (raw[m] - raw[m].mean()) / (raw[m].std() + 1e-8))
    assert abs(float(psi[m].mean())) < 1e-9 and float(psi[m].std()) == pytest.approx(1.0) and not psi[~m].any()
