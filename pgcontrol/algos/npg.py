"""Natural policy gradient and TRPO (slides 004: steepest ascent in the Fisher metric; eq. (6.34)).

One iteration:

1. the REINFORCE estimate ĝ of ∇J exactly as in :mod:`.vpg` (same rollouts, estimator, baseline);
2. the Fisher information F(θ) = E_{x~d^π, u~π}[∇log π ∇log πᵀ] (slides), from
   ``fisher="sample"`` the weighted mean of score outer products,
   ``fisher="cg"``     Fisher-vector products Fv = ∇²_θ KL̄(π_old‖π_θ) v (slides' Taylor expansion),
                       solved by conjugate gradient, or
   ``fisher="exact"``  :func:`pgcontrol.lqr.fisher` (linear policies on LQ plants);
3. the step of the slides, δθ = sqrt(ε' / (ĝᵀF⁻¹ĝ)) F⁻¹ĝ. The slides approximate
   KL ≈ δθᵀFδθ; the second-order Taylor term is ½δθᵀFδθ, so we use ε' = 2ε and the
   mean KL of a step is ε to second order;
4. TRPO (6.34): shrink δθ by backtracking until the exact mean KL ≤ ε and the
   importance-sampled surrogate improves.

Gauss-Newton direction (``gauss_newton``; on by default under the adaptive rules for a linear
policy with more than one input). On an LQ plant the natural gradient's gain block is
F⁻¹∇_K J = 2w diag(σ²) E_K with E_K = H K − γBᵀP_K A and H = R + γBᵀP_K B
(:func:`pgcontrol.lqr.natural_gradient`); its convergence slows with the condition number
of H, the curvature of the cost in the action. Fazel et al. (2018) precondition by H⁻¹,
K ← K − η H⁻¹E_K (η = 1 is one step of policy iteration). Here H is estimated from the
same rollouts, model-free, by Stein's second-order identity for u = μ(x) + diag(σ)ε:

    E_ε[Q(x, u) (εεᵀ − I)] = diag(σ) ∇²_u Q(x, u) diag(σ),   ∇²_u Q = 2H on an LQ plant,

so Ĥ = −½ diag(σ)⁻¹ mean[Ψ (εεᵀ − I)] diag(σ)⁻¹ with the estimator's weights Ψ (the return
is −cost; a baseline b(x) drops out because E[εεᵀ − I] = 0): :func:`action_hessian`. The
direction is then Ĥ⁻¹ diag(σ)⁻² X for the natural direction's gain block X
(:func:`gauss_newton_direction`), with Ĥ's eigenvalues floored at the size of its own
standard error, and the natural direction kept where Ĥ is not larger than twice that.
The step's length is still the KL ε' of the adaptive rules.

States are weighted by γ^τ (normalised), the discounted visitation d^π of the slides,
in the sample Fisher and in the KL; with ``discount_weighting=False`` (the estimator (3.21)
without γ^t) they weigh equally, as in SB3's and Spinning Up's TRPO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .. import lqr
from ..errors import ConfigError
from .base import per_sample_scores
from .vpg import VPG, ReinforceConfig, state_weights  # noqa: F401  (state_weights: re-exported)


@dataclass(frozen=True)
class NPGConfig(ReinforceConfig):
    """Natural-gradient settings (plus those of :class:`.vpg.ReinforceConfig`).

    Attributes
    ----------
    kl_bound : float
        ε: the mean KL of one step (to second order), and TRPO's hard bound δ.
    fisher : str
        ``"sample"``, ``"cg"`` or ``"exact"``.
    cg_iters : int
        Conjugate-gradient iterations (``fisher="cg"``).
    damping : float
        λ added to the Fisher, (F + λI), for ``"sample"`` and ``"cg"``.
    line_search : bool
        TRPO: backtrack until KL ≤ ε and the surrogate improves.
    gauss_newton : bool or None
        Precondition the natural direction in the action by the estimated
        Ĥ ≈ R + γBᵀP B (module docstring). None (default): on under the
        adaptive rules for a linear policy with more than one input (with one
        input the direction is the natural one up to its length); True needs
        the adaptive rules and a linear policy.
    backtrack_coef : float
        Shrink factor per backtracking step.
    max_backtracks : int
        Give up (keep θ) after this many.
    """

    kl_bound: float = 0.05
    fisher: str = "cg"
    cg_iters: int = 10
    damping: float = 1e-3
    line_search: bool = False
    backtrack_coef: float = 0.5
    max_backtracks: int = 10
    gauss_newton: bool | None = None

    def __post_init__(self):
        super().__post_init__()
        self._choice("fisher", ("sample", "cg", "exact"))
        self._positive("kl_bound")
        self._positive_ints("cg_iters")
        if isinstance(self.max_backtracks, bool) or not isinstance(self.max_backtracks, int) or self.max_backtracks < 0:
            self._fail("max_backtracks", "an integer >= 0", self.max_backtracks)
        if not 0 < self.backtrack_coef < 1:
            self._fail("backtrack_coef", "in (0, 1)", self.backtrack_coef)
        if not self.damping >= 0:
            self._fail("damping", ">= 0", self.damping)
        if self.gauss_newton not in (None, True, False):
            self._fail("gauss_newton", "None, True or False", self.gauss_newton)


def conjugate_gradient(Av, b: torch.Tensor, iters: int, tol: float = 1e-12) -> torch.Tensor:
    """Solve ``A x = b`` for symmetric positive definite A given only ``Av(v) = A v``."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        Ap = Av(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def sample_fisher(policy, obs, actions, weights) -> torch.Tensor:
    """F̂ = Σ_i w_i ∇log π(u_i|x_i) ∇log π(u_i|x_i)ᵀ (per-sample scores: :func:`~.base.per_sample_scores`)."""
    S, _ = per_sample_scores(policy, obs, actions, torch.ones_like(weights, dtype=torch.bool))
    return (S * weights[:, None]).T @ S


def mean_kl(policy, old_dist, obs, weights) -> torch.Tensor:
    """KL̄(π_old ‖ π_θ) = Σ_i w_i KL(π_old(·|x_i) ‖ π_θ(·|x_i))."""
    return (torch.distributions.kl_divergence(old_dist, policy(obs)) * weights).sum()


@torch.no_grad()
def action_hessian(policy, batch, psi) -> tuple[torch.Tensor, torch.Tensor]:
    """Ĥ ≈ ½∇²_u Q(x, u) (on an LQ plant R + γBᵀP B) from the rollouts, by Stein's second-order identity.

    With ε = diag(σ)⁻¹(u − μ(x)) the standardised exploration noise and Ψ the
    weights of the gradient estimate (returns, −cost),
    Ĥ_m = −½ Σ_t Ψ_t diag(σ)⁻¹(ε_t ε_tᵀ − I)diag(σ)⁻¹ for each episode m
    (module docstring). Returns the mean over episodes and its elementwise
    standard error, both ``(m, m)``. Only the shape of Ĥ matters to the
    direction; its overall scale follows the weights of Ψ.
    """
    dist = policy(batch.obs)
    sd = dist.stddev
    eps = (batch.actions - dist.mean) / sd
    eye = torch.eye(eps.shape[-1], dtype=eps.dtype, device=eps.device)
    outer = (eps[..., :, None] * eps[..., None, :] - eye) / (sd[..., :, None] * sd[..., None, :])
    per_episode = -0.5 * torch.einsum("tm,tmij->mij", (psi * batch.valid).to(eps.dtype), outer)
    M = per_episode.shape[0]
    return per_episode.mean(0), per_episode.std(0) / math.sqrt(max(M, 1))


def gauss_newton_direction(x: torch.Tensor, H: torch.Tensor, se: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Ĥ⁻¹ diag(σ)⁻² X for the natural direction's gain block X = ``x`` viewed as (m, n) (Fazel et al. 2018).

    Ĥ is symmetrised and its eigenvalues floored at τ = ‖SE(Ĥ)‖_F, the size of
    its noise, so that a direction Ĥ does not resolve is not blown up; where
    its largest eigenvalue is not above 2τ, ``x`` is returned unchanged.
    """
    m = H.shape[0]
    lam, V = torch.linalg.eigh(0.5 * (H + H.T))
    tau = float(se.norm())
    if not float(lam.max()) > 2 * tau:
        return x
    H_inv = V @ torch.diag(1.0 / lam.clamp_min(tau)) @ V.T
    X = x.view(m, -1) / (std.to(x.dtype) ** 2)[:, None]
    return (H_inv.to(x.dtype) @ X).reshape(-1)


class NPG(VPG):
    """Natural policy gradient; :class:`TRPO` adds the line search."""

    Config = NPGConfig
    name = "npg"
    natural = True

    def __init__(self, policy, config: NPGConfig, **kw):
        super().__init__(policy, config, **kw)
        linear = getattr(policy, "is_linear", False)
        if config.gauss_newton and not (self.adaptive and linear):
            raise ConfigError(f"{type(config).__name__}.gauss_newton=True preconditions the adaptive rules' natural "
                              "step of a linear policy and needs both; got adaptive="
                              f"{config.adaptive!r} with a {type(policy).__name__}")
        self.gauss_newton = (bool(config.gauss_newton) if config.gauss_newton is not None
                             else self.adaptive and linear and policy.act_dim > 1)

    def metric(self, stats, batch) -> torch.Tensor:
        """F̂ + λI, or the exact Fisher with ``fisher="exact"``."""
        if self.cfg.fisher == "exact":
            return self._exact_fisher()
        return super().metric(stats, batch)

    def direction(self, g, F, stats=None, batch=None) -> torch.Tensor:
        """The natural direction F⁻¹ĝ (slides: steepest ascent in the KL metric), Gauss-Newton preconditioned
        with ``gauss_newton`` (module docstring)."""
        x = torch.linalg.solve(F, g)
        if self.gauss_newton and stats is not None and x.numel() == self.policy.act_dim * self.policy.obs_dim:
            H, se = action_hessian(self.policy, batch, stats["psi"])
            x = gauss_newton_direction(x, H, se, self.policy.std_tensor().detach())
        return x

    def _policy_optimizer(self):
        return None  # the step is computed, not taken by an optimiser

    def _exact_fisher(self) -> torch.Tensor:
        if self.plant is None or not getattr(self.policy, "is_linear", False):
            raise ValueError("fisher='exact' needs a linear policy on an LQ plant; use 'cg' or 'sample'")
        F = lqr.fisher(self.plant, self.policy.K, self.policy.std, horizon=self.plant.horizon)
        if getattr(self.policy, "std_param", "std") == "log_std":  # chain rule: ∂/∂logσ = σ ∂/∂σ
            J = np.diag(np.concatenate([np.ones(self.policy.K.size), self.policy.std]))
            F = J @ F @ J
        p = next(self.policy.parameters())
        return torch.as_tensor(F, dtype=p.dtype, device=p.device)

    def natural_direction(self, g: torch.Tensor, batch) -> torch.Tensor:
        """F⁻¹ĝ with the configured Fisher."""
        cfg = self.cfg
        if cfg.fisher == "exact":  # no batch statistics needed
            return torch.linalg.solve(self._exact_fisher(), g)
        obs, act = batch.obs[batch.valid], batch.actions[batch.valid]
        w = state_weights(batch, self.gamma, self.cfg.discount_weighting)[batch.valid]
        eye = torch.eye(g.numel(), dtype=g.dtype, device=g.device)
        if cfg.fisher == "sample":
            return torch.linalg.solve(sample_fisher(self.policy, obs, act, w) + cfg.damping * eye, g)
        with torch.no_grad():
            old = self.policy(obs)
        params = list(self.policy.parameters())
        kl = mean_kl(self.policy, old, obs, w)
        dkl = torch.autograd.grad(kl, params, create_graph=True)
        dkl = torch.cat([d.reshape(-1) for d in dkl])

        def Fv(v):  # Hessian of the mean KL times v (slides: ∇²KL = F)
            hv = torch.autograd.grad(dkl @ v, params, retain_graph=True)
            return torch.cat([h.reshape(-1) for h in hv]) + cfg.damping * v

        return conjugate_gradient(Fv, g, cfg.cg_iters)

    def step_policy(self, batch, iteration: int) -> dict:
        """The natural step (the adaptive rules' or the fixed-KL one, TRPO's line search on top)."""
        cfg = self.cfg
        if self.adaptive:
            return self._adaptive_natural_update(batch)
        loss, psi = self.gradient_estimate(batch)
        params = list(self.policy.parameters())
        g = -torch.cat([p.grad.reshape(-1) for p in params])  # ĝ ≈ ∇J (ascent on return)
        x = self.natural_direction(g, batch)  # F⁻¹ĝ
        gFg = float(g @ x)
        out = {"loss_policy": loss.item(), "grad_norm": float(g.norm()), "gFg": gFg}
        theta = parameters_to_vector(params).detach()
        if not np.isfinite(gFg) or gFg <= 0:
            out["loss_policy"] = float("nan") if not np.isfinite(gFg) else out["loss_policy"]
            return out
        step = np.sqrt(2 * cfg.kl_bound / gFg) * x  # δθ = sqrt(2ε / ĝᵀF⁻¹ĝ) F⁻¹ĝ (slides, with the ½ of KL)
        obs, w, old = self._kl_inputs(batch)
        frac = 1.0
        if cfg.line_search:  # TRPO (6.34): largest β^j δθ with KL ≤ ε and surrogate improvement
            surr_old = self._surrogate(batch, psi)
            for _ in range(cfg.max_backtracks + 1):
                vector_to_parameters(theta + frac * step, params)
                with torch.no_grad():
                    kl = float(mean_kl(self.policy, old, obs, w))
                    improve = self._surrogate(batch, psi) - surr_old
                if kl <= cfg.kl_bound and improve > 0:
                    break
                frac *= cfg.backtrack_coef
            else:
                frac = 0.0
        vector_to_parameters(theta + frac * step, params)
        with torch.no_grad():
            out["kl"] = float(mean_kl(self.policy, old, obs, w))
        out["step_fraction"] = frac
        return out

    def _adaptive_natural_update(self, batch) -> dict:
        """δθ = sqrt(2ε'/ĝᵀF⁻¹ĝ) F⁻¹ĝ with ε' = ε × signal fraction; TRPO backtracks to KL ≤ ε' (6.34)."""
        cfg = self.cfg
        self.guard.remember(self.policy.parameters())
        out, st, step, eps = self.adaptive_step(batch)
        params = st["params"]
        theta = parameters_to_vector(params).detach()
        obs, w, old = self._kl_inputs(batch)
        frac = 1.0
        if cfg.line_search and eps > 0:
            surr_old = self._surrogate(batch, st["psi"])
            for _ in range(cfg.max_backtracks + 1):
                vector_to_parameters(theta + frac * step, params)
                with torch.no_grad():
                    kl = float(mean_kl(self.policy, old, obs, w))
                    improve = self._surrogate(batch, st["psi"]) - surr_old
                if kl <= eps and improve > 0:
                    break
                frac *= cfg.backtrack_coef
            else:
                frac = 0.0
        vector_to_parameters(theta + frac * step, params)
        self.agreement.taken(frac * step)
        with torch.no_grad():
            out["kl"] = float(mean_kl(self.policy, old, obs, w))
        out["step_fraction"] = frac
        return out

    @torch.no_grad()
    def _kl_inputs(self, batch):
        """The valid states, their weights d^π and π_old(·|x) for the mean KL (the collector's means when recorded)."""
        w = state_weights(batch, self.gamma, self.cfg.discount_weighting)
        if batch.means is not None and bool(batch.valid.all()):  # whole episodes: no masking, no forward pass
            obs, w, mean = batch.obs, w, batch.means
            return obs, w, self.policy.distribution_at_mean(mean)
        obs = batch.obs[batch.valid]
        return obs, w[batch.valid], self.policy(obs)

    @torch.no_grad()
    def _surrogate(self, batch, psi) -> float:
        """(1/M) Σ π_θ/π_old Ψ — the importance-sampled objective of (6.34)."""
        ratio = torch.exp(self.policy.log_prob(batch.obs, batch.actions) - batch.logp)  # eq. (6.35)
        return float((ratio * psi * batch.valid).sum() / batch.obs.shape[1])


class TRPO(NPG):
    """TRPO: the natural step with a backtracking line search enforcing KL ≤ δ (6.34)."""

    name = "trpo"

    def __init__(self, policy, config: NPGConfig, **kw):
        if not config.line_search:
            config = replace(config, line_search=True)
        super().__init__(policy, config, **kw)
