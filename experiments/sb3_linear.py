"""SB3 PPO, SB3 A2C and sb3-contrib TRPO with a linear policy u = −Kx on a pgcontrol plant.

The setup that ``experiments/bench_plants.py`` runs for its ``sb3-ppo``, ``sb3-a2c`` and ``sb3-trpo``
learners (:func:`linear_run`). Needs the bench extra: ``pip install -e ".[bench]"`` (after torch).

The environment is :class:`pgcontrol.envs.LinearGaussianEnv` (reward −x'Qx − u'Ru, the episode truncated
after ``plant.horizon`` steps, terminated only where the state leaves ``plant.state_bound``), with float32
spaces (SB3's default dtype), wrapped by SB3 in its ``Monitor`` and a one-env ``DummyVecEnv``.

The actor is linear: SB3's ``ActorCriticPolicy`` with ``net_arch=dict(pi=[], vf=[64, 64])`` (no hidden
layer on the policy side, so the latent of the action head is the observation itself) and its action head
``action_net`` replaced by a linear map *without bias* (:class:`LinearGainPolicy`). Its weight is set to −K0,
so the mean action is exactly u = −K0 x at the start, and the state-independent ``log_std`` to log σ0 per
action dimension. The critic keeps SB3's default value network, a tanh 64-64 MLP (orthogonal init).
Everything else is the library's default for each algorithm (learning rate, ``n_steps``, minibatches,
epochs, GAE λ, clipping, A2C's RMSprop, TRPO's KL bound and critic updates, SB3's clipping of the sampled
action to the env's nominal action bound ``plant.state_bound``) except γ = ``plant.gamma``. One difference
from pgcontrol's learners follows from the defaults: an episode that diverges ends (``terminated``) and
SB3 does not penalise the cut-short return.
"""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from pgcontrol.envs import LinearGaussianEnv

ALGOS = ("ppo", "a2c", "trpo")
NET_ARCH = dict(pi=[], vf=[64, 64])  # linear actor; SB3's default 64-64 critic


class LinearGainPolicy(ActorCriticPolicy):
    """SB3's actor-critic policy whose action head is a bias-free linear map of the observation.

    With ``net_arch=dict(pi=[], ...)`` the head's input is the (flattened) observation, so the mean action
    is ``action_net.weight @ x`` = −K x. The head is replaced after SB3 builds the networks, and the
    optimizer rebuilt over the new parameters (with the algorithm's optimizer class and options).
    """

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, self.action_space.shape[0], bias=False)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


def set_linear_start(model, K0, std0) -> None:
    """Set the policy of SB3 ``model`` to the mean −K0 x and the standard deviations ``std0`` (per action dim)."""
    policy = model.policy
    K0 = np.asarray(K0, dtype=np.float64)
    std0 = np.broadcast_to(np.asarray(std0, dtype=np.float64), (K0.shape[0],))
    with torch.no_grad():
        policy.action_net.weight.copy_(torch.as_tensor(-K0))
        policy.log_std.copy_(torch.as_tensor(np.log(std0)))


def gain(model) -> np.ndarray:
    """The gain K (m × n, u = −Kx) of a :class:`LinearGainPolicy` model's mean action."""
    return -model.policy.action_net.weight.detach().cpu().numpy().astype(np.float64)


def make_model(algo: str, plant, K0, std0, seed: int):
    """The SB3 model of ``algo`` (``"ppo"``, ``"a2c"`` or ``"trpo"``) on ``plant``, linear policy at (K0, σ0)."""
    if algo == "ppo":
        from stable_baselines3 import PPO as cls
    elif algo == "a2c":
        from stable_baselines3 import A2C as cls
    elif algo == "trpo":
        from sb3_contrib import TRPO as cls
    else:
        raise ValueError(f"algo must be one of {ALGOS}; got {algo!r}")
    env = LinearGaussianEnv(plant, dtype="float32")
    model = cls(LinearGainPolicy, env, gamma=plant.gamma, policy_kwargs=dict(net_arch=NET_ARCH), seed=seed,
                device="cpu", verbose=0)
    set_linear_start(model, K0, std0)
    return model


class _FiniteRewards(BaseCallback):
    """Stops training at the first non-finite reward (the env keeps them finite; this is a guard)."""

    def __init__(self):
        super().__init__()
        self.bad = False

    def _on_step(self) -> bool:
        if not np.all(np.isfinite(self.locals["rewards"])):
            self.bad = True
        return not self.bad


def linear_run(algo: str, plant, K0, std0, seed: int, cap: int) -> tuple[np.ndarray, bool, int]:
    """Train SB3's ``algo`` with a linear policy from (K0, σ0) for ``cap`` env steps; ``(K, diverged, steps)``.

    ``K`` is the final mean gain (u = −Kx); ``diverged`` is True where the parameters end non-finite, a
    reward was non-finite, or training raised (e.g. a NaN mean rejected by torch's ``Normal``); ``steps``
    is the number of env steps taken (SB3 finishes its last rollout, so it can exceed ``cap`` by less than
    one rollout's ``n_steps``).
    """
    torch.set_num_threads(1)
    model = make_model(algo, plant, K0, std0, seed)
    guard = _FiniteRewards()
    try:
        model.learn(total_timesteps=int(cap), callback=guard)
        raised = False
    except (ValueError, RuntimeError, FloatingPointError, OverflowError):
        raised = True
    K = gain(model)
    finite = all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())
    diverged = raised or guard.bad or not finite or not np.all(np.isfinite(K))
    return K, bool(diverged), int(model.num_timesteps)
