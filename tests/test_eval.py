"""Rebuilding a policy from a checkpoint and evaluating it (pgcontrol.evaluate), and scoring any policy."""

import json

import numpy as np
import pytest
import torch

from pgcontrol import lqr, plants
from pgcontrol.policies import LinearGaussianPolicy, MLPGaussianPolicy, PolicyError, policy_from_spec
from pgcontrol.checkpoint import load_checkpoint, policy_from_checkpoint
from pgcontrol.config import config_from_dict
from pgcontrol.errors import ConfigError
from pgcontrol.evaluate import evaluate, lq_report
from pgcontrol.train import train


@pytest.mark.parametrize("policy", [
    LinearGaussianPolicy(2, 1, [[0.5, 1.2]], 0.3, std_param="log_std", min_std=1e-2),
    MLPGaussianPolicy(3, 2, hidden=(8, 5), log_std0=-0.5, dtype=torch.float64),
])
def test_spec_rebuilds_the_policy(policy):
    spec = policy.spec()
    assert json.loads(json.dumps(spec)) == spec  # plain JSON
    clone = policy_from_spec(spec)
    assert type(clone) is type(policy) and clone.spec() == spec and clone.dtype == policy.dtype
    clone.load_state_dict(policy.state_dict())
    obs = torch.randn(4, policy.obs_dim, dtype=policy.dtype)
    assert torch.equal(clone(obs).mean, policy(obs).mean) and np.array_equal(clone.std, policy.std)


def test_spec_errors():
    with pytest.raises(PolicyError, match="'kind'"):
        policy_from_spec({"obs_dim": 1})
    with pytest.raises(PolicyError, match="unknown policy kind"):
        policy_from_spec({"kind": "rbf", "obs_dim": 1, "act_dim": 1})
    with pytest.raises(PolicyError, match="unknown dtype"):
        policy_from_spec({"kind": "linear", "obs_dim": 1, "act_dim": 1, "dtype": "float7"})
    with pytest.raises(PolicyError, match="lacks 'act_dim'"):
        policy_from_spec({"kind": "linear", "obs_dim": 1})


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """One VPG iteration with lr = 0 on scalar-lqg: the checkpoint holds the policy that collected the batch."""
    out = tmp_path_factory.mktemp("frozen")
    cfg = config_from_dict("vpg", {"lr": 0, "num_envs": 12, "iterations": 1})
    hist = train("vpg", "scalar-lqg", config=cfg, seed=7, out_dir=out, progress=False)
    return out, hist


def test_evaluate_is_exactly_the_training_batch(frozen):
    out, hist = frozen
    res = evaluate(out, 12, seed=7)
    assert res["mean"] == hist[-1]["return_mean"] and res["std"] == hist[-1]["return_std"]
    assert res["lengths"] == [50] * 12 and res["train_return_mean"] == hist[-1]["return_mean"]
    # in smaller batches (a different noise layout) it is statistically the same, and the per-batch
    # split is deterministic
    a, b = evaluate(out, 200, seed=1, batch_size=64), evaluate(out, 200, seed=1, batch_size=64)
    assert a["returns"] == b["returns"] and len(a["returns"]) == 200
    assert abs(a["mean"] - a["lq"]["expected_return"]) < 4 * a["stderr"]


def test_lq_report_is_exact(frozen):
    out, _ = frozen
    ckpt = load_checkpoint(out)
    policy = policy_from_checkpoint(ckpt)
    assert isinstance(policy, LinearGaussianPolicy) and np.allclose(policy.K, [[0.2]]) and not policy.training
    p = plants.make("scalar-lqg")
    rep = lq_report(p, policy.K, policy.std)
    K_opt, _ = lqr.optimal_gain(p)
    assert rep["K_opt"] == K_opt.tolist() and rep["J_opt"] == lqr.policy_cost(p, K_opt)
    assert rep["J"] == lqr.policy_cost(p, policy.K, policy.std)
    # the expected undiscounted episode return, by a direct 50-step moment recursion
    K, s = policy.K[0, 0], policy.std[0]
    m, v, cost = p.x0_mean[0], p.x0_cov[0, 0], 0.0
    for _ in range(50):
        cost += (p.Q[0, 0] + K * K * p.R[0, 0]) * (v + m * m) + p.R[0, 0] * s * s
        m, v = (1 - K) * m, (1 - K) ** 2 * v + s * s
    assert rep["expected_return"] == pytest.approx(-cost, rel=1e-12)


def test_policy_from_checkpoint_without_spec(frozen):
    out, _ = frozen
    ckpt = load_checkpoint(out)
    ckpt["policy_spec"] = None
    assert np.allclose(policy_from_checkpoint(ckpt).K, [[0.2]])
    mlp = MLPGaussianPolicy(3, 2, hidden=(6,))
    rebuilt = policy_from_checkpoint({"policy": mlp.state_dict(), "policy_spec": None})
    assert rebuilt.spec() == mlp.spec()
    with pytest.raises(ConfigError, match="cannot be rebuilt"):
        policy_from_checkpoint({"policy": {"w": torch.zeros(1)}, "policy_spec": None})
    with pytest.raises(ConfigError, match="cannot be rebuilt"):
        policy_from_checkpoint({"policy": mlp.state_dict(), "policy_spec": {"kind": "mlp", "obs_dim": 3, "act_dim": 2}})


def test_evaluate_errors(frozen, tmp_path):
    out, _ = frozen
    with pytest.raises(ConfigError, match="episodes must be an integer from 1 to"):
        evaluate(out, 0)
    ckpt = load_checkpoint(out)
    ckpt["env"] = None
    with pytest.raises(ConfigError, match="does not record its environment"):
        evaluate(ckpt, 2)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80junk")
    with pytest.raises(ConfigError, match="corrupt"):
        evaluate(tmp_path, 2)


def test_evaluate_policy_scores_anything_against_the_optimum():
    import pgcontrol

    p = plants.make("double-integrator")
    K, _ = lqr.optimal_gain(p)
    pol = LinearGaussianPolicy(2, 1, K0=K, std0=0.3)
    exact = pgcontrol.evaluate_policy(pol, "double-integrator", episodes=50)
    assert exact["exact"] and exact["J_T"] == pytest.approx(lqr.policy_cost(p, K, 0.3, horizon=p.horizon))
    det = pgcontrol.evaluate_policy(pol, "double-integrator", episodes=50, deterministic=True)
    assert det["gap"] == pytest.approx(0.0, abs=1e-12)  # the mean action is the LQR gain
    mc = pgcontrol.evaluate_policy(lambda x: -K @ x, "double-integrator", episodes=400)  # any callable
    assert not mc["exact"] and abs(mc["J_T"] - det["J_T_opt"]) < 3 * mc["J_T_ci95"]  # within its CI
    np.testing.assert_allclose(mc["returns"][:50], det["returns"], rtol=1e-12)  # same seeds and actions: same episodes

    class SB3Like:  # Stable-Baselines3's interface: predict(obs, deterministic) -> (action, state)
        def predict(self, obs, deterministic=False):
            return -K @ obs, None

    assert pgcontrol.evaluate_policy(SB3Like(), "double-integrator", episodes=5)["returns"] == mc["returns"][:5]
    with pytest.raises(ConfigError, match="policy must be"):
        pgcontrol.evaluate_policy(42, "double-integrator")


def test_evaluate_clips_the_normalised_observations_as_training_did(tmp_path):
    """A ``normalize_clip`` run is evaluated on clipped observations: dropping the clip changes the returns."""
    from pgcontrol.algos.ppo import PPOConfig

    cfg = PPOConfig(num_envs=2, n_steps=16, iterations=2, update_epochs=1, normalize_obs=True, normalize_clip=0.05)
    train("ppo", "double-integrator", config=cfg, policy_kind="mlp", seed=0, out_dir=tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path)
    clipped = evaluate(ckpt, episodes=4)["returns"]
    unclipped = evaluate({**ckpt, "config": {**ckpt["config"], "normalize_clip": None}}, episodes=4)["returns"]
    assert clipped == evaluate(ckpt, episodes=4)["returns"]
    assert clipped != unclipped


def test_record_video_is_one_episode_of_the_checkpoints_policy(frozen, tmp_path):
    """The library writes the video (pgcontrol eval --video only calls it): T + 1 frames, refusals in one line."""
    iio = pytest.importorskip("imageio.v3")
    from pgcontrol.evaluate import record_video, video_env

    ckpt = load_checkpoint(frozen[0])
    assert record_video(ckpt, tmp_path / "v.gif", seed=1) == 51  # scalar-lqg: T = 50 steps, and x0
    assert iio.imread(tmp_path / "v.gif").shape[0] == 51
    with pytest.raises(ConfigError, match="does not record its environment"):
        video_env({**ckpt, "env": None}, tmp_path / "w.gif")
