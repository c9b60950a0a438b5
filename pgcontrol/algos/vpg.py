"""Vanilla policy gradient (REINFORCE), eqs. (3.15)–(3.27) and the baselines of (4.8).

One iteration:

1. roll out M = ``num_envs`` whole episodes with π_θ;
2. weight each score by Ψ_t — total return (3.15), reward-to-go (3.19)/(3.21)
   or GAE (6.46), minus a baseline (4.8) — :func:`pgcontrol.rollout.pg_advantages`;
3. surrogate ``loss = -(1/M) Σ_m Σ_t log π(u_t|x_t) Ψ_t`` (3.26), whose
   gradient is minus the Monte Carlo estimate ĝ of ∇J;
4. step θ ← θ + α ĝ (3.22) (``optimizer="sgd"``) or with Adam.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..rollout import explained_variance, gae, pg_advantages
from .base import (CommonConfig, check_least_squares_critic, fit_critic, flat_parameters, lr_fraction,
                   make_critic, make_optimizer, values_of)


@dataclass(frozen=True)
class ReinforceConfig(CommonConfig):
    """Settings of the score-function estimator ĝ shared by VPG and NPG/TRPO.

    Attributes
    ----------
    estimator : str
        ``"total"``, ``"rtg"`` or ``"gae"`` (see :func:`pgcontrol.rollout.pg_advantages`).
    baseline : str
        ``"none"``, ``"mean"`` or ``"value"``.
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
        ``"adam"`` (default: ``critic_epochs`` full-batch Adam steps) or
        ``"lstsq"``: fit a critic linear in its parameters
        (:class:`~pgcontrol.critics.QuadraticValue`, the exact value class on
        LQ plants) to the batch's reward-to-go in closed form, the minimiser
        of (4.20) (:meth:`~pgcontrol.critics.QuadraticValue.fit_least_squares`).
        The fit is cheap, so it is done *before* the advantages are computed:
        the baseline is the value of the current policy rather than of the
        previous one (whose critic lags by a whole policy step). The few fitted
        weights depend on the batch's own actions only through a regression
        on all its N·T samples, a bias of order n_features / (N·T).
    lam : float
        GAE λ when ``estimator="gae"``.
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

    estimator: str = "rtg"
    baseline: str = "mean"
    discount_weighting: bool = True
    critic: str = "quadratic"
    critic_lr: float = 1e-2
    critic_epochs: int = 50
    critic_minibatch: int | None = None
    critic_optimizer: str = "adam"
    lam: float = 0.95
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
        self._choice("critic_optimizer", ("adam", "lstsq"))
        self._lstsq_needs_linear_critic()
        self._positive("critic_lr")
        self._positive_ints("critic_epochs")
        if self.critic_minibatch is not None:
            self._positive_ints("critic_minibatch")


@dataclass(frozen=True)
class VPGConfig(ReinforceConfig):
    """Vanilla PG settings (plus those of :class:`ReinforceConfig`).

    Attributes
    ----------
    lr : float
        Step size α of (3.22).
    optimizer : str
        ``"sgd"`` (plain gradient ascent) or ``"adam"``.
    max_grad_norm : float or None
        Clip the policy gradient norm to this value (> 0; None: no clipping).
    anneal_lr : bool
        Decay ``lr`` linearly, ``lr · (1 − iteration / iterations)``, to
        ``lr / iterations`` at the last iteration (as ``ACConfig.anneal_lr``).
        Default False.
    learn_std : bool
        Learn the exploration σ (default). False holds σ at its start: plain
        gradient ascent otherwise drives σ onto its floor, the plateau of zero
        exploration, because ∂J/∂σ dwarfs ∂J/∂K on the LQ plants.
    """

    lr: float = 0.01
    optimizer: str = "sgd"
    max_grad_norm: float | None = None
    anneal_lr: bool = False
    learn_std: bool = True

    def __post_init__(self):
        super().__post_init__()  # lr >= 0 (0 keeps the policy fixed)
        self._choice("optimizer", ("sgd", "adam"))
        self._positive("max_grad_norm", optional=True)


def surrogate_loss(policy, batch, psi, num_episodes: int) -> torch.Tensor:
    """``-(1/M) Σ log π(u|x) Ψ``: its gradient is -ĝ (3.26)–(3.27)."""
    logp = policy.log_prob(batch.obs, batch.actions)
    return -(logp * psi * batch.valid).sum() / num_episodes  # eq. (3.26)


class VPG:
    """REINFORCE with a choice of estimator and baseline."""

    Config = VPGConfig
    name = "vpg"

    def __init__(self, policy, config: VPGConfig, *, gamma, obs_dim, device, critic=None, plant=None):
        self.policy, self.cfg, self.gamma, self.plant = policy, config, gamma, plant
        dtype = next(policy.parameters()).dtype
        if not getattr(config, "learn_std", True):
            policy.raw_std.requires_grad_(False)  # σ held at its start: no gradient, so no optimiser step
        if config.baseline == "value" or config.estimator == "gae":
            self.critic = critic if critic is not None else make_critic(config, obs_dim, device, dtype)
        else:
            self.critic = None
        self.critic_opt = None
        if self.critic is not None:
            if config.critic_optimizer == "lstsq":
                check_least_squares_critic(self.critic)
            else:
                self.critic_opt = torch.optim.Adam([flat_parameters(self.critic.parameters())], lr=config.critic_lr)
        self.generator = torch.Generator().manual_seed(0)
        self.opt = self._policy_optimizer()

    def _policy_optimizer(self):
        return make_optimizer(self.cfg.optimizer, self.policy.parameters(), self.cfg.lr)

    def collect_spec(self) -> dict:
        """Whole episodes, or ``n_steps`` steps of every environment."""
        return {"episodes": True} if self.cfg.n_steps is None else {"n_steps": self.cfg.n_steps}

    def gradient_estimate(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, psi)`` with the policy gradient of ``loss`` left in ``.grad`` (= -ĝ)."""
        if self.critic is not None and self.critic_opt is None:  # "lstsq": the critic of this batch first
            self._value_metrics = self._fit_value_lstsq(batch)
        values, next_values = values_of(self.critic, batch)
        psi, _ = pg_advantages(batch, estimator=self.cfg.estimator, baseline=self.cfg.baseline, gamma=self.gamma,
                               values=values, next_values=next_values, lam=self.cfg.lam,
                               discount_weighting=self.cfg.discount_weighting)
        if self.cfg.normalize_advantage:
            m = batch.valid
            psi = (psi - psi[m].mean()) / (psi[m].std() + 1e-8) * m
        self.policy.zero_grad()
        loss = surrogate_loss(self.policy, batch, psi, self.cfg.num_envs)
        loss.backward()
        return loss, psi

    def update(self, batch, iteration: int) -> dict:
        if getattr(self.cfg, "anneal_lr", False) and self.opt is not None:
            for group in self.opt.param_groups:
                group["lr"] = self.cfg.lr * lr_fraction(self.cfg, iteration)
        loss, _ = self.gradient_estimate(batch)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(),
                                                   self.cfg.max_grad_norm or float("inf"))
        self.opt.step()  # θ ← θ + α ĝ  (3.22)
        out = {"loss_policy": loss.item(), "grad_norm": float(grad_norm)}
        out.update(self.fit_value(batch))
        return out

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

    def _fit_value_lstsq(self, batch) -> dict:
        """Closed-form fit of the critic to the batch's reward-to-go (bootstrapped at truncation)."""
        values, rtg = self._value_targets(batch)
        m = batch.valid
        out = {"explained_variance": explained_variance(values, rtg, m)}  # the critic before the fit
        obs, y = batch.obs[m], rtg[m]
        self.critic.fit_least_squares(obs, y)  # minimiser of (4.20)
        with torch.no_grad():
            out["loss_value"] = float(0.5 * (self.critic(obs).to(y.dtype) - y).pow(2).mean())
        return out

    def fit_value(self, batch) -> dict:
        """Refit the critic on the batch's reward-to-go (bootstrapped at truncation); entropy for the log.

        With ``critic_optimizer="lstsq"`` the fit already happened in
        :meth:`gradient_estimate`; its metrics are reported here.
        """
        out = {}
        if self.critic is not None and self.critic_opt is None:
            out.update(getattr(self, "_value_metrics", {}))
        elif self.critic is not None:
            values, rtg = self._value_targets(batch)
            m = batch.valid
            out["loss_value"] = fit_critic(self.critic, self.critic_opt, batch.obs[m], rtg[m],
                                           epochs=self.cfg.critic_epochs, minibatch=self.cfg.critic_minibatch,
                                           generator=self.generator)
            out["explained_variance"] = explained_variance(values, rtg, m)
        with torch.no_grad():
            out["entropy"] = float(self.policy.entropy())
        return out

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict() if self.opt else None, "critic": self.critic.state_dict() if self.critic else None,
                "critic_opt": self.critic_opt.state_dict() if self.critic_opt else None,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if self.opt is not None:
            self.opt.load_state_dict(state["opt"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
            if self.critic_opt is not None:
                self.critic_opt.load_state_dict(state["critic_opt"])
        self.generator.set_state(state["generator"])
