"""Lab 2: REINFORCE on the scalar LQG, eqs. (3.15)–(3.26) and (4.24)–(4.26).

The student writes

* ``gaussian_log_prob(u, mean, std) -> array``: the diagonal Gaussian
  log-density (4.24)–(4.26), summed over the last axis;
* ``reward_to_go(rewards, gamma) -> array``: :math:`G_t = \\sum_{k\\ge t}\\gamma^{k-t} r_k`
  (the inner sum of (3.21)) for rewards of shape ``(M, T)``;
* ``reinforce_gradient(x, u, r, k, sigma, gamma, estimator) -> (dk, dsigma)``:
  the Monte Carlo gradient (3.24) of the expected discounted *return* of the
  slides' policy :math:`u \\sim \\mathcal N(kx, \\sigma^2)` from M trajectories
  (arrays ``(M, T)``), with scores :math:`\\partial_k\\log\\pi = (u-kx)x/\\sigma^2`,
  :math:`\\partial_\\sigma\\log\\pi = ((u-kx)^2-\\sigma^2)/\\sigma^3` and

  - ``"total"`` (3.15): :math:`\\frac1M\\sum_m (\\sum_t \\nabla\\log\\pi_t)(\\sum_t\\gamma^t r_t)`,
  - ``"rtg"`` (3.19): :math:`\\frac1M\\sum_m\\sum_t \\gamma^t\\nabla\\log\\pi_t\\,G_t`,
  - ``"rtg_baseline"``: (3.19) with :math:`G_t^{(m)} - b_t^{(m)}`,
    :math:`b_t^{(m)} = \\frac1{M-1}\\sum_{j\\ne m} G_t^{(j)}` (the mean over the
    *other* trajectories, so that it does not depend on trajectory m's own
    actions and (4.8)–(4.10) apply).

Statistical items (stated test and power)
-----------------------------------------
Data: ``scalar-lqg`` (T = 50, γ = 0.9) under k = −0.5, σ = 0.3, simulated by
:func:`pgcontrol.sim.rollout_linear`: R = 2000 independent batches of M = 5
trajectories, seed derived from the check's seed. The exact gradient of the
T-step expected return is ``(dK, −dstd)`` of :func:`pgcontrol.lqr.policy_gradient`
(k = −K).

* *Unbiasedness*: for each estimator and each of (dk, dσ), the z statistic of
  the mean of the R estimates against the exact gradient (standard error from
  the sample standard deviation) must satisfy |z| < 4.5. Under a correct
  solution the six |z| exceed 3.4 in none of 300 simulated checks (Gaussian
  tail: P(any |z| > 4.5) ≈ 4e-5), so it passes with probability > 0.999.
  Reward-to-go without γᵗ and the baseline that includes the trajectory's
  own return give |z| ≥ 14.5 in all 300 simulated checks (bias of −380 % and
  −20 %), so they fail with probability > 0.99.
* *Variance ordering*: the sample variances must satisfy
  Var(total) > Var(rtg) > Var(rtg_baseline) for both components. For a
  correct solution the smallest of the four ratios was ≥ 3.16 in 300
  simulated checks (the ratio's sampling error at R = 2000 is a few per cent).
  Reward-to-go without γᵗ has a larger variance than the total return
  (ratio ≈ 0.55 for dk), so that mistake fails this item too.
"""

from __future__ import annotations

import numpy as np

from .. import lqr, plants, sim
from ._core import (Item, Lab, Mismatch, StudentError, as_array, as_float, as_tuple, compare, fmt, quiet,
                    z_statistic)

K_STAT, SIGMA_STAT, M_STAT, R_STAT = -0.5, 0.3, 5, 2000
Z_MAX = 4.5
ESTIMATORS = ("total", "rtg", "rtg_baseline")


# ------------------------------------------------------------------ exact reference formulas (the checker's)


def log_prob(u, mean, std):
    """(4.26): −Σ_j [(u_j − μ_j)²/(2σ_j²) + ½ log(2πσ_j²)]."""
    return -(((u - mean) ** 2) / (2 * std**2) + 0.5 * np.log(2 * np.pi * std**2)).sum(-1)


def rtg(r, gamma):
    """G_t = Σ_{k≥t} γ^{k−t} r_k along the last axis (3.21)."""
    G = np.zeros_like(r, dtype=float)
    acc = np.zeros(r.shape[:-1])
    for t in range(r.shape[-1] - 1, -1, -1):
        acc = r[..., t] + gamma * acc
        G[..., t] = acc
    return G


def scores(x, u, k, sigma):
    e = u - k * x
    return e * x / sigma**2, (e**2 - sigma**2) / sigma**3


def gradient(x, u, r, k, sigma, gamma, estimator, *, variant: str | None = None):
    """The checker's estimator; ``variant`` gives the known mistakes for the feedback."""
    T = r.shape[-1]
    disc = gamma ** np.arange(T)
    sk, ss = scores(x, u, k, sigma)
    G = rtg(r, gamma)
    M = r.shape[-2]
    if estimator == "total":
        ret = (r * (disc if variant != "undiscounted_return" else 1.0)).sum(-1)
        out = np.array([(sk.sum(-1) * ret).mean(-1), (ss.sum(-1) * ret).mean(-1)])
    else:
        psi = G
        if estimator == "rtg_baseline":
            b = G.mean(-2, keepdims=True) if variant == "own_baseline" else (G.sum(-2, keepdims=True) - G) / (M - 1)
            psi = G - b
        if variant != "no_discount_weight":
            psi = disc * psi
        out = np.array([(sk * psi).sum(-1).mean(-1), (ss * psi).sum(-1).mean(-1)])
    if variant == "sum_not_mean":
        out = out * M
    if variant == "score_sign":
        out = -out
    return out


# ------------------------------------------------------------------ items


def check_log_prob(sub, rng) -> str:
    """Random u, mean (N = 7, m = 2) and std (m,) against (4.26)."""
    N, m = 7, 2
    mean = rng.standard_normal((N, m))
    u = mean + rng.standard_normal((N, m)) * 0.7
    std = rng.uniform(0.3, 2.5, m)
    expected = log_prob(u, mean, std)
    out = sub.call("gaussian_log_prob", u, mean, std)
    a = as_array(out, "gaussian_log_prob")
    if a.shape == (N, m):
        raise Mismatch(f"returned shape {a.shape}: the log-density of the action vector is the sum over its m "
                       f"components (4.24)/(4.26); sum the last axis to get shape ({N},)")
    a = as_array(a, "gaussian_log_prob", (N,))
    c = 0.5 * np.log(2 * np.pi)
    compare(a, expected, what="log π(u)", inputs=f"u={fmt(u, 3)}, mean={fmt(mean, 3)}, std={fmt(std, 3)}", mistakes=[
        (expected + np.log(std).sum(), "the log-density is missing the −log σ term: (4.26) has −½log(2πσ²) = "
         "−½log 2π − log σ for each component"),
        (expected + m * c, "the log-density is missing the constant −½log 2π of (4.26) (harmless for gradients, "
         "but the function should be the log-density)"),
        (log_prob(u, mean, np.sqrt(std)), "std was used as the variance: (4.25) divides by 2σ², with σ = std"),
        (-expected, "sign: log π = −Σ[(u − μ)²/(2σ²) + ½log(2πσ²)] (4.26)"),
    ])
    return "matches (4.26)"


def check_reward_to_go(sub, rng) -> str:
    """Random rewards (M = 3, T = 7), γ ∈ [0.5, 0.95], against (3.21)."""
    r = rng.standard_normal((3, 7))
    gamma = float(rng.uniform(0.5, 0.95))
    expected = rtg(r, gamma)
    out = as_array(sub.call("reward_to_go", r, gamma), "reward_to_go", r.shape)
    disc = gamma ** np.arange(r.shape[1])
    compare(out, expected, what="reward-to-go", inputs=f"rewards={fmt(r, 3)}, gamma={gamma:.4f}", mistakes=[
        (rtg(r, 1.0), "no discount: this is Σ_{k≥t} r_k of (3.20); (3.21) weights r_k by γ^(k−t)"),
        (rtg(r * disc, 1.0), "γ^k instead of γ^(k−t): this is the inner sum of (3.18), which still carries the γᵗ "
         "that (3.19) moves in front; the reward-to-go of (3.21) restarts the discount at t"),
        (np.cumsum(r * disc, axis=1), "summed forward (k ≤ t): the reward-to-go sums the rewards from t to T (3.21)"),
        (np.cumsum(r, axis=1), "summed forward (k ≤ t) and undiscounted: the reward-to-go is Σ_{k≥t} γ^(k−t) r_k (3.21)"),
    ])
    return "matches (3.21)"


def _batch(rng, M=4, T=6):
    k = float(rng.uniform(-1.2, -0.3))
    sigma = float(rng.uniform(0.2, 0.8))
    gamma = float(rng.uniform(0.6, 0.95))
    x = rng.standard_normal((M, T))
    u = k * x + sigma * rng.standard_normal((M, T))
    r = -(x**2) - 0.1 * u**2 + 0.1 * rng.standard_normal((M, T))
    return x, u, r, k, sigma, gamma


def _call_gradient(sub, x, u, r, k, sigma, gamma, estimator):
    out = as_tuple(sub.call("reinforce_gradient", x, u, r, k, sigma, gamma, estimator), "reinforce_gradient", 2)
    return np.array([as_float(out[0], "dk"), as_float(out[1], "dsigma")])


COMMON = [
    ("sum_not_mean", "summed over the M trajectories: (3.23)–(3.24) average them (divide by M)"),
    ("score_sign", "sign: the score of N(kx, σ²) is ∂log π/∂k = (u − kx)x/σ², ∂log π/∂σ = ((u − kx)² − σ²)/σ³ "
     "(from (4.26)); the result is the gradient of the return, to ascend (3.22)"),
]


def _exact_item(estimator: str, extra):
    def run(sub, rng) -> str:
        x, u, r, k, sigma, gamma = _batch(rng)
        expected = gradient(x, u, r, k, sigma, gamma, estimator)
        actual = _call_gradient(sub, x, u, r, k, sigma, gamma, estimator)
        mistakes = [(gradient(x, u, r, k, sigma, gamma, estimator, variant=v), msg) for v, msg in extra + COMMON]
        if estimator != "total":
            mistakes.append((gradient(x, u, r, k, sigma, gamma, "total"), f"estimator {estimator!r} returned the "
                             "total-return estimator (3.15)"))
        compare(actual, expected, what=f"(dk, dsigma) for estimator={estimator!r}",
                inputs=f"M=4 trajectories of T=6, k={k:.4f}, sigma={sigma:.4f}, gamma={gamma:.4f}, x={fmt(x, 3)}, "
                       f"u={fmt(u, 3)}, r={fmt(r, 3)}", mistakes=mistakes, rtol=1e-6)
        return "matches the estimator exactly on a random batch"
    run.__doc__ = f"The estimator {estimator!r} on a random batch (M = 4, T = 6), exactly."
    return run


NO_GAMMA_T = ("reward-to-go without the γᵗ factor of (3.19): (3.21) drops it, which estimates the gradient of a "
              "different (undiscounted-in-t) objective and is biased for the discounted return")
OWN_BASELINE = ("the baseline includes the trajectory's own return: b_t must not depend on the trajectory's own "
                "actions for (4.8)–(4.10) to give zero mean; use the mean over the other M − 1 trajectories")


def _estimates(sub) -> dict:
    """R = 2000 batches of M = 5 trajectories on scalar-lqg, and the student's three estimates on each (cached)."""
    key = ("lab2.estimates", sub.seed)
    if key in sub.cache:
        return sub.cache[key]
    p = plants.make("scalar-lqg")
    T = p.horizon
    ro = sim.rollout_linear(p, [[-K_STAT]], SIGMA_STAT, n_traj=R_STAT * M_STAT, horizon=T,
                            seed=int(np.random.SeedSequence([sub.seed, 2]).generate_state(1)[0]))
    x = ro.states[:-1, :, 0].numpy().T.reshape(R_STAT, M_STAT, T)
    u = ro.actions[:, :, 0].numpy().T.reshape(R_STAT, M_STAT, T)
    r = -ro.costs.numpy().T.reshape(R_STAT, M_STAT, T)
    dK, dstd = lqr.policy_gradient(p, [[-K_STAT]], SIGMA_STAT, horizon=T)
    exact = np.array([dK[0, 0], -dstd[0]])
    est = {}
    with quiet():
        for e in ESTIMATORS:
            est[e] = np.array([_call_gradient(sub, x[i], u[i], r[i], K_STAT, SIGMA_STAT, p.gamma, e)
                               for i in range(R_STAT)])
    if not all(np.all(np.isfinite(v)) for v in est.values()):
        raise StudentError("reinforce_gradient returned a non-finite value on the simulated batches")
    sub.cache[key] = (est, exact)
    return sub.cache[key]


def check_unbiased(sub, rng) -> str:
    """Unbiasedness z-tests of the three estimators against lqr.policy_gradient (module docstring)."""
    est, exact = _estimates(sub)
    lines, bad = [], []
    for e in ESTIMATORS:
        mean, se, z = z_statistic(est[e], exact)
        lines.append(f"{e}: mean (dk, dσ) = ({mean[0]:.4g}, {mean[1]:.4g}) ± ({se[0]:.2g}, {se[1]:.2g}), "
                     f"z = ({z[0]:.2f}, {z[1]:.2f})")
        if not np.all(np.abs(z) < Z_MAX):
            bad.append(e)
    head = (f"scalar-lqg, k = {K_STAT}, σ = {SIGMA_STAT}, {R_STAT} batches of M = {M_STAT}; exact gradient of the "
            f"return (dk, dσ) = ({exact[0]:.4g}, {exact[1]:.4g}) [lqr.policy_gradient]")
    if not bad:
        return head + "\n" + "\n".join(lines)
    msg = f"biased: estimator(s) {', '.join(bad)} miss the exact gradient by more than {Z_MAX} standard errors."
    if "rtg" in bad:
        msg += "\nknown mistake? " + NO_GAMMA_T
    if "rtg_baseline" in bad and "rtg" not in bad:
        msg += "\nknown mistake? " + OWN_BASELINE
    raise Mismatch(msg + "\n" + head + "\n" + "\n".join(lines))


def check_variance(sub, rng) -> str:
    """Var(total) > Var(rtg) > Var(rtg_baseline) for both components (module docstring)."""
    est, _ = _estimates(sub)
    sd = {e: est[e].std(0, ddof=1) for e in ESTIMATORS}
    line = "; ".join(f"sd[{e}] = ({sd[e][0]:.3g}, {sd[e][1]:.3g})" for e in ESTIMATORS)
    ok = np.all(sd["total"] > sd["rtg"]) and np.all(sd["rtg"] > sd["rtg_baseline"])
    if ok:
        return "variance ordering holds: " + line
    msg = ("the variance ordering total (3.15) > reward-to-go (3.19) > reward-to-go with baseline (4.11) fails: " + line)
    if not np.all(sd["total"] > sd["rtg"]):
        msg += "\nknown mistake? " + NO_GAMMA_T
    raise Mismatch(msg)


LAB = Lab(
    number=2,
    title="REINFORCE on the scalar LQG",
    equations="(3.15)–(3.26), (4.8)–(4.11), (4.24)–(4.26)",
    functions={
        "gaussian_log_prob": "gaussian_log_prob(u, mean, std) -> array",
        "reward_to_go": "reward_to_go(rewards, gamma) -> array",
        "reinforce_gradient": "reinforce_gradient(x, u, r, k, sigma, gamma, estimator) -> (dk, dsigma)",
    },
    summary="the log-derivative trick: the Gaussian log-density, reward-to-go, and three REINFORCE estimators "
            "(total return, reward-to-go, leave-one-out baseline), checked unbiased against the exact gradient",
    items=(
        Item("gaussian_log_prob", "gaussian_log_prob: the diagonal Gaussian log-density (4.24)–(4.26)", 2,
             ("gaussian_log_prob",), check_log_prob),
        Item("reward_to_go", "reward_to_go: G_t = Σ_{k≥t} γ^(k−t) r_k (3.21)", 2, ("reward_to_go",),
             check_reward_to_go),
        Item("reinforce.total", "reinforce_gradient 'total': the total-return estimator (3.15), (3.24)", 1,
             ("reinforce_gradient",),
             _exact_item("total", [("undiscounted_return", "the return is not discounted: (3.15) multiplies by "
                                    "Σ_t γᵗ r_t")])),
        Item("reinforce.rtg", "reinforce_gradient 'rtg': reward-to-go with γᵗ (3.19), (3.24)", 2,
             ("reinforce_gradient",), _exact_item("rtg", [("no_discount_weight", NO_GAMMA_T)])),
        Item("reinforce.rtg_baseline", "reinforce_gradient 'rtg_baseline': leave-one-out baseline (3.19), (4.8)–(4.11)", 2,
             ("reinforce_gradient",),
             _exact_item("rtg_baseline", [("own_baseline", OWN_BASELINE), ("no_discount_weight", NO_GAMMA_T)])),
        Item("reinforce.unbiased", "reinforce_gradient: all three estimators unbiased vs lqr.policy_gradient "
             "(statistical, 2000 batches)", 2, ("reinforce_gradient",), check_unbiased, statistical=True),
        Item("reinforce.variance", "reinforce_gradient: variance total > rtg > rtg_baseline (statistical)", 1,
             ("reinforce_gradient",), check_variance, statistical=True),
    ),
)
