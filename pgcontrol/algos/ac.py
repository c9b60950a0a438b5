"""Actor-critic (batch A2C and the online two-timescale variant), eqs. (4.17)–(4.23).

One iteration:

1. roll out ``n_steps`` steps of each of the ``num_envs`` environments,
   continuing where the last batch stopped (no reset between iterations);
2. **critic** — the value of π_θ satisfies the Bellman equation (4.18), so
   V_φ is fitted to the one-step targets ``y_i = r_i + γ V_φ(x_{i+1})`` (4.19)
   by semi-gradient steps on the critic loss (4.20)
   ``½ Σ_i (y_i − V_φ(x_i))²``, the target held fixed inside each step.
   ``V_φ(x_{i+1}) = 0`` where the episode *terminated* (nothing follows); a
   *truncated* episode (time limit) or the cut at the end of the batch
   bootstraps with V_φ of the final observation;
3. **advantage** — the TD residual ``A_φ(x_i, u_i) = r_i + γ V_φ(x_{i+1}) −
   V_φ(x_i)`` (4.21); with ``lam > 0`` the GAE(γ, λ) blend of n-step
   advantages (6.46) instead (λ = 0 is exactly (4.21));
4. **actor** — ``loss = −(1/N) Σ_i log π_θ(u_i|x_i) A_φ(x_i, u_i)`` (4.22)
   (the sum of (4.22) averaged, which only rescales α), minus an optional
   entropy bonus, and the step θ ← θ − α ∇loss (4.23).

Actor and critic have their own optimisers and step sizes. The advantage is
computed with the critic *before* its update of this iteration, so both
losses see the same V_φ (as in A2C).

The online actor-critic of the slides (``004_*``, "two timescale stochastic
approximation") is the same update with one transition per environment
(``n_steps = 1``) and plain SGD: ``ACConfig(online=True)``. It converges when
the critic runs on the faster timescale: step sizes with
Σα_w = Σα_θ = ∞, Σ(α_w² + α_θ²) < ∞ and α_θ / α_w → 0, so that the critic
has (nearly) converged to V^{π_θ} for the current θ whenever θ moves. With
constant step sizes, the practical reading is ``critic_lr >> lr``; the config
rejects ``online=True`` with ``critic_lr <= lr``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..rollout import explained_variance, gae
from .base import CommonConfig, make_critic, make_optimizer, values_of


@dataclass(frozen=True)
class ACConfig(CommonConfig):
    """Actor-critic settings.

    The defaults are tuned for linear policies on the LQ plants with the exact
    quadratic critic; for MuJoCo use ``critic="mlp"``, smaller step sizes and
    usually ``normalize_advantage=True``.

    Attributes
    ----------
    n_steps : int
        Transitions collected per environment and iteration (batch
        ``n_steps * num_envs``). Default 32.
    lr : float
        Actor step size α_θ of (4.23). Default 0.01.
    critic_lr : float
        Critic step size α_w. Default 0.1.
    optimizer : str
        Actor optimiser, ``"sgd"`` (the plain step (4.23)) or ``"adam"`` (default).
    critic_optimizer : str
        Critic optimiser, ``"sgd"`` or ``"adam"`` (default).
    critic : str
        ``"quadratic"`` (default; :class:`~pgcontrol.policies.QuadraticValue`,
        the exact value class of a linear policy on an LQ plant) or ``"mlp"``.
        Ignored when ``train`` is given a critic module.
    critic_steps : int
        Semi-gradient steps on (4.20) per iteration (full batch), each with the
        targets recomputed from the current critic. Default 5.
    lam : float
        GAE λ of the advantage (and of the critic's λ-return targets);
        0 (default) is the pure TD advantage (4.21) and the TD(0) target (4.19).
    normalize_advantage : bool
        Standardise the advantages over the batch (default False: for linear
        policies it throws away the scale that tells a good gain from a bad one).
    ent_coef : float
        Weight of the entropy bonus subtracted from the actor loss (default 0).
    max_grad_norm : float or None
        Clip the actor's and the critic's gradient norms separately (None: no clipping).
    online : bool
        The online two-timescale actor-critic of the slides: forces
        ``n_steps = 1`` and ``optimizer = critic_optimizer = "sgd"`` (the
        stored config shows the forced values) and requires ``critic_lr > lr``.
    """

    n_steps: int = 32
    lr: float = 0.01
    critic_lr: float = 0.1
    optimizer: str = "adam"
    critic_optimizer: str = "adam"
    critic: str = "quadratic"
    critic_steps: int = 5
    lam: float = 0.0
    normalize_advantage: bool = False
    ent_coef: float = 0.0
    max_grad_norm: float | None = None
    anneal_lr: bool = False
    online: bool = False

    def __post_init__(self):
        super().__post_init__()
        from ..train import ConfigError

        if self.online:  # the slides' variant: one transition per env, plain SGD on both timescales
            object.__setattr__(self, "n_steps", 1)
            object.__setattr__(self, "optimizer", "sgd")
            object.__setattr__(self, "critic_optimizer", "sgd")
            if not self.critic_lr > self.lr:
                raise ConfigError(f"ACConfig(online=True) needs the critic on the faster timescale, critic_lr > lr; "
                                  f"got critic_lr={self.critic_lr!r}, lr={self.lr!r}")
        for name in ("n_steps", "critic_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"ACConfig.{name} must be a positive integer; got {v!r}")
        for name in ("optimizer", "critic_optimizer"):
            if getattr(self, name) not in ("sgd", "adam") + (("lstsq",) if name == "critic_optimizer" else ()):
                raise ConfigError(f"ACConfig.{name} must be 'sgd' or 'adam'; got {getattr(self, name)!r}")
        if self.critic not in ("quadratic", "mlp"):
            raise ConfigError(f"ACConfig.critic must be 'quadratic' or 'mlp' (actor-critic needs a critic); "
                              f"got {self.critic!r}")
        if self.lr <= 0 or self.critic_lr <= 0:
            raise ConfigError(f"ACConfig.lr and critic_lr must be > 0; got lr={self.lr!r}, critic_lr={self.critic_lr!r}")
        if not (0.0 <= self.lam <= 1.0):
            raise ConfigError(f"ACConfig.lam must lie in [0, 1] (0 = TD advantage (4.21)); got {self.lam!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(f"ACConfig.max_grad_norm must be > 0 or None; got {self.max_grad_norm!r}")


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
        V_φ(x_t) (no gradient).
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
    return values, adv, adv + values


def critic_loss(critic, batch, targets) -> torch.Tensor:
    """``½ mean_i (y_i − V_φ(x_i))²`` over the valid transitions, targets held fixed (4.20)."""
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
        self.critic = critic if critic is not None else make_critic(config.critic, obs_dim, device, dtype)
        self.opt = make_optimizer(config.optimizer, policy.parameters(), config.lr)
        self.critic_opt = (None if config.critic_optimizer == "lstsq"
                           else make_optimizer(config.critic_optimizer, self.critic.parameters(), config.critic_lr))

    def collect_spec(self) -> dict:
        return {"n_steps": self.cfg.n_steps}

    def _step(self, opt, params, loss) -> float:
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm or float("inf"))
        opt.step()
        return float(norm)

    def update(self, batch, iteration: int) -> dict:
        cfg, m = self.cfg, batch.valid
        if cfg.anneal_lr:
            frac = 1.0 - iteration / cfg.iterations
            for opt, lr in ((self.opt, cfg.lr), (self.critic_opt, cfg.critic_lr)):
                for group in (opt.param_groups if opt is not None else ()):
                    group["lr"] = frac * lr
        # advantage with the critic before this iteration's update (4.21) / (6.46)
        values, adv, targets = td_targets(self.critic, batch, self.gamma, cfg.lam)
        ev = explained_variance(values, targets, m)
        if cfg.normalize_advantage and int(m.sum()) > 1:
            adv = (adv - adv[m].mean()) / (adv[m].std() + 1e-8)
        # actor: θ ← θ − α ∇(loss (4.22) − c_ent H[π])  (4.23)
        loss_pi = actor_loss(self.policy, batch, adv)
        entropy = self.policy(batch.obs[m]).entropy().mean()
        grad_norm = self._step(self.opt, self.policy.parameters(), loss_pi - cfg.ent_coef * entropy)
        # critic: semi-gradient steps on (4.20), targets recomputed from the current V_φ each step
        for k in range(cfg.critic_steps):
            if k:
                _, _, targets = td_targets(self.critic, batch, self.gamma, cfg.lam)
            if self.critic_opt is None:
                w = self.critic.weight.detach().clone()
                self.critic.fit_least_squares(batch.obs[m], targets[m])
                with torch.no_grad():
                    self.critic.weight.copy_(w + cfg.critic_lr * (self.critic.weight - w))
                with torch.no_grad():
                    loss_v = critic_loss(self.critic, batch, targets)
            else:
                loss_v = critic_loss(self.critic, batch, targets)
                self._step(self.critic_opt, self.critic.parameters(), loss_v)
        return {"loss_policy": float(loss_pi.detach()), "loss_value": float(loss_v.detach()), "entropy": float(entropy.detach()),
                "explained_variance": ev, "grad_norm": grad_norm}

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict(), "critic": self.critic.state_dict(),
                "critic_opt": self.critic_opt.state_dict() if self.critic_opt else None, "config": dataclasses.asdict(self.cfg)}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])
        self.critic.load_state_dict(state["critic"])
        if self.critic_opt is not None:
            self.critic_opt.load_state_dict(state["critic_opt"])
