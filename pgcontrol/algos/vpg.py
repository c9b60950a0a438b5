"""Vanilla policy gradient (REINFORCE), eqs. (3.15)–(3.27) and the baselines of (4.8).

One iteration:

1. roll out M = ``num_envs`` whole episodes with π_θ;
2. weight each score by Ψ_t — total return (3.15), reward-to-go (3.19)/(3.21)
   or GAE (6.46), minus a baseline (4.8) — :func:`pgcontrol.rollout.pg_advantages`;
3. surrogate ``loss = -(1/M) Σ_m Σ_t log π(u_t|x_t) Ψ_t`` (3.26), whose
   gradient is minus the Monte Carlo estimate ĝ of ∇J;
4. step θ ← θ + α ĝ (3.22) (``optimizer="sgd"``) or with Adam;
5. fit the critic, if any, on (4.20) (:meth:`VPG.update`): a closed-form critic
   (``critic_optimizer="lstsq"``) before step 2, on this batch, so that its
   baseline is the batch's own least-squares fit; a gradient-trained one after
   step 4, so that its baseline comes from earlier batches (Spinning Up's order).

Adaptive rules (``adaptive``; on for linear policies with whole episodes):

* one estimate of ∇J per episode, ĝ_m = Σ_t ∇log π(u_t|x_t) Ψ_t (their mean is ĝ of (3.26)), gives
  Var ĝ; in the step's metric (the identity here, F⁻¹ in NPG) ‖ĝ‖² splits into a noise part
  tr(A Var ĝ) and a signal part;
* the step's mean KL is ε' = ``kl_bound`` × signal fraction × step radius (× the guard's shrink):
  with ``lr=None`` (the default) δθ = sqrt(2ε' / ĝᵀF̂ĝ) ĝ, the vanilla direction (3.19)/(4.11) with a
  length that does not depend on the plant's cost scale (F the Fisher of the slides, the Hessian of
  the mean KL);
* the step radius follows the slope ĝ_kᵀδθ_{k−1} of the new gradient along the last step: halved
  after a negative slope (the step went past the best point on its line), ×1.5 up to 8 after a
  positive one above its standard error (:class:`~pgcontrol.algos.base.StepAgreement`), so a
  fixed-KL step does not keep jumping across the optimum;
* σ is held at its start (the LQ cost only falls with σ: a learned σ shrinks, and with it the
  rollouts' information and the step in K; ``adaptive=False`` learns it);
* the norm test of Byrd, Chin, Nocedal & Wu (2012) sets the number of episodes
  (:class:`~pgcontrol.algos.base.SampleSize`: at most twice, at least half the last batch, never
  below ``num_envs``), and the run stops once ĝ is no larger than its own standard error at the
  largest batch (``stop_reason``); a batch smaller than the norm test asked for (the last one, cut
  short by the step budget) takes no step;
* a step whose rollouts blow up is taken back and halved (:class:`~pgcontrol.algos.base.StepGuard`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..critics import GradientSteps, LeastSquaresStep
from ..errors import ConfigError
from ..rollout import discounts, explained_variance, gae, pg_advantages
from .base import (CommonConfig, SampleSize, StepAgreement, StepGuard, check_least_squares_critic,
                   flat_parameters, gradient_noise, lr_fraction, make_critic, make_optimizer, per_sample_scores,
                   uses_adaptive_rules, values_of)


@dataclass(frozen=True)
class ReinforceConfig(CommonConfig):
    """Settings of the score-function estimator ĝ shared by VPG and NPG/TRPO.

    Attributes
    ----------
    estimator : str
        ``"total"``, ``"rtg"`` or ``"gae"`` (default; see :func:`pgcontrol.rollout.pg_advantages`).
    baseline : str
        ``"none"``, ``"mean"`` or ``"value"`` (default).
    discount_weighting : bool
        Keep the γ^t factor of (3.19) (unbiased for the discounted objective); NPG and TRPO then also weigh
        the states of their Fisher and KL by γ^τ (d^π), and without it equally.
    critic : str
        ``"mlp"`` or ``"quadratic"``, used when ``baseline="value"``.
    critic_lr, critic_epochs : float, int
        Adam step size and epochs of the value regression.
    critic_minibatch : int or None
        Minibatch size of those epochs (None: one full-batch step per epoch).
    critic_optimizer : str
        ``"adam"`` (``critic_epochs`` full-batch Adam steps; the default with
        ``critic="mlp"``) or ``"lstsq"`` (the default with ``critic="quadratic"``): fit a critic linear
        in its parameters
        (:class:`~pgcontrol.critics.QuadraticValue`, the exact value class on
        LQ plants) to the batch's reward-to-go in closed form, the minimiser
        of (4.20) (:meth:`~pgcontrol.critics.QuadraticValue.fit_least_squares`).
        The fit is cheap, so it is done *before* the advantages are computed:
        the baseline is the value of the current policy rather than of the
        previous one (whose critic lags by a whole policy step). The few fitted
        weights depend on the batch's own actions only through a regression
        on all its N·T samples, a bias of order n_features / (N·T).
    lam : float
        GAE λ when ``estimator="gae"``. Default 0.9.
    iterations : int
        Default 1000 (a step budget, ``max_steps``, or the stopping rule usually ends the run first).
    normalize_advantage : bool
        Standardise the weights Ψ over the batch's valid steps, ``(Ψ − mean) /
        (std + 1e-8)`` (sb3-contrib's TRPO and SB3's A2C/PPO do): a batch-mean
        baseline on top of the chosen one, and a scale that TRPO's KL-bounded
        step ignores. Default False.
    value_target : str
        What the critic regresses on: ``"rtg"`` (default), the reward-to-go
        (3.21), bootstrapped where an episode is cut; or ``"lambda"``, the
        λ-returns ``Â^GAE + V(x_t)`` of the critic before the fit (lower
        variance, biased by that critic; sb3-contrib's TRPO and PPO targets).
    n_steps : int or None
        None (default): every iteration collects one whole episode per
        environment (``num_envs`` episodes). An integer: ``n_steps`` steps of
        every environment instead, episodes running on across iterations, as
        sb3-contrib's TRPO collects (2048): the last step of a batch is cut
        like a time limit, its reward-to-go bootstrapped with the critic
        (``baseline="value"``; else 0). Not with ``estimator="total"``, which
        needs whole episodes.
    """

    iterations: int = 1000
    estimator: str = "gae"
    baseline: str = "value"
    discount_weighting: bool = True
    critic: str = "quadratic"
    critic_lr: float = 1e-2
    critic_epochs: int = 50
    critic_minibatch: int | None = None
    critic_optimizer: str | None = None
    lam: float = 0.9
    normalize_advantage: bool = False
    value_target: str = "rtg"
    n_steps: int | None = None

    def __post_init__(self):
        super().__post_init__()
        self._choice("estimator", ("total", "rtg", "gae"))
        self._choice("value_target", ("rtg", "lambda"))
        if self.n_steps is not None:
            self._positive_ints("n_steps")
            if self.estimator == "total":
                raise ConfigError("n_steps collects pieces of episodes; the total-return estimator (3.15) needs "
                                  f"whole ones (n_steps=None); got n_steps={self.n_steps!r} with estimator='total'")
        self._choice("baseline", ("none", "mean", "value"))
        if self.estimator == "total" and self.baseline == "value":
            raise ConfigError("the total-return estimator (3.15) takes baseline 'none' or 'mean', not 'value'")
        if self.estimator == "gae" and self.baseline != "value":
            raise ConfigError("the GAE estimator (6.46) needs baseline='value' (a critic)")
        self._unit_interval("lam")
        self._choice("critic", ("quadratic", "mlp", "none"))
        if self.critic_optimizer is None:  # resolved once, at construction
            object.__setattr__(self, "critic_optimizer", "lstsq" if self.critic == "quadratic" else "adam")
        self._choice("critic_optimizer", ("adam", "lstsq"))
        self._lstsq_needs_linear_critic()
        self._positive("critic_lr")
        self._positive_ints("critic_epochs")
        if self.critic_minibatch is not None:
            self._positive_ints("critic_minibatch")
        if self.adaptive and self.n_steps is not None:
            raise ConfigError(f"{type(self).__name__}.adaptive needs whole episodes (n_steps=None); got "
                              f"n_steps={self.n_steps!r} with adaptive=True")


@dataclass(frozen=True)
class VPGConfig(ReinforceConfig):
    """Vanilla PG settings (plus those of :class:`ReinforceConfig`).

    Attributes
    ----------
    lr : float or None
        None (default): the trust-region step in the vanilla direction,
        δθ = sqrt(2ε' / ĝᵀF̂ĝ) ĝ with ε' = ``kl_bound`` × signal fraction (module
        docstring): its length does not depend on the plant's cost scale. A
        number: the plain step θ ← θ + α ĝ (3.22) with ``optimizer``.
    kl_bound : float
        ε of the default step: the mean KL of one step, to second order. Default 0.05.
    optimizer : str
        ``"sgd"`` (plain gradient ascent) or ``"adam"``, with ``lr``.
    max_grad_norm : float or None
        Clip the policy gradient norm to this value (> 0; None: no clipping).
    anneal_lr : bool
        Decay ``lr`` linearly, ``lr · (1 − iteration / iterations)``, to
        ``lr / iterations`` at the last iteration (as ``ACConfig.anneal_lr``).
        Default False.
    learn_std : bool
        Learn the exploration σ (default) where the adaptive rules are off;
        under them (linear policies) σ is held at its start whatever this
        says. False holds σ at its start: plain gradient ascent otherwise
        drives σ onto its floor, the plateau of zero exploration, because
        ∂J/∂σ dwarfs ∂J/∂K on the LQ plants.
    """

    lr: float | None = None
    kl_bound: float = 0.05
    optimizer: str = "sgd"
    max_grad_norm: float | None = None
    anneal_lr: bool = False
    learn_std: bool = True

    def __post_init__(self):
        super().__post_init__()  # lr >= 0 (0 keeps the policy fixed)
        self._choice("optimizer", ("sgd", "adam"))
        self._positive("max_grad_norm", optional=True)
        self._positive("kl_bound")


def surrogate_loss(policy, batch, psi, num_episodes: int) -> torch.Tensor:
    """``-(1/M) Σ log π(u|x) Ψ``: its gradient is -ĝ (3.26)–(3.27)."""
    logp = policy.log_prob(batch.obs, batch.actions)
    return -(logp * psi * batch.valid).sum() / num_episodes  # eq. (3.26)


def state_weights(batch, gamma: float, discounted: bool = True) -> torch.Tensor:
    """γ^τ on valid steps, normalised to sum 1: the discounted state distribution d^π.

    ``discounted=False`` weighs the valid states equally: the undiscounted
    visitation that goes with the estimator without the γ^t factor ((3.21),
    ``discount_weighting=False``), and the sample mean that Stable-Baselines3,
    sb3-contrib, Spinning Up and CleanRL take in their KL and Fisher. On long
    episodes (1000 MuJoCo steps at γ = 0.99) the γ^τ weights leave almost all
    of the mass on the first few hundred states.
    """
    dtype = batch.rewards.dtype
    w = discounts(gamma, batch.t_in_episode, dtype) * batch.valid if discounted else batch.valid.to(dtype)
    return w / w.sum()


def kl_fisher(policy, batch, weights, params) -> torch.Tensor:
    """F = ∇²_θ KL̄(π_old ‖ π_θ) at θ_old over the batch's valid states (slides: the Hessian of the KL is the
    Fisher information), as a d × d matrix from d Hessian-vector products; exact in the actions."""
    m = batch.valid
    obs, w = batch.obs[m], weights[m]
    with torch.no_grad():
        old = policy(obs)
    kl = (torch.distributions.kl_divergence(old, policy(obs)) * w).sum()
    dkl = torch.cat([d.reshape(-1) for d in torch.autograd.grad(kl, params, create_graph=True)])
    rows = [torch.cat([h.reshape(-1) for h in torch.autograd.grad(dkl[i], params, retain_graph=True)])
            for i in range(dkl.numel())]
    return torch.stack(rows).detach()


class VPG:
    """REINFORCE with a choice of estimator and baseline."""

    Config = VPGConfig
    name = "vpg"
    natural = False  # the step's direction: ĝ here, F⁻¹ĝ in NPG/TRPO

    def __init__(self, policy, config: VPGConfig, *, gamma, obs_dim, device, critic=None, plant=None):
        self.policy, self.cfg, self.gamma, self.plant = policy, config, gamma, plant
        dtype = next(policy.parameters()).dtype
        if not getattr(config, "learn_std", True):
            policy.raw_std.requires_grad_(False)  # σ held at its start: no gradient, so no optimiser step
        if config.baseline == "value" or config.estimator == "gae":
            self.critic = critic if critic is not None else make_critic(config, obs_dim, device, dtype)
        else:
            self.critic = None
        self.generator = torch.Generator().manual_seed(0)  # the critic's minibatches
        self.critic_fit = None  # the critic's update on (4.20): critics.LeastSquaresStep or GradientSteps
        if self.critic is not None:
            if config.critic_optimizer == "lstsq":
                check_least_squares_critic(self.critic)
                self.critic_fit = LeastSquaresStep(self.critic, 1.0)
            else:
                adam = torch.optim.Adam([flat_parameters(self.critic.parameters())], lr=config.critic_lr)
                self.critic_fit = GradientSteps(self.critic, adam, epochs=config.critic_epochs,
                                                minibatch=config.critic_minibatch, generator=self.generator)
        self.adaptive = uses_adaptive_rules(config, policy) and config.n_steps is None
        self.size = SampleSize(config, shrink=True)  # the batch is size.rounds × num_envs episodes (norm test)
        self.guard = StepGuard() if self.adaptive else None
        self.agreement = StepAgreement()  # the step's radius from the slope along the last step
        if self.adaptive and getattr(policy, "is_linear", False):
            policy.raw_std.requires_grad_(False)  # σ held at its start (module docstring, "Adaptive rules")
        self.opt = self._policy_optimizer()

    def _policy_optimizer(self):
        if self.cfg.lr is None:
            return None  # the trust-region step is computed, not taken by an optimiser
        return make_optimizer(self.cfg.optimizer, self.policy.parameters(), self.cfg.lr)

    def collect_spec(self) -> dict:
        """Whole episodes (``rounds`` times ``num_envs`` of them), or ``n_steps`` steps of every environment."""
        if self.cfg.n_steps is not None:
            return {"n_steps": self.cfg.n_steps}
        return {"episodes": True, "rounds": self.size.rounds} if self.adaptive else {"episodes": True}

    @property
    def stop_reason(self) -> str | None:
        """Why the stopping rule ended the run (None: it has not)."""
        return self.size.stop_reason

    def advantage_weights(self, batch) -> torch.Tensor:
        """The weights Ψ_t of the estimator (3.19)/(4.8)/(6.46), with the critic as it is now."""
        values, next_values = values_of(self.critic, batch)
        psi, _ = pg_advantages(batch, estimator=self.cfg.estimator, baseline=self.cfg.baseline, gamma=self.gamma,
                               values=values, next_values=next_values, lam=self.cfg.lam,
                               discount_weighting=self.cfg.discount_weighting)
        if self.cfg.normalize_advantage:
            m = batch.valid
            psi = (psi - psi[m].mean()) / (psi[m].std() + 1e-8) * m
        return psi

    def gradient_estimate(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, psi)`` with the policy gradient of ``loss`` left in ``.grad`` (= -ĝ)."""
        psi = self.advantage_weights(batch)
        self.policy.zero_grad()
        loss = surrogate_loss(self.policy, batch, psi, batch.obs.shape[1])
        loss.backward()
        return loss, psi

    def gradient_statistics(self, batch) -> dict:
        """Per-episode estimates of ĝ and the Fisher (the adaptive rules).

        Returns a dict with ``g`` (ĝ = mean of the per-episode ĝ_m, the gradient of (3.26)),
        ``G`` (the per-episode ĝ_m, one row each), ``fisher`` (the Fisher of the slides at the
        batch's states, weighted by d^π: :func:`kl_fisher`), ``psi``, ``loss`` and ``params``.
        """
        psi = self.advantage_weights(batch)
        S, params = per_sample_scores(self.policy, batch.obs, batch.actions, batch.valid)
        G = (S * psi[..., None].to(S.dtype)).sum(0)  # ĝ_m, one per episode: (M, d); their mean is ĝ of (3.26)
        F = kl_fisher(self.policy, batch, state_weights(batch, self.gamma, self.cfg.discount_weighting), params)
        with torch.no_grad():
            loss = surrogate_loss(self.policy, batch, psi, G.shape[0])
        return {"G": G, "fisher": F, "psi": psi, "loss": float(loss), "params": params, "M": G.shape[0]}

    def metric(self, stats, batch) -> torch.Tensor:
        """The Fisher F̂ (plus ``damping``) in which the step's KL is measured."""
        F = stats["fisher"]
        lam = getattr(self.cfg, "damping", 0.0)
        scale = float(F.diagonal().mean()) or 1.0
        return F + (lam + 1e-8 * scale) * torch.eye(F.shape[0], dtype=F.dtype, device=F.device)

    def direction(self, g, F, stats=None, batch=None) -> torch.Tensor:
        """The step's direction: the vanilla ĝ (3.19)/(4.11) (NPG: F⁻¹ĝ; ``stats`` and ``batch`` unused here)."""
        return g

    def adaptive_step(self, batch) -> dict:
        """The statistically controlled step (module docstring, "Adaptive rules"); returns metrics and the step.

        With x the direction and the metric A = I (vanilla) or F⁻¹ (natural):
        ‖ĝ‖²_A = ĝᵀAĝ, its noise part tr(A Var ĝ), the signal part the rest;
        the step's KL ε' = ε × signal fraction × guard shrink, δθ = sqrt(2ε'/xᵀFx) x.
        """
        cfg = self.cfg
        st = self.gradient_statistics(batch)
        F = self.metric(st, batch)
        g, C, total, noise = gradient_noise(st["G"], F if self.natural else None)
        x = self.direction(g, F, st, batch)
        asked = self.size.rounds * cfg.num_envs  # the batch the norm test asked for
        rho = self.size.update(total, noise, f"{asked} episodes")  # norm test and stopping rule
        radius = self.agreement.update(g, C)  # halved after a step that went past the best point on its line
        eps = cfg.kl_bound * rho * self.guard.shrink * radius  # ε shrunk by the signal fraction, guard and radius
        if st["M"] < asked:  # the last batch, cut short by the step budget: too noisy to step on
            eps = 0.0
        xFx = float(x @ F @ x)
        step = math.sqrt(2 * eps / xFx) * x if eps > 0 and xFx > 0 and math.isfinite(xFx) else torch.zeros_like(x)
        out = {"loss_policy": st["loss"], "grad_norm": float(g.norm()), "signal_fraction": rho, "kl_target": eps,
               "batch_episodes": st["M"], "next_batch_episodes": self.size.rounds * cfg.num_envs,
               "step_shrink": self.guard.shrink, "step_radius": radius}
        if math.isfinite(self.agreement.slope):  # none before the first step (history rows hold no NaN)
            out["slope"] = self.agreement.slope
        if self.natural:
            out["gFg"] = float(total)  # ĝᵀF⁻¹ĝ, as the plain natural step reports it
        return out, st, step, eps

    def update(self, batch, iteration: int) -> dict:
        """One iteration: the policy's step (:meth:`step_policy`) and the critic's fit (:meth:`fit_value`),
        the fit first where it is closed-form (module docstring, step 5); returns the metrics."""
        fit_first = self.critic_fit is not None and self.critic_fit.closed_form
        value = self.fit_value(batch) if fit_first else {}
        out = self.step_policy(batch, iteration)
        out.update(value if fit_first else self.fit_value(batch))
        with torch.no_grad():
            out["entropy"] = float(self.policy.entropy())
        return out

    def step_policy(self, batch, iteration: int) -> dict:
        """The policy's step on the batch (steps 2–4 of the module docstring); returns its metrics."""
        if self.cfg.lr is None:
            return self._adaptive_update(batch) if self.adaptive else self._trust_region_update(batch)
        if (getattr(self.cfg, "anneal_lr", False) or self.guard is not None) and self.opt is not None:
            shrink = self.guard.shrink if self.guard is not None else 1.0  # a step that blew up is halved
            for group in self.opt.param_groups:
                group["lr"] = self.cfg.lr * lr_fraction(self.cfg, iteration) * shrink
        if self.guard is not None:
            self.guard.remember(self.policy.parameters())
        loss, _ = self.gradient_estimate(batch)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(),
                                                   self.cfg.max_grad_norm or float("inf"))
        self.opt.step()  # θ ← θ + α ĝ  (3.22)
        return {"loss_policy": loss.item(), "grad_norm": float(grad_norm)}

    def _adaptive_update(self, batch) -> dict:
        """θ ← θ + δθ, the trust-region step in the vanilla direction ĝ (3.19)."""
        self.guard.remember(self.policy.parameters())
        out, st, step, eps = self.adaptive_step(batch)
        params = st["params"]
        with torch.no_grad():
            vector_to_parameters(parameters_to_vector(params) + step, params)
        self.agreement.taken(step)
        return out

    def _trust_region_update(self, batch) -> dict:
        """Without the adaptive rules: δθ = sqrt(2ε / ĝᵀFĝ) ĝ, Fĝ a Hessian-vector product of the mean KL."""
        loss, _ = self.gradient_estimate(batch)
        params = [p for p in self.policy.parameters() if p.requires_grad]
        g = -torch.cat([p.grad.reshape(-1) for p in params])
        m = batch.valid
        obs, w = batch.obs[m], state_weights(batch, self.gamma, self.cfg.discount_weighting)[m]
        with torch.no_grad():
            old = self.policy(obs)
        kl = (torch.distributions.kl_divergence(old, self.policy(obs)) * w).sum()
        dkl = torch.cat([d.reshape(-1) for d in torch.autograd.grad(kl, params, create_graph=True)])
        Fg = torch.cat([h.reshape(-1) for h in torch.autograd.grad(dkl @ g, params)])
        gFg = float(g @ Fg)
        if gFg > 0 and math.isfinite(gFg):
            with torch.no_grad():
                vector_to_parameters(parameters_to_vector(params) + math.sqrt(2 * self.cfg.kl_bound / gFg) * g,
                                     params)
        return {"loss_policy": loss.item(), "grad_norm": float(g.norm())}

    def _value_targets(self, batch):
        """The critic's values on the batch and its regression targets (``value_target``).

        The reward-to-go bootstrapped at truncation, or the λ-returns
        ``Â^GAE + V`` (6.46) of the critic as it is before the fit.
        """
        values, next_values = values_of(self.critic, batch)
        if self.cfg.value_target == "lambda":
            adv = gae(batch.rewards, values, next_values, batch.dones, self.gamma, self.cfg.lam)
            return values, (adv + values) * batch.valid
        _, rtg = pg_advantages(batch, estimator="rtg", baseline="none", gamma=self.gamma,
                               next_values=next_values, discount_weighting=False)
        return values, rtg

    def fit_value(self, batch) -> dict:
        """Fit the critic (if any) to the batch's targets (``value_target``) with ``critic_fit``.

        Returns ``explained_variance`` of the targets by the critic before the fit and ``loss_value``,
        the loss (4.20) after it (empty without a critic).
        """
        if self.critic_fit is None:
            return {}
        values, targets = self._value_targets(batch)
        m = batch.valid
        ev = explained_variance(values, targets, m)  # the critic before the fit
        return {"explained_variance": ev, "loss_value": self.critic_fit.fit(batch.obs[m], targets[m])}

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict() if self.opt else None, "critic": self.critic.state_dict() if self.critic else None,
                "critic_opt": self.critic_fit.state_dict() if self.critic_fit is not None else None,
                "generator": self.generator.get_state(),
                "adaptive": {"size": self.size.state_dict(), "guard": self.guard.state_dict() if self.guard else None,
                             "agreement": self.agreement.state_dict()}}

    def load_state_dict(self, state: dict) -> None:
        if self.opt is not None:
            self.opt.load_state_dict(state["opt"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
            self.critic_fit.load_state_dict(state["critic_opt"])
        self.generator.set_state(state["generator"])
        ad = state.get("adaptive")
        if ad:
            self.size.load_state_dict(ad["size"])
            if self.guard is not None:
                self.guard.load_state_dict(ad["guard"])
            self.agreement.load_state_dict(ad.get("agreement"))
