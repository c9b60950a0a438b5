"""Critics: state-value functions V(x) and their closed-form least-squares fit.

* :class:`MLPValue` — a tanh MLP, trained by gradient steps on (4.20);
* :class:`QuadraticValue` — :math:`V(x) = x^\\top P x + c`, exact for a linear
  Gaussian policy on an LQ plant and linear in its parameters, so (4.20)
  with frozen targets is solved in closed form;
* :class:`LeastSquaresStep` — that closed-form step, for any critic with
  ``features()`` and a ``weight`` vector (:meth:`QuadraticValue.fit_least_squares`
  is the one-shot fit for users);
* :class:`GradientSteps` — epochs of optimiser steps on (4.20), for any critic.

The last two are the learners' critic updates, with one interface:
``fit(obs, targets)`` moves the critic toward the frozen ``targets`` and returns
the loss (4.20) after the move; ``closed_form`` says whether the fit is exact on
the batch (VPG, NPG and TRPO then fit it before the batch's advantages);
``param_groups`` are the learning rates a schedule may set (none for the closed
form); ``state_dict()`` / ``load_state_dict()`` carry the optimiser's state.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .errors import PolicyError
from .policies import _as_tensor, _check_activation, _check_dim, _check_dtype, _check_hidden, _mlp, _to_numpy

__all__ = ["MLPValue", "QuadraticValue", "LeastSquaresStep", "GradientSteps"]


class MLPValue(nn.Module):
    """State-value critic :math:`V_\\phi(x)`: an MLP with a scalar output.

    Trained with the critic loss eq. (4.20) (TD targets) or on Monte Carlo
    returns.

    Parameters
    ----------
    obs_dim : int
    hidden : tuple of int
        Default ``(64, 64)``.
    activation : {"tanh", "relu"}
        Default ``"tanh"``.
    ortho_init : bool
        Orthogonal initialisation (default, see Notes); False: torch's
        ``Linear`` initialisation (SB3's ``ortho_init=False``).
    dtype : torch.dtype
        Default ``torch.float32``.
    generator : torch.Generator, optional
        Random source of the initialisation.

    Notes
    -----
    ``ortho_init``: orthogonal weights, gain √2 in the hidden layers and 1.0
    in the last layer, zero biases. ``critic(obs)`` maps ``(..., obs_dim)`` to ``(...)``.
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64), *, activation: str = "tanh",
                 ortho_init: bool = True, dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.obs_dim = _check_dim("obs_dim", obs_dim)
        self.hidden = _check_hidden(hidden)
        self.activation = _check_activation(activation)
        self.net = _mlp((self.obs_dim, *self.hidden, 1), 1.0, _check_dtype(dtype), generator,
                        activation=self.activation, ortho_init=ortho_init)

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype; observations are cast to it."""
        return self.net[0].weight.dtype

    def forward(self, obs) -> torch.Tensor:
        """Values :math:`V_\\phi(x)`, shape ``obs.shape[:-1]``."""
        x = _as_tensor("obs", obs, self.obs_dim, self.dtype, symbol="obs_dim")
        return self.net(x).squeeze(-1)


class QuadraticValue(nn.Module):
    """Quadratic critic :math:`V(x) = x^\\top P x + c`, linear in its parameters.

    The value of a linear Gaussian policy on an LQ plant is exactly of this
    form (:func:`pgcontrol.lqr.policy_cost`: :math:`V(x) = x^\\top P_K x + q`).
    With the features

    .. math::

        \\phi(x) = \\big(x_i x_j\\ (i = j),\\ 2 x_i x_j\\ (i < j),\\ 1\\big),

    (the upper triangle of :math:`x x^\\top` with the off-diagonal doubled, row by
    row, then a constant) and a weight vector ``weight`` of the same length,
    :math:`V(x) = \\phi(x)^\\top w` with :math:`w = (P_{ij})_{i\\le j}, c)`; any
    symmetric ``P`` is reachable and no parameter is redundant.

    Parameters
    ----------
    obs_dim : int
    dtype : torch.dtype
        Default ``torch.float64``.

    Attributes
    ----------
    weight : torch.nn.Parameter, shape (obs_dim * (obs_dim + 1) // 2 + 1,)
        Initialised to zero.
    """

    def __init__(self, obs_dim: int, *, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.obs_dim = _check_dim("obs_dim", obs_dim)
        dtype = _check_dtype(dtype)
        iu, ju = np.triu_indices(self.obs_dim)
        self.register_buffer("_iu", torch.as_tensor(iu, dtype=torch.long), persistent=False)
        self.register_buffer("_ju", torch.as_tensor(ju, dtype=torch.long), persistent=False)
        self.register_buffer("_scale", torch.as_tensor(np.where(iu == ju, 1.0, 2.0), dtype=dtype), persistent=False)
        self.weight = nn.Parameter(torch.zeros(len(iu) + 1, dtype=dtype))

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype; observations are cast to it."""
        return self.weight.dtype

    @property
    def n_features(self) -> int:
        """Length of :math:`\\phi(x)`: ``n (n + 1) / 2 + 1``."""
        return self.weight.numel()

    def features(self, obs) -> torch.Tensor:
        """:math:`\\phi(x)`, shape ``(..., n_features)``."""
        x = _as_tensor("obs", obs, self.obs_dim, self.dtype, symbol="obs_dim")
        quad = x[..., self._iu] * x[..., self._ju] * self._scale
        return torch.cat([quad, torch.ones_like(quad[..., :1])], dim=-1)

    def forward(self, obs) -> torch.Tensor:
        """Values :math:`x^\\top P x + c`, shape ``obs.shape[:-1]``."""
        return self.features(obs) @ self.weight

    @property
    def P(self) -> np.ndarray:
        """The symmetric matrix ``P`` as a float64 NumPy array, shape ``(obs_dim, obs_dim)``."""
        w = self.weight.detach().cpu().numpy().astype(np.float64)
        n = self.obs_dim
        P = np.zeros((n, n))
        iu, ju = np.triu_indices(n)
        P[iu, ju] = w[:-1]
        P[ju, iu] = w[:-1]
        return P

    @property
    def c(self) -> float:
        """The constant term ``c``."""
        return float(self.weight.detach()[-1])

    def set_params(self, P, c: float = 0.0) -> None:
        """Set ``P`` (symmetric ``(obs_dim, obs_dim)``) and ``c``.

        Raises
        ------
        PolicyError
            If ``P`` has the wrong shape, is not symmetric, or an entry is not finite.
        """
        n = self.obs_dim
        P = _to_numpy("P", P)
        if P.ndim == 0 and n == 1:
            P = P.reshape(1, 1)
        if P.shape != (n, n):
            raise PolicyError(f"P has the wrong shape: expected (obs_dim, obs_dim) = ({n}, {n}), got {P.shape}")
        c = _to_numpy("c", c)
        if c.size != 1:
            raise PolicyError(f"c must be a scalar; got shape {c.shape}")
        if not (np.all(np.isfinite(P)) and np.isfinite(c).all()):
            raise PolicyError("P and c must be finite")
        scale = max(1.0, float(np.abs(P).max()))
        if not np.allclose(P, P.T, rtol=0, atol=1e-12 * scale):
            raise PolicyError(f"P must be symmetric; got {P.tolist()}")
        iu, ju = np.triu_indices(n)
        w = np.concatenate([(P[iu, ju] + P[ju, iu]) / 2, c.reshape(1)])
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(w, dtype=self.dtype))

    def fit_least_squares(self, obs, targets, ridge: float = 1e-8) -> "QuadraticValue":
        """Fit ``P`` and ``c`` to value targets in closed form (float64).

        Minimises :math:`\\tfrac12\\sum_i (y_i - \\phi(x_i)^\\top w)^2 + \\tfrac{\\rho}2\\|w\\|^2`,
        the critic loss eq. (4.20) with the targets :math:`y_i` held fixed
        (TD targets :math:`r_i + \\gamma V_\\phi(x_{i+1})` from the current
        critic, or Monte Carlo returns), by least squares on the stacked system
        :math:`[\\Phi; \\sqrt\\rho I]\\,w = [y; 0]`. With noiseless targets
        :math:`y = x^\\top P x + c` from at least ``n_features`` generic states
        the exact ``P`` and ``c`` are recovered (up to ~``ridge``).

        Parameters
        ----------
        obs : (N, obs_dim) array_like or tensor
            States (any leading batch shape is flattened).
        targets : (N,) array_like or tensor
            Value targets, shape ``obs.shape[:-1]``.
        ridge : float
            Tikhonov weight ρ >= 0 (0: minimum-norm least squares).

        Returns
        -------
        QuadraticValue
            ``self``, with ``weight`` overwritten.
        """
        with torch.no_grad():
            phi = self.features(obs).to(torch.float64).cpu().numpy()
        phi = phi.reshape(-1, self.n_features)
        y = _to_numpy("targets", targets)
        expected = tuple(np.shape(obs))[:-1] if not isinstance(obs, torch.Tensor) else tuple(obs.shape[:-1])
        if y.shape != expected:
            raise PolicyError(f"targets has the wrong shape: expected obs.shape[:-1] = {expected}, got {y.shape}")
        y = y.reshape(-1)
        if phi.shape[0] == 0:
            raise PolicyError("fit_least_squares needs at least one sample")
        if not np.all(np.isfinite(y)):
            raise PolicyError("targets has non-finite entries (NaN or inf)")
        try:
            rho = float(ridge)
        except (TypeError, ValueError):
            raise PolicyError(f"ridge must be a float >= 0; got {ridge!r}") from None
        if not (math.isfinite(rho) and rho >= 0):
            raise PolicyError(f"ridge must be a finite float >= 0; got {ridge!r}")
        if rho > 0:
            d = self.n_features
            phi = np.vstack([phi, math.sqrt(rho) * np.eye(d)])
            y = np.concatenate([y, np.zeros(d)])
        w, *_ = np.linalg.lstsq(phi, y, rcond=None)
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(w, dtype=self.dtype))
        return self

    def extra_repr(self) -> str:
        return f"obs_dim={self.obs_dim}, dtype={self.dtype}"


class LeastSquaresStep:
    """Closed-form steps on (4.20) for a critic linear in its parameters, V(x) = φ(x)ᵀw.

    ``prepare(obs)`` factorises ΦᵀΦ once per batch; each ``step(targets)``
    moves w a fraction ``rate`` of the way to the minimiser
    ``(ΦᵀΦ + ρI)⁻¹Φᵀy`` of (4.20) with the targets y frozen (ρ: a tiny ridge).
    Repeated steps with recomputed TD targets are fitted value iteration;
    their fixed point is the TD(0) solution on the batch.
    """

    closed_form = True  # exact on the batch: fitted before the batch's advantages where the learner can
    param_groups = ()  # no learning rate

    def __init__(self, critic, rate: float, ridge: float = 1e-8):
        if not (hasattr(critic, "features") and isinstance(getattr(critic, "weight", None), torch.Tensor)):
            raise PolicyError("critic_optimizer='lstsq' needs a critic with features() and a weight vector "
                              f"(V = features(x) @ weight, e.g. QuadraticValue); got {type(critic).__name__}")
        self.critic, self.rate, self.ridge = critic, float(rate), float(ridge)

    def fit(self, obs, targets) -> float:
        """The step on ``targets`` at the observations ``obs``; the loss (4.20) after it. Every learner calls
        it (VPG, NPG, TRPO and PPO with ``rate`` 1, the minimiser of (4.20); AC repeatedly, with recomputed
        TD targets). Φ and its factor are computed once per ``obs`` tensor."""
        if getattr(self, "_obs", None) is not obs:
            self.prepare(obs)
        self.step(targets)
        with torch.no_grad():  # ½ mean (Φw − y)², from the features already at hand
            residual = self.phi @ self.critic.weight.to(torch.float64) - targets.to(torch.float64)
            return float(0.5 * residual.pow(2).mean())

    def prepare(self, obs) -> None:
        """Features Φ of the batch's valid observations and the Cholesky factor of ΦᵀΦ + ρI."""
        self._obs = obs
        with torch.no_grad():
            self.phi = self.critic.features(obs).to(torch.float64)
            gram = self.phi.T @ self.phi
            scale = float(gram.diagonal().mean()) or 1.0
            self.chol = torch.linalg.cholesky(gram + self.ridge * scale * torch.eye(gram.shape[0], dtype=gram.dtype))

    def step(self, targets) -> None:
        """``w ← w + rate · (w_LS − w)``, w_LS the least-squares fit of the frozen ``targets`` (4.20)."""
        with torch.no_grad():
            w_ls = torch.cholesky_solve((self.phi.T @ targets.to(torch.float64)).unsqueeze(-1), self.chol).squeeze(-1)
            w = self.critic.weight
            w.add_(self.rate * (w_ls.to(w.dtype) - w))

    def state_dict(self) -> None:
        """Nothing to carry: each fit starts from the batch."""
        return None

    def load_state_dict(self, state) -> None:
        """Nothing to restore (see :meth:`state_dict`)."""


class GradientSteps:
    """Optimiser steps on (4.20), ``½ mean_i (V(x_i) − y_i)²`` with the targets y frozen.

    Each :meth:`fit` runs ``epochs`` passes over the batch in minibatches of ``minibatch`` samples (None:
    the whole batch), shuffled each epoch with ``generator`` (None: the batch in order), the gradient norm
    clipped to ``max_grad_norm`` (None: not clipped). The same interface as :class:`LeastSquaresStep`.
    """

    closed_form = False

    def __init__(self, critic, optimizer, *, epochs: int = 1, minibatch: int | None = None, generator=None,
                 max_grad_norm: float | None = None):
        self.critic, self.optimizer, self.epochs = critic, optimizer, int(epochs)
        self.minibatch, self.generator, self.max_grad_norm = minibatch, generator, max_grad_norm

    @property
    def param_groups(self):
        """The optimiser's parameter groups (a learning-rate schedule sets their ``lr``)."""
        return self.optimizer.param_groups

    def fit(self, obs, targets) -> float:
        """``epochs`` passes of steps on (4.20) toward ``targets`` at ``obs``; the loss (4.20) after them."""
        n = obs.shape[0]
        mb = n if self.minibatch is None else min(int(self.minibatch), n)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        for _ in range(self.epochs):
            if self.generator is None:
                parts = [slice(i, i + mb) for i in range(0, n, mb)]
            else:
                perm = torch.randperm(n, generator=self.generator, device="cpu").to(obs.device)
                parts = [perm[i:i + mb] for i in range(0, n, mb)]
            for idx in parts:
                loss = 0.5 * (self.critic(obs[idx]).to(targets.dtype) - targets[idx]).pow(2).mean()  # eq. (4.20)
                self.optimizer.zero_grad(set_to_none=False)  # in place: gradients may be views (flat parameters)
                loss.backward()
                if self.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                self.optimizer.step()
        with torch.no_grad():
            return float(0.5 * (self.critic(obs).to(targets.dtype) - targets).pow(2).mean())

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state) -> None:
        self.optimizer.load_state_dict(state)

