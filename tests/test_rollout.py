"""Returns and advantages against hand-computed values (SB3 `test_gae` style), and the
collector's NEXT_STEP autoreset bookkeeping on the real batched LQ vector env."""

import gymnasium
import numpy as np
import pytest
import torch

from pgcontrol import rollout
from pgcontrol.policies import LinearGaussianPolicy
from pgcontrol.rollout import Batch, Collector

G, LAM = 0.9, 0.5


def hand_batch(terminated_at_1=False):
    """One env, 4 steps: episode A = steps 0-1 (step 1 truncated, or terminated), step 2 is the
    NEXT_STEP reset transition (invalid), step 3 starts episode B and the batch ends mid-episode."""
    col = lambda *v: torch.tensor(v, dtype=torch.float64)[:, None]  # noqa: E731
    b = Batch(
        obs=torch.zeros(4, 1, 1), actions=torch.zeros(4, 1, 1), logp=torch.zeros(4, 1),
        rewards=col(1.0, 2.0, 0.0, 4.0), next_obs=torch.zeros(4, 1, 1),
        terminated=torch.tensor([[False], [terminated_at_1], [False], [False]]),
        truncated=torch.tensor([[False], [not terminated_at_1], [False], [False]]),
        valid=torch.tensor([[True], [True], [False], [True]]),
        t_in_episode=torch.tensor([[0], [1], [0], [0]]),
    )
    values = col(0.5, 0.6, 0.0, 0.8)
    # V(next obs): V(x1)=0.6; final obs of the truncated episode 0.9 (0 if terminated);
    # the reset step's next obs is episode B's first state (0.8); batch end bootstraps V=1.0
    next_values = col(0.6, 0.0 if terminated_at_1 else 0.9, 0.8, 1.0)
    return b, values, next_values


def test_td_and_gae_by_hand_with_truncation():
    b, v, nv = hand_batch()
    d0 = 1 + G * 0.6 - 0.5  # 1.04
    d1 = 2 + G * 0.9 - 0.6  # 2.21  (truncation bootstraps with V(final obs))
    d3 = 4 + G * 1.0 - 0.8  # 4.10  (batch end bootstraps)
    delta = rollout.td_residuals(b.rewards, v, nv, G)
    assert delta[[0, 1, 3], 0].tolist() == pytest.approx([d0, d1, d3])
    adv = rollout.gae(b.rewards, v, nv, b.dones, G, LAM)
    assert adv[[0, 1, 3], 0].tolist() == pytest.approx([d0 + G * LAM * d1, d1, d3])


def test_termination_does_not_bootstrap():
    b, v, nv = hand_batch(terminated_at_1=True)
    adv = rollout.gae(b.rewards, v, nv, b.dones, G, LAM)
    d1 = 2 - 0.6
    assert adv[1, 0].item() == pytest.approx(d1)
    rtg = rollout.reward_to_go(b.rewards, b.dones, nv, G, b.valid)
    assert rtg[[0, 1], 0].tolist() == pytest.approx([1 + G * 2, 2])


def test_reward_to_go_and_total_return_by_hand():
    b, v, nv = hand_batch()
    rtg = rollout.reward_to_go(b.rewards, b.dones, nv, G, b.valid)
    assert rtg[:, 0].tolist() == pytest.approx([1 + G * (2 + G * 0.9), 2 + G * 0.9, 0.0, 4 + G * 1.0])
    mc = rollout.reward_to_go(b.rewards, b.dones, torch.zeros_like(nv), G, b.valid)  # no critic: plain MC
    assert mc[:, 0].tolist() == pytest.approx([1 + G * 2, 2, 0, 4])
    tot = rollout.total_return(b.rewards, b.dones, b.t_in_episode, G, b.valid)
    assert tot[:, 0].tolist() == pytest.approx([1 + G * 2, 1 + G * 2, 0, 4])


def test_backward_scan_numpy_and_torch_paths_agree_bit_for_bit():
    """The CPU (NumPy) loop and the device (torch) loop of the recursion y_t = b_t + d_t y_{t+1} give the same bits."""
    gen = torch.Generator().manual_seed(3)
    b = torch.randn(40, 7, generator=gen, dtype=torch.float64)
    d = G * (torch.rand(40, 7, generator=gen) > 0.1).to(torch.float64)
    y = rollout.backward_scan(b, d)
    assert torch.equal(y, rollout._backward_scan_torch(b, d))
    # the definition, one column by hand
    col = [0.0]
    for t in range(39, -1, -1):
        col.insert(0, b[t, 2].item() + d[t, 2].item() * col[0])
    assert y[:, 2].tolist() == pytest.approx(col[:-1], rel=1e-12)


def test_lambda_limits_and_n_step():
    b, v, nv = hand_batch()
    delta = rollout.td_residuals(b.rewards, v, nv, G)
    np.testing.assert_allclose(rollout.gae(b.rewards, v, nv, b.dones, G, 0.0), delta)  # λ=0: TD(0) (4.21)
    rtg = rollout.reward_to_go(b.rewards, b.dones, nv, G)
    np.testing.assert_allclose(rollout.gae(b.rewards, v, nv, b.dones, G, 1.0)[b.valid], (rtg - v)[b.valid])  # (6.41)
    n1 = rollout.n_step_advantages(b.rewards, v, nv, b.dones, G, 1)
    np.testing.assert_allclose(n1, delta)
    n2 = rollout.n_step_advantages(b.rewards, v, nv, b.dones, G, 2)
    # (6.42): r0 + γ r1 + γ² V(final obs of the truncated episode) − V(x0)
    assert n2[0, 0].item() == pytest.approx(1 + G * 2 + G**2 * 0.9 - 0.5)
    with pytest.raises(ValueError):
        rollout.gae(b.rewards, v, nv, b.dones, G, 1.5)


def test_gae_long_random_batch_matches_definition():
    """GAE = (1-λ) Σ λ^{n-1} A^(n) (6.46), inside one long episode."""
    gen = torch.Generator().manual_seed(0)
    T = 30
    r, v, nv = (torch.randn(T, 2, generator=gen, dtype=torch.float64) for _ in range(3))
    nv[:-1] = v[1:]
    dones = torch.zeros(T, 2, dtype=torch.bool)
    adv = rollout.gae(r, v, nv, dones, G, LAM)
    # the infinite mixture truncates at the batch end, where A^(n) = A^(T-t) for all larger n
    t = 3
    weights = [(1 - LAM) * LAM ** (n - 1) for n in range(1, T - t)]
    mix = sum(w * rollout.n_step_advantages(r, v, nv, dones, G, n)[t] for w, n in zip(weights, range(1, T - t)))
    mix = mix + LAM ** (T - t - 1) * rollout.n_step_advantages(r, v, nv, dones, G, T - t)[t]
    np.testing.assert_allclose(adv[t], mix, rtol=1e-10)


def test_leave_one_out_baseline():
    ret = torch.tensor([[1.0, 2.0, 6.0]], dtype=torch.float64)
    valid = torch.ones(1, 3, dtype=torch.bool)
    b = rollout.time_baseline(ret, torch.zeros(1, 3, dtype=torch.long), valid)
    assert b[0].tolist() == pytest.approx([4.0, 3.5, 1.5])


def test_time_baseline_whole_episodes_is_the_masked_formula_bit_for_bit():
    """The all-valid shortcut gives exactly the numbers of the general (masked) formula."""
    g = torch.Generator().manual_seed(0)
    ret = torch.randn(6, 9, generator=g, dtype=torch.float64) * 10
    tau = torch.arange(6)[:, None].expand(6, 9)
    fast = rollout.time_baseline(ret, tau, torch.ones(6, 9, dtype=torch.bool))
    v = torch.ones(6, 9, dtype=torch.float64)
    s, c = (ret * v).sum(1, keepdim=True), v.sum(1, keepdim=True)
    assert torch.equal(fast, (s - ret * v) / (c - v).clamp_min(1.0) * v)
    # leave-one-out: the mean of the other N - 1 returns at the same τ
    np.testing.assert_allclose(fast[2, 4], (ret[2].sum() - ret[2, 4]) / 8, rtol=1e-14)
    assert rollout.time_baseline(ret[:, :1], tau[:, :1], torch.ones(6, 1, dtype=torch.bool)).eq(0).all()
    # a masked step changes the others' baseline and gets none itself
    valid = torch.ones(6, 9, dtype=torch.bool)
    valid[0, 0] = False
    b = rollout.time_baseline(ret, tau, valid)
    assert b[0, 0] == 0 and torch.isclose(b[0, 1], (ret[0, 2:].sum()) / 7)


def test_discounts_are_powers_of_gamma():
    tau = torch.tensor([[0, 3], [1, 0], [2, 1]])
    assert torch.equal(rollout.discounts(0.9, tau), 0.9 ** tau.double())
    assert rollout.discounts(0.9, tau[:0]).shape == (0, 2)


def _vec(num_envs, **kw):
    import pgcontrol.envs  # noqa: F401

    return gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=num_envs,
                              vectorization_mode="vector_entry_point", **kw)


def test_collector_masks_next_step_resets():
    envs = _vec(2, plant="scalar-lqg", max_episode_steps=3)
    pol = LinearGaussianPolicy(1, 1, K0=[[0.5]], std0=0.1)
    col = Collector(envs, pol, "cpu", seed=0)
    b = col.collect(8)
    assert b.truncated[:, 0].tolist() == [False, False, True, False, False, False, True, False]
    assert b.valid[:, 0].tolist() == [True, True, True, False, True, True, True, False]
    assert b.t_in_episode[:, 0].tolist() == [0, 1, 2, 0, 0, 1, 2, 0]
    # the reset transition's next obs is the new episode's first obs
    np.testing.assert_array_equal(b.next_obs[3], b.obs[4])
    assert b.rewards[3].abs().sum() == 0
    assert len(b.episode_returns) == 4 and b.episode_lengths == [3, 3, 3, 3]
    # continuing collection picks up where it stopped
    b2 = col.collect(2)
    assert b2.t_in_episode[:, 0].tolist() == [0, 1] and b2.valid.all()


def test_collect_episodes_and_determinism():
    envs = _vec(3, plant="double-integrator", max_episode_steps=5)
    pol = LinearGaussianPolicy(2, 1, K0=[[0.1, 0.5]], std0=0.3)
    b1 = Collector(envs, pol, "cpu", seed=7).collect(episodes=True)
    b2 = Collector(envs, pol, "cpu", seed=7).collect(episodes=True)
    assert b1.obs.shape == (5, 3, 2) and b1.valid.all() and b1.truncated[-1].all()
    assert torch.equal(b1.actions, b2.actions) and torch.equal(b1.rewards, b2.rewards)
    # actions are the policy's unclipped samples and logp their log-density
    assert torch.equal(b1.logp, pol.log_prob(b1.obs, b1.actions).detach())
    assert torch.equal(b1.means, pol.mean(b1.obs).detach())  # the collecting policy's μ(x), recorded


def test_logged_returns_are_unnormalised_under_reward_scaling():
    """With NormalizeReward the policy learns from scaled rewards, but episode returns are the plant's own."""
    from pgcontrol.envs import make_vec_env

    def returns(normalize_reward):
        vec = make_vec_env("scalar-lqg", 3, normalize_reward=normalize_reward, gamma=0.9)
        policy = LinearGaussianPolicy(1, 1, K0=[[0.5]], std0=0.1)
        batch = Collector(vec, policy, "cpu", seed=4).collect(episodes=True)
        return batch, np.array(batch.episode_returns)

    (raw_batch, raw), (scaled_batch, scaled) = returns(False), returns(True)
    np.testing.assert_allclose(scaled, raw, rtol=1e-9)
    np.testing.assert_allclose(raw, raw_batch.rewards.sum(0).numpy(), rtol=1e-9)
    assert not torch.allclose(scaled_batch.rewards, raw_batch.rewards)  # the learner does see scaled rewards
