"""experiments/bench_vs_sb3.py: its command line, its configs and its report (the runs themselves are too long for CI)."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("bench_vs_sb3", Path(__file__).parents[1] / "experiments" / "bench_vs_sb3.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_quick_and_full_settings():
    q = bench.parse(["--quick"])
    assert (q.algos, q.envs, q.steps, q.seeds, q.num_envs) == (["ppo", "trpo"], ["InvertedPendulum-v5"], 20_000, 1, 1)
    f = bench.parse(["--num-envs", "8"])
    assert (f.algos, f.envs, f.steps, f.seeds, f.num_envs) == (["ppo"], ["HalfCheetah-v5", "Hopper-v5"], 1_000_000, 3, 8)


def test_pgcontrol_configs_carry_the_shared_settings():
    ppo = bench.pgcontrol_config("ppo", 1_000_000, 8, 6)
    assert (ppo.n_steps, ppo.num_minibatches, ppo.update_epochs, ppo.lr, ppo.anneal_lr) == (2048, 256, 10, 3e-4, False)
    assert ppo.normalize_obs and ppo.normalize_reward and ppo.max_grad_norm == 0.5 and not ppo.clip_vloss
    assert ppo.normalize_clip == 10.0  # VecNormalize's clip_obs and clip_reward
    assert ppo.vf_coef == 1.0  # 0.5 on SB3's mean squared error is 1.0 on pgcontrol's half of it (4.20)
    trpo = bench.pgcontrol_config("trpo", 1_000_000, 1, 6)
    assert trpo.line_search and (trpo.cg_iters, trpo.backtrack_coef) == (15, 0.8)
    # sb3-contrib's KL 0.01 and damping 0.1 are per action dimension (its KL is a mean over the 6 of them too)
    assert (trpo.kl_bound, trpo.damping) == (pytest.approx(0.06), pytest.approx(0.6))
    assert (trpo.critic_epochs, trpo.critic_minibatch, trpo.critic_lr, trpo.num_envs, trpo.n_steps) == (10, 128, 1e-3, 1, 2048)
    assert not trpo.discount_weighting  # sb3-contrib weighs every state and step equally
    assert trpo.normalize_obs and trpo.normalize_reward and trpo.normalize_clip == 10.0
    assert trpo.value_target == "lambda" and trpo.normalize_advantage  # sb3-contrib's critic targets and advantages


def test_the_last_ten_episodes():
    # (steps, mean return of the iteration, episodes in it): the last iterations holding >= 10 episodes
    curve = [[1000, 0.0, 5], [2000, 10.0, 4], [3000, 20.0, 6]]
    assert bench.last_episodes_mean(curve) == pytest.approx((10 * 4 + 20 * 6) / 10)
    assert bench.last_episodes_mean(curve[-1:]) == 20.0 and bench.last_episodes_mean([]) is None


def test_report_prints_rates_returns_the_test_and_the_ratio_line():
    results = {"ppo HalfCheetah-v5": {"pgcontrol": [{"steps": 2000, "seconds": 1.0, "return": 10.0},
                                                    {"steps": 2000, "seconds": 1.0, "return": 20.0}],
                                      "sb3": [{"steps": 1000, "seconds": 1.0, "return": 12.0},
                                              {"steps": 1000, "seconds": 1.0, "return": 14.0}]}}
    lines = bench.report(results)
    assert lines[0].startswith("ppo HalfCheetah-v5: pgcontrol 2000 steps/s, SB3 1000 steps/s (ratio 2.00)")
    assert "pgcontrol 15.0 ± 7.1 (n = 2)" in lines[0] and "Welch t-test p = 0.758" in lines[0]  # t = 2/√26, Welch df = 676/626
    assert lines[-1] == "ratio: 2.000" and float(lines[-1].split(":")[1]) == pytest.approx(2.0)
    assert bench.welch([1.0], [2.0, 3.0]) is None


def test_plot_redraws_the_figure_from_the_json(tmp_path, capsys):
    curve = [[500, 1.0, 3], [1000, 2.0, 9]]
    data = {"num_envs": 1, "steps": 1000, "results": {"ppo InvertedPendulum-v5": {
        "pgcontrol": [{"steps": 1000, "seconds": 1.0, "return": 2.0, "curve": curve}],
        "sb3": [{"steps": 1000, "seconds": 2.0, "return": 1.5, "curve": [[300, 1.0, 1], [900, 2.0, 1]]}]}}}
    (tmp_path / "b.json").write_text(json.dumps(data))
    bench.main(["--plot", str(tmp_path / "b.json")])
    assert (tmp_path / "b.png").stat().st_size > 10_000 and "ratio: 2.000" in capsys.readouterr().out


def test_merge_takes_each_side_from_the_file_that_ran_it(tmp_path, capsys):
    run = {"steps": 1000, "seconds": 1.0, "return": 2.0, "curve": [[500, 1.0, 3], [1000, 2.0, 9]]}
    a = {"settings": {"ppo": {}}, "num_envs": 1, "steps": 1000,
         "results": {"ppo Hopper-v5": {"pgcontrol": [run], "sb3": []}}}
    b = {"settings": {"ppo": {}}, "num_envs": 1, "steps": 1000,
         "results": {"ppo Hopper-v5": {"pgcontrol": [], "sb3": [dict(run, seconds=4.0)]},
                     "trpo Hopper-v5": {"pgcontrol": [run], "sb3": [run]}}}
    for name, d in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(d))
    bench.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json")])
    merged = json.loads((tmp_path / "m.json").read_text())["results"]
    assert [len(merged["ppo Hopper-v5"][s]) for s in ("pgcontrol", "sb3")] == [1, 1]
    assert list(merged) == ["ppo Hopper-v5", "trpo Hopper-v5"] and (tmp_path / "m.png").exists()
    assert "ratio: 4.000" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="different settings"):
        bench.merge([a, dict(b, steps=2000)])


def test_sb3_contrib_kl_is_a_mean_over_action_dimensions():
    """Why pgcontrol's TRPO bound is target_kl · act_dim: sb3-contrib's KL of the joint Gaussian, divided by act_dim."""
    pytest.importorskip("sb3_contrib")  # the `bench` extra
    import torch
    from stable_baselines3.common.distributions import DiagGaussianDistribution, kl_divergence

    g = torch.Generator().manual_seed(0)
    mu, log_std = torch.randn(5, 3, generator=g), torch.randn(3, generator=g) * 0.3
    old = DiagGaussianDistribution(3).proba_distribution(mu, log_std)
    new = DiagGaussianDistribution(3).proba_distribution(mu + 0.1, log_std - 0.05)
    std, std_old = (log_std - 0.05).exp().expand(5, 3), log_std.exp().expand(5, 3)
    sb3_kl = kl_divergence(new, old).mean()  # what sb3-contrib's TRPO bounds by target_kl
    joint = torch.distributions.Independent(torch.distributions.Normal(mu + 0.1, std), 1)
    joint_old = torch.distributions.Independent(torch.distributions.Normal(mu, std_old), 1)
    joint_kl = torch.distributions.kl_divergence(joint, joint_old).mean()  # what pgcontrol's TRPO bounds (6.34)
    assert float(sb3_kl) == pytest.approx(float(joint_kl) / 3)


OBS_DIM, ACT_DIM, T = 5, 3, 256


def _box_env():
    """An env with 5-dimensional observations and 3-dimensional actions; only its spaces are used."""
    import gymnasium as gym
    import numpy as np

    class Box(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

    return Box()


def _the_same_batch(model):
    """pgcontrol's policy and critic with the weights of SB3 ``model``, and one random batch written into both.

    T steps of one env, no episode end inside, the last step bootstrapped by the critic (as both libraries
    do): returns ``(policy, critic, batch)``, ``model.rollout_buffer`` filled and its GAE computed.
    """
    import numpy as np
    import torch

    from pgcontrol.critics import MLPValue
    from pgcontrol.policies import MLPGaussianPolicy
    from pgcontrol.rollout import Batch

    sp = model.policy
    policy, critic = MLPGaussianPolicy(OBS_DIM, ACT_DIM), MLPValue(OBS_DIM)
    with torch.no_grad():  # the same weights (pgcontrol's parameters are in sb3's order: log σ first)
        for dst, src in zip([*policy.mean_net[::2], *critic.net[::2]],
                            [*sp.mlp_extractor.policy_net[::2], sp.action_net,
                             *sp.mlp_extractor.value_net[::2], sp.value_net]):
            dst.weight.copy_(src.weight), dst.bias.copy_(src.bias)
        sp.log_std.fill_(-0.3)  # away from the symmetric start
        policy.raw_std.copy_(sp.log_std)
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(T + 1, 1, OBS_DIM, generator=g)
    rewards = torch.randn(T, 1, generator=g) + obs[:-1, :, 0]
    with torch.no_grad():
        actions, means = policy.sample(obs[:-1], g)
        logp = policy.log_prob(obs[:-1], actions)
        values = critic(obs).reshape(T + 1, 1)
    for t in range(T):
        model.rollout_buffer.add(obs[t].numpy(), actions[t].numpy(), rewards[t].numpy(), np.zeros(1), values[t],
                                 logp[t])
    model.rollout_buffer.compute_returns_and_advantage(last_values=values[T], dones=np.zeros(1))
    false = torch.zeros(T, 1, dtype=torch.bool)
    batch = Batch(obs[:-1], actions, logp, rewards, obs[1:], false, false, ~false, torch.arange(T).reshape(T, 1),
                  means=means)
    return policy, critic, batch


def _train_sb3(model, params) -> "torch.Tensor":
    """Run ``model.train()`` once; the step it took in ``params`` (flattened in their order)."""
    from stable_baselines3.common.logger import configure
    from torch.nn.utils import parameters_to_vector

    theta = parameters_to_vector(params).detach().clone()
    model.set_logger(configure(None, []))
    model.train()
    return parameters_to_vector(params).detach() - theta


def test_trpo_takes_sb3_contribs_step_on_the_same_batch():
    """With target_kl and cg_damping × act_dim, pgcontrol's TRPO update is sb3-contrib's, from the same weights and data.

    sb3-contrib's ``train()`` against pgcontrol's ``update`` on one batch: the GAE advantages, their
    standardisation, the conjugate-gradient direction, its length and the line search all have to agree.
    """
    pytest.importorskip("sb3_contrib")  # the `bench` extra
    import torch
    from sb3_contrib import TRPO as SB3TRPO
    from torch.nn.utils import parameters_to_vector

    from pgcontrol.algos.npg import TRPO

    cfg = dataclasses.replace(bench.pgcontrol_config("trpo", T, 1, ACT_DIM), n_steps=T, normalize_obs=False,
                              normalize_reward=False, normalize_clip=None)
    h = bench.HYPER["trpo"]
    sb3 = SB3TRPO("MlpPolicy", _box_env(), n_steps=T, batch_size=h["critic_batch"], n_critic_updates=1,
                  cg_max_steps=h["cg_iters"], cg_damping=h["cg_damping"], line_search_shrinking_factor=h["backtrack"],
                  line_search_max_iter=h["max_backtracks"], gamma=h["gamma"], gae_lambda=h["gae_lambda"],
                  target_kl=h["target_kl"], normalize_advantage=True, seed=0, device="cpu")
    policy, critic, batch = _the_same_batch(sb3)
    step_sb3 = _train_sb3(sb3, [p for n, p in sb3.policy.named_parameters() if "value" not in n])

    theta = parameters_to_vector(policy.parameters()).detach().clone()
    out = TRPO(policy, cfg, gamma=h["gamma"], obs_dim=OBS_DIM, device="cpu", critic=critic).update(batch, 0)
    step_pg = parameters_to_vector(policy.parameters()).detach() - theta
    assert out["step_fraction"] > 0 and step_sb3.norm() > 0
    assert torch.allclose(step_pg, step_sb3, rtol=1e-3, atol=1e-5 * float(step_sb3.abs().max()))
    # the KL of the step, joint here, a mean over the action dimensions there; sb3-contrib's is KL(π_θ ‖ π_old),
    # pgcontrol's KL(π_old ‖ π_θ) (6.34): the same to second order
    assert out["kl"] == pytest.approx(ACT_DIM * sb3.logger.name_to_value["train/kl_divergence_loss"], rel=0.05)


def test_ppo_takes_sb3s_steps_on_the_same_batch():
    """pgcontrol's PPO update is SB3's, from the same weights and data: 3 epochs of one full-batch minibatch.

    One minibatch, so that the two libraries' shuffles do not matter; three epochs, so that the gradient
    clipping (whose norm includes the critic's gradient, and so the value loss's scale) shapes the Adam steps.
    """
    pytest.importorskip("stable_baselines3")  # the `bench` extra
    import torch
    from stable_baselines3 import PPO as SB3PPO
    from torch.nn.utils import parameters_to_vector

    from pgcontrol.algos.ppo import PPO

    epochs = 3
    cfg = dataclasses.replace(bench.pgcontrol_config("ppo", T, 1, ACT_DIM), n_steps=T, update_epochs=epochs,
                              num_minibatches=1, normalize_obs=False, normalize_reward=False, normalize_clip=None)
    h = bench.HYPER["ppo"]
    sb3 = SB3PPO("MlpPolicy", _box_env(), n_steps=T, batch_size=T, n_epochs=epochs, learning_rate=h["lr"],
                 gamma=h["gamma"], gae_lambda=h["gae_lambda"], clip_range=h["clip"], vf_coef=h["vf_coef"],
                 ent_coef=h["ent_coef"], max_grad_norm=h["max_grad_norm"], seed=0, device="cpu")
    policy, critic, batch = _the_same_batch(sb3)
    named = dict(sb3.policy.named_parameters())  # in pgcontrol's order: log σ, the mean MLP, then the critic
    order = ["log_std", *[n for n in named if "policy_net" in n], "action_net.weight", "action_net.bias",
             *[n for n in named if "mlp_extractor.value_net" in n], "value_net.weight", "value_net.bias"]
    step_sb3 = _train_sb3(sb3, [named[n] for n in order])

    params = [*policy.parameters(), *critic.parameters()]
    theta = parameters_to_vector(params).detach().clone()
    PPO(policy, cfg, gamma=h["gamma"], obs_dim=OBS_DIM, device="cpu", critic=critic).update(batch, 0)
    step_pg = parameters_to_vector(params).detach() - theta
    n_actor = sum(p.numel() for p in policy.parameters())
    assert step_sb3[:n_actor].norm() > 0
    assert torch.allclose(step_pg, step_sb3, rtol=1e-3, atol=1e-4 * float(step_sb3.abs().max()))
