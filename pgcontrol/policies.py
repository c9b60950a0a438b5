"""Gaussian policies and critics (torch).

Policies
--------
Every policy here is a diagonal Gaussian, eqs. (4.24)-(4.25) (written out in the
documentation's equation index, ``docs/equations.md``):

.. math::

    \\pi_\\theta(u \\mid x) = \\prod_{j=1}^m \\mathcal N\\big(u_j;\\ \\mu_{\\theta,j}(x),\\ \\sigma_{\\theta,j}^2\\big),

    \\log \\pi_\\theta(u \\mid x) = -\\sum_{j=1}^m \\Big[\\frac{(u_j - \\mu_{\\theta,j}(x))^2}{2\\sigma_{\\theta,j}^2}
        + \\tfrac12 \\log(2\\pi\\sigma_{\\theta,j}^2)\\Big] \\qquad (4.26)

with a state-independent standard deviation :math:`\\sigma_\\theta`. Calling a
policy on observations returns a plain
``torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)``,
whose ``log_prob`` is exactly (4.26) (summed over the ``m`` action
components) and whose ``batch_shape`` is ``obs.shape[:-1]``.

* :class:`LinearGaussianPolicy`: :math:`\\mu(x) = -Kx`, the pgcontrol sign
  convention (``u = -K x + eps``, ``K`` of shape ``(m, n)``, see
  :mod:`pgcontrol.plants`), with σ either a parameter itself (``std_param="std"``,
  the parameter :math:`\\theta_2 = \\sigma` of the Peters & Schaal example in the
  slides ``004_*``) or through log σ. Its flat parameter vector is ordered
  ``θ = (K.ravel(), raw std)`` like :func:`pgcontrol.lqr.fisher`.
* :class:`MLPGaussianPolicy`: a tanh MLP mean and a state-independent log σ.

The effective σ is floored at ``min_std > 0`` so that it can never reach 0
(where (4.26) is undefined). The floor is a ``clamp_min``: below it the
gradient with respect to the raw parameter is **exactly zero**, which is the
"plateau of zero exploration" of vanilla policy gradient in the slides: once
σ has collapsed onto the floor, the gradient no longer moves it.

Critics
-------
Both critics map ``obs`` of shape ``(..., n)`` to values of shape
``obs.shape[:-1]``; fit them with the critic loss (4.20),
:math:`\\tfrac12\\sum_i \\| r_i + \\gamma V_\\phi(x_{i+1}) - V_\\phi(x_i)\\|^2`
(TD targets), or with Monte Carlo returns as targets.

* :class:`MLPValue`: a tanh MLP.
* :class:`QuadraticValue`: :math:`V(x) = x^\\top P x + c`, the exact value class
  of a linear policy on an LQ plant (:func:`pgcontrol.lqr.policy_cost`:
  :math:`V(x) = x^\\top P_K x + q`); linear in its parameters, so it also has a
  closed-form least-squares fit.

Bad inputs raise :class:`PolicyError`, a ``ValueError``, naming the expected
shape.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal

from . import lqr
from .errors import PolicyError

__all__ = [
    "PolicyError",
    "LinearGaussianPolicy",
    "MLPGaussianPolicy",
    "make_policy",
    "spec_parameters",
    "MAX_WIDTH",
    "MAX_LAYERS",
    "MAX_PARAMETERS",
    "policy_from_spec",
    "build_policy",
    "default_initial_gain",
    "far_initial_gain",
    "default_std0",
    "SCALAR_LQG_START",
]


# --------------------------------------------------------------------- helpers


MAX_WIDTH = 4096
"""Widest hidden layer a policy may have (a 4096 x 4096 float64 layer is 134 MB)."""
MAX_LAYERS = 16
"""Most hidden layers a policy may have."""
MAX_PARAMETERS = 2**27
"""Most parameters (mean network's weights and biases) a policy may have: 1 GiB in float64."""


def _check_dim(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise PolicyError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _check_dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise PolicyError(f"dtype must be a floating torch dtype such as torch.float64; got {dtype!r}")
    return dtype


def _check_min_std(min_std) -> float:
    try:
        v = float(min_std)
    except (TypeError, ValueError):
        raise PolicyError(f"min_std must be a positive float; got {min_std!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise PolicyError(f"min_std must be a finite float > 0 (the floor on the std); got {min_std!r}")
    return v


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise PolicyError(f"hidden must be a tuple of layer widths such as (64, 64); got {hidden!r}") from None
    for h in hidden:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise PolicyError(f"hidden must be a tuple of integers >= 1 such as (64, 64); got {hidden!r}")
        if h > MAX_WIDTH:
            raise PolicyError(f"hidden layer widths must be at most {MAX_WIDTH} (MAX_WIDTH); got {hidden!r}")
    if len(hidden) > MAX_LAYERS:
        raise PolicyError(f"hidden must have at most {MAX_LAYERS} layers (MAX_LAYERS); got {len(hidden)}")
    return tuple(int(h) for h in hidden)


def spec_parameters(spec: dict) -> int:
    """Weights and biases of the mean of the policy a spec describes (``m·n`` for a linear policy), checked first.

    Computed from the spec alone, before anything is allocated: a checkpoint's
    spec is compared with the tensors it holds (:func:`policy_from_spec`'s ``max_parameters``).

    Raises
    ------
    PolicyError
        If the spec is malformed, or declares more than :data:`MAX_PARAMETERS`,
        :data:`MAX_WIDTH` or :data:`MAX_LAYERS`.
    """
    if not isinstance(spec, dict) or "kind" not in spec:
        raise PolicyError(f"a policy spec must be a dict with a 'kind' entry; got {str(spec)[:200]}")
    if spec["kind"] not in ("linear", "mlp"):
        raise PolicyError(f"unknown policy kind {str(spec['kind'])[:80]!r}; expected one of ['linear', 'mlp']")
    try:
        n, m = _check_dim("obs_dim", spec["obs_dim"]), _check_dim("act_dim", spec["act_dim"])
    except KeyError as exc:
        raise PolicyError(f"policy spec lacks {exc.args[0]!r}") from None
    if spec["kind"] == "mlp":
        widths = [n, *_check_hidden(spec.get("hidden", (64, 64))), m]
        count = sum(a * b + b for a, b in zip(widths, widths[1:]))
    else:
        count = n * m
    if count > MAX_PARAMETERS:
        raise PolicyError(f"a policy of obs_dim {n}, act_dim {m} would have {count} parameters; at most "
                          f"{MAX_PARAMETERS} (MAX_PARAMETERS)")
    return count


def _to_numpy(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PolicyError(f"{name} must be numeric array_like; got {value!r}") from None


def _all_finite(t: torch.Tensor) -> bool:
    try:
        # a finite sum proves every entry finite (NaN and ±inf propagate); only an overflowing sum of
        # finite entries needs the elementwise test, which is several times slower on big batches
        return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())
    except RuntimeError:  # inside torch.func.vmap a data-dependent check is impossible: skip it
        return True


def _as_tensor(name: str, value, last_dim: int, dtype: torch.dtype, *, symbol: str) -> torch.Tensor:
    """``value`` as a tensor of ``dtype`` with shape ``(..., last_dim)``, finite."""
    if isinstance(value, torch.Tensor):
        t = value if value.dtype == dtype else value.to(dtype)
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=dtype)
        except (TypeError, ValueError):
            raise PolicyError(f"{name} must be numeric array_like of shape (..., {symbol}) = (..., {last_dim}); "
                              f"got {value!r}") from None
    if t.ndim == 0 or t.shape[-1] != last_dim:
        raise PolicyError(
            f"{name} has the wrong shape: expected (..., {symbol}) = (..., {last_dim}), got {tuple(t.shape)}"
        )
    if not _all_finite(t):
        raise PolicyError(f"{name} has non-finite entries (NaN or inf); a diverged state cannot be evaluated")
    return t


def _vector(name: str, value, size: int, symbol: str) -> np.ndarray:
    """A scalar (broadcast) or a ``(size,)`` vector as float64."""
    v = _to_numpy(name, value)
    if v.ndim == 0:
        v = np.full(size, float(v))
    if v.shape != (size,):
        raise PolicyError(f"{name} has the wrong shape: expected a scalar or ({symbol},) = ({size},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise PolicyError(f"{name} has non-finite entries: {v.tolist()}")
    return v


ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
"""Hidden-layer activations of the MLP policy and critic, by name."""


def _check_activation(activation) -> str:
    if activation not in ACTIVATIONS:
        raise PolicyError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    return activation


def _mlp(sizes: Sequence[int], last_gain: float, dtype: torch.dtype, generator, *, activation: str = "tanh",
         ortho_init: bool = True) -> nn.Sequential:
    """An MLP with ``activation`` between layers.

    ``ortho_init``: orthogonal weights (gain √2 hidden, ``last_gain`` last) and
    zero biases, as CleanRL and SB3 by default; otherwise torch's own ``Linear``
    initialisation (U(±1/√fan_in) biases, Kaiming-uniform weights with a = √5),
    which is SB3's ``ortho_init=False``. Both draw from ``generator``.
    """
    act = ACTIVATIONS[_check_activation(activation)]
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b, dtype=dtype)
        last = k == len(sizes) - 2
        with torch.no_grad():
            if ortho_init:
                nn.init.orthogonal_(lin.weight, gain=last_gain if last else math.sqrt(2.0), generator=generator)
                nn.init.zeros_(lin.bias)
            else:
                nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5.0), generator=generator)
                nn.init.uniform_(lin.bias, -1.0 / math.sqrt(a), 1.0 / math.sqrt(a), generator=generator)
        layers.append(lin)
        if not last:
            layers.append(act())
    return nn.Sequential(*layers)


# --------------------------------------------------------------------- policies


class _GaussianPolicy(nn.Module):
    """Shared machinery of the diagonal Gaussian policies (eqs. (4.24)-(4.26)).

    Subclasses define ``obs_dim``, ``act_dim``, ``dtype``, ``min_std``,
    ``std_param`` (``"std"`` or ``"log_std"``), the parameter ``raw_std`` of
    shape ``(act_dim,)`` and :meth:`mean`.
    """

    obs_dim: int
    act_dim: int
    min_std: float
    std_param: str
    raw_std: nn.Parameter
    is_linear: bool = False

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype; observations and actions are cast to it."""
        return self.raw_std.dtype

    # ---- std
    def std_tensor(self) -> torch.Tensor:
        """Effective standard deviation σ, shape ``(act_dim,)``, differentiable.

        ``raw_std.clamp_min(min_std)`` (``std_param="std"``) or
        ``exp(raw_std).clamp_min(min_std)`` (``"log_std"``): the gradient is
        zero below the floor (the zero-exploration plateau).
        """
        raw = self.raw_std
        s = raw if self.std_param == "std" else torch.exp(raw)
        return s.clamp_min(self.min_std)

    @property
    def std(self) -> np.ndarray:
        """Effective (floored) σ as a NumPy copy, shape ``(act_dim,)``."""
        return self.std_tensor().detach().cpu().numpy().astype(np.float64)

    def _raw_from_std(self, std: np.ndarray) -> np.ndarray:
        """Raw parameter values giving the std ``std`` (validated, NumPy)."""
        if np.any(std < 0):
            raise PolicyError(f"std must be non-negative; got {std.tolist()}")
        if self.std_param == "std":
            return std
        if np.any(std <= 0):
            raise PolicyError(f"std must be > 0 with std_param='log_std' (log 0 is -inf); got {std.tolist()}")
        return np.log(std)

    # ---- distribution
    def _mean(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Mean action for an already validated observation tensor."""
        raise NotImplementedError

    def _obs(self, obs) -> torch.Tensor:
        return _as_tensor("obs", obs, self.obs_dim, self.dtype, symbol="obs_dim")

    def forward(self, obs) -> Independent:
        """The action distribution π(· | obs), eqs. (4.24)-(4.25).

        Parameters
        ----------
        obs : (..., obs_dim) tensor or array_like
            Observations; converted to the policy's dtype.

        Returns
        -------
        torch.distributions.Independent
            ``Independent(Normal(mean, std), 1)`` with ``batch_shape ==
            obs.shape[:-1]`` and ``event_shape == (act_dim,)``; its
            ``log_prob`` is eq. (4.26).
        """
        return self._distribution(self._obs(obs))

    def _distribution(self, x: torch.Tensor) -> Independent:
        """π(· | x) for an already validated observation tensor."""
        return self.distribution_at_mean(self._mean(x))

    def log_prob(self, obs, act) -> torch.Tensor:
        """:math:`\\log\\pi_\\theta(u \\mid x)`, eq. (4.26), differentiable in the parameters.

        Parameters
        ----------
        obs : (..., obs_dim) tensor or array_like
        act : (..., act_dim) tensor or array_like
            Actions; their batch shape must broadcast with that of ``obs``.

        Returns
        -------
        torch.Tensor
            Shape ``broadcast(obs.shape[:-1], act.shape[:-1])``.
        """
        dist = self(obs)
        u = _as_tensor("act", act, self.act_dim, self.dtype, symbol="act_dim")
        try:
            torch.broadcast_shapes(u.shape[:-1], dist.batch_shape)
        except RuntimeError:
            raise PolicyError(
                f"act has batch shape {tuple(u.shape[:-1])}, which does not broadcast with the "
                f"obs batch shape {tuple(dist.batch_shape)}"
            ) from None
        return dist.log_prob(u)

    @torch.no_grad()
    def act(self, obs, generator: torch.Generator | None = None, *,
            validate: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample actions ``u = mean + std * z``, ``z ~ N(0, I)`` (for rollouts).

        Parameters
        ----------
        obs : (..., obs_dim) tensor or array_like
        generator : torch.Generator, optional
            Source of ``z`` (``torch.randn(..., generator=generator)``); with a
            seeded generator the samples are reproducible. ``None`` uses
            torch's global generator.
        validate : bool
            Check ``obs`` (shape, dtype, finite entries). The collector passes
            ``False``: its observations are tensors of the policy's dtype that
            it checks itself, and the finiteness test would read the device
            back to the host at every step.

        Returns
        -------
        actions : (..., act_dim) torch.Tensor
            Unclipped actions, detached.
        log_prob : (...,) torch.Tensor
            Eq. (4.26) at the sampled actions, detached (use :meth:`log_prob`
            for a differentiable one).
        """
        u, mu = self.sample(self._obs(obs) if validate else obs, generator)
        return u, self.log_prob_at_mean(mu, u)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, μ(x))`` with ``u = μ(x) + σ z``, ``z ~ N(0, I)``, for an already validated observation tensor.

        The collector's per-step call: no checks, no log-density (it computes
        them for the whole batch at once with :meth:`log_prob_at_mean`).
        """
        mu = self._mean(x)
        z = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + self.std_tensor().expand_as(mu) * z, mu

    def distribution_at_mean(self, mean: torch.Tensor) -> Independent:
        """π(·|x) given its mean μ(x) ``(..., act_dim)``: the distribution :meth:`forward` returns, without the forward pass."""
        return Independent(Normal(mean, self.std_tensor().expand_as(mean), validate_args=False), 1, validate_args=False)

    def log_prob_at_mean(self, mean: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Eq. (4.26), :math:`\\log\\mathcal N(u; \\mu, \\mathrm{diag}(\\sigma^2))`, for known means ``(..., act_dim)``.

        The same numbers as :meth:`log_prob` at the observations that gave
        ``mean`` (bit for bit), without evaluating the mean again. Losses use
        :meth:`log_prob`, whose gradient is torch.distributions' own.
        """
        # the expression of torch.distributions.Normal.log_prob, summed over the action (Independent), with σ
        # broadcast instead of expanded: the same numbers, but log σ is taken act_dim times, not once per sample
        std = self.std_tensor()
        return (-((act - mean) ** 2) / (2 * std**2) - std.log() - math.log(math.sqrt(2 * math.pi))).sum(-1)

    def entropy(self) -> torch.Tensor:
        """The entropy of π(·|x), :math:`\\sum_j \\tfrac12\\log(2\\pi e\\sigma_j^2)`: the same for every state (σ does not depend on x)."""
        std = self.std_tensor()
        return Independent(Normal(torch.zeros_like(std), std, validate_args=False), 1, validate_args=False).entropy()

    # ---- flat parameter vector
    def flat_params(self) -> np.ndarray:
        """All parameters as one float64 NumPy vector, in ``self.parameters()`` order.

        For :class:`LinearGaussianPolicy` this is ``θ = (K.ravel(), raw_std)``
        with ``K`` row-major, the ordering of :func:`pgcontrol.lqr.fisher`
        (whose std block is σ itself: use ``std_param="std"`` to match it).
        """
        return np.concatenate([p.detach().cpu().reshape(-1).numpy().astype(np.float64) for p in self.parameters()])

    def flat_grad(self) -> np.ndarray:
        """The ``.grad`` of all parameters in the order of :meth:`flat_params` (zeros where ``None``)."""
        return np.concatenate([
            (np.zeros(p.numel()) if p.grad is None else p.grad.detach().cpu().reshape(-1).numpy().astype(np.float64))
            for p in self.parameters()
        ])

    def set_flat_params(self, vec) -> None:
        """Overwrite all parameters from a vector ordered as :meth:`flat_params`.

        The std entries are raw values (σ itself for ``std_param="std"``, log σ
        for ``"log_std"``); the floor ``min_std`` applies when σ is read.
        """
        v = _to_numpy("vec", vec)
        size = sum(p.numel() for p in self.parameters())
        if v.shape != (size,):
            raise PolicyError(f"vec has the wrong shape: expected ({size},) (the number of parameters), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise PolicyError("vec has non-finite entries (NaN or inf)")
        k = 0
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.as_tensor(v[k:k + p.numel()], dtype=p.dtype).reshape(p.shape))
                k += p.numel()


class LinearGaussianPolicy(_GaussianPolicy):
    """Linear Gaussian policy ``u = -K x + eps``, ``eps ~ N(0, diag(std**2))``.

    The diagonal Gaussian of eqs. (4.24)-(4.25) with mean :math:`\\mu(x) = -Kx`;
    its log-density is eq. (4.26). The score is

    .. math::

        \\frac{\\partial \\log\\pi}{\\partial K_{ij}} = -\\frac{(u_i - \\mu_i)\\,x_j}{\\sigma_i^2},\\qquad
        \\frac{\\partial \\log\\pi}{\\partial \\sigma_i} = \\frac{(u_i - \\mu_i)^2}{\\sigma_i^3} - \\frac1{\\sigma_i},

    whose outer product averages to the block Fisher matrix of
    :func:`pgcontrol.lqr.fisher`.

    Parameters
    ----------
    obs_dim : int
        ``n``, the state (observation) dimension.
    act_dim : int
        ``m``, the input dimension.
    K0 : (act_dim, obs_dim) array_like, optional
        Initial gain (default zero). A flat array of ``m * n`` entries is read
        row-major.
    std0 : float or (act_dim,) array_like
        Initial σ (default 1.0). Must be >= 0 (> 0 with ``std_param="log_std"``).
    std_param : {"std", "log_std"}
        Whether the parameter ``raw_std`` is σ itself (θ₂ = σ of the Peters &
        Schaal natural-gradient example) or log σ.
    min_std : float
        Floor on the effective σ (> 0): ``raw_std.clamp_min(min_std)`` or
        ``exp(raw_std).clamp_min(min_std)``. Below the floor the gradient with
        respect to ``raw_std`` is zero (the zero-exploration plateau).
    dtype : torch.dtype
        Parameter dtype, default ``torch.float64``; observations are cast to it.

    Attributes
    ----------
    gain : torch.nn.Parameter, shape (act_dim, obs_dim)
        ``K``; the mean is ``-obs @ gain.T``.
    raw_std : torch.nn.Parameter, shape (act_dim,)
        σ or log σ according to ``std_param``.
    is_linear : bool
        ``True``.
    """

    is_linear = True

    def __init__(self, obs_dim: int, act_dim: int, K0=None, std0=1.0, *, std_param: str = "std",
                 min_std: float = 1e-3, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.obs_dim = _check_dim("obs_dim", obs_dim)
        self.act_dim = _check_dim("act_dim", act_dim)
        if std_param not in ("std", "log_std"):
            raise PolicyError(f"std_param must be 'std' or 'log_std'; got {std_param!r}")
        self.std_param = std_param
        self.min_std = _check_min_std(min_std)
        dtype = _check_dtype(dtype)
        self.gain = nn.Parameter(torch.zeros(self.act_dim, self.obs_dim, dtype=dtype))
        self.raw_std = nn.Parameter(torch.zeros(self.act_dim, dtype=dtype))
        self.set_params(np.zeros((self.act_dim, self.obs_dim)) if K0 is None else K0, std0)

    def _check_K(self, K) -> np.ndarray:
        m, n = self.act_dim, self.obs_dim
        arr = _to_numpy("K", K)
        if arr.ndim <= 1 and arr.size == m * n:
            arr = arr.reshape(m, n)
        if arr.shape != (m, n):
            raise PolicyError(f"K has the wrong shape: expected (act_dim, obs_dim) = ({m}, {n}), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise PolicyError(f"K has non-finite entries: {arr.tolist()}")
        return arr

    def set_params(self, K=None, std=None) -> None:
        """Set the gain and/or σ (``None`` leaves that one unchanged).

        Parameters
        ----------
        K : (act_dim, obs_dim) array_like, optional
            New gain (a flat ``m * n`` array is read row-major).
        std : float or (act_dim,) array_like, optional
            New σ, >= 0 (> 0 with ``std_param="log_std"``); values below
            ``min_std`` are stored but act as ``min_std``.

        Raises
        ------
        PolicyError
            On a wrong shape (the message names the expected one), a
            non-finite entry or a negative std.
        """
        K_new = None if K is None else self._check_K(K)
        raw_new = None if std is None else self._raw_from_std(_vector("std", std, self.act_dim, "act_dim"))
        with torch.no_grad():
            if K_new is not None:
                self.gain.copy_(torch.as_tensor(K_new, dtype=self.dtype))
            if raw_new is not None:
                self.raw_std.copy_(torch.as_tensor(raw_new, dtype=self.dtype))

    @property
    def K(self) -> np.ndarray:
        """The gain ``K`` as a float64 NumPy copy, shape ``(act_dim, obs_dim)``."""
        return self.gain.detach().cpu().numpy().astype(np.float64)

    def _mean(self, x: torch.Tensor) -> torch.Tensor:
        return -(x @ self.gain.T)  # negating the (…, m) product, not the (…, n) input: the same numbers, less work

    def mean(self, obs) -> torch.Tensor:
        """The mean action :math:`\\mu(x) = -Kx`, shape ``(..., act_dim)``."""
        return self._mean(self._obs(obs))

    @torch.no_grad()
    def scores(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-sample ∇_θ log π(u|x) in closed form, shape ``(..., d)``, in ``named_parameters`` order.

        With d = u − μ(x) and z = d/σ²: ∂/∂K_ji = −z_j x_i (μ = −Kx), and
        ∂/∂σ_j = d_j²/σ_j³ − 1/σ_j (times σ_j for ``std_param="log_std"``), 0
        where σ sits on its floor; parameters without ``requires_grad`` are left out.
        """
        std = self.std_tensor()
        d = act - self._mean(obs)
        z = d / std ** 2
        parts = []
        if self.gain.requires_grad:
            parts.append((-z[..., :, None] * obs[..., None, :]).flatten(-2))
        if self.raw_std.requires_grad:
            ds = d ** 2 / std ** 3 - 1 / std
            if self.std_param == "log_std":
                ds = ds * std
            floor = (self.raw_std if self.std_param == "std" else torch.exp(self.raw_std)) < self.min_std
            parts.append(ds * ~floor)
        return torch.cat(parts, dim=-1)

    def spec(self) -> dict:
        """Constructor arguments (JSON-able) that rebuild this policy's architecture: see :func:`policy_from_spec`.

        The parameter values are not part of the spec; load them with
        ``load_state_dict`` (train's checkpoints store both).
        """
        return {"kind": "linear", "obs_dim": self.obs_dim, "act_dim": self.act_dim, "std_param": self.std_param,
                "min_std": self.min_std, "dtype": str(self.dtype).removeprefix("torch.")}

    def extra_repr(self) -> str:
        return (f"obs_dim={self.obs_dim}, act_dim={self.act_dim}, std_param={self.std_param!r}, "
                f"min_std={self.min_std}, dtype={self.dtype}")


class MLPGaussianPolicy(_GaussianPolicy):
    """Gaussian policy with an MLP mean and a state-independent log σ.

    :math:`\\pi_\\theta(u\\mid x) = \\mathcal N(\\mu_\\theta(x), \\mathrm{diag}(\\sigma^2))`,
    eqs. (4.24)-(4.26), with :math:`\\sigma = \\max(e^{\\log\\sigma}, \\sigma_{min})`.

    Parameters
    ----------
    obs_dim, act_dim : int
        Observation and action dimensions.
    hidden : tuple of int
        Hidden layer widths, default ``(64, 64)`` (``()`` gives an affine mean).
    log_std0 : float or (act_dim,) array_like
        Initial log σ, default 0 (σ = 1).
    activation : {"tanh", "relu"}
        Between the hidden layers; default ``"tanh"``.
    ortho_init : bool
        Orthogonal initialisation (default; see Notes); False: torch's
        ``Linear`` initialisation (SB3's ``ortho_init=False``).
    min_std : float
        Floor on σ, > 0; the gradient of log σ is zero below it.
    dtype : torch.dtype
        Default ``torch.float32``; observations are cast to it.
    generator : torch.Generator, optional
        Random source of the orthogonal initialisation (default: torch's
        global generator).

    Notes
    -----
    Initialisation (``ortho_init``): orthogonal weights with gain √2 in the
    hidden layers and 0.01 in the last layer (so the initial mean is ≈ 0 and
    the initial policy is ≈ N(0, σ₀²) everywhere), zero biases. Parameters in order: the MLP
    layers (``mean_net``), then ``raw_std`` (= log σ).
    """

    is_linear = False

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64), log_std0=0.0, *,
                 activation: str = "tanh", ortho_init: bool = True, min_std: float = 1e-3,
                 dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.obs_dim = _check_dim("obs_dim", obs_dim)
        self.act_dim = _check_dim("act_dim", act_dim)
        self.hidden = _check_hidden(hidden)
        self.std_param = "log_std"
        self.min_std = _check_min_std(min_std)
        dtype = _check_dtype(dtype)
        self.activation = _check_activation(activation)
        self.mean_net = _mlp((self.obs_dim, *self.hidden, self.act_dim), 0.01, dtype, generator,
                             activation=self.activation, ortho_init=ortho_init)
        ls = _vector("log_std0", log_std0, self.act_dim, "act_dim")
        self.raw_std = nn.Parameter(torch.as_tensor(ls, dtype=dtype))

    def _mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean_net(x)

    def mean(self, obs) -> torch.Tensor:
        """The mean action :math:`\\mu_\\theta(x)`, shape ``(..., act_dim)``."""
        return self._mean(self._obs(obs))

    def spec(self) -> dict:
        """Constructor arguments (JSON-able) that rebuild this policy's architecture: see :func:`policy_from_spec`."""
        return {"kind": "mlp", "obs_dim": self.obs_dim, "act_dim": self.act_dim, "hidden": list(self.hidden),
                "activation": self.activation, "min_std": self.min_std, "dtype": str(self.dtype).removeprefix("torch.")}


# ---------------------------------------------------------------------- factory


def make_policy(kind: str, obs_dim: int, act_dim: int, **kw) -> _GaussianPolicy:
    """Build a policy by name.

    Parameters
    ----------
    kind : {"linear", "mlp"}
        :class:`LinearGaussianPolicy` or :class:`MLPGaussianPolicy`.
    obs_dim, act_dim : int
    **kw
        Passed to the constructor.

    Raises
    ------
    PolicyError
        For an unknown ``kind`` (or bad arguments).
    """
    kinds = {"linear": LinearGaussianPolicy, "mlp": MLPGaussianPolicy}
    if kind not in kinds:
        raise PolicyError(f"unknown policy kind {kind!r}; expected one of {sorted(kinds)}")
    spec_parameters({"kind": kind, "obs_dim": obs_dim, "act_dim": act_dim, "hidden": kw.get("hidden") or (64, 64)})
    try:
        return kinds[kind](obs_dim, act_dim, **kw)
    except TypeError as exc:  # an unexpected keyword
        raise PolicyError(f"bad arguments for a {kind!r} policy: {exc}") from None


def policy_from_spec(spec: dict, *, max_parameters: int | None = None) -> _GaussianPolicy:
    """Rebuild a policy (architecture only) from its :meth:`spec` dict.

    ``{"kind": "linear" | "mlp", "obs_dim", "act_dim", ...}``; the remaining
    keys are constructor arguments (``dtype`` as a name such as
    ``"float64"``). The parameters are freshly initialised: load the trained
    values with ``policy.load_state_dict(state)``. The size the spec
    declares is checked before anything is built (:func:`spec_parameters`),
    against ``max_parameters`` too when given (a checkpoint passes the number
    of values its tensors hold).

    Raises
    ------
    PolicyError
        If ``spec`` is not such a dict, names an unknown kind, dtype or
        argument, or declares more parameters than allowed.
    """
    count = spec_parameters(spec)
    if max_parameters is not None and count > max_parameters:
        raise PolicyError(f"the policy spec declares {count} parameters but only {max_parameters} values are given "
                          "for them")
    kw = dict(spec)
    kind = kw.pop("kind")
    try:
        obs_dim, act_dim = kw.pop("obs_dim"), kw.pop("act_dim")
    except KeyError as exc:
        raise PolicyError(f"policy spec {str(spec)[:200]} lacks {exc.args[0]!r}") from None
    if "dtype" in kw:
        name = str(kw["dtype"]).removeprefix("torch.")
        dtype = getattr(torch, name, None)
        if not isinstance(dtype, torch.dtype):
            raise PolicyError(f"policy spec has an unknown dtype {kw['dtype']!r}")
        kw["dtype"] = dtype
    if "hidden" in kw and isinstance(kw["hidden"], list):
        kw["hidden"] = tuple(kw["hidden"])
    return make_policy(kind, obs_dim, act_dim, **kw)


SCALAR_LQG_START = (-0.2, 0.1)
"""Peters & Schaal's start on ``scalar-lqg``, (k₀, σ₀): u ~ N(k x, σ²) with k₀ = −0.2 (K₀ = 0.2 for u = −Kx)
and σ₀ = 0.1. The one home of these numbers: :func:`default_initial_gain`, :func:`build_policy` and the
plateau reproduction read them here."""

DEFAULT_STD0 = 0.5
"""The starting σ of a linear policy on every other plant."""


def default_std0(plant) -> float:
    """The documented starting σ of linear policies on a plant: σ₀ = 0.1 on scalar-lqg, else 0.5."""
    return SCALAR_LQG_START[1] if plant.name == "scalar-lqg" else DEFAULT_STD0


def default_initial_gain(plant) -> np.ndarray:
    """The documented starting gain of linear policies on a plant.

    ``scalar-lqg`` starts at Peters & Schaal's k = -0.2 (K = 0.2). Every other
    plant starts from the LQR gain of the same plant with its state weight
    multiplied by 100 (Q₀ = 100·Q): stabilising by construction (Riccati) and
    over-aggressive, hence far from K* (cost gaps at start: double-integrator
    0.48, laplacian-3 3.1, cartpole-linearized 2.3).
    """
    if plant.name == "scalar-lqg":
        return np.array([[-SCALAR_LQG_START[0]]])
    return lqr.optimal_gain(plant.replace(Q=100 * plant.Q))[0]


def far_initial_gain(plant, factor: float = 100.0, min_gap: float = 0.4) -> np.ndarray:
    """A stabilising gain far from K*: the LQR gain of the plant with its input weight ×``factor`` (R₀ = 100·R).

    Stabilising by construction (Riccati) and sluggish where
    :func:`default_initial_gain` is over-aggressive: the second start of
    ``experiments/bench_plants.py``. Where the gain's cost gap
    (J(K₀) − J*)/J* is below ``min_gap``, the factor grows tenfold (up to
    10⁶) until it is not: gaps between 0.4 and about 2.2 on the catalog and
    random plants of the benchmark.
    """
    J_opt = lqr.policy_cost(plant, lqr.optimal_gain(plant)[0], 0.0)
    K = lqr.optimal_gain(plant.replace(R=factor * plant.R))[0]
    while factor < 1e6 and lqr.cost_gap(lqr.policy_cost(plant, K, 0.0), J_opt) < min_gap:
        factor *= 10
        K = lqr.optimal_gain(plant.replace(R=factor * plant.R))[0]
    return K


def build_policy(kind: str, obs_dim: int, act_dim: int, *, plant=None, device="cpu", config=None,
                 **kw) -> _GaussianPolicy:
    """A policy for ``train``: ``"linear"`` (starting at :func:`default_initial_gain` on plants) or ``"mlp"``.

    An ``"mlp"`` policy takes its architecture from a learner's ``config``
    (``hidden``, ``activation``, ``ortho_init``, ``log_std0``) where given.
    """
    if kind == "mlp" and config is not None:
        for name in ("hidden", "activation", "ortho_init", "log_std0"):
            kw.setdefault(name, getattr(config, name))
    if kind == "linear" and plant is not None and "K0" not in kw and not plant.has_output:
        kw["K0"] = default_initial_gain(plant)
        kw.setdefault("std0", default_std0(plant))
    return make_policy(kind, obs_dim, act_dim, **kw).to(device)
