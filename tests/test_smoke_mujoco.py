"""MuJoCo smoke runs of the episodic learners (VPG, NPG, TRPO) on ``InvertedPendulum-v5``.

A tiny budget (2 iterations, 2 environments, whole episodes) with a linear and
an MLP policy: the loop must run headless through Gymnasium's ``SyncVectorEnv``
and log finite metrics. InvertedPendulum-v5 pays ``int(not terminated)``: +1 per
step while the pole is up and 0 on the step where it falls, so an episode that
ends by falling (every one, for these untrained policies, long before the
1000-step time limit) has length = return + 1. That ties the logged
``return_mean`` to the step counter, which must count exactly the valid
(non-reset) transitions: one episode per environment and iteration. (The AC and PPO MuJoCo smoke runs live in ``test_ac.py`` and
``test_ppo.py``.)
"""

from __future__ import annotations

import math

import pytest

from pgcontrol.algos.npg import NPGConfig
from pgcontrol.algos.vpg import VPGConfig
from pgcontrol.train import train

pytest.importorskip("mujoco")

ENV = "InvertedPendulum-v5"
NUM_ENVS, ITERATIONS = 2, 2

CONFIGS = {
    "vpg": VPGConfig(num_envs=NUM_ENVS, iterations=ITERATIONS, lr=1e-3, optimizer="adam", max_grad_norm=1.0),
    "npg": NPGConfig(num_envs=NUM_ENVS, iterations=ITERATIONS, kl_bound=0.01),
    "trpo": NPGConfig(num_envs=NUM_ENVS, iterations=ITERATIONS, kl_bound=0.01, line_search=True),
}
METRICS = {"vpg": ("loss_policy", "grad_norm", "entropy"),
           "npg": ("loss_policy", "grad_norm", "gFg", "entropy"),
           "trpo": ("loss_policy", "grad_norm", "gFg", "entropy")}


@pytest.mark.parametrize("policy_kind", ["linear", "mlp"])
@pytest.mark.parametrize("algo", ["vpg", "npg", "trpo"])
def test_episodic_learner_smoke(algo, policy_kind):
    h = train(algo, ENV, config=CONFIGS[algo], policy_kind=policy_kind, seed=0, progress=False)
    assert [r["iteration"] for r in h] == list(range(ITERATIONS))
    steps = 0
    for row in h:
        for k in METRICS[algo] + ("return_mean", "return_std"):
            assert math.isfinite(row[k]), (k, row[k])
        # one whole episode per environment, each ended by the pole falling: length = return + 1
        assert 0.0 < row["return_mean"] < 999.0
        steps += round(NUM_ENVS * (row["return_mean"] + 1))
        assert row["steps"] == steps, (row["steps"], steps)
        assert "gap" not in row  # exact LQ metrics only on the linear-Gaussian plants
