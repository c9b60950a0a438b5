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
