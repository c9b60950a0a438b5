"""Variance reduction made concrete: the REINFORCE family against the exact gradient.

On ``double-integrator`` at the fixed linear Gaussian policy ``u = -K x + eps``
with ``K = [[0.3, 0.9]]``, ``std = 0.4`` (the point of
``tests/test_learners.py``), the exact gradient of the T-step cost
:math:`\\nabla_\\theta J_T`, :math:`\\theta = (K, \\sigma)`, comes from
:func:`pgcontrol.lqr.policy_gradient` (``horizon = T = 150``). Each sampled
estimator is the Monte Carlo average (3.23) over N whole episodes of

.. math::

    \\hat g = -\\frac1N\\sum_{m=1}^N\\sum_{t=0}^{T-1} \\nabla_\\theta\\log\\pi(u_t^{(m)}|x_t^{(m)})\\,\\Psi_t^{(m)}

(the minus sign turns the return gradient into a cost gradient) with the
weights :math:`\\Psi_t` of :func:`pgcontrol.rollout.pg_advantages`:

* ``total`` — the whole discounted return (3.15);
* ``rtg`` — reward-to-go with the :math:`\\gamma^t` factor of (3.19) (unbiased);
* ``rtg_nodisc`` — the common reward-to-go (3.21) without :math:`\\gamma^t`:
  biased for the discounted objective, shown for contrast;
* ``rtg_mean`` — reward-to-go minus the leave-one-out batch mean at the same
  t (:func:`pgcontrol.rollout.time_baseline`; a baseline that does not depend
  on the sample's own actions has zero mean, (4.8)); at N = 1 there is no
  other trajectory and the baseline is 0;
* ``rtg_value`` — reward-to-go minus the exact value :math:`V_t(x_t)` (4.11)–(4.12);
* ``gae_exact_λ`` — GAE(γ, λ) (6.46) with the exact :math:`V_t`; with the exact
  value function every λ is unbiased (the TD residuals after step t have zero
  conditional mean) and λ = 1 is ``rtg_value``;
* ``rtg_fitted``, ``gae_fitted_λ`` — the same with a *fitted* quadratic critic
  :class:`pgcontrol.critics.QuadraticValue` (time-invariant
  :math:`\\hat V(x) = x^\\top \\hat P x + \\hat c`, least squares on the
  reward-to-go of a few independent pilot episodes): still unbiased as a
  baseline (λ = 1), biased for λ < 1 because :math:`\\gamma\\hat V(x_{t+1})` depends on
  :math:`u_t`.

The exact value of the T-step problem is :math:`V_t(x) = -(x^\\top P_t x + q_t)`
(rewards are minus costs) with :math:`P_T = 0, q_T = 0`,

.. math::

    P_t = Q + K^\\top R K + \\gamma A_K^\\top P_{t+1} A_K,\\qquad
    q_t = \\operatorname{tr}(R\\Sigma_\\varepsilon) + \\gamma\\,[q_{t+1} + \\operatorname{tr}(P_{t+1} N)],

the finite-horizon recursion behind :func:`pgcontrol.lqr.policy_cost`
(:math:`A_K = A - BK`, :math:`N = B\\Sigma_\\varepsilon B^\\top + W`).
The episode's end is the objective's horizon, so nothing is bootstrapped after
the last step (:math:`V_T = 0`) for any critic.

Protocol: R independent repetitions; repetition r rolls out
:math:`N_{max}` episodes (:func:`pgcontrol.sim.rollout_linear`) and the
estimate for N uses its first N episodes. Reported per estimator and N:
the trace of the covariance of :math:`\\hat g` over the R repetitions, the
normalised mean squared error :math:`E\\|\\hat g - \\nabla J\\|^2/\\|\\nabla J\\|^2`,
and the bias :math:`\\overline{\\hat g} - \\nabla J` with its standard error and
Hotelling's :math:`T^2` test of zero bias (pooled at :math:`N_{max}`: all
:math:`R N_{max}` episodes). ``seeds`` sets R.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.stats
import torch

from .. import lqr, plants
from ..critics import QuadraticValue
from ..rollout import Batch, batch_from_rollout, pg_advantages
from ..sim import rollout_linear
from ..sweep import TaskSpec
from . import save_figure, save_json, sweep

PLANT = "double-integrator"
GAIN = [[0.3, 0.9]]
STD = 0.4
N_REF = 16
N_PILOT = 8  # episodes the fitted critic is regressed on
CHUNK_EPISODES = 2048  # rollouts simulated and processed at once (bounds the memory to ~1 GB)
LAMBDAS = (0.0, 0.5, 0.9)

#: name -> (label, estimator, baseline, critic, lambda, discount_weighting)
ESTIMATORS = {
    "total": ("total return (3.15)", "total", "none", None, 1.0, True),
    "rtg": ("reward-to-go (3.19)", "rtg", "none", None, 1.0, True),
    "rtg_nodisc": ("reward-to-go, no $\\gamma^t$ (3.21)", "rtg", "none", None, 1.0, False),
    "rtg_mean": ("rtg − mean baseline (4.8)", "rtg", "mean", None, 1.0, True),
    "rtg_value": ("rtg − exact $V_t$ (4.12)", "rtg", "value", "exact", 1.0, True),
    **{f"gae_exact_{lam:g}": (f"GAE λ={lam:g}, exact $V_t$ (6.46)", "gae", "value", "exact", lam, True)
       for lam in LAMBDAS},
    "rtg_fitted": ("rtg − fitted $\\hat V$", "rtg", "value", "fitted", 1.0, True),
    **{f"gae_fitted_{lam:g}": (f"GAE λ={lam:g}, fitted $\\hat V$", "gae", "value", "fitted", lam, True)
       for lam in LAMBDAS},
}
#: estimators that are unbiased for ∇J_T by construction
UNBIASED = ["total", "rtg", "rtg_mean", "rtg_value", *[f"gae_exact_{lam:g}" for lam in LAMBDAS], "rtg_fitted"]


def _batch(ro, n_max: int, reps: int) -> Batch:
    """A :class:`Batch` of shape ``(T, n_max, reps)`` from ``reps * n_max`` rollouts (whole episodes).

    Episode j = r * n_max + i becomes column ``[:, i, r]``: dimension 1 holds the
    N episodes of one estimate, which is the axis :func:`pgcontrol.rollout.time_baseline`
    averages over.
    """
    def shape(x):
        return x.reshape(x.shape[0], reps, n_max, *x.shape[2:]).transpose(1, 2)

    return batch_from_rollout(ro._replace(states=shape(ro.states), actions=shape(ro.actions), costs=shape(ro.costs),
                                          diverged=ro.diverged.reshape(reps, n_max).T))


def _sub(batch: Batch, n: int) -> Batch:
    """The first ``n`` episodes of every repetition."""
    return Batch(*(getattr(batch, k)[:, :n] for k in ("obs", "actions", "logp", "rewards", "next_obs", "terminated",
                                                      "truncated", "valid", "t_in_episode")))


def scores(batch: Batch, K: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """:math:`\\nabla_\\theta\\log\\pi(u_t|x_t)` for :math:`\\theta = (K, \\sigma)`, shape ``(..., m n + m)``.

    Analytic score of (4.26) for ``u ~ N(-Kx, diag(σ²))``
    (:class:`pgcontrol.policies.LinearGaussianPolicy`):
    :math:`\\partial_{K_{ij}} = -\\varepsilon_i x_j/\\sigma_i^2`,
    :math:`\\partial_{\\sigma_i} = \\varepsilon_i^2/\\sigma_i^3 - 1/\\sigma_i`,
    ordered like :func:`pgcontrol.lqr.fisher`.
    """
    x, u = batch.obs, batch.actions
    Kt = torch.as_tensor(K, dtype=x.dtype)
    s = torch.as_tensor(std, dtype=x.dtype)
    eps = u + x @ Kt.T
    sK = -(eps / s**2)[..., :, None] * x[..., None, :]
    ss = eps**2 / s**3 - 1 / s
    return torch.cat([sK.flatten(-2), ss], dim=-1)


def _per_episode(score: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Cost-gradient term of each episode, :math:`-\\sum_t \\nabla\\log\\pi\\,\\Psi_t`, shape ``(N, R, d)``."""
    return -torch.einsum("tnrd,tnr->nrd", score, psi)


def _values(batch: Batch, kind: str, P, q, critic):
    """``(V(x_t), V(x_{t+1}))`` in reward units, with ``V_T = 0``."""
    if kind == "exact":
        Pt = torch.as_tensor(P)
        qt = torch.as_tensor(q)
        v = -(torch.einsum("tnri,tij,tnrj->tnr", batch.obs, Pt[:-1], batch.obs) + qt[:-1, None, None])
        nv = -(torch.einsum("tnri,tij,tnrj->tnr", batch.next_obs, Pt[1:], batch.next_obs) + qt[1:, None, None])
    else:
        with torch.no_grad():
            v, nv = critic(batch.obs), critic(batch.next_obs)
    nv = nv.clone()
    nv[-1] = 0.0  # the horizon: nothing follows the last step of the T-step objective
    return v, nv


def _release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    The chunks allocate and free hundreds of MB of tensors of many sizes; without
    this glibc's heap fragments and the resident size grows by the size of
    one chunk per chunk (measured: 9 GB for the full run instead of ~0.5 GB).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def fit_critic(plant, K, std, n_episodes: int, seed: int) -> QuadraticValue:
    """The fitted critic: :meth:`QuadraticValue.fit_least_squares` on the reward-to-go (3.21 targets) of pilot episodes."""
    ro = rollout_linear(plant, K, std, n_traj=n_episodes, seed=seed)
    b = _batch(ro, n_episodes, 1)
    _, rtg = pg_advantages(b, estimator="rtg", baseline="none", gamma=plant.gamma, discount_weighting=False)
    return QuadraticValue(plant.n).fit_least_squares(b.obs, rtg)


def _chunks(reps: int, ns) -> list[tuple[int, int]]:
    """``(first repetition, repetitions)`` of each chunk of at most :data:`CHUNK_EPISODES` rollouts."""
    size = max(1, CHUNK_EPISODES // max(ns))
    return [(r0, min(size, reps - r0)) for r0 in range(0, reps, size)]


def _chunk_estimates(plant, K, s, ns, c: int, r: int, seed: int, P, q, critic) -> dict:
    """``{name: {N: (r, d) array}}``: the estimates of chunk ``c`` (``r`` repetitions of ``max(ns)`` rollouts)."""
    n_max = max(ns)
    out = {k: {} for k in ESTIMATORS}
    ro = rollout_linear(plant, K, s, n_traj=r * n_max, seed=seed * 1_000_003 + c)
    batch = _batch(ro, n_max, r)
    sc = scores(batch, K, s)
    vals = {"exact": _values(batch, "exact", P, q, None), "fitted": _values(batch, "fitted", P, q, critic),
            None: (None, None)}
    for name, (_, est, base, crit, lam, dw) in ESTIMATORS.items():
        v, nv = vals[crit]
        if base == "mean":  # depends on the batch: recompute for every N
            for n in ns:
                b = _sub(batch, n)
                psi, _ = pg_advantages(b, estimator=est, baseline=base, gamma=plant.gamma, lam=lam,
                                       discount_weighting=dw)
                out[name][n] = _per_episode(sc[:, :n], psi).mean(0).numpy()
            continue
        psi, _ = pg_advantages(batch, estimator=est, baseline=base, gamma=plant.gamma, values=v,
                               next_values=nv, lam=lam, discount_weighting=dw)
        g = _per_episode(sc, psi)  # i.i.d. over episodes: the first N of each repetition
        csum = g.cumsum(0)
        for n in ns:
            out[name][n] = (csum[n - 1] / n).numpy()
    del ro, batch, sc, vals, psi, g, csum
    _release_memory()
    return out


def _model(plant, K, s, seed: int):
    """The exact finite-horizon value (P, q) and the fitted critic, shared by every chunk."""
    P, q = lqr.finite_horizon_value(plant, K, s, plant.horizon)
    return P, q, fit_critic(plant, K, s, N_PILOT, seed=10_000 + seed)


def chunk_run(plant: str, K: list, std: list, ns: list, chunk: int, reps: int, seed: int) -> dict:
    """One chunk as a sweep task (:class:`pgcontrol.sweep.TaskSpec`): ``{name: {str(N): (reps, d) list}}``."""
    p = plants.make(plant)
    K, s = p.check_gain(K, std)
    est = _chunk_estimates(p, K, s, ns, chunk, reps, seed, *_model(p, K, s, seed))
    return {name: {str(n): a.tolist() for n, a in by_n.items()} for name, by_n in est.items()}


def statistics(est: dict, exact: np.ndarray) -> dict:
    """Per estimator and N: tr Cov, NMSE, bias, standard error, Hotelling T² and its p-value."""
    g2 = float(exact @ exact)
    res = {}
    for name, by_n in est.items():
        rows = {}
        for n, G in by_n.items():
            R, d = G.shape
            mean = G.mean(0)
            cov = np.cov(G, rowvar=False, ddof=1).reshape(d, d)
            bias = mean - exact
            se = np.sqrt(np.diag(cov) / R)
            try:
                t2 = float(bias @ np.linalg.solve(cov / R, bias))
            except np.linalg.LinAlgError:
                t2 = float("nan")
            # Hotelling's T² -> F(d, R - d)
            f = t2 * (R - d) / (d * (R - 1)) if R > d else float("nan")
            p = float(scipy.stats.f.sf(f, d, R - d)) if R > d else float("nan")
            rows[int(n)] = {
                "var_trace": float(np.trace(cov)),
                "nmse": float(np.mean(((G - exact) ** 2).sum(1)) / g2),
                "bias": bias.tolist(),
                "bias_se": se.tolist(),
                "rel_bias": float(np.linalg.norm(bias) / np.sqrt(g2)),
                "rel_bias_noise": float(np.sqrt(np.trace(cov) / R) / np.sqrt(g2)),
                "max_abs_z": float(np.max(np.abs(bias) / se)),
                "hotelling_t2": t2,
                "p_value": p,
                "mean": mean.tolist(),
            }
        res[name] = rows
    return res


def _figure(stats: dict, ns, exact, meta) -> "Figure":  # noqa: F821
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.6))
    axs = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.1]})
    ns = list(ns)
    colors = {"total": "k", "rtg": "tab:blue", "rtg_nodisc": "tab:cyan", "rtg_mean": "tab:orange",
              "rtg_value": "tab:green", "rtg_fitted": "tab:olive", "gae_exact_0": "tab:red",
              "gae_exact_0.5": "tab:purple", "gae_exact_0.9": "tab:brown", "gae_fitted_0": "tab:red",
              "gae_fitted_0.5": "tab:purple", "gae_fitted_0.9": "tab:brown"}
    groups = [["total", "rtg_nodisc", "rtg", "rtg_mean", "rtg_value", "rtg_fitted"],
              ["rtg_value", "gae_exact_0.9", "gae_exact_0.5", "gae_exact_0", "rtg_fitted",
               "gae_fitted_0.9", "gae_fitted_0.5", "gae_fitted_0"]]
    titles = ["(a) Monte Carlo returns and baselines", "(b) GAE(λ): exact $V_t$ (solid) vs fitted $\\hat V$ (dashed)"]
    for ax, group, title in zip(axs[:2], groups, titles):
        for name in group:
            y = [stats[name][n]["var_trace"] for n in ns]
            ls = "--" if "fitted" in name else "-"
            ax.loglog(ns, y, ls, marker="o", ms=3, color=colors[name], label=ESTIMATORS[name][0])
        ax.set_xlabel("rollouts per estimate N")
        ax.set_ylabel("tr Cov[$\\hat g$]")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    n_max = max(ns)
    names = list(ESTIMATORS)
    rb = [stats[k][n_max]["rel_bias"] for k in names]
    noise = [stats[k][n_max]["rel_bias_noise"] for k in names]
    ax = axs[2]
    yy = np.arange(len(names))
    ax.barh(yy, rb, color=[colors[k] for k in names], alpha=0.8, hatch=None)
    ax.plot(noise, yy, "k|", ms=12, mew=2)
    for i, k in enumerate(names):
        p = stats[k][n_max]["p_value"]
        ax.text(max(rb[i], noise[i]) * 1.15, i, f"p={p:.2g}" if p > 0 else "p<1e-300", va="center", fontsize=7)
    ax.set_yticks(yy, [ESTIMATORS[k][0] for k in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("relative bias $\\|\\overline{\\hat g} - \\nabla J\\| / \\|\\nabla J\\|$")
    ax.set_title(f"(c) bias, pooled over R·N = {meta['reps'] * n_max} rollouts\n"
                 "| = sampling-noise level $\\sqrt{\\mathrm{tr\\,Cov}/R}/\\|\\nabla J\\|$; "
                 "p = Hotelling test of zero bias", fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.set_xlim(right=max(rb) * 8)
    fig.suptitle(f"Gradient estimators on {meta['plant']}, K = {meta['K']}, σ = {meta['std']}, T = {meta['T']}, "
                 f"γ = {meta['gamma']}; R = {meta['reps']} repetitions; |∇J| = {np.linalg.norm(exact):.3g}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def run(*, quick: bool = False, seeds: int | None = None, out: Path, progress: bool = True,
        workers: int | None = None, ray: str | None = None) -> dict:
    """Run the experiment (see the module docstring); ``seeds`` is the number of repetitions R."""
    reps = seeds if seeds is not None else (200 if quick else 1000)
    ns = [2**k for k in range(0, 7 if quick else 9)]  # 1..64 (quick) or 1..256
    plant = plants.make(PLANT)
    K, s = plant.check_gain(GAIN, STD)
    T = plant.horizon
    dK, ds = lqr.policy_gradient(plant, K, s, horizon=T)
    exact = np.concatenate([dK.ravel(), ds])
    # one sweep run per chunk of rollouts (seed 0: the chunks' streams are seeded 0·1 000 003 + c)
    specs = [TaskSpec.make(f"{__name__}:chunk_run", 0, plant=PLANT, K=K.tolist(), std=s.tolist(), ns=ns, chunk=c,
                           reps=r) for c, (_, r) in enumerate(_chunks(reps, ns))]
    chunks = [res["output"] for res in sweep("variance", specs, out, workers=workers, ray=ray, progress=progress)]
    est = {name: {n: np.concatenate([np.array(ch[name][str(n)]) for ch in chunks]) for n in ns} for name in ESTIMATORS}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        critic = _model(plant, K, s, 0)[2]
    finally:
        torch.set_num_threads(threads)
    stats = statistics(est, exact)
    P, q = lqr.finite_horizon_value(plant, K, s, T)
    n_ref = N_REF if N_REF in ns else ns[len(ns) // 2]
    n_max = max(ns)
    v_tot = stats["total"][n_ref]["var_trace"]
    meta = {"plant": PLANT, "K": K.tolist(), "std": float(s[0]), "T": T, "gamma": plant.gamma, "reps": reps}
    summary = {
        "experiment": "variance",
        **meta,
        "quick": quick,
        "ns": ns,
        "n_ref": n_ref,
        "exact_gradient": exact.tolist(),
        "exact_cost": lqr.policy_cost(plant, K, s, horizon=T),
        "exact_value_P0": P[0].tolist(),
        "fitted_critic": {"P_cost_units": (-critic.P).tolist(), "c_cost_units": -critic.c, "pilot_episodes": N_PILOT,
                          "relative_P_error_vs_P0": float(np.linalg.norm(-critic.P - P[0]) / np.linalg.norm(P[0]))},
        "labels": {k: v[0] for k, v in ESTIMATORS.items()},
        "unbiased_by_construction": UNBIASED,
        "var_ratio_to_total_at_n_ref": {k: stats[k][n_ref]["var_trace"] / v_tot for k in ESTIMATORS},
        "stats": {k: {str(n): row for n, row in v.items()} for k, v in stats.items()},
    }
    order = ["total", "rtg_nodisc", "rtg", "rtg_mean", "rtg_value", *[f"gae_exact_{lam:g}" for lam in (0.9, 0.5, 0.0)],
             "rtg_fitted", *[f"gae_fitted_{lam:g}" for lam in (0.9, 0.5, 0.0)]]
    lines = [f"variance: {PLANT}, K={K.tolist()}, σ={s[0]:g}, T={T}; R={reps} repetitions; |∇J|={np.linalg.norm(exact):.4g}"]
    for k in order:
        r = stats[k][n_ref]
        b = stats[k][n_max]
        lines.append(f"  {k:15s} tr Cov at N={n_ref}: {r['var_trace']:.4g} ({r['var_trace'] / v_tot:.3g}× total)  "
                     f"NMSE {r['nmse']:.3g}  bias |b|/|∇J| {b['rel_bias']:.3g} (noise {b['rel_bias_noise']:.2g}, "
                     f"max|z| {b['max_abs_z']:.2f}, p={b['p_value']:.2g})")
    summary["headline"] = lines
    save_json(out / "variance.json", summary)
    save_figure(_figure(stats, ns, exact, meta), out / "variance.png")
    return summary
