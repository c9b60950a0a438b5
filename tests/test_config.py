"""Configs at the boundary: typed fields from dicts (config files), step budgets, devices and threads."""

import math

import pytest
import torch

from pgcontrol.algos.ac import ACConfig
from pgcontrol.algos.npg import NPGConfig
from pgcontrol.algos.ppo import PPOConfig
from pgcontrol.algos.vpg import VPGConfig
from pgcontrol.config import config_from_dict, resolve_device, set_threads, steps_per_iteration
from pgcontrol.errors import ConfigError


def test_config_from_dict():
    cfg = config_from_dict("npg", {"kl_bound": 1, "num_envs": 4}, base={"num_envs": 9, "cg_iters": 3})
    assert cfg == NPGConfig(kl_bound=1.0, num_envs=4, cg_iters=3) and isinstance(cfg.kl_bound, float)
    assert config_from_dict("ppo", {"max_grad_norm": None}).max_grad_norm is None
    with pytest.raises(ConfigError, match=r"f.json: unknown key 'klbound' for npg \(NPGConfig\); valid keys: num_envs"):
        config_from_dict("npg", {"klbound": 0.1}, source="f.json")
    for values, message in [
        ({"line_search": "yes"}, "line_search must be true or false; got 'yes'"),
        ({"num_envs": True}, "num_envs must be an integer; got True"),
        ({"gamma": "0.9"}, "gamma must be a finite number or null"),
        ({"kl_bound": None}, "kl_bound must be a finite number; got None"),
        ({"gamma": 2.0}, "gamma must lie in"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_from_dict("trpo", values)
    with pytest.raises(ConfigError, match="expected a table"):
        config_from_dict("vpg", [1])


def test_steps_per_iteration():
    assert steps_per_iteration("vpg", VPGConfig(num_envs=8), "scalar-lqg") == 8 * 50
    assert steps_per_iteration("trpo", NPGConfig(num_envs=4), "double-integrator") == 4 * 150
    assert steps_per_iteration("npg", NPGConfig(num_envs=2), "InvertedPendulum-v5") == 2 * 1000
    assert steps_per_iteration("ppo", PPOConfig(num_envs=8, n_steps=64), "HalfCheetah-v5") == 512
    assert steps_per_iteration("ac", ACConfig(num_envs=4, n_steps=5), "scalar-lqg") == 20
    assert steps_per_iteration("ac", ACConfig(num_envs=4, online=True, lr=0.01, critic_lr=0.1), "scalar-lqg") == 4
    with pytest.raises(ConfigError, match="unknown environment 'Nope-v0'"):
        steps_per_iteration("vpg", VPGConfig(), "Nope-v0")
    assert math.ceil(1000 / steps_per_iteration("vpg", VPGConfig(num_envs=8), "scalar-lqg")) == 3





def test_devices_and_threads():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("auto").type in ("cpu", "cuda")
    for bad in ("meta", "tpu", 3):
        with pytest.raises(ConfigError, match="device"):
            resolve_device(bad)
    before = torch.get_num_threads()
    try:
        assert set_threads(None) == 1 and torch.get_num_threads() == 1  # the documented default
        assert set_threads(2) == 2
        with pytest.raises(ConfigError, match="threads must be an integer from 1 to"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ plan_run: one plan for train and the CLI


def test_a_budget_becomes_iterations_the_same_way_for_train_and_the_cli():
    from pgcontrol.config import default_budget, plan_run
    from pgcontrol.plants import make

    p = plan_run("npg", "scalar-lqg", values={"num_envs": 8}, steps=2000)
    assert p.config.iterations == 5 and p.max_steps == 2000 and p.sources["iterations"] == "--steps"
    assert "5 iterations x 400 steps per iteration" in p.budget
    p = plan_run("npg", "scalar-lqg", values={"num_envs": 8}, steps=1100)  # rounded up: a batch is never cut
    assert p.config.iterations == 3 and "= 1200 steps (rounded up" in p.budget
    # no budget, no iterations, a plant: the plant's default budget, for the CLI as for train(config=None)
    p = plan_run("ppo", "double-integrator")
    assert p.max_steps == default_budget(make("double-integrator")) and p.sources["iterations"] == "budget"
    assert p.policy_kind == "linear" and p.seed == 0
    # iterations given: they are the budget
    p = plan_run("ppo", "double-integrator", values={"iterations": 7})
    assert p.max_steps is None and p.config.iterations == 7
    # a ready config is used as it is; the budget only bounds it
    cfg = NPGConfig(num_envs=2, iterations=9)
    p = plan_run("npg", "scalar-lqg", config=cfg, steps=50)
    assert p.config is cfg and p.max_steps == 50
    # episodes that may end early: iterations until the budget is spent
    p = plan_run("vpg", "InvertedPendulum-v5", values={"num_envs": 4}, steps=1000)
    assert p.config.iterations == 250 and p.policy_kind == "mlp"


def test_a_resume_must_match_its_checkpoint(tmp_path):
    from pgcontrol.checkpoint import load_checkpoint
    from pgcontrol.config import plan_run
    from pgcontrol.errors import ConfigError
    from pgcontrol.train import train

    cfg = NPGConfig(num_envs=2, iterations=2)
    train("npg", "scalar-lqg", config=cfg, seed=3, out_dir=tmp_path, progress=False, checkpoint_every=1)
    ck = load_checkpoint(tmp_path)
    assert plan_run("npg", "scalar-lqg", checkpoint=ck).seed == 3  # the run's own seed by default
    for kwargs, message in [(dict(algo="vpg"), "is a 'npg' run, not 'vpg'"),
                            (dict(env="double-integrator"), "trained on 'scalar-lqg', not 'double-integrator'"),
                            (dict(seed=4), "trained with seed 3, not 4"),
                            (dict(policy_kind="mlp"), "holds a 'linear' policy, not 'mlp'"),
                            (dict(values={"lr": 0.1}), "would replace the run's own configuration"),
                            (dict(values={"lr": 0.1}, override=["kl_bound"]), "must list exactly the keys"),
                            (dict(override=["lr"]), "needs a checkpoint and the new values")]:
        args = {"algo": "npg", "env": "scalar-lqg", "checkpoint": ck, **kwargs}
        if message.startswith("needs"):
            args.pop("checkpoint")
        with pytest.raises(ConfigError, match=message):
            plan_run(args.pop("algo"), args.pop("env"), **args)
    p = plan_run("npg", "scalar-lqg", checkpoint=ck, values={"kl_bound": 0.02}, override=["kl_bound"])
    assert p.config.kl_bound == 0.02 and p.overrides == {"kl_bound": {"from": ck["config"]["kl_bound"], "to": 0.02}}
    # train resumes through the same checks
    with pytest.raises(ConfigError, match="trained with seed 3, not 0"):
        train("npg", "scalar-lqg", config=cfg, seed=0, out_dir=tmp_path, progress=False, resume=True)
    h = train("npg", "scalar-lqg", config=NPGConfig(num_envs=2, iterations=3), out_dir=tmp_path, progress=False,
              resume=True)
    assert [r["iteration"] for r in h] == [0, 1, 2] and load_checkpoint(tmp_path)["seed"] == 3


def test_one_list_of_the_learners():
    """pgcontrol.names.ALGORITHMS (torch-free, for --help) is the learners' own names, in order, and --algo's."""
    from pgcontrol.algos import LEARNERS
    from pgcontrol.cli import build_parser
    from pgcontrol.names import ALGORITHMS

    assert tuple(LEARNERS) == ALGORITHMS and all(LEARNERS[k].name == k for k in ALGORITHMS)
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    assert tuple(next(a for a in train._actions if a.dest == "algo").choices) == ALGORITHMS
