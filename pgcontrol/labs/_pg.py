"""The drivers' internals: the experiments that run the student's functions (see :mod:`pgcontrol.labs.drivers`).

Private: a submission being graded may not import it (its gradient estimate
of (3.19) and the exact references are what the labs ask for).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .. import lqr, plants, sim
from ._run import torch_threads
from .drivers import EPS, EPS_TAU, K_START, ROLLOUTS, SIGMA_FLOOR, SIGMA_START, PGRun


def _one_thread(f):
    """Run ``f`` with torch on one thread (tiny tensors; see :func:`pgcontrol.labs._core.torch_threads`)."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return f(*args, **kwargs)
    return wrapper

def k_star(plant=None) -> float:
    """The optimal slope k* = −K* of the (infinite-horizon discounted) ``scalar-lqg`` (−0.90755)."""
    p = plants.make("scalar-lqg") if plant is None else plant
    return -float(lqr.optimal_gain(p)[0][0, 0])


def _scores_and_gradient(x, u, r, k, sigma, gamma):
    """Per-step scores ((M·T, 2), θ = (k, σ)) and the reward-to-go + leave-one-out-baseline gradient (3.19), (4.8)."""
    M, T = r.shape
    e = u - k * x
    sk, ss = e * x / sigma**2, (e**2 - sigma**2) / sigma**3
    disc = gamma ** np.arange(T)
    G = np.flip(np.cumsum(np.flip(r * disc, 1), 1), 1) / disc  # Σ_{j≥t} γ^(j−t) r_j
    psi = disc * (G - (G.sum(0, keepdims=True) - G) / (M - 1))
    g = np.array([(sk * psi).sum(1).mean(), (ss * psi).sum(1).mean()])
    return np.stack([sk.ravel(), ss.ravel()], 1), g


def _rollouts_scalar(p, k: float, sigma: float, M: int, rng: np.random.Generator):
    """``M`` episodes of the scalar plant ``p`` under u ~ N(kx, σ²): states, actions, rewards (M, T), diverged.

    NumPy on purpose: for one state and a few episodes it is ~50x faster than :func:`pgcontrol.sim.rollout_linear`
    (same model: x₀ ~ N(x̄₀, Σ₀), x' = Ax + Bu + w, r = −(Qx² + Ru²)).
    """
    A, B, Q, R, W = (float(np.ravel(v)[0]) for v in (p.A, p.B, p.Q, p.R, p.W))
    T = p.horizon
    x = np.empty((M, T))
    u = np.empty((M, T))
    xt = float(p.x0_mean[0]) + np.sqrt(float(p.x0_cov[0, 0])) * rng.standard_normal(M)
    w_std = np.sqrt(W)
    for t in range(T):
        ut = k * xt + sigma * rng.standard_normal(M)
        x[:, t], u[:, t] = xt, ut
        xt = A * xt + B * ut + (w_std * rng.standard_normal(M) if w_std > 0 else 0.0)
    diverged = not (np.all(np.isfinite(x)) and np.max(np.abs(x)) <= p.state_bound)
    return x, u, -(Q * x**2 + R * u**2), diverged


def trust_region(t: int, eps: float = EPS, tau: float | None = EPS_TAU) -> float:
    """ε_t = eps / (1 + t/tau)² of update t (``tau=None``: the constant eps)."""
    return float(eps) if tau is None else float(eps) / (1.0 + t / float(tau)) ** 2


def policy_gradient_run(step, *, updates: int = 40, seed: int = 0, rollouts: int = ROLLOUTS, growth: int = 0,
                        eps: float | None = None, eps_tau: float | None = None, k0: float = K_START,
                        sigma0: float = SIGMA_START, floor: float = SIGMA_FLOOR,
                        stop_within: float | None = None) -> PGRun:
    """Policy-gradient ascent on ``scalar-lqg`` with u ~ N(kx, σ²), θ = (k, σ).

    Update t simulates M_t = ``rollouts + growth·t`` episodes of T = 50 steps, estimates the gradient g of
    the return with reward-to-go, γᵗ and the leave-one-out baseline ((3.19), (4.8)), and applies
    ``θ ← θ + step(g, scores)``, where ``scores`` are the per-step score vectors (M_t·T, 2); σ is kept
    ≥ ``floor``. With ``eps`` given, the step is called as ``step(g, scores, eps_t)`` with the shrinking
    trust region ε_t = eps/(1 + t/eps_tau)² (:func:`trust_region`; ``eps_tau=None`` keeps ε fixed).

    A natural step of a fixed size √ε (in the Fisher metric) cannot settle: near k* the sampled gradient is
    mostly noise and the step keeps its length, so k wanders about k*. A shrinking ε and a growing batch
    make it converge and stay (lab 4's figure: ``eps=EPS, eps_tau=EPS_TAU, growth=GROWTH``).

    With ``stop_within=tol`` the run stops as soon as |k − k*|/|k*| < tol. A run *diverges* when the
    closed loop leaves √γ|A + Bk| < 1 (infinite cost) or a state leaves the plant's bound.

    ``step`` is e.g. ``lambda g, S, eps: natural_step(g, sample_fisher(S), eps)`` (natural PG, with ``eps``)
    or ``lambda g, S: 0.03 * g`` (vanilla PG, (3.22)).
    """
    p = plants.make("scalar-lqg")
    rng = np.random.default_rng(int(seed))
    A, B = float(p.A[0, 0]), float(p.B[0, 0])
    k, s = float(k0), float(sigma0)
    ks, ss = [k], [s]
    k_opt = k_star(p) if stop_within is not None else None
    for t in range(updates):
        if k_opt is not None and abs(k - k_opt) / abs(k_opt) < stop_within:
            break
        x, u, r, diverged = _rollouts_scalar(p, k, s, int(rollouts + growth * t), rng)
        if diverged:
            return PGRun(np.array(ks), np.array(ss), True)
        S, g = _scores_and_gradient(x, u, r, k, s, p.gamma)
        d = step(g, S) if eps is None else step(g, S, trust_region(t, eps, eps_tau))
        d = np.asarray(d, dtype=float).reshape(-1)
        k, s = k + float(d[0]), max(s + float(d[1]), floor)
        if not (np.isfinite(k) and np.isfinite(s)) or not np.sqrt(p.gamma) * abs(A + B * k) < 1:
            return PGRun(np.array(ks), np.array(ss), True)
        ks.append(k)
        ss.append(s)
    return PGRun(np.array(ks), np.array(ss), False)


def sampled_runs(step, *, seeds=range(8), updates: int = 60, **kwargs) -> dict:
    """:func:`policy_gradient_run` on several seeds: ``{"k", "sigma"}`` arrays (runs, updates + 1), NaN after a stop.

    For lab 4's figure: draw the median over the runs and a band (e.g. the 25–75 % quantiles,
    ``np.nanpercentile``) rather than the runs themselves, whose sampled σ jumps about.
    """
    runs = [policy_gradient_run(step, updates=updates, seed=int(s), **kwargs) for s in seeds]
    out = {}
    for name in ("k", "sigma"):
        a = np.full((len(runs), updates + 1), np.nan)
        for i, r in enumerate(runs):
            v = getattr(r, name)
            a[i, :len(v)] = v
        out[name] = a
    out["diverged"] = np.array([r.diverged for r in runs])
    return out


@functools.lru_cache(maxsize=8)
def exact_vanilla_path(alpha: float = 0.03, updates: int = 40) -> PGRun:
    """Vanilla ascent θ ← θ + α∇(−J) (3.22) with the *exact* gradient (:func:`pgcontrol.lqr.policy_gradient`)."""
    p = plants.make("scalar-lqg")
    k, s = K_START, SIGMA_START
    ks, ss = [k], [s]
    for _ in range(updates):
        dK, ds = lqr.policy_gradient(p, [[-k]], s, horizon=p.horizon)
        k, s = k + alpha * float(dK[0, 0]), max(s - alpha * float(ds[0]), SIGMA_FLOOR)
        ks.append(k)
        ss.append(s)
    return PGRun(np.array(ks), np.array(ss), False)


@_one_thread
def variance_vs_rollouts(reinforce_gradient, Ms=(2, 5, 10, 20, 50), batches: int = 200, seed: int = 0,
                         k: float = -0.5, sigma: float = 0.3) -> dict:
    """Standard deviation of the student's estimators of dk over ``batches`` batches of M rollouts, per M.

    Returns ``{"M": [...], "total": [...], "rtg": [...], "rtg_baseline": [...], "exact": dk}``.
    """
    p = plants.make("scalar-lqg")
    T = p.horizon
    out = {"M": list(Ms), "total": [], "rtg": [], "rtg_baseline": []}
    for i, M in enumerate(Ms):
        ro = sim.rollout_linear(p, [[-k]], sigma, M * batches, T, seed=int(seed) * 1000 + i)
        x = ro.states[:-1, :, 0].numpy().T.reshape(batches, M, T)
        u = ro.actions[:, :, 0].numpy().T.reshape(batches, M, T)
        r = -ro.costs.numpy().T.reshape(batches, M, T)
        for e in ("total", "rtg", "rtg_baseline"):
            vals = [float(np.asarray(reinforce_gradient(x[b], u[b], r[b], k, sigma, p.gamma, e)[0]))
                    for b in range(batches)]
            out[e].append(float(np.std(vals, ddof=1)))
    out["exact"] = float(lqr.policy_gradient(p, [[-k]], sigma, horizon=T)[0][0, 0])
    return out


@_one_thread
def observer_controller_cost(L, *, episodes: int = 2000, seed: int = 0, plant="double-integrator-output",
                             S=None) -> dict:
    """Monte Carlo T-step cost of the LQR gain acting on a Kalman estimate built with the predictor gain ``L``.

    The controller is :math:`u_t = -K\\hat x_{t|t-1}`, :math:`\\hat x_{t+1|t} = A\\hat x_{t|t-1} + Bu_t +
    L(y_t - C\\hat x_{t|t-1})`, :math:`\\hat x_{0|-1} = \\bar x_0`, with K the discounted LQR gain
    (:func:`pgcontrol.lqr.optimal_gain`): u_t uses y_0 … y_{t−1}. With ``S`` (the prediction error covariance)
    it acts on the *filtered* estimate instead, :math:`u_t = -K\\hat x_{t|t}`,
    :math:`\\hat x_{t|t} = \\hat x_{t|t-1} + L_f(y_t - C\\hat x_{t|t-1})`, :math:`L_f = SC^\\top(CSC^\\top + V)^{-1}`:
    u_t uses y_0 … y_t, the same information as a static gain on y_t. ``episodes`` episodes of the plant's
    horizon T are simulated at once in torch. Returns ``{"mean", "se", "episodes"}`` of the discounted T-step cost.
    """
    p = plants.make(plant)
    K, _ = lqr.optimal_gain(p)
    L = np.asarray(L, dtype=float).reshape(p.n, p.p)
    if S is not None:
        S = np.asarray(S, dtype=float).reshape(p.n, p.n)
        Lf = S @ p.C.T @ np.linalg.inv(p.C @ S @ p.C.T + p.V)
        Lft = torch.as_tensor(Lf.T)
    t = sim.plant_tensors(p)
    g = sim.make_generator(int(seed))
    N, T = int(episodes), p.horizon
    kw = dict(dtype=torch.float64, generator=g)
    Kt, Lt = torch.as_tensor(K.T), torch.as_tensor(L.T)
    x = t.x0_mean + torch.randn(N, p.n, **kw) @ t.x0_sqrt.T
    xh = t.x0_mean.expand(N, p.n).clone()
    total = torch.zeros(N, dtype=torch.float64)
    disc = 1.0
    for _ in range(T):
        y = x @ t.C.T + torch.randn(N, p.p, **kw) @ t.V_sqrt.T
        innovation = y - xh @ t.C.T
        u = -(xh @ Kt) if S is None else -((xh + innovation @ Lft) @ Kt)
        total += disc * sim.stage_cost(x, u, t.Q, t.R)
        xh = xh @ t.A.T + u @ t.B.T + innovation @ Lt
        x = x @ t.A.T + u @ t.B.T + torch.randn(N, p.n, **kw) @ t.W_sqrt.T
        disc *= p.gamma
    c = total.numpy()
    return {"mean": float(c.mean()), "se": float(c.std(ddof=1) / np.sqrt(N)), "episodes": N}


@_one_thread
def output_feedback_comparison(L, *, episodes: int = 2000, seed: int = 0, S=None) -> dict:
    """Lab 6's figure: the student's filter + LQR against the best static output gain on ``double-integrator-output``.

    Returns the exact T-step cost of the best static output gain ``J_static`` (at ``k_static``), the Monte Carlo
    cost of the controller on the student's predictor gain ``J_filter`` ± ``se_filter``
    (:func:`observer_controller_cost`), the exact cost of LQR with the full state ``J_lqr``, and one simulated
    position trajectory under each output-feedback controller (``x_static``, ``x_filter``). With ``S`` (the
    prediction error covariance) it adds ``J_current`` ± ``se_current``: the LQR gain on the filtered estimate
    x̂_{t|t}, which uses y_t like the static gain (:func:`observer_controller_cost` with ``S``).
    """
    p = plants.make(PLANT)
    K_y, J_static = static_reference()
    mc = observer_controller_cost(L, episodes=episodes, seed=seed)
    K, _ = lqr.optimal_gain(p)
    ro = sim.rollout_linear(p, K_y, 0.0, 1, seed=seed, output_feedback=True)
    one = observer_controller_trajectory(L, seed=seed)
    out = {}
    if S is not None:
        cur = observer_controller_cost(L, episodes=episodes, seed=seed, S=S)
        out = {"J_current": cur["mean"], "se_current": cur["se"]}
    return {**out, "J_static": J_static, "k_static": float(np.ravel(K_y)[0]), "J_filter": mc["mean"],
            "se_filter": mc["se"], "J_lqr": float(lqr.policy_cost(p, K, 0.0, horizon=p.horizon)),
            "x_static": ro.states[:, 0, 0].numpy(), "x_filter": one}


PLANT = "double-integrator-output"


@functools.lru_cache(maxsize=1)
def static_reference() -> tuple[np.ndarray, float]:
    """The best static output gain on ``double-integrator-output`` and its exact T-step cost (cached; lab 6's too)."""
    p = plants.make(PLANT)
    K, J, _ = lqr.best_static_output_gain(p, [[0.0]], p.horizon)
    return np.asarray(K, dtype=float), float(J)


def observer_controller_trajectory(L, *, seed: int = 0, plant="double-integrator-output") -> np.ndarray:
    """The position x_0..x_T of one episode under the controller of :func:`observer_controller_cost`."""
    p = plants.make(plant)
    K, _ = lqr.optimal_gain(p)
    L = np.asarray(L, dtype=float).reshape(p.n, p.p)
    rng = np.random.default_rng(seed)
    x = p.x0_mean + sim.sqrt_psd(p.x0_cov) @ rng.standard_normal(p.n)
    xh = p.x0_mean.copy()
    Wh, Vh = sim.sqrt_psd(p.W), sim.sqrt_psd(p.V)
    out = [x[0]]
    for _ in range(p.horizon):
        y = p.C @ x + Vh @ rng.standard_normal(p.p)
        u = -K @ xh
        xh = p.A @ xh + p.B @ u + L @ (y - p.C @ xh)
        x = p.A @ x + p.B @ u + Wh @ rng.standard_normal(p.n)
        out.append(x[0])
    return np.array(out)
