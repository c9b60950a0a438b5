"""Batched torch simulation of a linear Gaussian policy on a linear-Gaussian plant.

:func:`rollout_linear` runs ``N`` independent episodes of

.. math::

    u_t = -K x_t + \\varepsilon_t,\\quad \\varepsilon_t \\sim \\mathcal N(0, \\mathrm{diag}(\\sigma^2)),\\qquad
    x_{t+1} = A x_t + B u_t + w_t,\\qquad c_t = x_t^\\top Q x_t + u_t^\\top R u_t,

all at once (every step is a handful of batched tensor operations, no Python
loop over trajectories). For an output plant the measurement
:math:`y_t = C x_t + v_t` is recorded too, and with ``output_feedback=True``
the policy acts on it, ``u_t = -K y_t + \\varepsilon_t``.

Divergence: a trajectory whose state leaves ``|x_i| <= plant.state_bound``
(or turns non-finite) is marked in :attr:`Rollout.diverged`; its state is
clipped to the bound and then *frozen* there for the rest of the rollout. The
policy keeps acting on the frozen state and its cost keeps being charged, so a
diverged trajectory carries a huge but finite cost instead of NaN. This is
the same state clipping as in :mod:`pgcontrol.envs`, where the episode
terminates instead.

The per-step costs are undiscounted; :meth:`Rollout.discounted_cost` gives
:math:`\\sum_t \\gamma^t c_t`, whose mean estimates
:func:`pgcontrol.lqr.policy_cost` ``(plant, K, std, horizon=T)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .plants import InvalidPlantError, LinearGaussianPlant, make

__all__ = [
    "PlantTensors", "Rollout", "sqrt_psd", "plant_tensors", "make_generator",
    "stage_cost", "linear_step", "diverged_rows", "within_bound", "clip_state", "rollout_linear",
]


def sqrt_psd(M: np.ndarray) -> np.ndarray:
    """A square-root factor ``L`` with ``L @ L.T == M`` of a symmetric PSD matrix.

    Uses the eigendecomposition (tiny negative eigenvalues from round-off are
    set to zero), so singular covariances such as ``W = 0`` are fine, where a
    Cholesky factorisation would fail.
    """
    M = np.asarray(M, dtype=float)
    lam, U = np.linalg.eigh((M + M.T) / 2)
    return U * np.sqrt(np.clip(lam, 0.0, None))


class PlantTensors(NamedTuple):
    """A plant's matrices as tensors on one device/dtype (see :func:`plant_tensors`).

    ``W_sqrt``, ``x0_sqrt`` and ``V_sqrt`` are square-root factors of the
    covariances (``L @ L.T = cov``); ``C`` and ``V_sqrt`` are ``None`` for a
    state-feedback plant. ``At``, ``Bt``, ``Wt`` are contiguous copies of
    ``A.T``, ``B.T``, ``W_sqrt.T`` for :func:`linear_step` (``None`` for
    ``Wt`` when the plant is noise-free).
    """

    A: torch.Tensor
    B: torch.Tensor
    Q: torch.Tensor
    R: torch.Tensor
    W_sqrt: torch.Tensor
    x0_mean: torch.Tensor
    x0_sqrt: torch.Tensor
    C: torch.Tensor | None
    V_sqrt: torch.Tensor | None
    state_bound: float
    At: torch.Tensor | None = None
    Bt: torch.Tensor | None = None
    Wt: torch.Tensor | None = None


def plant_tensors(plant: LinearGaussianPlant, device="cpu", dtype: torch.dtype = torch.float64) -> PlantTensors:
    """Convert a plant's matrices to tensors on ``device`` with ``dtype`` (no caching).

    Parameters
    ----------
    plant : LinearGaussianPlant
    device : str or torch.device
    dtype : torch.dtype

    Returns
    -------
    PlantTensors
    """
    def t(a):
        return None if a is None else torch.as_tensor(np.array(a, dtype=float), dtype=dtype, device=device)

    W_sqrt = t(sqrt_psd(plant.W))
    return PlantTensors(
        A=t(plant.A), B=t(plant.B), Q=t(plant.Q), R=t(plant.R), W_sqrt=W_sqrt,
        x0_mean=t(plant.x0_mean), x0_sqrt=t(sqrt_psd(plant.x0_cov)), C=t(plant.C),
        V_sqrt=None if plant.V is None else t(sqrt_psd(plant.V)), state_bound=plant.state_bound,
        At=t(plant.A).T.contiguous(), Bt=t(plant.B).T.contiguous(),
        Wt=W_sqrt.T.contiguous() if np.any(plant.W != 0) else None,
    )


def make_generator(seed, device="cpu") -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` from an int seed, ``None`` (fresh entropy) or a generator.

    A generator passed in is returned as is (and is advanced by its user).
    """
    if isinstance(seed, torch.Generator):
        if torch.device(seed.device).type != torch.device(device).type:
            raise InvalidPlantError(
                f"the generator lives on {seed.device} but the simulation runs on {device}; "
                f"pass torch.Generator(device={str(device)!r}) or an int seed"
            )
        return seed
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        g.manual_seed(int(seed))
    else:
        raise InvalidPlantError(f"seed must be None, a non-negative int or a torch.Generator; got {seed!r}")
    return g


def stage_cost(x: torch.Tensor, u: torch.Tensor, Q: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Batched stage cost ``x'Qx + u'Ru`` for ``x (..., n)``, ``u (..., m)``; shape ``(...)``.

    Written as ``((x @ Q) * x).sum(-1)``: on CPU with torch 2.13 this is 2–4 times faster than
    :func:`torch.einsum` on the small batches the learners simulate (measured: 20 µs against 55 µs
    at N = 5, n = 1; 24 µs against 94 µs at N = 64, n = 4), and einsum's gain at N = 4096 is gone too.
    """
    return ((x @ Q) * x).sum(-1) + ((u @ R) * u).sum(-1)


def linear_step(P: PlantTensors, x: torch.Tensor, u: torch.Tensor, noise: torch.Tensor | None = None):
    """One transition of the plant, the single home of the dynamics and the stage cost.

    .. math::

        x' = A x + B u + W^{1/2}\\varepsilon,\\qquad c = x^\\top Q x + u^\\top R u,

    batched over the rows of ``x (N, n)`` and ``u (N, m)``; ``noise`` is the
    standard normal ε of shape ``(N, n)`` (ignored, and may be ``None``, for a
    noise-free plant, ``P.Wt is None``). Used by :func:`rollout_linear` and
    :class:`pgcontrol.envs.LinearGaussianVectorEnv`, which then handle a
    state that left the bound their own way (:func:`diverged_rows`,
    :func:`clip_state`).

    Returns
    -------
    x_new : (N, n) tensor
        A fresh tensor (safe to modify in place).
    cost : (N,) tensor
        The stage cost of the pre-step state and the action.
    """
    cost = stage_cost(x, u, P.Q, P.R)
    x_new = torch.addmm(noise @ P.Wt, x, P.At) if P.Wt is not None else x @ P.At
    x_new.addmm_(u, P.Bt)
    return x_new, cost


def diverged_rows(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``(N,)`` bool: the rows of ``x`` with an entry outside ``[-bound, bound]`` or non-finite (NaN compares False)."""
    return ~(x.abs() <= bound).all(-1)


def within_bound(x: torch.Tensor, bound: float) -> bool:
    """True when every entry of ``x`` is finite and in ``[-bound, bound]`` (one reduction, one sync)."""
    lo, hi = torch.aminmax(x)  # NaN propagates, and NaN compares False
    return bool((lo >= -bound) & (hi <= bound))


def clip_state(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``x`` clipped to ``[-bound, bound]``, with ``±inf`` sent to ``±bound`` and NaN to ``+bound``."""
    return torch.nan_to_num(x, nan=bound, posinf=bound, neginf=-bound).clamp(-bound, bound)


class Rollout(NamedTuple):
    """Result of :func:`rollout_linear` (all tensors on the simulation device).

    Attributes
    ----------
    states : (T+1, N, n) tensor
        ``x_0 .. x_T``.
    actions : (T, N, m) tensor
        ``u_0 .. u_{T-1}``.
    costs : (T, N) tensor
        Undiscounted stage costs ``c_t = x_t'Q x_t + u_t'R u_t``.
    observations : (T+1, N, p) tensor or None
        ``y_t = C x_t + v_t`` for an output plant, else ``None``.
    diverged : (N,) bool tensor
        Trajectories whose state left the bound (then clipped and frozen).
    """

    states: torch.Tensor
    actions: torch.Tensor
    costs: torch.Tensor
    observations: torch.Tensor | None
    diverged: torch.Tensor

    def discounted_cost(self, gamma: float = 1.0) -> torch.Tensor:
        """Per-trajectory :math:`\\sum_t \\gamma^t c_t`, shape ``(N,)``."""
        T = self.costs.shape[0]
        disc = float(gamma) ** torch.arange(T, dtype=self.costs.dtype, device=self.costs.device)
        return disc @ self.costs


def rollout_linear(
    plant: LinearGaussianPlant | str,
    K,
    std=0.0,
    n_traj: int = 1,
    horizon: int | None = None,
    *,
    seed: int | torch.Generator | None = None,
    device="cpu",
    dtype: torch.dtype = torch.float64,
    output_feedback: bool = False,
) -> Rollout:
    """Simulate ``n_traj`` episodes of ``u = -K x + eps`` in parallel.

    Parameters
    ----------
    plant : LinearGaussianPlant or str
        A plant or a catalog name (:func:`pgcontrol.plants.make`).
    K : (m, n) array_like
        Gain (``(m, p)`` with ``output_feedback``).
    std : float or (m,) array_like
        Exploration standard deviation(s), >= 0.
    n_traj : int
        Number of trajectories N.
    horizon : int, optional
        Number of steps T; default ``plant.horizon``.
    seed : int, torch.Generator or None
        Same int seed (and arguments) -> same numbers. A generator must live
        on ``device``.
    device : str or torch.device
    dtype : torch.dtype
    output_feedback : bool
        Act on the measurement ``y`` instead of the state (output plants only).

    Returns
    -------
    Rollout

    Raises
    ------
    InvalidPlantError
        For a wrong gain/std shape, a non-positive ``n_traj``/``horizon``, a bad
        seed, or ``output_feedback`` on a plant without output.

    Notes
    -----
    Random numbers are drawn in a fixed order: ``x_0``; then each step ``y_t``'s
    noise (output plants), the exploration noise, the process noise.
    """
    plant = make(plant)
    if output_feedback and not plant.has_output:
        raise InvalidPlantError(f"output_feedback=True needs an output plant (with C); {plant.name!r} has none")
    K, s = plant.check_gain(K, std, output_feedback=output_feedback)
    T = plant.horizon if horizon is None else horizon
    for what, v in (("n_traj", n_traj), ("horizon", T)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InvalidPlantError(f"{what} must be an integer >= 1; got {v!r}")
    N, n, m = int(n_traj), plant.n, plant.m
    g = make_generator(seed, device)
    P = plant_tensors(plant, device, dtype)
    Kt = torch.as_tensor(K.T, dtype=dtype, device=device)
    s = torch.as_tensor(s, dtype=dtype, device=device)
    bound = P.state_bound
    kw = dict(dtype=dtype, device=device, generator=g)

    def observe(x):
        return x @ P.C.T + torch.randn(N, plant.p, **kw) @ P.V_sqrt.T

    X = torch.empty(T + 1, N, n, dtype=dtype, device=device)
    U = torch.empty(T, N, m, dtype=dtype, device=device)
    costs = torch.empty(T, N, dtype=dtype, device=device)
    Y = torch.empty(T + 1, N, plant.p, dtype=dtype, device=device) if plant.has_output else None
    diverged = torch.zeros(N, dtype=torch.bool, device=device)
    diverged_any = False

    x = clip_state(P.x0_mean + torch.randn(N, n, **kw) @ P.x0_sqrt.T, bound)
    X[0] = x
    for t in range(T):
        if Y is not None:
            Y[t] = observe(x)
        u = -((Y[t] if output_feedback else x) @ Kt) + s * torch.randn(N, m, **kw)
        U[t] = u
        x_new, costs[t] = linear_step(P, x, u, torch.randn(N, n, **kw))  # the noise is drawn even if W = 0
        if diverged_any:
            x_new = torch.where(diverged[:, None], x, x_new)  # frozen trajectories stay put
        if not within_bound(x_new, bound):
            bad = diverged_rows(x_new, bound)
            diverged |= bad
            diverged_any = True
            x_new = torch.where(bad[:, None], clip_state(x_new, bound), x_new)
        x = x_new
        X[t + 1] = x
    if Y is not None:
        Y[T] = observe(x)
    return Rollout(states=X, actions=U, costs=costs, observations=Y, diverged=diverged)
