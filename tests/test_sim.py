"""The batched simulator (pgcontrol.sim): the one linear-plant step, rollouts against the exact cost, divergence."""

import numpy as np
import pytest
import torch

from pgcontrol import lqr, plants, sim
from pgcontrol.plants import InvalidPlantError, LinearGaussianPlant
from pgcontrol.rollout import batch_from_rollout, reward_to_go

# x_{t+1} = 2 x_t: from x0 = 1 the state leaves |x| <= 100 at step 7 (x = 128)
UNSTABLE = LinearGaussianPlant(A=2.0, B=1.0, Q=1.0, R=1.0, x0_mean=[1.0], x0_cov=0.0,
                               state_bound=100.0, horizon=50, name="doubling")


def _mc_check(costs: np.ndarray, exact: float, n_se: float = 4.0) -> None:
    se = costs.std(ddof=1) / np.sqrt(costs.size)
    assert abs(costs.mean() - exact) < n_se * se, (costs.mean(), exact, se)


def test_linear_step_by_hand():
    p = LinearGaussianPlant(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.diag([1.0, 2.0]), R=3.0,
                            W=np.diag([4.0, 9.0]))
    P = sim.plant_tensors(p)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
    u = torch.tensor([[0.5], [-2.0]], dtype=torch.float64)
    eps = torch.tensor([[1.0, -1.0], [0.0, 2.0]], dtype=torch.float64)
    x_new, cost = sim.linear_step(P, x, u, eps)
    # x' = A x + B u + W^½ ε with W^½ = diag(2, 3);  c = x'Qx + u'Ru
    expected = torch.tensor([[1 + 2 + 2.0, 2 + 0.5 - 3.0], [-1 + 0.5 + 0.0, 0.5 - 2 + 6.0]], dtype=torch.float64)
    torch.testing.assert_close(x_new, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(cost, torch.tensor([1 + 8 + 0.75, 1 + 0.5 + 12.0], dtype=torch.float64))
    noiseless = sim.plant_tensors(p.replace(W=0.0))
    assert noiseless.Wt is None
    torch.testing.assert_close(sim.linear_step(noiseless, x, u)[0], expected - eps @ torch.diag(torch.tensor(
        [2.0, 3.0], dtype=torch.float64)), rtol=0, atol=1e-15)


def test_diverged_rows_and_clip_state():
    x = torch.tensor([[1.0, -2.0], [150.0, 0.0], [float("nan"), 0.0], [0.0, -float("inf")]])
    assert sim.diverged_rows(x, 100.0).tolist() == [False, True, True, True]
    assert sim.clip_state(x, 100.0).tolist() == [[1.0, -2.0], [100.0, 0.0], [100.0, 0.0], [0.0, -100.0]]


def test_batch_from_rollout_is_a_batch_of_whole_episodes():
    p = plants.make("double-integrator")
    ro = sim.rollout_linear(p, [[0.3, 0.9]], 0.4, n_traj=3, horizon=6, seed=0)
    b = batch_from_rollout(ro)
    assert b.obs.shape == (6, 3, 2) and b.rewards.shape == (6, 3) and b.n_valid == 18
    torch.testing.assert_close(b.rewards, -ro.costs)
    torch.testing.assert_close(b.next_obs[:-1], b.obs[1:])
    assert b.truncated[-1].all() and not b.truncated[:-1].any() and not b.terminated.any()
    assert b.t_in_episode[:, 1].tolist() == list(range(6)) and not b.diverged
    # whole episodes: the reward-to-go at t = 0 is the undiscounted episode return
    torch.testing.assert_close(reward_to_go(b.rewards, b.dones, torch.zeros_like(b.rewards), 1.0)[0],
                               -ro.costs.sum(0))
    assert batch_from_rollout(sim.rollout_linear(UNSTABLE, [[0.0]], 0.0, n_traj=2, horizon=12, seed=0)).diverged


def test_sim_rollout_cost_matches_policy_cost():
    p = plants.make("laplacian-3")
    K, _ = lqr.optimal_gain(p)
    std = [0.1, 0.2, 0.3]
    ro = sim.rollout_linear(p, K, std, n_traj=4000, seed=0)
    assert ro.states.shape == (501, 4000, 3) and ro.actions.shape == (500, 4000, 3)
    assert ro.costs.shape == (500, 4000) and ro.observations is None and not ro.diverged.any()
    _mc_check(ro.discounted_cost(p.gamma).numpy(), lqr.policy_cost(p, K, std, horizon=p.horizon))


def test_sim_is_reproducible_and_records_outputs():
    p = plants.make("double-integrator-output")
    K, _ = lqr.optimal_gain(p)
    a = sim.rollout_linear(p, K, 0.1, n_traj=16, horizon=20, seed=7)
    b = sim.rollout_linear(p, K, 0.1, n_traj=16, horizon=20, seed=torch.Generator().manual_seed(7))
    for x, y in zip(a[:4], b[:4]):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert a.observations.shape == (21, 16, 1)
    x = a.states
    torch.testing.assert_close(a.costs[3], (x[3] @ torch.tensor(p.Q) * x[3]).sum(1) + p.R[0, 0] * a.actions[3, :, 0] ** 2)
    of = sim.rollout_linear(p, [[0.5]], 0.0, n_traj=4, horizon=5, seed=0, output_feedback=True)
    torch.testing.assert_close(of.actions[:, :, 0], -0.5 * of.observations[:-1, :, 0])
    with pytest.raises(InvalidPlantError, match="output_feedback"):
        sim.rollout_linear("double-integrator", [[1.0, 1.0]], output_feedback=True)
    with pytest.raises(InvalidPlantError, match="gain K has the wrong shape"):
        sim.rollout_linear(p, [[1.0]], n_traj=2)
    with pytest.raises(InvalidPlantError, match="seed"):
        sim.rollout_linear(p, K, seed=-1)


def test_sim_divergence_freezes_clipped_state():
    ro = sim.rollout_linear(UNSTABLE, [[0.0]], 0.0, n_traj=3, horizon=12, seed=0)
    assert ro.diverged.all()
    x = ro.states[:, 0, 0]
    assert x[6].item() == 64.0 and (x[7:] == 100.0).all()  # 128 clipped, then frozen
    assert torch.isfinite(ro.costs).all() and ro.costs[-1, 0].item() == 100.0**2
    ok = sim.rollout_linear(UNSTABLE, [[1.5]], 0.0, n_traj=2, horizon=12, seed=0)
    assert not ok.diverged.any()
