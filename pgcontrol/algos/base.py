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
from torch.func import functional_call, grad, vmap

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
    adaptive : bool or None
        The statistically controlled step, batch and stopping rule of each
        learner (its module docstring, "Adaptive rules"): per-episode (VPG,
        NPG, TRPO) or per-environment (AC, PPO) gradient estimates give the
        standard error of ĝ; the step's KL is shrunk by the signal fraction
        of ĝ, the batch grows by the norm test of Byrd, Chin, Nocedal & Wu
        (2012), the run stops once ĝ is not distinguishable from zero at the
        largest batch, and a step whose rollouts blow up is taken back and
        halved (:class:`StepGuard`). None (default): on for linear policies,
        off otherwise (per-sample scores of an MLP cost memory).
    norm_test : float
        θ of the norm test: the batch grows until the estimated variance of ĝ
        (in the step's metric) is at most θ² times its squared signal norm.
        Default 0.5.
    max_rounds : int
        The largest batch, in multiples of the first (``num_envs`` episodes,
        or ``num_envs × n_steps`` steps). Default 32.
    stop_rounds : int or None
        Where the gradient is not significant at the largest batch, that batch doubles, up to
        ``stop_rounds`` rounds, before the stopping rule counts: the run tests the gradient on more
        samples before it gives up or steps on noise. None (default): :meth:`largest_rounds`,
        ``max_rounds`` (VPG, NPG, TRPO, AC) or max(128, ``max_rounds``) (PPO).
    stop_patience : int
        Stop after this many consecutive iterations at the largest batch whose
        gradient is not significant (its signal part no larger than its
        noise part). Default 10: with 3, NPG and TRPO ended runs that had
        wandered from a start near K* before they came back (random-8-3-108:
        0.36 % → 0.51 % and 0.72 %), and AC's and PPO's noisier estimates
        ended runs on laplacian-3 at gaps of 1.2–3.7 % (``docs/benchmarks-plants.md``).
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
    adaptive: bool | None = None
    norm_test: float = 0.5
    max_rounds: int = 32
    stop_rounds: int | None = None
    stop_patience: int = 10

    STOP_ROUNDS = 0  # the least default ``stop_rounds`` of the learner (PPO: 128)

    def largest_rounds(self) -> int:
        """The batch at which the stopping rule counts: ``stop_rounds``, or for None
        max(``max_rounds``, the learner's ``STOP_ROUNDS``)."""
        return self.stop_rounds if self.stop_rounds is not None else max(self.max_rounds, self.STOP_ROUNDS)

    def __post_init__(self):
        self._positive_ints("num_envs", "iterations", "max_rounds", "stop_patience")
        if self.stop_rounds is not None and (isinstance(self.stop_rounds, bool) or not isinstance(self.stop_rounds, int)
                                             or self.stop_rounds < self.max_rounds):
            self._fail("stop_rounds", f"None or an integer >= max_rounds ({self.max_rounds})", self.stop_rounds)
        if self.adaptive is not None and not isinstance(self.adaptive, bool):
            self._fail("adaptive", "True, False or None (on for linear policies)", self.adaptive)
        self._positive("norm_test")
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


def check_least_squares_critic(critic) -> None:
    """``critic_optimizer="lstsq"`` needs a critic linear in its parameters with ``fit_least_squares()``."""
    if not hasattr(critic, "fit_least_squares"):

        raise ConfigError("critic_optimizer='lstsq' needs a critic with fit_least_squares() (QuadraticValue); "
                          f"got {type(critic).__name__}")


def lr_fraction(config, iteration: int) -> float:
    """The factor of ``anneal_lr``: 1 − iteration/iterations (``lr/iterations`` at the last), else 1."""
    return 1.0 - iteration / config.iterations if getattr(config, "anneal_lr", False) else 1.0


class StepGuard:
    """Model-free check that the last update did not destabilise the closed loop; shortens it if it did.

    Before each update the learner calls :meth:`remember` (θ before the
    step). The next batch, collected with the new θ, is compared with the
    batch before it: its mean cost per step (−reward, averaged per
    environment, then over environments) must stay below ``factor`` times
    the previous batch's mean plus three of its standard errors, and no
    state may have left the plant's bound. Otherwise :meth:`accept` puts θ
    back, halves :attr:`shrink` (the learner multiplies its step by it) and
    the batch is discarded; every accepted batch lets :attr:`shrink` grow
    back by 1.25 up to 1. Only a blow-up with no earlier θ to go back to is
    unrecoverable. Used where costs are positive (linear policies on plants).
    """

    def __init__(self, factor: float = 3.0):
        self.factor = factor
        self.theta = None  # θ before the last update
        self.ref = None  # (mean cost per step, its standard error) of the last accepted batch
        self.shrink = 1.0
        self.rejected = 0  # consecutive rejections

    @staticmethod
    def cost(batch) -> tuple[float, float]:
        """Mean cost per valid step and its standard error over the environments (columns)."""
        v = batch.valid.to(batch.rewards.dtype)
        per_env = -(batch.rewards * v).sum(0) / v.sum(0).clamp_min(1)
        n = per_env.numel()
        se = float(per_env.std() / n ** 0.5) if n > 1 else 0.0
        return float(per_env.mean()), se

    def remember(self, params) -> None:
        from torch.nn.utils import parameters_to_vector
        self.theta = parameters_to_vector(list(params)).detach().clone()

    def retreat(self, params) -> bool:
        """θ back to its value before the last update, the next step halved; False if there is none."""
        if self.theta is None:
            return False
        assign_vector(self.theta, params)
        self.shrink *= 0.5
        self.rejected += 1
        return True

    def accept(self, batch, params) -> bool:
        """False (and θ put back) when ``batch`` shows a blow-up against the previous batch's own scale."""
        mean, se = self.cost(batch)
        bad = batch.diverged or not math.isfinite(mean)
        if not bad and self.ref is not None:
            ref_mean, ref_se = self.ref
            bad = ref_mean > 0 and mean > self.factor * (ref_mean + 3 * ref_se)
        if bad:
            if self.retreat(params):
                return False
            return True  # nothing to go back to: the trainer's own divergence check decides
        self.ref = (mean, se)
        self.rejected = 0
        self.shrink = min(1.0, 1.25 * self.shrink)
        return True

    def state_dict(self) -> dict:
        return {"theta": self.theta, "ref": self.ref, "shrink": self.shrink, "rejected": self.rejected}

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.theta, self.ref = state["theta"], state["ref"]
            self.shrink, self.rejected = state["shrink"], state["rejected"]


class StepAgreement:
    """The step's radius from the sign of the slope along the last step (VPG, NPG, TRPO, AC, PPO).

    After a step δθ_{k−1}, the gradient estimate at the new point gives the
    slope of J along that step, ĝ_kᵀδθ_{k−1} (a number that needs no metric:
    ĝ pairs with a step). Positive: the step stopped short of the best point
    on its line; negative: it went past it. :meth:`update` multiplies
    :attr:`radius` (the learner multiplies its step's KL by it) by ``cut``
    after a negative slope and by ``grow`` (up to ``most``) after a positive
    one larger than its standard error sqrt(δθᵀ Var ĝ δθ). Far from the
    optimum consecutive steps agree and the radius grows; where a fixed-KL
    step jumps across the optimum the slopes turn negative and the radius
    falls until the steps fit the distance left; at the optimum the slope's
    sign is a coin toss, growth needs a significant slope, and the radius
    falls: the decreasing steps of stochastic approximation, set by the
    rollouts alone. The sign of the inner product of consecutive gradients
    is Pflug's test for the stationary phase of stochastic approximation
    (as in Chee & Toulis, "Convergence diagnostics for stochastic gradient
    descent with constant learning rate", AISTATS 2018); growing a step
    while consecutive gradients agree and cutting it when they disagree is
    Jacobs' (1988) delta-bar-delta rule on one scalar.

    AC and PPO use it too (ĝ and Var ĝ from their per-environment
    estimates, :func:`signal_controlled_start`). With AC's Adam step in place
    of the natural one the radius collapses far from the optimum on
    ill-conditioned plants (cartpole-linearized), Adam's per-coordinate
    steps crossing the valley. PPO's clipped epochs show it more rarely: one of six cart-pole runs
    (default start, seed 0) stalls at a gap of 1.75 with the radius at 10⁻⁴ while its gradient stays
    significant (``docs/benchmarks-plants.md``).
    """

    def __init__(self, grow: float = 1.5, cut: float = 0.5, most: float = 8.0):
        self.grow, self.cut, self.most = grow, cut, most
        self.radius = 1.0
        self.last = None  # the last step δθ (None: no step yet)
        self.slope = float("nan")

    def update(self, g: torch.Tensor, cov: torch.Tensor) -> float:
        """The radius for the step at ĝ = ``g`` (``cov`` = Var ĝ), from the slope ĝᵀδθ_{k−1}.

        Any negative slope cuts; only a positive slope above its standard
        error sqrt(δθᵀ Var ĝ δθ) grows, so that noise alone lets the radius fall.
        """
        self.slope = float("nan")
        if self.last is not None and self.last.shape == g.shape:
            d = self.last.to(g.dtype)
            self.slope = float(g.detach() @ d)
            se = math.sqrt(max(float(d @ cov.detach() @ d), 0.0))
            if self.slope < 0:
                self.radius *= self.cut
            elif self.slope > se:
                self.radius = min(self.most, self.radius * self.grow)
        return self.radius

    def taken(self, step: torch.Tensor) -> None:
        """Remember the step actually taken (zero steps are not remembered: no slope to read)."""
        step = step.detach().clone()
        if bool(step.abs().sum() > 0):
            self.last = step

    def state_dict(self) -> dict:
        return {"radius": self.radius, "last": self.last}

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.radius, self.last = state["radius"], state["last"]


@torch.no_grad()
def assign_vector(vec: torch.Tensor, params) -> None:
    """Copy ``vec`` into the parameters in place (they may be views of one flat tensor, :func:`flat_parameters`)."""
    i = 0
    for p in params:
        n = p.numel()
        p.copy_(vec[i:i + n].view_as(p))
        i += n


def uses_adaptive_rules(config, policy) -> bool:
    """``config.adaptive``, or for None: on for linear policies."""
    return bool(getattr(policy, "is_linear", False)) if config.adaptive is None else bool(config.adaptive)


def per_sample_scores(policy, obs, actions, valid) -> tuple[torch.Tensor, list]:
    """``S[..., :] = ∇_θ log π(u|x)`` over the trainable parameters, zero where not ``valid``: shape (*valid.shape, d).

    Per-sample gradients by ``torch.func``. With the advantage weights they
    give one estimate of ∇J per episode (or per environment), whose mean is
    the batch's ĝ and whose spread is ĝ's standard error.
    """
    named = [(k, p) for k, p in policy.named_parameters() if p.requires_grad]
    if hasattr(policy, "scores"):  # closed form (linear policies)
        return policy.scores(obs, actions) * valid[..., None].to(obs.dtype), [p for _, p in named]
    params = {k: p.detach() for k, p in named}
    lead = valid.shape

    def logp(p, x, u):
        return functional_call(policy, p, (x[None],)).log_prob(u[None]).squeeze(0)

    x, u = obs.reshape(valid.numel(), -1), actions.reshape(valid.numel(), -1)
    sc = vmap(grad(logp), in_dims=(None, 0, 0))(params, x, u)
    S = torch.cat([sc[k].reshape(valid.numel(), -1) for k, _ in named], dim=1).reshape(*lead, -1)
    return S * valid[..., None].to(S.dtype), [p for _, p in named]


def gradient_noise(G: torch.Tensor, metric=None) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """From M independent estimates ``G`` (M, d): ``(ĝ, Var ĝ, ‖ĝ‖², noise)`` in the metric A.

    ĝ = mean of the rows, Var ĝ = sample covariance / M, ‖ĝ‖²_A = ĝᵀAĝ and its
    noise part tr(A Var ĝ) (the expected ‖ĝ‖²_A is ‖g‖²_A plus it). ``metric``:
    None for A = I, else the matrix F whose inverse is A (the natural metric).
    """
    M = G.shape[0]
    g = G.mean(0)
    C = (G - g).T @ (G - g) / max(M - 1, 1) / M
    if metric is None:
        return g, C, float(g @ g), float(C.diagonal().sum())
    return g, C, float(g @ torch.linalg.solve(metric, g)), float(torch.linalg.solve(metric, C).diagonal().sum())


class SampleSize:
    """The norm test (Byrd, Chin, Nocedal & Wu 2012) and the stopping rule, in rounds of the first batch.

    After an iteration with batch ``rounds`` × the first, of noise part ν and
    signal part s = ‖ĝ‖² − ν (any metric), the batch that satisfies
    ν·M/M' ≤ θ²·s is M' = M·ν/(θ²s); the next batch is that, never smaller
    than now (with ``shrink``: never smaller than half of now, nor than the
    first), at most twice now and at most the largest batch, ``max_rounds`` at the start. With ``shrink``
    (VPG, NPG, TRPO, PPO), where the norm test says a smaller batch holds the
    noise at θ² of the signal, the budget buys more steps. AC only grows its
    batch: its per-environment estimates come from windows of episodes that
    run on across batches, and their spread misses the variation from one
    window to the next (PPO's do too, but a PPO batch that stayed at its
    largest after a noisy start took 1 M steps to cross random-2-2-101's and
    random-2-2-114's distance to K*, ``docs/benchmarks-plants.md``). An
    iteration at the largest batch with s ≤ ν (ĝ not larger than its own
    standard error) doubles the largest batch while it is below
    ``stop_rounds``; at ``stop_rounds``, ``stop_patience`` such iterations in
    a row set :attr:`stop_reason`.
    """

    def __init__(self, config, shrink: bool = False):
        self.theta, self.max_rounds, self.patience = config.norm_test, config.max_rounds, config.stop_patience
        self.stop_rounds = config.largest_rounds()
        self.shrink = shrink  # the batch may also fall, at most to half of now (independent episodes)
        self.rounds, self.quiet, self.stop_reason = 1, 0, None

    def update(self, total: float, noise: float, what: str) -> float:
        """Next batch and stopping rule from ‖ĝ‖² and its noise part; returns the signal fraction s/‖ĝ‖² in [0, 1]."""
        signal = total - noise
        at_max = self.rounds >= self.max_rounds
        insignificant = at_max and signal <= noise
        if insignificant and self.max_rounds < self.stop_rounds:  # test on more samples before stopping
            self.max_rounds, insignificant = min(2 * self.max_rounds, self.stop_rounds), False
        need = self.rounds * noise / (self.theta ** 2 * signal) if signal > 0 else float("inf")
        want = math.ceil(min(need, 1e12))
        least = max(self.rounds // 2, 1) if self.shrink else self.rounds
        self.rounds = int(min(max(want, least), 2 * self.rounds, self.max_rounds))
        self.quiet = self.quiet + 1 if insignificant else 0
        if self.quiet >= self.patience:
            self.stop_reason = (f"gradient not significant at the largest batch ({what}) for "
                                f"{self.quiet} iterations")
        ok = total > 0 and math.isfinite(total) and math.isfinite(noise)
        return min(max(signal / total, 0.0), 1.0) if ok else 0.0

    def state_dict(self) -> dict:
        return {"rounds": self.rounds, "quiet": self.quiet, "stop_reason": self.stop_reason,
                "max_rounds": self.max_rounds}

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.rounds, self.quiet, self.stop_reason = state["rounds"], state["quiet"], state["stop_reason"]
            self.max_rounds = max(1, min(int(state.get("max_rounds", self.max_rounds)), self.stop_rounds))


def per_environment_gradients(policy, batch, adv) -> tuple[torch.Tensor, torch.Tensor, list]:
    """One estimate of the actor-critic gradient (4.22) per environment, and the sample Fisher (AC, PPO).

    Returns ``(G, F, params)``: ``G[e]`` = mean over environment e's valid
    steps of ∇log π(u|x) Â (the rows' mean is the batch's gradient when the
    environments have equally many valid steps, as continuous collection
    gives), ``F`` = mean of ∇log π ∇log πᵀ (slides: Fisher information).
    """
    S, params = per_sample_scores(policy, batch.obs, batch.actions, batch.valid)
    counts = batch.valid.sum(0).clamp_min(1).to(S.dtype)
    G = (S * adv[..., None].to(S.dtype)).sum(0) / counts[:, None]
    F = torch.einsum("tni,tnj->ij", S, S) / batch.valid.sum().clamp_min(1).to(S.dtype)
    return G, F, params



def kl_controlled_state(size: "SampleSize", kl: "KLControl", guard: "StepGuard | None",
                        agreement: "StepAgreement") -> dict:
    """The adaptive rules' state of AC and PPO (batch size, KL-controlled learning-rate scale, guard, step
    radius), for checkpoints."""
    return {"size": size.state_dict(), "lr_scale": kl.scale, "guard": guard.state_dict() if guard else None,
            "agreement": agreement.state_dict()}


def load_kl_controlled_state(state: dict | None, size: "SampleSize", kl: "KLControl", guard: "StepGuard | None",
                             agreement: "StepAgreement") -> None:
    """Restore what :func:`kl_controlled_state` saved (nothing for a checkpoint without it)."""
    if state:
        size.load_state_dict(state["size"])
        kl.scale = state["lr_scale"]
        if guard is not None:
            guard.load_state_dict(state["guard"])
        agreement.load_state_dict(state.get("agreement"))


def signal_controlled_start(policy, batch, adv, size: "SampleSize", guard: "StepGuard", config,
                            agreement: "StepAgreement") -> tuple:
    """The adaptive rules' statistics at θ_old for AC and PPO, before their step.

    Per-environment estimates of (4.22) (:func:`per_environment_gradients`)
    give the signal fraction ρ of ‖ĝ‖²_{F⁻¹}; ``size`` takes its norm test and
    stopping rule, ``guard`` remembers θ_old. Returns ``(params, theta_old,
    old_dist, extra, (ĝ, F))``: what :meth:`KLControl.limit` needs after the step, and
    the metrics, with the step's KL target ε × ρ × the step radius of
    ``agreement`` (read from the slope ĝᵀδθ_{k−1}) × the guard's shrink, or 0 for a
    batch smaller than the norm test asked for (the last one, cut short by the
    step budget: too noisy to step on), and the gradient estimate with its
    Fisher matrix (AC's natural step).
    """
    G, F, params = per_environment_gradients(policy, batch, adv)
    F = F + 1e-8 * (float(F.diagonal().mean()) or 1.0) * torch.eye(F.shape[0], dtype=F.dtype)
    g, C, total, noise = gradient_noise(G, F)
    radius = agreement.update(g, C)
    asked = size.rounds * config.n_steps * config.num_envs  # the batch the norm test asked for
    rho = size.update(total, noise, f"{asked} steps")
    guard.remember(policy.parameters())
    theta_old = torch.nn.utils.parameters_to_vector(params).detach().clone()
    with torch.no_grad():
        old_dist = policy(batch.obs[batch.valid])
    full = batch.valid.numel() >= asked  # the last batch, cut short by the step budget, is too noisy to step on
    extra = {"signal_fraction": rho, "kl_target": config.kl_bound * rho * radius * guard.shrink * full,
             "next_batch_steps": size.rounds * config.n_steps * config.num_envs}
    extra["step_radius"] = radius
    if math.isfinite(agreement.slope):  # none before the first step (history rows hold no NaN)
        extra["slope"] = agreement.slope
    return params, theta_old, old_dist, extra, (g, F)

class KLControl:
    """The step of AC and PPO held to a KL that follows the statistics (their "Adaptive rules").

    ``target`` ε' = ``kl_bound`` × signal fraction × the guard's shrink.
    After the optimiser's steps, the mean KL(π_old ‖ π_θ) over the batch's
    states is measured exactly (Gaussian policies): a step above ε' is
    shortened, θ_old + β(θ − θ_old) with β halved until KL ≤ ε' (β = 0 after
    ten halvings); and the learning-rate multiplier :attr:`scale` follows
    the KL the optimiser produced, ÷1.5 above 2ε' and ×1.5 below ε'/2 (the
    adaptive-KL rule of Schulman et al. 2017, §4, applied to the step size
    as rl_games does). Both make the step's size follow the plant, not a
    constant tuned for one.
    """

    def __init__(self):
        self.scale = 1.0

    @torch.no_grad()
    def limit(self, policy, params, theta_old, obs, old_dist, target: float, grow: bool = True) -> dict:
        """Shorten the step to the KL ``target`` and move the learning-rate multiplier.

        ``grow=False``: the multiplier may fall but not grow (PPO, where its clip, not the step size,
        held the epochs' KL below the target: a larger step size would only lengthen Adam's path).
        """
        from torch.nn.utils import parameters_to_vector

        theta = parameters_to_vector(params).detach().clone()

        def kl_at(frac):
            assign_vector(theta_old + frac * (theta - theta_old), params)
            return float(torch.distributions.kl_divergence(old_dist, policy(obs)).mean())

        raw = kl_at(1.0)
        frac, kl = 1.0, raw
        for _ in range(10):
            if kl <= target:
                break
            frac *= 0.5
            kl = kl_at(frac)
        else:
            if kl > target:
                frac, kl = 0.0, kl_at(0.0)
        if target > 0 and math.isfinite(raw):
            if raw > 2 * target:
                self.scale /= 1.5
            elif raw < target / 2 and grow:
                self.scale *= 1.5
        return {"kl": kl, "kl_unlimited": raw, "step_fraction": frac, "lr_scale": self.scale}
