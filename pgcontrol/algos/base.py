"""What every learner shares: the common config fields and the learner interface.

A learner is a class with

* ``Config`` — a frozen dataclass deriving from :class:`CommonConfig`;
* ``__init__(policy, config, *, gamma, obs_dim, device, critic=None, plant=None)``;
* ``collect_spec() -> dict`` — the keyword arguments of
  :meth:`pgcontrol.rollout.Collector.collect` (``episodes=True`` or ``n_steps``);
* ``update(batch, iteration) -> dict`` of float metrics (``loss_*`` keys are
  checked for finiteness by the trainer);
* ``critic`` (a module or ``None``), ``state_dict()`` / ``load_state_dict()``
  for the optimisers and critic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..critics import MLPValue, QuadraticValue
from ..policies import ACTIVATIONS, MAX_LAYERS, MAX_WIDTH


MAX_ENVS = 2**24
MAX_INT = 2**31 - 1
"""Largest value of any integer setting (iterations, ...): configs come from files too."""
MAX_N_STEPS = 2**20
"""Largest ``n_steps`` (steps per environment per iteration)."""
MAX_INNER_STEPS = 100_000
"""Largest count of an inner loop run every iteration (``INNER_LOOPS``)."""
INNER_LOOPS = ("critic_steps", "critic_epochs", "cg_iters", "max_backtracks", "update_epochs", "num_minibatches")


@dataclass(frozen=True)
class CommonConfig:
    """Fields every learner's config has.

    Attributes
    ----------
    num_envs : int
        Parallel environments (trajectories per batch for episodic learners).
    iterations : int
        Number of updates.
    gamma : float or None
        Discount; None takes the plant's (0.99 for other environments).
    normalize_obs : bool
        Wrap the environments in Gymnasium's ``NormalizeObservation`` (running
        mean/variance; saved in checkpoints by ``train``). Default False. Keep
        it off for linear policies on the LQ plants: the gain would act on
        normalised observations and the exact cost gap that ``train`` reports
        (from ``policy.K``) would no longer refer to the plant's state.
    normalize_reward : bool
        Wrap them in ``NormalizeReward`` (rewards divided by the running std of
        the discounted return; statistics also checkpointed). Default False.
    normalize_clip : float or None
        Clip the normalised observations and rewards to ``[-c, c]``, as
        Stable-Baselines3's ``VecNormalize`` and CleanRL do (both with
        c = 10); evaluation clips the observations alike. Default None:
        unclipped, as Gymnasium's wrappers leave them. Needs
        ``normalize_obs`` or ``normalize_reward``.
    clip_actions : bool
        Send the environments the sampled action clipped to their action
        space (Gymnasium's ``ClipAction``; SB3 and CleanRL do this on MuJoCo,
        where the control cost is charged on the action received); the
        log-probabilities stay those of the unclipped sample. Default False.
    hidden : tuple of int
        Hidden-layer widths of the MLP policy (``policy_kind="mlp"``) and of
        the MLP critic; default ``(64, 64)``. A config file gives a list.
    activation : {"tanh", "relu"}
        Their hidden-layer activation; default ``"tanh"``.
    ortho_init : bool
        Orthogonal initialisation (default True, as CleanRL); False takes
        torch's ``Linear`` initialisation, SB3's ``ortho_init=False``.
    log_std0 : float
        Initial log σ of the MLP policy (default 0: σ = 1). Linear policies
        keep their own starting σ (:func:`pgcontrol.policies.build_policy`).
    """

    num_envs: int = 16
    iterations: int = 100
    gamma: float | None = None
    normalize_obs: bool = False
    normalize_reward: bool = False
    normalize_clip: float | None = None
    clip_actions: bool = False
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    ortho_init: bool = True
    log_std0: float = 0.0

    def __post_init__(self):
        self._positive_ints("num_envs", "iterations")
        if not isinstance(self.hidden, tuple) or any(isinstance(h, bool) or not isinstance(h, int) or h < 1
                                                     for h in self.hidden):
            self._fail("hidden", "a tuple of layer widths >= 1 such as (64, 64)", self.hidden)
        if len(self.hidden) > MAX_LAYERS or any(h > MAX_WIDTH for h in self.hidden):
            self._fail("hidden", f"at most {MAX_LAYERS} layers (MAX_LAYERS) of at most {MAX_WIDTH} units (MAX_WIDTH)",
                       self.hidden)
        self._choice("activation", tuple(ACTIVATIONS))
        self._positive("normalize_clip", optional=True)
        if self.normalize_clip is not None and not (self.normalize_obs or self.normalize_reward):
            self._fail("normalize_clip", "None unless normalize_obs or normalize_reward is on", self.normalize_clip)
        if isinstance(self.log_std0, bool) or not isinstance(self.log_std0, (int, float)) \
                or not math.isfinite(self.log_std0):
            self._fail("log_std0", "a finite number", self.log_std0)
        if self.num_envs > MAX_ENVS:
            self._fail("num_envs", f"at most {MAX_ENVS} (2**24; memory grows with it)", self.num_envs)
        if self.gamma is not None and (isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float))
                                       or not (0.0 < self.gamma <= 1.0)):
            raise ConfigError(f"{type(self).__name__}.gamma must lie in (0, 1] (or be None: the plant's); "
                              f"got {self.gamma!r}")
        for name, v in vars(self).items():
            if isinstance(v, float) and not math.isfinite(v):
                self._fail(name, "a finite number", v)
            if isinstance(v, int) and not isinstance(v, bool):
                cap = MAX_INNER_STEPS if name in INNER_LOOPS else MAX_N_STEPS if name == "n_steps" else MAX_INT
                if abs(v) > cap:
                    self._fail(name, f"an integer of at most {cap}", v)
            if name.endswith(("lr", "_coef")) and isinstance(v, (int, float)) and v < 0:
                self._fail(name, ">= 0", v)

    # shared validators: each names the field, the expected form and the value
    def _fail(self, name: str, expected: str, value) -> None:
        raise ConfigError(f"{type(self).__name__}.{name} must be {expected}; got {value!r}")

    def _positive_ints(self, *names: str) -> None:
        for name in names:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                self._fail(name, "a positive integer", v)

    def _positive(self, *names: str, optional: bool = False) -> None:
        for name in names:
            v = getattr(self, name)
            if v is None and optional:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                self._fail(name, "> 0" + (" or None" if optional else ""), v)

    def _choice(self, name: str, choices: tuple[str, ...]) -> None:
        v = getattr(self, name)
        if v not in choices:
            self._fail(name, " or ".join(repr(c) for c in choices), v)

    def _unit_interval(self, name: str, what: str = "") -> None:
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            self._fail(name, "in [0, 1]" + what, v)

    def _lstsq_needs_linear_critic(self) -> None:
        """``critic_optimizer="lstsq"`` solves (4.20) in closed form: only for a critic linear in its parameters."""
        if getattr(self, "critic_optimizer", None) == "lstsq" and getattr(self, "critic", None) == "mlp":
            raise ConfigError(f"{type(self).__name__}.critic_optimizer='lstsq' needs a critic linear in its "
                              "parameters (critic='quadratic'); use critic_optimizer='adam' with critic='mlp'")


def make_critic(config, obs_dim: int, device, dtype) -> torch.nn.Module | None:
    """The critic ``config.critic`` names: ``"none"``, ``"mlp"`` (:class:`MLPValue` shaped by the config's
    ``hidden``, ``activation`` and ``ortho_init``) or ``"quadratic"`` (:class:`QuadraticValue`, exact for LQ)."""

    kind = config.critic
    if kind == "none":
        return None
    if kind == "mlp":
        return MLPValue(obs_dim, config.hidden, activation=config.activation,
                        ortho_init=config.ortho_init).to(device=device, dtype=dtype)
    if kind == "quadratic":
        return QuadraticValue(obs_dim).to(device=device, dtype=dtype)
    raise ConfigError(f"unknown critic {kind!r}; choose 'none', 'mlp' or 'quadratic'")


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """``"sgd"`` (plain gradient steps, eq. (3.22)) or ``"adam"``."""

    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ConfigError(f"unknown optimizer {name!r}; choose 'sgd' or 'adam'")


def flat_parameters(params) -> torch.nn.Parameter:
    """One contiguous parameter (with its gradient) that ``params`` become views of; for a faster Adam.

    On the CPU torch's Adam runs its eight element-wise operations once per
    parameter tensor; over one flat tensor they run once. Every element gets
    the same operations in the same order, so the numbers are the same bit
    for bit, but an MLP's minibatch step costs a fraction of the dispatches.
    Each parameter's ``data`` and ``grad`` become views into the flat
    tensor and its gradient: ``backward`` accumulates into them in place,
    which holds as long as the gradients are zeroed in place
    (``optimizer.zero_grad(set_to_none=False)``), never set to ``None``.
    Gradient-norm clipping keeps taking the original ``params`` (the norm of
    the per-tensor norms, as before).
    """
    params = list(params)
    flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    start = 0
    for p in params:
        n = p.numel()
        p.data = flat.data[start:start + n].view_as(p)
        p.grad = flat.grad[start:start + n].view_as(p)
        start += n
    return flat


def values_of(critic, batch):
    """``(V(x_t), V(x_{t+1}))`` with ``V(x_{t+1}) = 0`` where the episode terminated; zeros without a critic."""
    if critic is None:
        z = torch.zeros_like(batch.rewards)
        return z, z
    with torch.no_grad():
        v = critic(batch.obs).to(batch.rewards.dtype)
        nv = critic(batch.next_obs).to(batch.rewards.dtype) * (~batch.terminated)
    return v, nv


def fit_critic(critic, optimizer, obs, targets, *, epochs: int, minibatch: int | None = None, generator=None):
    """Regress ``V(obs)`` on fixed ``targets`` (squared error, eq. (4.20) with frozen targets)."""
    if critic is None:
        return float("nan")
    n = obs.shape[0]
    mb = n if minibatch is None else min(int(minibatch), n)
    loss = torch.tensor(float("nan"))
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator, device="cpu").to(obs.device)
        for i in range(0, n, mb):
            idx = perm[i:i + mb]
            loss = 0.5 * (critic(obs[idx]).to(targets.dtype) - targets[idx]).pow(2).mean()
            optimizer.zero_grad(set_to_none=False)  # in place: gradients may be views (flat_parameters)
            loss.backward()
            optimizer.step()
    return loss.item()


def check_least_squares_critic(critic) -> None:
    """``critic_optimizer="lstsq"`` needs a critic linear in its parameters with ``fit_least_squares()``."""
    if not hasattr(critic, "fit_least_squares"):

        raise ConfigError("critic_optimizer='lstsq' needs a critic with fit_least_squares() (QuadraticValue); "
                          f"got {type(critic).__name__}")


def lr_fraction(config, iteration: int) -> float:
    """The factor of ``anneal_lr``: 1 − iteration/iterations (``lr/iterations`` at the last), else 1."""
    return 1.0 - iteration / config.iterations if getattr(config, "anneal_lr", False) else 1.0
