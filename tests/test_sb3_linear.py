"""experiments/sb3_linear.py: SB3's linear policy starts at the mean u = −K0 x and σ0 (no training: the runs are too long)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pgcontrol import plants as P
from pgcontrol.policies import default_initial_gain, default_std0


def _module():
    pytest.importorskip("stable_baselines3")  # the `bench` extra
    spec = importlib.util.spec_from_file_location("sb3_linear", Path(__file__).parents[1] / "experiments" / "sb3_linear.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("algo", ["ppo", "a2c", "trpo"])
def test_the_sb3_policy_starts_at_minus_K0_x_and_sigma0(algo):
    if algo == "trpo":
        pytest.importorskip("sb3_contrib")
    import torch

    S = _module()
    plant = P.make("double-integrator")
    K0, std0 = default_initial_gain(plant), np.full(plant.m, default_std0(plant))
    model = S.make_model(algo, plant, K0, std0, seed=0)
    x = np.array([[1.0, -2.0], [0.3, 0.5], [-4.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    dist = model.policy.get_distribution(torch.as_tensor(x)).distribution
    np.testing.assert_allclose(dist.mean.detach().numpy(), -x @ K0.T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dist.stddev.detach().numpy(), np.broadcast_to(std0, (4, plant.m)), rtol=1e-6)
    action, _ = model.predict(x, deterministic=True)  # what the env receives, after SB3's clipping to the bounds
    np.testing.assert_allclose(action, -x @ K0.T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(S.gain(model), K0, rtol=1e-6)
    actor = {n for n, p in model.policy.named_parameters() if "value" not in n}
    assert actor == {"log_std", "action_net.weight"}  # linear, no bias: only −K and log σ are learned
    assert model.gamma == plant.gamma
