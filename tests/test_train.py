"""The training loop: determinism, exact resume, divergence, bad input, step budgets, CUDA."""

import numpy as np
import pytest
import torch

from pgcontrol import lqr, plants
from pgcontrol.algos.npg import NPGConfig
from pgcontrol.algos.vpg import VPGConfig
from pgcontrol.checkpoint import load_checkpoint
from pgcontrol.errors import ConfigError, TrainingDiverged
from pgcontrol.train import train


def test_same_seed_same_numbers_and_resume_continues_the_run(tmp_path):
    cfg = VPGConfig(num_envs=4, iterations=6, lr=0.003)
    a = train("vpg", "double-integrator", config=cfg, seed=3, progress=False)
    b = train("vpg", "double-integrator", config=cfg, seed=3, progress=False)
    assert [r["K"] for r in a] == [r["K"] for r in b]
    # stop after 3 iterations, resume to 6: the same numbers as the uninterrupted run
    short = VPGConfig(num_envs=4, iterations=3, lr=0.003)
    train("vpg", "double-integrator", config=short, seed=3, progress=False, out_dir=tmp_path, checkpoint_every=1)
    resumed = train("vpg", "double-integrator", config=cfg, seed=3, progress=False, out_dir=tmp_path, resume=True,
                    checkpoint_every=1)
    assert [r["K"] for r in resumed] == [r["K"] for r in a]
    assert (tmp_path / "progress.csv").read_text().count("\n") == 7
    assert load_checkpoint(tmp_path)["iteration"] == 5


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    """VPG lr 0.01 on double-integrator (seed 3) destabilises the gain at iteration 4: iteration 3 is kept."""
    cfg = VPGConfig(num_envs=4, iterations=20, lr=0.01, estimator="rtg", baseline="mean", adaptive=False)  # the plain step: no guard
    with pytest.raises(TrainingDiverged, match=r"iteration 4: the update made the gain destabilising .* "
                                               r"the checkpoint of iteration 3 is kept"):
        train("vpg", "double-integrator", config=cfg, seed=3, progress=False, out_dir=tmp_path, checkpoint_every=1)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["iteration"] == 3 and len(ckpt["history"]) == 4
    p = plants.make("double-integrator")
    assert np.isfinite(lqr.policy_cost(p, ckpt["policy"]["gain"].numpy()))


def test_bad_configuration_raises_clear_errors():
    with pytest.raises(ConfigError, match="num_envs must be a positive integer"):
        VPGConfig(num_envs=0)
    with pytest.raises(ConfigError, match="estimator must be"):
        VPGConfig(estimator="magic")
    with pytest.raises(ConfigError, match="unknown algorithm"):
        train("sarsa", "scalar-lqg", progress=False)
    with pytest.raises(ConfigError, match="must be a NPGConfig"):
        train("npg", "scalar-lqg", config=VPGConfig(), progress=False)
    with pytest.raises(ConfigError, match="unknown environment"):
        train("vpg", "NoSuchEnv-v9", progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint("/nonexistent/checkpoint.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_runs_on_the_gpu():
    hist = train("npg", "double-integrator", config=NPGConfig(num_envs=64, iterations=5), device="cuda",
                 seed=0, progress=False)
    assert np.isfinite(hist[-1]["gap"]) and hist[-1]["gap"] < hist[0]["gap"]


def test_max_steps_stops_at_the_step_budget(tmp_path):
    """scalar-lqg: 5 episodes of 50 steps = 250 steps per iteration; a 600-step budget takes 3 iterations."""
    cfg = VPGConfig(num_envs=5, iterations=100, lr=0.01)
    h = train("vpg", "scalar-lqg", config=cfg, seed=0, progress=False, out_dir=tmp_path, max_steps=600)
    assert [r["steps"] for r in h] == [250, 500, 750]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 2  # the last iteration is saved
    with pytest.raises(ConfigError, match="max_steps"):
        train("vpg", "scalar-lqg", config=cfg, progress=False, max_steps=0)


@pytest.mark.parametrize("algo, cfg", [
    ("vpg", VPGConfig(num_envs=4, iterations=6, lr=0.01, optimizer="adam", estimator="rtg", baseline="value",
                      critic="quadratic", critic_optimizer="adam", critic_epochs=3)),
    ("npg", NPGConfig(num_envs=4, iterations=6, kl_bound=0.01, estimator="rtg", baseline="value",
                      critic="quadratic", critic_optimizer="adam", critic_epochs=3)),
    ("trpo", NPGConfig(num_envs=4, iterations=6, kl_bound=0.01, estimator="rtg", baseline="value",
                       critic="quadratic", critic_optimizer="adam", critic_epochs=3, line_search=True)),
    # sb3-contrib's way: 30 steps an iteration (episodes of 200 in flight at the resume), equal state weights
    ("trpo", NPGConfig(num_envs=4, iterations=6, kl_bound=0.01, estimator="gae", baseline="value", n_steps=30,
                       discount_weighting=False, normalize_advantage=True, value_target="lambda",
                       critic="quadratic", critic_optimizer="adam", critic_epochs=3, line_search=True)),
])
def test_resume_restores_optimiser_and_critic_state_exactly(tmp_path, algo, cfg):
    """3 iterations + resume to 6 = 6 uninterrupted, down to the critic: fails if the learner state is not restored."""
    import dataclasses

    full = train(algo, "double-integrator", config=cfg, seed=1, progress=False)
    train(algo, "double-integrator", config=dataclasses.replace(cfg, iterations=3), seed=1, progress=False,
          out_dir=tmp_path, checkpoint_every=1)
    resumed = train(algo, "double-integrator", config=cfg, seed=1, progress=False, out_dir=tmp_path, resume=True)
    for key in ("K", "std", "loss_value"):
        assert [r[key] for r in resumed] == [r[key] for r in full], key


def test_network_fields_shape_the_mlp_policy_and_critic_and_survive_resume(tmp_path):
    """hidden / activation / ortho_init / log_std0 build the networks train uses, and a resumed run rebuilds them."""
    import dataclasses

    from pgcontrol.algos.ppo import PPOConfig
    from pgcontrol.checkpoint import policy_from_checkpoint

    cfg = PPOConfig(num_envs=4, n_steps=16, iterations=4, anneal_lr=False, hidden=(16,), activation="relu",
                    ortho_init=False, log_std0=-1.0)
    full = train("ppo", "double-integrator", config=cfg, seed=2, progress=False, policy_kind="mlp")
    train("ppo", "double-integrator", config=dataclasses.replace(cfg, iterations=2), seed=2, progress=False,
          policy_kind="mlp", out_dir=tmp_path, checkpoint_every=1)
    ckpt = load_checkpoint(tmp_path)
    policy = policy_from_checkpoint(ckpt)
    assert policy.hidden == (16,) and isinstance(policy.mean_net[1], torch.nn.ReLU)
    assert [tuple(v.shape) for k, v in ckpt["learner"]["critic"].items() if k.endswith("weight")] == [(16, 2), (1, 16)]
    resumed = train("ppo", "double-integrator", config=cfg, seed=2, progress=False, policy_kind="mlp",
                    out_dir=tmp_path, resume=True)
    assert [r["loss_value"] for r in resumed] == [r["loss_value"] for r in full]
    # torch's Linear initialisation, not orthogonal: the output layer is not scaled by 0.01
    fresh = train("ppo", "double-integrator", config=dataclasses.replace(cfg, iterations=1), seed=2,
                  progress=False, policy_kind="mlp", out_dir=tmp_path / "one", checkpoint_every=1)
    first = load_checkpoint(tmp_path / "one")
    assert fresh and first["policy"]["mean_net.2.weight"].abs().max() > 0.05
    assert np.allclose(np.exp(first["policy"]["raw_std"].numpy()), np.exp(-1.0), rtol=0.2)


def test_training_holds_torch_and_blas_to_its_threads_and_restores_them():
    """PPO's NumPy step multiplies with BLAS: ``threads`` bounds BLAS as it bounds torch, during the call only."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        before = torch.get_num_threads(), blas()
        train("ppo", "double-integrator", seed=0, progress=False, max_steps=1024, threads=1,
              callback=lambda row: seen.append((torch.get_num_threads(), blas())))
        assert (torch.get_num_threads(), blas()) == before
    assert seen and all(t == 1 and all(n == 1 for n in b) for t, b in seen)
    assert before[1] and all(n == 2 for n in before[1])  # the limit inside was not already the ambient one
