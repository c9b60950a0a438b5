"""Actor-critic (batch A2C and the online two-timescale variant), eqs. (4.17)–(4.23).

One iteration:

1. roll out ``n_steps`` steps of each of the ``num_envs`` environments,
   continuing where the last batch stopped (no reset between iterations);
2. **TD target and advantage** — the value of π_θ satisfies the Bellman
   equation (4.18), so the critic's target is ``y_i = r_i + γ V_φ(x_{i+1})``
   (4.19) and the advantage the TD residual ``A_φ(x_i, u_i) = y_i − V_φ(x_i)``
   (4.21). ``V_φ(x_{i+1}) = 0`` where the episode *terminated* (nothing
   follows); a *truncated* episode (time limit) and the cut at the end of the
   batch bootstrap with V_φ of the final observation. With ``lam > 0`` the
   advantage is GAE(γ, λ) (6.46) and the target the λ-return; λ = 0 is
   exactly (4.19)/(4.21);
3. **actor** — ``loss = −(1/N) Σ_i log π_θ(u_i|x_i) A_φ(x_i, u_i)`` (4.22)
   (the sum of (4.22) averaged over the N valid transitions, which only
   rescales α), minus an optional entropy bonus; one step
   θ ← θ − α ∇loss (4.23);
4. **critic** — ``critic_steps`` steps on the critic loss (4.20)
   ``½ mean_i (y_i − V_φ(x_i))²`` with the targets held fixed inside each
   step (semi-gradient TD) and recomputed from the updated V_φ before the
   next one.

The advantage is computed with the critic *before* its update of this
iteration (as in A2C). Actor and critic have separate optimisers and step
sizes: ``"sgd"`` or ``"adam"``, and for a critic that is linear in its
parameters (:class:`~pgcontrol.critics.QuadraticValue`, the exact value
class on LQ plants) ``"lstsq"``, which solves each step of (4.20) in closed
form. Gradient steps on a quadratic critic are badly conditioned (features
``x_i x_j`` next to a constant), so ``"lstsq"`` is the default.

The online actor-critic of the slides (``004_*``, "two timescale stochastic
approximation") is the same update with one transition per environment
(``n_steps = 1``) and plain SGD for both: ``ACConfig(online=True)``. It
converges when the critic runs on the faster timescale: step sizes with
Σα_w = Σα_θ = ∞, Σ(α_w² + α_θ²) < ∞ and α_θ / α_w → 0, so that the critic
has (nearly) converged to V^{π_θ} for the current θ whenever θ moves. With
constant step sizes the practical reading is ``critic_lr >> lr``; the config
rejects ``online=True`` with ``critic_lr <= lr``.

Adaptive rules (``adaptive``; on for linear policies, not with ``online``): one estimate of the
gradient of (4.22) per environment gives its standard error; the norm test of Byrd, Chin, Nocedal &
Wu (2012) grows ``n_steps``; the actor's step is held to the mean KL ε' = ``kl_bound`` × signal
fraction × step radius (:class:`~pgcontrol.algos.base.StepAgreement`, from the slope along the
last step), shortened toward θ_old where it is above; σ is held at its start; the first batch fits
the critic before its advantages are computed (with V_φ = 0, (4.21) is the bare reward r_i and its
gradient points at the myopic gain: measured, a start 0.07 % from the optimum moved to 1.6 %); the
run stops once the gradient is not significant at the largest batch; a batch smaller than the norm test asked for
(the last one, cut short by the step budget) takes no step; a step whose rollouts blow up is taken
back and halved (:class:`~pgcontrol.algos.base.StepGuard`).

Under these rules the actor's step is, by default (``optimizer=None``), the **natural** one along
the same estimate ĝ of the gradient of (4.22) (natural actor-critic: Kakade 2002; Peters & Schaal
2008), with the length that puts its second-order KL at ε'::

    δθ = sqrt(2ε' / ĝᵀF⁻¹ĝ) F⁻¹ĝ,   F = mean_i ∇log π(u_i|x_i) ∇log π(u_i|x_i)ᵀ

(slides 004: the Fisher information and the natural step; the same step as NPG's, with the TD
advantage (4.21) in place of the Monte-Carlo return). ``optimizer="adam"`` keeps one Adam step on
(4.22) whose learning rate follows the KL it produced (Schulman et al. 2017, §4;
:class:`~pgcontrol.algos.base.KLControl`). Measured on the LQ plants (``docs/benchmarks-plants.md``):
Adam's per-coordinate step crosses the narrow valleys of ill-conditioned plants
(cartpole-linearized, laplacian-3) where the natural step follows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..rollout import explained_variance, gae
from ..critics import GradientSteps, LeastSquaresStep
from .base import (CommonConfig, KLControl, SampleSize, StepAgreement, StepGuard, assign_vector, lr_fraction,
                   make_critic, make_optimizer, kl_controlled_state, load_kl_controlled_state,
                   signal_controlled_start, uses_adaptive_rules, values_of)


@dataclass(frozen=True)
class ACConfig(CommonConfig):
    """Actor-critic settings.

    The defaults are for linear policies on the LQ plants (exact quadratic
    critic, closed-form critic steps). For an MLP critic (MuJoCo) use
    ``critic="mlp"``, ``critic_optimizer="adam"``, ``critic_lr=1e-3``,
    a smaller ``lr`` and usually ``normalize_advantage=True``.

    Attributes
    ----------
    num_envs : int
        Parallel environments. Default 64.
    n_steps : int or None
        Transitions collected per environment and iteration (batch
        ``n_steps * num_envs``). Default (None): 16, or 1 with ``online``.
    lr : float
        Actor step size α_θ of (4.23). Default 0.01; with the adaptive rules
        the starting value of a step size that follows the step's KL.
    kl_bound : float
        Adaptive rules: ε, the mean KL of one actor step before the shrink by
        the signal fraction. Default 0.02.
    iterations : int
        Default 1000 (a step budget, ``max_steps``, usually ends the run first).
    optimizer : str or None
        Actor step: ``"sgd"`` (the plain step (4.23)), ``"adam"``, or
        ``"natural"`` (the natural step of the module docstring; it takes its
        length from the adaptive rules' KL and needs them on). Default (None):
        ``"natural"`` under the adaptive rules (linear policies), ``"adam"``
        otherwise, ``"sgd"`` with ``online``.
    critic : str
        ``"quadratic"`` (default; :class:`~pgcontrol.critics.QuadraticValue`)
        or ``"mlp"``. Ignored when ``train`` is given a critic module.
    critic_optimizer : str or None
        ``"lstsq"`` (needs a critic with ``features()`` and ``weight``,
        V = φ(x)ᵀw, such as the quadratic one), ``"sgd"`` or ``"adam"``.
        Default (None): ``"lstsq"``, or ``"sgd"`` with ``online``.
    critic_lr : float or None
        Learning rate α_w of a gradient critic (``"sgd"``/``"adam"``);
        default 1e-3. Must stay unset with ``"lstsq"``.
    critic_step : float
        With ``"lstsq"``: the fraction of the way to the least-squares
        minimiser of (4.20) taken per step, in (0, 1] (1, the default: jump
        to it). Must stay 1 with a gradient critic.
    critic_steps : int
        Steps on (4.20) per iteration, each with the targets recomputed from
        the current critic. Default 5.
    lam : float
        GAE λ of the advantage and of the critic's λ-return targets;
        0 (default) is the pure TD advantage (4.21) and the TD(0) target (4.19).
    center_advantage : bool
        Subtract the batch mean from the advantages (a constant baseline,
        (4.8)). It cancels the offset (γ − 1)ΔV that an error ΔV in the
        critic's constant adds to every TD residual. Default False.
    normalize_advantage : bool
        Center and divide by the batch standard deviation. Default False (for
        linear policies it throws away the scale that tells a good gain from
        a bad one).
    ent_coef : float
        Weight of the entropy bonus subtracted from the actor loss. Default 0.
        Without it σ shrinks fast (exploration costs), and with it the
        information that moves K; on the LQ plants σ settles near
        sqrt(ent_coef / (2 (R + γBᵀPB)_jj)). The natural step follows (4.22)
        alone, so ``ent_coef`` must be 0 with it (σ is held there anyway).
    max_grad_norm : float or None
        Clip the actor's and the (gradient) critic's gradient norms
        separately. Default None (no clipping).
    anneal_lr : bool
        Decay ``lr`` (and a gradient critic's ``critic_lr``) linearly to
        ``1/iterations`` of its value at the last iteration. Default False.
    online : bool
        The online two-timescale actor-critic of the slides: ``n_steps = 1``
        and ``optimizer = critic_optimizer = "sgd"`` (their defaults in this
        mode; other explicit values are errors, never silently replaced) and
        ``critic_lr > lr``.
        Give both step sizes explicitly (the defaults are for Adam and the
        closed-form critic), e.g. ``lr=1e-3, critic_lr=1e-2`` on double-integrator.
    """

    num_envs: int = 64
    iterations: int = 1000
    n_steps: int | None = None
    lr: float = 0.01
    kl_bound: float = 0.02
    optimizer: str | None = None
    critic: str = "quadratic"
    critic_optimizer: str | None = None
    critic_lr: float | None = None
    critic_step: float = 1.0
    critic_steps: int = 5
    lam: float = 0.0
    center_advantage: bool = False
    normalize_advantage: bool = False
    ent_coef: float = 0.0
    max_grad_norm: float | None = None
    anneal_lr: bool = False
    online: bool = False

    def __post_init__(self):
        super().__post_init__()
        # None means "the mode's default"; an explicit value that contradicts the mode is an error, never overridden
        mode = {"n_steps": 1, "optimizer": "sgd", "critic_optimizer": "sgd"} if self.online else \
            {"n_steps": 16, "critic_optimizer": "lstsq"}  # optimizer None: decided by the learner (adaptive rules)
        for name, default in mode.items():
            v = getattr(self, name)
            if v is None:
                object.__setattr__(self, name, default)  # resolve the default once, at construction
            elif self.online and v != default:
                raise ConfigError(f"ACConfig.{name} must be {default!r} (or unset) with online=True, the slides' "
                                  f"one-transition SGD variant; got {v!r}")
        self._positive_ints("n_steps", "critic_steps")
        if self.optimizer is not None:  # None: "natural" under the adaptive rules, else "adam" (the learner decides)
            self._choice("optimizer", ("sgd", "adam", "natural"))
        self._choice("critic_optimizer", ("lstsq", "sgd", "adam"))
        self._choice("critic", ("quadratic", "mlp"))
        self._lstsq_needs_linear_critic()
        self._positive("lr")
        if self.critic_optimizer == "lstsq":
            if self.critic_lr is not None:
                raise ConfigError("ACConfig.critic_lr is the learning rate of a gradient critic (critic_optimizer "
                                  "'sgd' or 'adam'); with critic_optimizer='lstsq' the fraction of the least-squares "
                                  f"step is critic_step; got critic_lr={self.critic_lr!r}")
            if not 0.0 < self.critic_step <= 1.0:
                self._fail("critic_step", "in (0, 1] (the fraction of the least-squares step)", self.critic_step)
        else:
            if self.critic_step != 1.0:
                raise ConfigError("ACConfig.critic_step is the fraction of a least-squares critic step and applies "
                                  f"to critic_optimizer='lstsq' only; got critic_step={self.critic_step!r} with "
                                  f"critic_optimizer={self.critic_optimizer!r} (set critic_lr instead)")
            if self.critic_lr is None:
                if self.online:
                    raise ConfigError("ACConfig(online=True) needs critic_lr, the critic's SGD step size, larger than "
                                      "lr (two timescales)")
                object.__setattr__(self, "critic_lr", 1e-3)
            self._positive("critic_lr")
            if self.online and not self.critic_lr > self.lr:
                raise ConfigError("ACConfig(online=True) needs the critic on the faster timescale, critic_lr > lr; "
                                  f"got critic_lr={self.critic_lr!r}, lr={self.lr!r}")
        self._unit_interval("lam", " (0 = TD advantage (4.21))")
        self._positive("kl_bound")
        self._positive("max_grad_norm", optional=True)


def td_targets(critic, batch, gamma: float, lam: float = 0.0):
    """Values, advantages and critic targets of a batch under the current critic.

    Parameters
    ----------
    critic : torch.nn.Module
        V_φ.
    batch : pgcontrol.rollout.Batch
    gamma, lam : float
        Discount and GAE λ.

    Returns
    -------
    values : (T, N) tensor
        V_φ(x_t), without gradient.
    adv : (T, N) tensor
        ``r_t + γ V_φ(x_{t+1}) − V_φ(x_t)`` (4.21) for λ = 0, GAE(γ, λ) (6.46)
        otherwise; V_φ(x_{t+1}) = 0 at termination, bootstrapped at
        truncation and at the end of the batch.
    targets : (T, N) tensor
        ``adv + values``: the TD target ``r_t + γ V_φ(x_{t+1})`` (4.19) for
        λ = 0, the λ-return otherwise.
    """
    values, next_values = values_of(critic, batch)
    adv = gae(batch.rewards, values, next_values, batch.dones, gamma, lam).to(values.dtype)
    return values, adv, adv + values  # eq. (4.21); adv + values = r + γV(x') (4.19)


def critic_loss(critic, batch, targets) -> torch.Tensor:
    """``½ mean_i (y_i − V_φ(x_i))²`` over the valid transitions, targets held fixed.

    Eq. (4.20), averaged instead of summed (a rescaling of the step size).
    """
    v = critic(batch.obs[batch.valid]).to(targets.dtype)
    return 0.5 * (targets[batch.valid] - v).pow(2).mean()  # eq. (4.20)


def actor_loss(policy, batch, adv) -> torch.Tensor:
    """``−mean_i log π_θ(u_i|x_i) A_φ(x_i, u_i)`` over the valid transitions (4.22)."""
    logp = policy.log_prob(batch.obs[batch.valid], batch.actions[batch.valid])
    return -(logp * adv[batch.valid].to(logp.dtype)).mean()  # eq. (4.22)


class ActorCritic:
    """Batch advantage actor-critic (A2C); ``online=True`` gives the slides' online variant."""

    Config = ACConfig
    name = "ac"

    def __init__(self, policy, config: ACConfig, *, gamma, obs_dim, device, critic=None, plant=None):
        self.policy, self.cfg, self.gamma = policy, config, gamma
        dtype = next(policy.parameters()).dtype
        self.critic = critic if critic is not None else make_critic(config, obs_dim, device, dtype)
        self.adaptive = uses_adaptive_rules(config, policy) and not config.online
        self.natural = config.optimizer == "natural" or (config.optimizer is None and self.adaptive)
        if self.natural and not self.adaptive:
            raise ConfigError("ACConfig.optimizer='natural' takes its step length from the adaptive rules' KL and "
                              "needs them on (a linear policy, or adaptive=True); got adaptive="
                              f"{config.adaptive!r} with a {type(policy).__name__}")
        if self.natural and config.ent_coef:
            raise ConfigError("ACConfig.ent_coef must be 0 with the natural step (optimizer='natural', the default "
                              f"under the adaptive rules), which follows (4.22) alone; got ent_coef={config.ent_coef!r} "
                              "(set optimizer='adam' for an entropy bonus)")
        self.opt = None if self.natural else make_optimizer(config.optimizer or "adam", policy.parameters(), config.lr)
        if config.critic_optimizer == "lstsq":  # the critic's update on (4.20), called the same way either way
            self.critic_fit = LeastSquaresStep(self.critic, config.critic_step)
        else:
            opt = make_optimizer(config.critic_optimizer, self.critic.parameters(), config.critic_lr)
            self.critic_fit = GradientSteps(self.critic, opt, max_grad_norm=config.max_grad_norm)
        self.size = SampleSize(config)  # the batch is size.rounds × n_steps steps of every environment
        self.guard = StepGuard(factor=10.0) if self.adaptive else None
        self.kl = KLControl()
        self.agreement = StepAgreement()  # the step's radius from the slope along the last step
        self.critic_ready = False  # adaptive rules: has V_φ been fitted on a batch yet?
        if self.adaptive and getattr(policy, "is_linear", False):
            policy.raw_std.requires_grad_(False)  # σ held at its start (module docstring, "Adaptive rules")

    @property
    def stop_reason(self) -> str | None:
        """Why the stopping rule ended the run (None: it has not)."""
        return self.size.stop_reason if self.adaptive else None

    def collect_spec(self) -> dict:
        """Continuous collection: ``n_steps`` more steps of every environment (1 when ``online``)."""
        return {"n_steps": self.cfg.n_steps * (self.size.rounds if self.adaptive else 1)}

    def _gradient_step(self, opt, params, loss) -> float:
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm or float("inf"))
        opt.step()
        return float(norm)

    def update(self, batch, iteration: int) -> dict:
        """One actor step and ``critic_steps`` critic steps on a batch; returns the metrics.

        Returns
        -------
        dict
            ``loss_policy`` (4.22) and ``entropy`` before the actor step,
            ``grad_norm`` (the actor's gradient norm before clipping),
            ``loss_value`` (4.20) after the critic steps (against the targets of
            the last step) and ``explained_variance`` of the TD targets by the
            critic of the start of the iteration.
        """
        cfg, m = self.cfg, batch.valid
        if cfg.anneal_lr or self.adaptive:
            frac = lr_fraction(cfg, iteration)
            for opt, lr, scale in ((self.opt, cfg.lr, self.kl.scale), (self.critic_fit, cfg.critic_lr, 1.0)):
                for group in opt.param_groups if opt is not None else ():  # none for the closed form
                    group["lr"] = frac * lr * scale
        if self.adaptive and not self.critic_ready:  # a zero V_φ would make (4.21) the bare reward r_i, whose
            self._fit_critic(batch)  # gradient points at the myopic gain: the first batch fits V_φ first
            self.critic_ready = True
        # TD targets (4.19) and advantages (4.21) with the critic before this iteration's update
        values, adv, targets = td_targets(self.critic, batch, self.gamma, cfg.lam)
        ev = explained_variance(values, targets, m)
        if (cfg.center_advantage or cfg.normalize_advantage) and int(m.sum()) > 1:
            adv = adv - adv[m].mean()
            if cfg.normalize_advantage:
                adv = adv / (adv[m].std() + 1e-8)
        extra = {}
        if self.adaptive:  # per-environment estimates of (4.22): signal fraction, norm test, stopping rule
            params, theta_old, old_dist, extra, (g, F) = signal_controlled_start(self.policy, batch, adv, self.size,
                                                                                 self.guard, cfg, self.agreement)
        # actor: one step
        loss_pi = actor_loss(self.policy, batch, adv)
        entropy = self.policy(batch.obs[m]).entropy().mean()
        loss = loss_pi - cfg.ent_coef * entropy  # actor loss (4.22) − entropy bonus
        if self.natural:  # δθ = sqrt(2ε'/ĝᵀF⁻¹ĝ) F⁻¹ĝ (module docstring; slides 004, the natural step)
            x = torch.linalg.solve(F, g)
            gFg = float(g @ x)
            length = math.sqrt(2 * extra["kl_target"] / gFg) if gFg > 0 and math.isfinite(gFg) else 0.0
            assign_vector(theta_old + length * x, params)
            grad_norm = float(g.norm())
        else:
            grad_norm = self._gradient_step(self.opt, self.policy.parameters(), loss)  # θ ← θ − α ∇loss (4.23)
        if self.adaptive:  # the step held to the KL ε' (KLControl); its radius read at the next batch
            extra.update(self.kl.limit(self.policy, params, theta_old, batch.obs[m], old_dist, extra["kl_target"]))
            self.agreement.taken(torch.nn.utils.parameters_to_vector(params).detach() - theta_old)
        # critic: steps on (4.20), the targets recomputed from the current V_φ before each
        targets = self._fit_critic(batch, targets)
        with torch.no_grad():
            loss_v = critic_loss(self.critic, batch, targets)
        return {"loss_policy": float(loss_pi.detach()), "loss_value": float(loss_v), "entropy": float(entropy.detach()),
                "explained_variance": ev, "grad_norm": grad_norm, **extra}

    def _fit_critic(self, batch, targets=None):
        """``critic_steps`` steps on (4.20), the TD targets recomputed from the current V_φ before each
        (``targets``: those of the current V_φ, if already computed); returns the last targets."""
        m = batch.valid
        for k in range(self.cfg.critic_steps):
            if k or targets is None:
                _, _, targets = td_targets(self.critic, batch, self.gamma, self.cfg.lam)
            self.critic_fit.fit(batch.obs[m], targets[m])  # closed form: Φ factorised once per batch
        return targets

    def state_dict(self) -> dict:
        """Optimisers and critic (for checkpoints)."""
        return {"opt": self.opt.state_dict() if self.opt is not None else None, "critic": self.critic.state_dict(),
                "critic_opt": self.critic_fit.state_dict(),
                "adaptive": kl_controlled_state(self.size, self.kl, self.guard, self.agreement),
                "critic_ready": self.critic_ready}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        if self.opt is not None:
            self.opt.load_state_dict(state["opt"])
        self.critic.load_state_dict(state["critic"])
        self.critic_fit.load_state_dict(state["critic_opt"])
        load_kl_controlled_state(state.get("adaptive"), self.size, self.kl, self.guard, self.agreement)
        self.critic_ready = state.get("critic_ready", True)
