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
from .drivers import K_START, ROLLOUTS, SIGMA_FLOOR, SIGMA_START, PGRun


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


@_one_thread
def policy_gradient_run(step, *, updates: int = 40, seed: int = 0, rollouts: int = ROLLOUTS,
                        k0: float = K_START, sigma0: float = SIGMA_START, floor: float = SIGMA_FLOOR,
                        stop_within: float | None = None) -> PGRun:
    """Policy-gradient ascent on ``scalar-lqg`` with u ~ N(kx, σ²), θ = (k, σ).

    Each update simulates ``rollouts`` episodes of T = 50 steps
    (:func:`pgcontrol.sim.rollout_linear`), estimates the gradient of the
    return with reward-to-go, γᵗ and the leave-one-out baseline ((3.19),
    (4.8)), and applies ``θ ← θ + step(g, scores)`` where ``scores`` are the
    per-step score vectors (M·T, 2); σ is kept ≥ ``floor``.

    With ``stop_within=tol`` the run stops as soon as |k − k*|/|k*| < tol.

    ``step`` is e.g. ``lambda g, S: natural_step(g, sample_fisher(S), 0.1)``
    (natural PG) or ``lambda g, S: 0.03 * g`` (vanilla PG, (3.22)).
    """
    p = plants.make("scalar-lqg")
    gen = torch.Generator().manual_seed(int(seed))
    k, s = float(k0), float(sigma0)
    ks, ss = [k], [s]
    k_opt = k_star(p) if stop_within is not None else None
    for _ in range(updates):
        if k_opt is not None and abs(k - k_opt) / abs(k_opt) < stop_within:
            break
        ro = sim.rollout_linear(p, [[-k]], s, rollouts, p.horizon, seed=gen)
        x = ro.states[:-1, :, 0].numpy().T
        u = ro.actions[:, :, 0].numpy().T
        r = -ro.costs.numpy().T
        if bool(ro.diverged.any()):
            return PGRun(np.array(ks), np.array(ss), True)
        S, g = _scores_and_gradient(x, u, r, k, s, p.gamma)
        d = np.asarray(step(g, S), dtype=float).reshape(-1)
        k, s = k + float(d[0]), max(s + float(d[1]), floor)
        if not (np.isfinite(k) and np.isfinite(s)) or not np.isfinite(lqr.policy_cost(p, [[-k]], s)):
            return PGRun(np.array(ks), np.array(ss), True)
        ks.append(k)
        ss.append(s)
    return PGRun(np.array(ks), np.array(ss), False)


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
def observer_controller_cost(L, *, episodes: int = 2000, seed: int = 0, plant="double-integrator-output") -> dict:
    """Monte Carlo T-step cost of the LQR gain acting on the Kalman *predictor* with gain ``L``.

    The controller is :math:`u_t = -K\\hat x_t`, :math:`\\hat x_{t+1} = A\\hat x_t + Bu_t + L(y_t - C\\hat x_t)`,
    :math:`\\hat x_0 = \\bar x_0`, with K the discounted LQR gain (:func:`pgcontrol.lqr.optimal_gain`);
    ``episodes`` episodes of the plant's horizon T are simulated at once in torch.
    Returns ``{"mean", "se", "episodes"}`` of the discounted T-step cost.
    """
    p = plants.make(plant)
    K, _ = lqr.optimal_gain(p)
    L = np.asarray(L, dtype=float).reshape(p.n, p.p)
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
        u = -(xh @ Kt)
        total += disc * sim.stage_cost(x, u, t.Q, t.R)
        xh = xh @ t.A.T + u @ t.B.T + (y - xh @ t.C.T) @ Lt
        x = x @ t.A.T + u @ t.B.T + torch.randn(N, p.n, **kw) @ t.W_sqrt.T
        disc *= p.gamma
    c = total.numpy()
    return {"mean": float(c.mean()), "se": float(c.std(ddof=1) / np.sqrt(N)), "episodes": N}


@_one_thread
def output_feedback_comparison(L, *, episodes: int = 2000, seed: int = 0) -> dict:
    """Lab 6's figure: the student's filter + LQR against the best static output gain on ``double-integrator-output``.

    Returns the exact T-step cost of the best static output gain ``J_static`` (at ``k_static``), the Monte Carlo
    cost of the controller on the student's predictor gain ``J_filter`` ± ``se_filter``
    (:func:`observer_controller_cost`), the exact cost of LQR with the full state ``J_lqr``, and one simulated
    position trajectory under each output-feedback controller (``x_static``, ``x_filter``).
    """
    p = plants.make(PLANT)
    K_y, J_static = static_reference()
    mc = observer_controller_cost(L, episodes=episodes, seed=seed)
    K, _ = lqr.optimal_gain(p)
    ro = sim.rollout_linear(p, K_y, 0.0, 1, seed=seed, output_feedback=True)
    one = observer_controller_trajectory(L, seed=seed)
    return {"J_static": J_static, "k_static": float(np.ravel(K_y)[0]), "J_filter": mc["mean"], "se_filter": mc["se"],
            "J_lqr": float(lqr.policy_cost(p, K, 0.0, horizon=p.horizon)),
            "x_static": ro.states[:, 0, 0].numpy(), "x_filter": one}


PLANT = "double-integrator-output"


@functools.lru_cache(maxsize=1)
def static_reference() -> tuple[np.ndarray, float]:
    """The best static output gain on ``double-integrator-output`` and its exact T-step cost (cached)."""
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
