"""Linear-Gaussian plants and the catalog of named examples.

Every plant in pgcontrol is

.. math::

    x_{t+1} = A x_t + B u_t + w_t,\\qquad w_t \\sim \\mathcal N(0, W),\\qquad
    x_0 \\sim \\mathcal N(\\bar x_0, \\Sigma_0),

with stage cost :math:`c_t = x_t^\\top Q x_t + u_t^\\top R u_t` (the reward is
:math:`r_t = -c_t`, as in the scalar LQG example of the course slides: :math:`R_t = -Q x_t^2 - P u_t^2`), discount
``gamma`` and episode length ``horizon``. An *output plant* also has a noisy
measurement :math:`y_t = C x_t + v_t`, :math:`v_t \\sim \\mathcal N(0, V)`.

Sign convention (used everywhere in pgcontrol): a linear policy is
``u = -K x`` (plus exploration noise), so a *gain* ``K`` has shape ``(m, n)``
and the closed loop is ``A - B K``. The Peters & Schaal parameter
:math:`\\theta_1 = k` of the slides is ``k = -K``.

This module is pure NumPy: no torch, no Gymnasium.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InvalidPlantError

MAX_HORIZON = 10**6
"""The longest horizon (episode length, or T of a finite-horizon cost) accepted anywhere: longer ones are refused,
not left to run for hours (every finite-horizon computation is O(T))."""

__all__ = [
    "from_statespace",
    "discretised_noise",
    "InvalidPlantError",
    "LinearGaussianPlant",
    "make",
    "names",
    "describe",
    "random",
    "cartpole_linearized",
]


def _as_matrix(name: str, value, shape: tuple[int | None, int | None], *, scalar_is_identity: bool = False) -> np.ndarray:
    """Convert ``value`` to a float 2-D array and check its shape.

    Scalars are accepted for 1x1 matrices and 1-D arrays for vectors given as
    ``(k, 1)`` or ``(1, k)`` by the caller's shape. ``None`` in ``shape`` means
    "any size".
    """
    arr = _real_array(name, value)
    if arr.ndim == 0 and scalar_is_identity and shape[0] is not None:
        arr = float(arr) * np.eye(shape[0])
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim != 2:
        raise InvalidPlantError(
            f"{name} must be a 2-D matrix of shape {_fmt_shape(shape)}; got an array with "
            f"{arr.ndim} dimensions and shape {arr.shape}"
        )
    for want, got in zip(shape, arr.shape):
        if want is not None and want != got:
            raise InvalidPlantError(
                f"{name} has the wrong shape: expected {_fmt_shape(shape)}, got {arr.shape}"
            )
    if arr.size == 0:
        raise InvalidPlantError(f"{name} is empty (shape {arr.shape}); a plant has at least one state and one input")
    if not np.all(np.isfinite(arr)):
        raise InvalidPlantError(f"{name} has non-finite entries (NaN or inf): {arr.tolist()}")
    arr.setflags(write=False)
    return arr


def _real_array(name: str, value) -> np.ndarray:
    """``value`` as a float array; complex numbers, booleans and non-numbers are refused (never silently cast)."""
    try:
        raw = np.asarray(value) if not isinstance(value, np.ndarray) else value
    except (TypeError, ValueError):  # ragged nested lists
        raw = None
    if raw is None or np.iscomplexobj(raw) or raw.dtype == bool or raw.dtype.kind not in "iuf":
        kind = "complex" if raw is not None and np.iscomplexobj(raw) else "not numeric"
        raise InvalidPlantError(f"{name} must be real (a number, or an array of numbers); got {value!r} ({kind})")
    return np.array(raw, dtype=float)


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def _check_symmetric(name: str, M: np.ndarray, *, definite: bool) -> None:
    scale = max(1.0, float(np.abs(M).max(initial=0.0)))
    if not np.allclose(M, M.T, atol=1e-10 * scale, rtol=0):
        raise InvalidPlantError(f"{name} must be symmetric; got {M.tolist()}")
    # definiteness does not depend on scale: test M / max|M| (huge entries such as 1e308 would overflow LAPACK)
    eig_min = float(np.linalg.eigvalsh((M / scale + M.T / scale) / 2).min()) * scale if M.size else 0.0
    if definite and eig_min <= 0:
        raise InvalidPlantError(
            f"{name} must be symmetric positive definite; its smallest eigenvalue is {eig_min:.3g}"
        )
    if not definite and eig_min < -1e-10 * scale:
        raise InvalidPlantError(
            f"{name} must be symmetric positive semidefinite; its smallest eigenvalue is {eig_min:.3g}"
        )


@dataclass(frozen=True, eq=False)
class LinearGaussianPlant:
    """A discrete-time linear-Gaussian plant with quadratic cost.

    Parameters
    ----------
    A : (n, n) array_like
        State matrix.
    B : (n, m) array_like
        Input matrix.
    Q : (n, n) array_like
        State cost weight, symmetric positive semidefinite. For Q, R, W, V and
        x0_cov a scalar ``c`` means ``c * I``.
    R : (m, m) array_like
        Input cost weight, symmetric positive definite.
    W : (n, n) array_like, optional
        Process-noise covariance (PSD). Default: zero (deterministic plant).
    x0_mean : (n,) array_like, optional
        Mean of the initial state. Default: zero.
    x0_cov : (n, n) array_like, optional
        Covariance of the initial state (PSD). Default: identity.
    gamma : float
        Discount factor in (0, 1].
    horizon : int
        Episode length T (number of controls applied, t = 0..T-1).
    C : (p, n) array_like, optional
        Output matrix; with it the plant is observed through ``y = C x + v``.
        ``C = I`` with ``V`` zero (or unset) is state feedback (``C`` is dropped).
    V : (p, p) array_like, optional
        Measurement-noise covariance (PSD), used only with ``C``. Default: zero.
    state_bound : float
        An episode whose state leaves ``|x_i| <= state_bound`` (or turns
        non-finite) is treated as *diverged* by the simulators and
        environments (see :mod:`pgcontrol.envs`).
    name : str
        A label for printing.
    dt : float or None
        The sampling period in seconds when the plant was discretised from a
        continuous-time model (:func:`from_statespace` with ``dt``, or the
        catalog's ``cartpole-linearized`` and ``mass-spring-damper``); None
        for a model given in discrete time. Informational: the matrices are
        always the discrete-time ones, x' = Ax + Bu + w.

    Notes
    -----
    All matrices are stored as read-only float arrays; the dataclass is frozen,
    so use :func:`dataclasses.replace` (or :meth:`replace`) to derive variants.
    Validation happens at construction and raises :class:`InvalidPlantError`
    (a ``ValueError``) naming the offending matrix and the expected shape.
    """

    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    W: np.ndarray | None = None
    x0_mean: np.ndarray | None = None
    x0_cov: np.ndarray | None = None
    gamma: float = 1.0
    horizon: int = 100
    C: np.ndarray | None = None
    V: np.ndarray | None = None
    state_bound: float = 1e6
    name: str = "custom"
    dt: float | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        A = _as_matrix("A", self.A, (None, None))
        n = A.shape[0]
        if A.shape != (n, n):
            raise InvalidPlantError(f"A must be square: expected shape ({n}, {n}), got {A.shape}")
        B = _real_array("B", self.B)
        if B.ndim == 1 and n == 1:
            B = B.reshape(1, -1)
        elif B.ndim <= 1 and B.size == n:
            B = B.reshape(n, 1)
        B = _as_matrix("B", B, (n, None))
        m = B.shape[1]
        if m == 0:
            raise InvalidPlantError("B must have at least one column (one input)")
        Q = _as_matrix("Q", self.Q, (n, n), scalar_is_identity=True)
        R = _as_matrix("R", self.R, (m, m), scalar_is_identity=True)
        _check_symmetric("Q", Q, definite=False)
        _check_symmetric("R", R, definite=True)
        W = _as_matrix("W", np.zeros((n, n)) if self.W is None else self.W, (n, n), scalar_is_identity=True)
        _check_symmetric("W", W, definite=False)
        mean = np.zeros(n) if self.x0_mean is None else np.array(self.x0_mean, dtype=float)
        mean = _as_matrix("x0_mean", mean.reshape(-1, 1) if mean.ndim <= 1 else mean, (n, 1))
        mean = mean.ravel()
        mean.setflags(write=False)
        cov = _as_matrix("x0_cov", np.eye(n) if self.x0_cov is None else self.x0_cov, (n, n), scalar_is_identity=True)
        _check_symmetric("x0_cov", cov, definite=False)
        if isinstance(self.gamma, (bool, np.bool_)) or not isinstance(self.gamma, (int, float, np.integer, np.floating)):
            raise InvalidPlantError(f"gamma must be a number in (0, 1]; got {self.gamma!r}")
        gamma = float(self.gamma)
        if not (0.0 < gamma <= 1.0):
            raise InvalidPlantError(f"gamma must lie in (0, 1]; got {self.gamma!r}")
        if (isinstance(self.horizon, bool) or not isinstance(self.horizon, (int, np.integer, float))
                or not np.isfinite(self.horizon) or int(self.horizon) != self.horizon
                or not 1 <= self.horizon <= MAX_HORIZON):
            raise InvalidPlantError(f"horizon must be an integer from 1 to {MAX_HORIZON}; got {self.horizon!r}")
        C = V = None
        if self.C is not None:
            C = _as_matrix("C", self.C, (None, n))
            p = C.shape[0]
            V = _as_matrix("V", np.zeros((p, p)) if self.V is None else self.V, (p, p), scalar_is_identity=True)
            _check_symmetric("V", V, definite=False)
            if C.shape == (n, n) and np.array_equal(C, np.eye(n)) and not np.any(V):
                C = V = None  # y = x exactly: state feedback, not an output plant
        elif self.V is not None:
            raise InvalidPlantError("V (measurement noise) was given without C (output matrix)")
        if (isinstance(self.state_bound, bool) or not isinstance(self.state_bound, (int, float, np.integer, np.floating))
                or not (0 < float(self.state_bound) < np.inf)):
            raise InvalidPlantError(f"state_bound must be a positive finite number; got {self.state_bound!r}")
        if self.dt is not None and (isinstance(self.dt, bool) or not isinstance(self.dt, (int, float, np.integer, np.floating))
                                    or not 0 < float(self.dt) < np.inf):
            raise InvalidPlantError(f"dt must be None (a discrete-time model) or a positive sampling period in "
                                    f"seconds; got {self.dt!r}")
        if self.dt is not None:
            set_("dt", float(self.dt))
        for k, v in dict(A=A, B=B, Q=Q, R=R, W=W, x0_mean=mean, x0_cov=cov, C=C, V=V).items():
            set_(k, v)
        set_("gamma", gamma)
        set_("horizon", int(self.horizon))
        set_("state_bound", float(self.state_bound))

    # ------------------------------------------------------------------ sizes
    @property
    def n(self) -> int:
        """State dimension."""
        return self.A.shape[0]

    @property
    def m(self) -> int:
        """Input dimension."""
        return self.B.shape[1]

    @property
    def p(self) -> int:
        """Observation dimension (``p = n`` for a state-feedback plant)."""
        return self.n if self.C is None else self.C.shape[0]

    @property
    def has_output(self) -> bool:
        """True when the plant is observed through ``y = C x + v``."""
        return self.C is not None

    def replace(self, **changes) -> "LinearGaussianPlant":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def check_gain(self, K, std=None, *, output_feedback: bool = False):
        """Validate a gain ``K`` (and exploration std) for this plant.

        Returns ``(K, std)`` as float arrays of shapes ``(m, n)`` (``(m, p)``
        when ``output_feedback``) and ``(m,)``. A scalar std is broadcast.
        """
        cols = self.p if output_feedback else self.n
        K = _real_array("gain K", K)
        if K.ndim <= 1 and K.size == self.m * cols:
            K = K.reshape(self.m, cols)
        if K.shape != (self.m, cols):
            raise InvalidPlantError(
                f"gain K has the wrong shape: expected (m, {'p' if output_feedback else 'n'}) = "
                f"({self.m}, {cols}) for plant {self.name!r}, got {K.shape}"
            )
        if not np.all(np.isfinite(K)):
            raise InvalidPlantError(f"gain K has non-finite entries: {K.tolist()}")
        s = np.zeros(self.m) if std is None else _real_array("std", std)
        if s.ndim == 0:
            s = np.full(self.m, float(s))
        s = s.ravel()
        if s.shape != (self.m,):
            raise InvalidPlantError(
                f"std has the wrong shape: expected a scalar or ({self.m},), got {np.shape(std)}"
            )
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise InvalidPlantError(f"std must be finite and non-negative; got {s.tolist()}")
        return K, s

    def to_statespace(self):
        """The plant as a discrete-time :class:`control.StateSpace` ``(A, B, C, 0)``, ``C = I`` without an output.

        Its ``dt`` is the plant's sampling period, or ``True`` (discrete,
        period unspecified). The costs and noises are not part of it; see
        :func:`from_statespace` for the way back and
        :func:`pgcontrol.lqr.closed_loop` for the loop under a gain.
        """
        import control  # local: python-control takes ~1 s to import, keep `import pgcontrol.plants` light

        C = self.C if self.has_output else np.eye(self.n)
        return control.ss(self.A, self.B, C, np.zeros((C.shape[0], self.m)), True if self.dt is None else self.dt)

    def __repr__(self) -> str:  # compact, the arrays are long
        return (
            f"LinearGaussianPlant(name={self.name!r}, n={self.n}, m={self.m}, "
            f"gamma={self.gamma}, horizon={self.horizon}"
            + (f", p={self.p}" if self.has_output else "")
            + ")"
        )


# ---------------------------------------------------------------------- catalog


def _scalar_lqg() -> LinearGaussianPlant:
    # Peters & Schaal (2008), slides 004_*: x' = A x + B u (+ w), R_t = -Q x^2 - P u^2.
    # We take the plant itself noise-free (W = 0): all randomness comes from the
    # policy's exploration and the initial state, which is what makes the
    # "plateau of zero exploration" visible when sigma collapses.
    return LinearGaussianPlant(
        A=1.0, B=1.0, Q=1.0, R=0.1, W=0.0, x0_mean=[0.3], x0_cov=1e-4,
        gamma=0.9, horizon=50, name="scalar-lqg",
    )


def _double_integrator() -> LinearGaussianPlant:
    return LinearGaussianPlant(
        A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.diag([1.0, 0.0]), R=1.0,
        W=1e-4 * np.eye(2), x0_mean=[-1.0, 0.0], x0_cov=np.zeros((2, 2)),
        gamma=0.95, horizon=150, name="double-integrator",
    )


def _laplacian_3() -> LinearGaussianPlant:
    # Recht's "tour of RL" example: graph-Laplacian-like dynamics, open-loop unstable.
    A = [[1.01, 0.01, 0.0], [0.01, 1.01, 0.01], [0.0, 0.01, 1.01]]
    return LinearGaussianPlant(
        A=A, B=np.eye(3), Q=1e-3 * np.eye(3), R=np.eye(3), W=1e-4 * np.eye(3),
        x0_mean=np.zeros(3), x0_cov=np.eye(3), gamma=0.99, horizon=500, name="laplacian-3",
    )


def cartpole_linearized(
    *, dt: float = 0.02, cart_mass: float = 1.0, pole_mass: float = 0.1,
    half_length: float = 0.5, g: float = 9.8, gamma: float = 0.98, horizon: int = 300,
) -> LinearGaussianPlant:
    """Cart-pole linearised about the upright equilibrium and discretised.

    The continuous-time model is the classic Barto-Sutton-Anderson cart-pole
    (Gymnasium ``CartPole-v1`` parameters: cart 1 kg, pole 0.1 kg, half-length
    0.5 m, g = 9.8 m/s², massless rod with the pole's mass at its centre,
    frictionless). With state ``x = (p, ṗ, θ, θ̇)`` (θ = 0 upright) and force
    input ``u`` [N], linearising about ``x = 0, u = 0`` gives

    .. math::

        \\ddot\\theta = \\frac{g\\,\\theta - u / M_t}{\\ell\\,(4/3 - m_p / M_t)},\\qquad
        \\ddot p = \\frac{u - m_p \\ell\\, \\ddot\\theta}{M_t},

    with :math:`M_t = M + m_p`. It is discretised with a zero-order hold at
    ``dt`` (default 0.02 s, Gymnasium's step) by :func:`control.c2d`. Cost
    ``Q = diag(1, 0.1, 10, 0.1)``, ``R = 0.1``; ``x0 ~ N(0, 0.05² I)``,
    ``W = 1e-6 I``.
    """
    M, mp, ell = cart_mass, pole_mass, half_length
    Mt = M + mp
    denom = ell * (4.0 / 3.0 - mp / Mt)
    # theta_dd = (g*theta - u/Mt) / denom ; p_dd = (u - mp*ell*theta_dd) / Mt   (linearised)
    a_th, b_th = g / denom, -1.0 / (Mt * denom)
    a_p, b_p = -mp * ell * a_th / Mt, (1.0 - mp * ell * b_th) / Mt
    Ac = np.array([[0, 1, 0, 0], [0, 0, a_p, 0], [0, 0, 0, 1], [0, 0, a_th, 0]], dtype=float)
    Bc = np.array([[0], [b_p], [0], [b_th]], dtype=float)
    import control  # local: python-control takes ~1 s to import, keep `import pgcontrol.plants` light

    sysd = control.c2d(control.ss(Ac, Bc, np.eye(4), np.zeros((4, 1))), dt, method="zoh")
    return LinearGaussianPlant(
        A=np.asarray(sysd.A), B=np.asarray(sysd.B), Q=np.diag([1.0, 0.1, 10.0, 0.1]), R=0.1,
        W=1e-6 * np.eye(4), x0_mean=np.zeros(4), x0_cov=0.05**2 * np.eye(4),
        gamma=gamma, horizon=horizon, name="cartpole-linearized", dt=dt,
    )


def discretised_noise(A, W, dt: float) -> np.ndarray:
    """Covariance of the noise a continuous-time white noise of intensity ``W`` adds over one ZOH step ``dt``.

    :math:`W_d = \\int_0^{dt} e^{As}\\,W\\,e^{A^\\top s}\\,ds`, by Van Loan's method: with
    :math:`E = \\exp\\big(\\begin{smallmatrix}-A & W\\\\ 0 & A^\\top\\end{smallmatrix}\\big)\\,dt`,
    :math:`e^{A\\,dt} = E_{22}^\\top` and :math:`W_d = E_{22}^\\top E_{12}` (C. Van Loan,
    "Computing integrals involving the matrix exponential", 1978).
    """
    import scipy.linalg

    A, W = np.asarray(A, dtype=float), np.asarray(W, dtype=float)
    n = A.shape[0]
    E = scipy.linalg.expm(np.block([[-A, W], [np.zeros((n, n)), A.T]]) * dt)
    Wd = E[n:, n:].T @ E[:n, n:]
    return (Wd + Wd.T) / 2


def from_statespace(sys, Q, R, *, W=None, V=None, x0_mean=None, x0_cov=None, gamma: float = 1.0,
                    horizon: int = 100, dt: float | None = None, state_bound: float = 1e6,
                    name: str = "statespace") -> LinearGaussianPlant:
    """A plant from a python-control :class:`control.StateSpace` (discrete, or continuous with ``dt``).

    Parameters
    ----------
    sys : control.StateSpace
        Discrete time (``sys.dt`` a period or True), or continuous time
        (``sys.dt == 0``) together with ``dt``: then A and B are discretised
        with a zero-order hold by :func:`control.c2d` and the process noise
        by :func:`discretised_noise` (``W`` is then the continuous-time
        intensity). ``D`` must be zero (y = Cx + v has no feedthrough). A
        ``C`` equal to the identity with ``V`` unset or zero is state
        feedback; any other C makes an output plant y = Cx + v.
    Q, R : array_like
        Weights of the discrete stage cost c = xᵀQx + uᵀRu (per step; a
        continuous cost integral is not discretised).
    W, V, x0_mean, x0_cov, gamma, horizon, state_bound, name
        As in :class:`LinearGaussianPlant`.
    dt : float, optional
        The ZOH sampling period for a continuous-time ``sys``; for a discrete
        one it must be None or equal ``sys.dt``. Recorded as ``plant.dt``.

    Raises
    ------
    InvalidPlantError
        For a non-StateSpace, a continuous system without ``dt``, a
        mismatching ``dt``, or a non-zero ``D``.
    """
    import control  # local: python-control takes ~1 s to import, keep `import pgcontrol.plants` light

    if not isinstance(sys, control.StateSpace):
        raise InvalidPlantError(f"sys must be a control.StateSpace; got {type(sys).__name__} (use control.ss(...))")
    if np.any(np.asarray(sys.D) != 0):
        raise InvalidPlantError(f"sys.D must be zero: pgcontrol's measurement y = Cx + v has no feedthrough; "
                                f"got D = {np.asarray(sys.D).tolist()}")
    continuous = sys.dt == 0 or sys.dt is None
    if continuous:
        if dt is None:
            raise InvalidPlantError("sys is a continuous-time system: give dt= (the ZOH sampling period in seconds) "
                                    "to discretise it; LinearGaussianPlant takes discrete-time matrices")
        if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and 0 < dt < np.inf):
            raise InvalidPlantError(f"dt must be a positive sampling period in seconds; got {dt!r}")
        sysd = control.c2d(sys, dt, method="zoh")
        A, B, C = np.asarray(sysd.A), np.asarray(sysd.B), np.asarray(sysd.C)
        if W is not None:
            Wc = _as_matrix("W", W, (A.shape[0], A.shape[0]), scalar_is_identity=True)
            W = discretised_noise(np.asarray(sys.A), Wc, dt)
        period = float(dt)
    else:
        if dt is not None and (sys.dt is True or not np.isclose(dt, sys.dt)):
            raise InvalidPlantError(f"sys is already discrete (dt = {sys.dt}); dt= is for continuous systems, got {dt!r}")
        A, B, C = np.asarray(sys.A), np.asarray(sys.B), np.asarray(sys.C)
        period = None if sys.dt is True else float(sys.dt)
    state_feedback = C.shape == (A.shape[0], A.shape[0]) and np.array_equal(C, np.eye(A.shape[0])) and (
        V is None or not np.any(np.asarray(V, dtype=float)))
    return LinearGaussianPlant(A=A, B=B, Q=Q, R=R, W=W, x0_mean=x0_mean, x0_cov=x0_cov, gamma=gamma, horizon=horizon,
                               C=None if state_feedback else C, V=None if state_feedback else V,
                               state_bound=state_bound, name=name, dt=period)


def _mass_spring_damper() -> LinearGaussianPlant:
    # m p'' = -k p - c p' + u (m = 1 kg, k = 1 N/m, c = 0.1 N s/m): lightly damped; ZOH at dt = 0.1 s
    import control  # local: python-control takes ~1 s to import, keep `import pgcontrol.plants` light

    sys = control.ss([[0.0, 1.0], [-1.0, -0.1]], [[0.0], [1.0]], np.eye(2), np.zeros((2, 1)))
    return from_statespace(sys, Q=np.diag([1.0, 0.1]), R=0.1, W=1e-3 * np.eye(2), x0_mean=[1.0, 0.0],
                           x0_cov=1e-2 * np.eye(2), gamma=0.99, horizon=300, dt=0.1, name="mass-spring-damper")


def _double_integrator_output() -> LinearGaussianPlant:
    # A partially observed variant of the double integrator for output feedback (LQG).
    base = _double_integrator()
    return base.replace(C=[[1.0, 0.0]], V=1e-2, W=1e-3 * np.eye(2), name="double-integrator-output")


_CATALOG: dict[str, tuple[Callable[[], LinearGaussianPlant], str]] = {
    "scalar-lqg": (_scalar_lqg, "Peters & Schaal scalar LQG: A=B=1, Q=1, R=0.1, x0~N(0.3,1e-4), W=0, gamma=0.9, T=50"),
    "double-integrator": (_double_integrator, "A=[[1,1],[0,1]], B=[0;1], Q=diag(1,0), R=1, x0=[-1,0], W=1e-4 I, gamma=0.95, T=150"),
    "laplacian-3": (_laplacian_3, "open-loop unstable Laplacian dynamics, B=I, Q=1e-3 I, R=I, x0~N(0,I), W=1e-4 I, gamma=0.99, T=500"),
    "cartpole-linearized": (cartpole_linearized, "cart-pole about upright, ZOH dt=0.02 s, Q=diag(1,.1,10,.1), R=0.1, gamma=0.98, T=300"),
    "double-integrator-output": (_double_integrator_output, "double integrator observed through y = position + v, V=1e-2, W=1e-3 I (LQG)"),
    "mass-spring-damper": (_mass_spring_damper, "continuous-time m=1, k=1, c=0.1 via from_statespace, ZOH dt=0.1 s, Q=diag(1,.1), R=0.1, W_c=1e-3 I, gamma=0.99, T=300"),
}


def names() -> list[str]:
    """Names accepted by :func:`make`."""
    return list(_CATALOG)


def describe() -> dict[str, str]:
    """``{name: one-line description}`` for the catalog."""
    return {k: d for k, (_, d) in _CATALOG.items()}


def make(name: str, /, **overrides) -> LinearGaussianPlant:
    """Build a catalog plant (or take a plant), optionally overriding fields (``name=`` relabels it).

    Examples
    --------
    >>> make("scalar-lqg", gamma=1.0, horizon=20).gamma
    1.0
    """
    if isinstance(name, LinearGaussianPlant):
        plant = name
    else:
        try:
            plant = _CATALOG[name][0]()
        except (KeyError, TypeError):
            raise InvalidPlantError(
                f"unknown plant {name!r}; choose one of: {', '.join(names())}"
            ) from None
    unknown = set(overrides) - {f.name for f in dataclasses.fields(LinearGaussianPlant)}
    if unknown:
        raise InvalidPlantError(
            f"unknown plant field(s) {sorted(unknown)}; valid fields: "
            f"{[f.name for f in dataclasses.fields(LinearGaussianPlant)]}"
        )
    return plant.replace(**overrides) if overrides else plant


MAX_RANDOM_DIM = 100
"""Most states (and inputs) :func:`random` draws: a larger plant is refused."""
RANDOM_TRIES = 100
"""Draws :func:`random` makes before it gives up (bounded: it never loops forever)."""


def random(
    n: int, m: int, seed: int | None = None, *, spectral_radius: float = 1.05,
    gamma: float = 0.95, horizon: int = 200, noise: float = 1e-4,
) -> LinearGaussianPlant:
    """A random stabilisable plant.

    ``A`` is Gaussian, rescaled to the given spectral radius (> 1 makes it
    open-loop unstable); ``B`` is Gaussian. Draws are repeated until ``(A, B)``
    is controllable (hence stabilisable), checked by the PBH rank test at
    each eigenvalue of A (at most :data:`RANDOM_TRIES` draws). ``Q = I``,
    ``R = I``, ``W = noise·I``, ``x0 ~ N(0, I)``.

    Raises
    ------
    InvalidPlantError
        If ``n`` or ``m`` is not an integer from 1 to :data:`MAX_RANDOM_DIM`,
        or ``seed`` is not a non-negative integer (or None).
    """
    for name, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= MAX_RANDOM_DIM:
            raise InvalidPlantError(f"random: {name} must be an integer from 1 to {MAX_RANDOM_DIM} (MAX_RANDOM_DIM); "
                                    f"got {v!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InvalidPlantError(f"random: seed must be a non-negative integer or None; got {seed!r}")
    if isinstance(spectral_radius, bool) or not isinstance(spectral_radius, (int, float)) \
            or not 0 < spectral_radius < 1e6:
        raise InvalidPlantError(f"random: spectral_radius must be a number in (0, 1e6); got {spectral_radius!r}")
    n, m = int(n), int(m)
    rng = np.random.default_rng(seed)
    for _ in range(RANDOM_TRIES):
        A = rng.standard_normal((n, n))
        A *= spectral_radius / max(np.abs(np.linalg.eigvals(A)).max(), 1e-12)
        B = rng.standard_normal((n, m))
        if _controllable(A, B):
            return LinearGaussianPlant(
                A=A, B=B, Q=np.eye(n), R=np.eye(m), W=noise * np.eye(n),
                x0_mean=np.zeros(n), x0_cov=np.eye(n), gamma=gamma, horizon=horizon,
                name=f"random-{n}x{m}-seed{seed}",
            )
    raise InvalidPlantError(f"random: no controllable (A, B) of n={n}, m={m} in {RANDOM_TRIES} draws; try another "
                            "seed")  # pragma: no cover - a Gaussian draw is controllable with probability 1


def _controllable(A: np.ndarray, B: np.ndarray) -> bool:
    """The PBH test: rank [A − λI, B] = n at every eigenvalue λ of A (singular values, relative tolerance).

    Unlike the rank of the controllability matrix [B, AB, …, Aⁿ⁻¹B], whose
    columns grow like the powers of A and lose rank numerically beyond a few
    tens of states, each PBH matrix is as well conditioned as the plant.
    """
    n = A.shape[0]
    scale = max(np.linalg.norm(A, 2), np.linalg.norm(B, 2), 1.0)
    for lam in np.linalg.eigvals(A):
        sv = np.linalg.svd(np.hstack([A - lam * np.eye(n), B]), compute_uv=False)
        if sv[n - 1] <= 1e-10 * scale:
            return False
    return True
