"""Proximal policy optimisation with the clipped surrogate, eqs. (6.34)–(6.46).

One iteration:

1. roll out ``n_steps`` steps of each of the ``num_envs`` environments with
   π_θ_old, continuing where the last batch stopped; the batch stores the
   log-probability log π_θ_old(u_t|x_t) of each (unclipped) sampled action;
2. **advantages** — GAE(γ, λ) (6.46), Â_t = Σ_l (γλ)^l δ_{t+l} with the TD
   residual δ_t = r_t + γ V(x_{t+1}) − V(x_t) (6.44), computed once with the
   critic of the start of the iteration; V(x_{t+1}) = 0 where the episode
   terminated, and the sum is cut and bootstrapped with V of the final
   observation at a truncation and at the end of the batch. The critic's
   targets are the λ-returns Â_t + V(x_t);
3. for ``update_epochs`` passes over the valid transitions, in
   ``num_minibatches`` shuffled minibatches:

   * ratio r_t(θ) = π_θ(u_t|x_t) / π_θ_old(u_t|x_t) (6.35), computed as
     exp(log π_θ − log π_θ_old) (6.39);
   * clipped surrogate L^clip_t = min(r_t Â_t, clip(r_t, 1−ε, 1+ε) Â_t)
     (6.36)–(6.37), a first-order stand-in for TRPO's KL trust region (6.34):
     once the ratio leaves [1−ε, 1+ε] in the direction the advantage favours,
     the sample stops pulling;
   * loss = −mean L^clip + c_v · value loss − c_ent · entropy, one Adam
     step after clipping the global gradient norm;

4. optionally stop the epochs early once the approximate KL
   mean((r − 1) − log r) between π_θ_old and π_θ exceeds ``target_kl``.

At the first minibatch of the first epoch θ = θ_old, r = 1 and the gradient
of the clipped surrogate is the plain advantage-weighted policy gradient
−mean(Â ∇ log π) of (4.22).

Implementation choices: one Adam optimiser over the policy and the critic (as
in CleanRL) with one parameter group each, so the critic may have its own
step size (``critic_lr``); the critic is a separate network (``"mlp"``,
:class:`~pgcontrol.critics.MLPValue`, by default), never shared with the
policy; both step sizes decay linearly towards 0 over ``iterations``
(``anneal_lr``). For the LQ plants the exact quadratic critic can instead
be refitted in closed form to the λ-returns once per iteration
(``critic_optimizer="lstsq"``), which is far more accurate than Adam steps
on its badly conditioned features. Observation normalisation and reward
scaling are environment wrappers (``normalize_obs``, ``normalize_reward``,
read by :func:`pgcontrol.envs.make_vec_env`; their statistics are saved in
checkpoints by :func:`pgcontrol.train.train`), not part of the update.
:meth:`PPO.minibatch_step` is the step as written here, with autograd; for
an MLP policy and critic on the CPU the same step runs by default with its
gradients written out in NumPy (:mod:`pgcontrol.algos.ppo_numpy`, config
``backend``), because torch's per-operation overhead, not arithmetic, is
what a 64-sample minibatch costs.

Adaptive rules (``adaptive``; on for linear policies, :class:`~pgcontrol.algos.base.CommonConfig`):
one estimate of the gradient of (4.22) at θ_old per environment gives its standard error; the norm
test of Byrd, Chin, Nocedal & Wu (2012) grows ``n_steps``; after the epochs the exact mean
KL(π_old ‖ π_θ) is held to ε' = ``kl_bound`` × signal fraction × step radius (the radius read from
the slope ĝᵀδθ_{k−1} along the last step, :class:`~pgcontrol.algos.base.StepAgreement`; the step
shortened toward θ_old where it is above); the epochs' clip is widened to that KL, ε = 2 sqrt(2ε')
between ``clip_coef`` and 0.8 (:func:`clip_range`: at 0.2 it bound long before ε' and stalled the epochs); and the learning rate follows the KL the epochs produced (Schulman et al. 2017, §4;
:class:`~pgcontrol.algos.base.KLControl`), but does not grow while more than a tenth of the samples are clipped (the
clip, not the step size, held that KL; growing it regardless took the step size to 2000× its start on
random-2-2-101, and Adam's long paths then overshot); a batch whose KL target is 0 runs no epochs; a closed-form
critic is fitted to the batch's λ-returns before its advantages, 20 times with the returns recomputed (``critic_fits``),
so that the advantages do not come from a lagging critic; σ is held at its start; the run stops once the gradient
is not significant at the largest batch; a batch smaller than the norm test asked for (the last
one, cut short by the step budget) takes no step; a step whose rollouts blow up is taken back and
halved (:class:`~pgcontrol.algos.base.StepGuard`). ``docs/learners.md`` has the details.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..critics import LeastSquaresStep
from ..errors import ConfigError
from ..rollout import explained_variance, gae
from .base import (CommonConfig, KLControl, SampleSize, StepAgreement, StepGuard, check_least_squares_critic, flat_parameters,
                   lr_fraction, make_critic, kl_controlled_state, load_kl_controlled_state, signal_controlled_start,
                   uses_adaptive_rules, values_of)
from .ppo_numpy import NumpyStep, supports


CLIP_BOUND = 0.1
"""Adaptive rules: above this fraction of clipped samples the clip, not the step size, held the epochs' KL, and
the learning-rate multiplier does not grow (:class:`~pgcontrol.algos.base.KLControl`)."""


CLIP_MOST = 0.8
"""Adaptive rules: the widest clip ε of :func:`clip_range` (the ratio's lower bound 1 − ε stays positive)."""


@dataclass(frozen=True)
class PPOConfig(CommonConfig):
    """PPO settings.

    The defaults follow CleanRL's ``ppo_continuous_action`` (MuJoCo scale)
    except ``num_envs=8``, ``n_steps=64`` (CleanRL: 1 × 2048),
    ``num_minibatches=4`` (32) and ``clip_vloss=False`` (True). For linear
    policies on the LQ plants use the exact quadratic critic fitted in closed
    form and TD advantages, e.g. ``PPOConfig(num_envs=64, lr=5e-3, lam=0.0,
    critic="quadratic", critic_optimizer="lstsq", max_grad_norm=None)``, which
    reaches a cost gap below 1.5 % on double-integrator and laplacian-3 in 30
    iterations (``tests/test_ppo.py``).

    Attributes
    ----------
    num_envs : int
        Parallel environments. Default 8.
    n_steps : int
        Steps per environment and iteration (batch ``n_steps * num_envs``). Default 64.
    lr : float
        Adam step size of the policy (and of the critic unless ``critic_lr``). Default 3e-4; with the
        adaptive rules the starting value of a step size that follows the step's KL (no annealing).
    kl_bound : float
        Adaptive rules: ε, the mean KL of one iteration's step before the shrink by the signal
        fraction. Default 0.02.
    iterations : int
        Default 2000 (a step budget, ``max_steps``, or the stopping rule usually ends the run first).
    critic_lr : float or None
        Adam step size of the critic; None (default) uses ``lr``.
    anneal_lr : bool
        Decay both step sizes linearly from their value at iteration 0 to
        ``1/iterations`` of it at the last iteration. Default True.
    update_epochs : int
        Passes over the batch per iteration. Default 10.
    num_minibatches : int
        Minibatches per pass (the valid transitions are shuffled and split
        into this many nearly equal parts). Default 4.
    lam : float
        GAE λ (6.46). Default 0.95.
    clip_coef : float
        ε of the clip (6.36). Default 0.2. Under the adaptive rules the least clip of an iteration,
        whose clip is widened to its KL target (:func:`clip_range`).
    clip_vloss : bool
        Clip the value update around the old values like the policy ratio
        (``max`` of the clipped and unclipped squared errors). Default False.
    vf_coef : float
        Weight c_v of the value loss ½ mean (V − Ĝ)². Default 0.5.
    ent_coef : float
        Weight of the entropy bonus. Default 0.
    norm_adv : bool
        Standardise the advantages in each minibatch. Default True.
    max_grad_norm : float or None
        Clip the global gradient norm (policy and critic together). Default
        0.5. With unnormalised returns of large scale (LQ costs) the critic's
        gradient dominates the global norm and the clip all but freezes the
        policy: use None there, or ``normalize_reward``.
    target_kl : float or None
        Stop the epochs of an iteration once the epoch's mean approximate KL
        exceeds it. Default None (no early stop).
    critic : str or None
        ``"mlp"`` or ``"quadratic"`` (the exact value class on LQ plants).
        None (default): ``"quadratic"`` for a linear policy, ``"mlp"``
        otherwise. Ignored when ``train`` is given a critic module.
    critic_optimizer : str or None
        None (default): ``"lstsq"`` with the quadratic critic, ``"adam"`` with the MLP.
        ``"adam"``: the critic takes part in the shared Adam steps
        through ``vf_coef`` × value loss. ``"lstsq"``: the critic (linear in
        its parameters, e.g. ``"quadratic"``) is instead refitted in closed
        form to the λ-returns once per iteration, after the epochs (the
        minimiser of the value loss); Adam then holds the policy only and
        ``vf_coef``, ``clip_vloss`` and ``critic_lr`` are unused.
    critic_fits : int or None
        With ``critic_optimizer="lstsq"``: how many closed-form fits the critic takes on each batch
        *before* its advantages, the λ-returns recomputed from the critic before each (fitted TD(λ)
        iterations toward their fixed point on the batch; the λ-return operator contracts by
        γ(1−λ)/(1−γλ), 0.83 at γ = 0.99, λ = 0.95, so 20 fits take a critic from 0 to within 0.83²⁰
        ≈ 2.5 % of that point, and later batches start from the last critic). 0: one fit after the
        epochs instead (the plain algorithm). None (default): 20 under the adaptive rules, else 0.
        A critic fitted only after the epochs lags: from V = 0 the first advantages are the
        λ-discounted rewards Σ (γλ)^k r, whose gradient points at the myopic gain (on laplacian-3,
        whose myopic gain barely controls the unstable plant, PPO's gap rose from 0.79 to 37 before
        the critic caught up, and the run ended at 3.4 %).
    stop_rounds : int or None
        Adaptive rules: where the gradient is not significant at the largest batch (``max_rounds``, 32
        rounds of ``num_envs × n_steps``: 16 384 steps, against the REINFORCE family's 512 T), that batch
        doubles up to 128 rounds (65 536 steps) before the stopping rule counts. None (default):
        max(128, ``max_rounds``).
    backend : str
        Who computes the minibatch steps. ``"torch"``: autograd and
        ``torch.optim.Adam``, as written in :meth:`PPO.update`.
        ``"numpy"``: the same loss with its gradients written out
        (:mod:`pgcontrol.algos.ppo_numpy`), about five times faster on
        MuJoCo-sized MLPs; only for an MLP policy with an Adam-trained MLP
        critic on the CPU. ``"auto"`` (default): ``"numpy"`` where it applies,
        else ``"torch"``. The two agree to float rounding
        (``tests/test_ppo_numpy.py``); a run is reproducible on either.
    """

    num_envs: int = 8
    iterations: int = 2000
    stop_rounds: int | None = None
    STOP_ROUNDS = 128  # stop_rounds=None: max(128, max_rounds)
    n_steps: int = 64
    lr: float = 3e-4
    kl_bound: float = 0.02
    critic_lr: float | None = None
    anneal_lr: bool = True
    update_epochs: int = 10
    num_minibatches: int = 4
    lam: float = 0.95
    clip_coef: float = 0.2
    clip_vloss: bool = False
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    norm_adv: bool = True
    max_grad_norm: float | None = 0.5
    target_kl: float | None = None
    critic: str | None = None
    critic_optimizer: str | None = None
    critic_fits: int | None = None
    backend: str = "auto"

    def __post_init__(self):
        super().__post_init__()
        self._positive_ints("n_steps", "update_epochs", "num_minibatches")
        if self.critic_fits is not None and (isinstance(self.critic_fits, bool)
                                             or not isinstance(self.critic_fits, int) or self.critic_fits < 0):
            self._fail("critic_fits", "an int >= 0 or None", self.critic_fits)
        self._positive("lr")
        self._positive("critic_lr", "max_grad_norm", "target_kl", optional=True)
        self._unit_interval("lam")
        if not (0.0 < self.clip_coef < 1.0):
            self._fail("clip_coef", "in (0, 1)", self.clip_coef)
        self._positive("kl_bound")
        if self.critic is not None:
            self._choice("critic", ("mlp", "quadratic"))
        if self.critic_optimizer is not None:
            self._choice("critic_optimizer", ("adam", "lstsq"))
        self._choice("backend", ("auto", "torch", "numpy"))
        self._lstsq_needs_linear_critic()


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """Per-sample clipped objective ``min(r Â, clip(r, 1−ε, 1+ε) Â)`` (6.36)–(6.37), to be maximised.

    Parameters
    ----------
    ratio : tensor
        r_t(θ) = π_θ(u_t|x_t) / π_θ_old(u_t|x_t) (6.35).
    adv : tensor
        Â_t, same shape.
    clip_coef : float
        ε.

    Returns
    -------
    tensor
        L^clip_t, same shape. For Â > 0 it is capped at (1+ε) Â, for Â < 0 at
        (1−ε) Â; inside the cap it is r Â.
    """
    clipped = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)  # eq. (6.36)
    return torch.min(ratio * adv, clipped * adv)  # eq. (6.37)


def policy_loss(policy, obs, actions, logp_old, adv, clip_coef: float, *, dist=None):
    """``(−mean L^clip, ratio, log ratio)`` of a minibatch; log π_θ_old is the stored ``batch.logp``.

    ``dist``: the policy's distribution at ``obs`` when the caller has it already (one forward pass per
    minibatch serves the ratio and the entropy).
    """
    logp = policy.log_prob(obs, actions) if dist is None else dist.log_prob(actions)
    logratio = logp - logp_old  # eq. (6.39)
    ratio = logratio.exp()  # eq. (6.35)
    return -clipped_surrogate(ratio, adv, clip_coef).mean(), ratio, logratio  # eq. (6.37)


def value_loss(critic, obs, returns, values_old, clip_coef: float | None):
    """``½ mean (V_φ(x) − Ĝ)²`` (the critic loss (4.20) with λ-return targets), optionally clipped.

    With ``clip_coef`` the new value may not move more than ε from the old
    one without penalty: ``½ mean max((V − Ĝ)², (V_old + clip(V − V_old, ±ε) − Ĝ)²)``.
    """
    v = critic(obs).to(returns.dtype)
    err = (v - returns).pow(2)
    if clip_coef is not None:
        v_clip = values_old + (v - values_old).clamp(-clip_coef, clip_coef)
        err = torch.max(err, (v_clip - returns).pow(2))
    return 0.5 * err.mean()  # eq. (4.20)


def clip_range(clip_coef: float, kl_target: float) -> float:
    """The clip ε of an iteration whose step is held to the mean KL ``kl_target`` (adaptive rules).

    For a Gaussian policy with a fixed σ the log-ratio of a sample, log r = Δμᵀz/σ − ‖Δμ‖²/(2σ²) with
    z ~ N(0, I), has standard deviation sqrt(2 KL) at a step of mean KL = ½‖Δμ/σ‖². A clip narrower than
    that binds before the step reaches its KL target: at ε = 0.2 a fifth of the samples already leave
    [1 − ε, 1 + ε] at KL 0.01. Under the adaptive rules the KL target is the trust region (6.34), checked
    exactly after the epochs, so the clip is widened to two standard deviations of log r at the target,
    ε = 2 sqrt(2 ε'), never below ``clip_coef`` and at most ``CLIP_MOST``.
    """
    return min(max(clip_coef, 2.0 * math.sqrt(2.0 * max(kl_target, 0.0))), max(clip_coef, CLIP_MOST))


class PPO:
    """PPO-clip with GAE and minibatch epochs; one Adam over policy and critic (CleanRL style)."""

    Config = PPOConfig
    name = "ppo"

    def __init__(self, policy, config: PPOConfig, *, gamma, obs_dim, device, critic=None, plant=None):
        linear = bool(getattr(policy, "is_linear", False))
        if critic is not None:  # a given critic decides
            given = "quadratic" if hasattr(critic, "fit_least_squares") else "mlp"
            kind = config.critic or given
            opt = config.critic_optimizer or ("lstsq" if given == "quadratic" and config.critic is None else "adam")
            config = replace(config, critic_optimizer=opt)
        kind = config.critic or ("quadratic" if linear else "mlp")  # None: the exact value class for linear policies
        config = replace(config, critic=kind,
                         critic_optimizer=config.critic_optimizer or ("lstsq" if kind == "quadratic" else "adam"))
        self.policy, self.cfg, self.gamma = policy, config, gamma
        self.adaptive = uses_adaptive_rules(config, policy)
        self.size = SampleSize(config, shrink=True)  # the batch is size.rounds × n_steps steps of every environment
        self.guard = StepGuard(factor=10.0) if self.adaptive else None
        self.kl = KLControl()
        self.agreement = StepAgreement()  # the step's radius from the slope along the last step
        if self.adaptive and getattr(policy, "is_linear", False):
            policy.raw_std.requires_grad_(False)  # σ held at its start (module docstring, "Adaptive rules")
        dtype = next(policy.parameters()).dtype
        self.critic = critic if critic is not None else make_critic(config, obs_dim, device, dtype)
        # the critic's update: the closed form once per batch (critics.LeastSquaresStep, called as VPG and AC
        # call it), or None: the critic trains inside the minibatch loss, + vf_coef × (4.20), with the policy
        self.critic_fit = None
        if config.critic_optimizer == "lstsq":
            check_least_squares_critic(self.critic)
            self.critic_fit = LeastSquaresStep(self.critic, 1.0)
        fits = config.critic_fits if config.critic_fits is not None else (20 if self.adaptive else 0)
        self.critic_fits = fits if self.critic_fit is not None else 0  # closed-form fits before the advantages
        self.lrs = (config.lr, config.lr if config.critic_lr is None else config.critic_lr)
        groups = (list(policy.parameters()), list(self.critic.parameters()) if self.critic_fit is None else [])
        self.params = [p for g in groups for p in g]  # for the gradient norm, tensor by tensor
        self.opt = torch.optim.Adam([{"params": [flat_parameters(g)] if g else [], "lr": lr}
                                     for g, lr in zip(groups, self.lrs)], eps=1e-5)
        numpy_ok = self.critic_fit is None and supports(policy, self.critic, device)
        if config.backend == "numpy" and not numpy_ok:
            raise ConfigError(f"backend must be 'torch' or 'auto' unless the policy is an MLP policy and the critic an "
                              f"Adam-trained MLP critic on the CPU (NumPy path); got backend='numpy' with "
                              f"{type(policy).__name__}, critic {type(self.critic).__name__}, device {device!r}")
        self.numpy = numpy_ok and config.backend != "torch"
        # minibatch shuffling, seeded from the global RNG that train() seeds
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        self.clip = config.clip_coef  # the clip ε of the current update (clip_range under the adaptive rules)

    def collect_spec(self) -> dict:
        """Continuous collection: ``n_steps`` more steps of every environment (× the adaptive batch's rounds)."""
        return {"n_steps": self.cfg.n_steps * (self.size.rounds if self.adaptive else 1)}

    @property
    def stop_reason(self) -> str | None:
        """Why the stopping rule ended the run (None: it has not)."""
        return self.size.stop_reason if self.adaptive else None

    def advantages(self, batch):
        """``(values, adv, returns)`` of the valid transitions, flattened.

        GAE(γ, λ) (6.46) with the critic of the start of the iteration
        (V(x') = 0 at termination, bootstrapped at truncation and at the end
        of the batch) and the λ-returns ``adv + values``, the critic's targets.
        """
        return self.lambda_returns(batch, *values_of(self.critic, batch))

    def lambda_returns(self, batch, values, next_values):
        """``(values, adv, returns)`` of the valid transitions from V(x_t) and V(x_{t+1}) (0 at termination)."""
        adv = gae(batch.rewards, values, next_values, batch.dones, self.gamma, self.cfg.lam).to(values.dtype)
        m = batch.valid
        return values[m], adv[m], adv[m] + values[m]  # eq. (6.46)

    def fit_critic_first(self, batch) -> dict:
        """``critic_fits`` closed-form fits of the critic to the batch's λ-returns (6.46), recomputed from the
        critic before each (``critic_fits`` in :class:`PPOConfig`); ``{"loss_value": the loss after the last}``.

        V(x) = φ(x)ᵀw is linear in w, so the features of the states and of the next states are computed
        once and each iteration's values are ``φ @ w`` (the critic's own forward pass, the same numbers).
        """
        obs = batch.obs[batch.valid]  # one tensor: the fit factorises its features once
        with torch.no_grad():
            phi, phi_next = self.critic.features(batch.obs), self.critic.features(batch.next_obs)
        alive, dtype = ~batch.terminated, batch.rewards.dtype
        for _ in range(self.critic_fits):
            w = self.critic.weight.detach()
            _, _, returns = self.lambda_returns(batch, (phi @ w).to(dtype), (phi_next @ w).to(dtype) * alive)
            loss = self.critic_fit.fit(obs, returns)  # the λ-returns of this critic (6.46)
        return {"loss_value": loss}

    def update(self, batch, iteration: int) -> dict:
        """One PPO iteration on a batch; returns the metrics.

        Returns
        -------
        dict
            ``loss_policy`` (−mean L^clip), ``loss_value``, ``entropy`` and
            ``clip_fraction`` (share of samples with |r − 1| > ε), averaged over
            all minibatch steps; ``approx_kl`` (mean of (r − 1) − log r over the
            last epoch run); ``explained_variance`` of the λ-returns by the
            critic the advantages use; ``lr`` (the policy's step size).
        """
        cfg, m = self.cfg, batch.valid
        frac = lr_fraction(cfg, iteration) if not self.adaptive else self.kl.scale  # adaptive: the KL's multiplier
        for group, lr in zip(self.opt.param_groups, self.lrs):
            group["lr"] = frac * lr
        value = self.fit_critic_first(batch) if self.critic_fits else {}
        values, adv, returns = self.advantages(batch)
        extra = {}
        if self.adaptive:  # per-environment estimates of (4.22) at θ_old: signal fraction, norm test, stopping rule
            full = torch.zeros_like(batch.rewards, dtype=adv.dtype)
            full[m] = adv
            params, theta_old, old_dist, extra, _ = signal_controlled_start(self.policy, batch, full, self.size,
                                                                            self.guard, cfg, self.agreement)
        obs, actions, logp_old = batch.obs[m], batch.actions[m], batch.logp[m]
        self.clip = clip_range(cfg.clip_coef, extra["kl_target"]) if self.adaptive else cfg.clip_coef
        self.step, split = self.minibatch_steps(obs, actions, logp_old, adv, returns, values)
        keys = ("loss_policy", "loss_value", "entropy", "approx_kl", "clip_fraction")
        sums = dict.fromkeys(keys, 0.0)
        count, approx_kl = 0, 0.0
        # adaptive rules: a batch with no step to take (KL target 0) runs no epochs
        epochs = 0 if self.adaptive and extra["kl_target"] == 0 else cfg.update_epochs
        for _ in range(epochs):
            kls = []
            perm = torch.randperm(obs.shape[0], generator=self.generator)  # on the CPU, like the generator
            for idx in split(perm):
                if len(idx) == 0:
                    continue
                stats = self.step(idx)  # one Adam step on the minibatch (autograd or NumPy: minibatch_steps)
                for k, v in zip(keys, stats):
                    sums[k] += v
                kls.append(stats[3])
                count += 1
            approx_kl = sum(kls) / max(len(kls), 1)
            if cfg.target_kl is not None and approx_kl > cfg.target_kl:
                break
        sums.pop("approx_kl")
        out = {k: v / max(count, 1) for k, v in sums.items()}
        if self.adaptive:  # the step held to the KL ε × signal fraction (KLControl)
            clip_bound = out.get("clip_fraction", 0.0) > CLIP_BOUND  # the clip held the epochs' KL, not the lr
            extra.update(self.kl.limit(self.policy, params, theta_old, batch.obs[m], old_dist, extra["kl_target"],
                                       grow=not clip_bound))
            extra["clip"] = self.clip
            self.agreement.taken(torch.nn.utils.parameters_to_vector(params).detach() - theta_old)
            out.update(extra)
        if self.critic_fit is not None:  # the closed form: fitted before the advantages, or now
            out["loss_value"] = value["loss_value"] if self.critic_fits else self.critic_fit.fit(obs, returns)
        out.update(approx_kl=approx_kl, explained_variance=explained_variance(values, returns), lr=frac * self.lrs[0])
        return out

    def minibatch_steps(self, obs, actions, logp_old, adv, returns, values):
        """``(step, split)`` for one update: ``step(idx)`` takes one Adam step on the minibatch ``idx``
        (:meth:`minibatch_step` with autograd, or :class:`~.ppo_numpy.NumpyStep`, the same step with its
        gradients written out, given the policy, critic, optimiser and config); ``split(perm)`` cuts an
        epoch's shuffled CPU indices into ``num_minibatches`` in the form the step takes (moved to the
        training device once per epoch, or NumPy)."""
        n = self.cfg.num_minibatches
        if self.numpy:
            numpy_step = NumpyStep(self.policy, self.critic, self.opt, replace(self.cfg, clip_coef=self.clip),
                                   obs, actions, logp_old, adv, returns, values)
            return numpy_step.step, lambda perm: [i.numpy() for i in perm.tensor_split(n)]
        return (lambda idx: self.minibatch_step(idx, obs, actions, logp_old, adv, returns, values),
                lambda perm: perm.to(obs.device).tensor_split(n))

    def minibatch_step(self, idx, obs, actions, logp_old, adv, returns, values) -> tuple[float, ...]:
        """One Adam step on the minibatch ``idx``; ``(−mean L^clip, value loss, entropy, approx KL, clip fraction)``."""
        cfg = self.cfg
        a = adv[idx]
        if cfg.norm_adv and idx.numel() > 1:
            a = (a - a.mean()) / (a.std() + 1e-8)
        dist = self.policy(obs[idx])  # one forward pass: the ratio and the entropy
        loss_pi, ratio, logratio = policy_loss(self.policy, obs[idx], actions[idx], logp_old[idx], a,
                                               self.clip, dist=dist)
        entropy = dist.entropy().mean()
        loss = loss_pi - cfg.ent_coef * entropy  # −mean L^clip (6.37) − entropy bonus
        value = 0.0
        if self.critic_fit is None:  # the critic in the minibatch loss
            loss_v = value_loss(self.critic, obs[idx], returns[idx], values[idx],
                                cfg.clip_coef if cfg.clip_vloss else None)
            loss = loss + cfg.vf_coef * loss_v  # + c_v × critic loss (4.20)
            value = float(loss_v.detach())
        self.opt.zero_grad(set_to_none=False)  # in place: the parameters' gradients are views
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm or float("inf"))
        self.opt.step()
        with torch.no_grad():
            approx_kl = ((ratio - 1) - logratio).mean()  # approx KL(π_old ‖ π_θ), k3 estimator
            clip_fraction = ((ratio - 1).abs() > self.clip).double().mean()
        return float(loss_pi.detach()), value, float(entropy.detach()), float(approx_kl), float(clip_fraction)

    def state_dict(self) -> dict:
        """Optimiser, critic and minibatch-shuffling generator (for checkpoints)."""
        return {"opt": self.opt.state_dict(), "critic": self.critic.state_dict(),
                "generator": self.generator.get_state(),
                "adaptive": kl_controlled_state(self.size, self.kl, self.guard, self.agreement)}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.opt.load_state_dict(state["opt"])
        self.critic.load_state_dict(state["critic"])
        self.generator.set_state(state["generator"])
        load_kl_controlled_state(state.get("adaptive"), self.size, self.kl, self.guard, self.agreement)
