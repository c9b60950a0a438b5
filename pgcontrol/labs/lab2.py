"""Lab 2: REINFORCE on the scalar LQG, eqs. (3.15)–(3.26) and (4.24)–(4.26).

The student writes

* ``gaussian_log_prob(u, mean, std) -> array``: the diagonal Gaussian
  log-density (4.24)–(4.26), summed over the last axis, and finite far in the
  tails (an item puts actions 40–60 standard deviations off, where
  ``log(prod(exp(...)))`` is −inf);
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

Feedback. A failing statistical item names a known mistake (reward-to-go without γᵗ, the own-return
baseline, the σ-score taken with respect to σ², γ^(t+1), a sum over trajectories, a flipped score) only
when the student's estimates equal that mistake's, computed by :func:`gradient` on the same 2000
batches; otherwise it says which estimator and component is off. It also prints a command that writes
the batches to ``.npz`` (:func:`dump_inputs`).
"""

from __future__ import annotations

import numpy as np

from .. import lqr, plants, sim
from ._core import (Item, Lab, Mismatch, StudentError, as_array, as_float, as_tuple, code_inputs, compare, quiet,
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
    """The checker's estimator; ``variant`` gives the known mistakes for the feedback.

    Works on one batch (arrays ``(M, T)``, result ``(2,)``) or on a stack of batches (``(R, M, T)``, result
    ``(2, R)``).
    """
    T = r.shape[-1]
    disc = gamma ** np.arange(T)
    if variant == "gamma_t_plus_1":
        disc = disc * gamma
    sk, ss = scores(x, u, k, sigma)
    if variant == "score_variance":
        ss = ((u - k * x) ** 2 - sigma**2) / (2 * sigma**4)
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
    compare(a, expected, what="log π(u)", inputs=code_inputs(u=u, mean=mean, std=std), mistakes=[
        (expected + np.log(std).sum(), "the log-density is missing the −log σ term: (4.26) has −½log(2πσ²) = "
         "−½log 2π − log σ for each component"),
        (expected + m * c, "the log-density is missing the constant −½log 2π of (4.26) (harmless for gradients, "
         "but the function should be the log-density)"),
        (log_prob(u, mean, np.sqrt(std)), "std was used as the variance: (4.25) divides by 2σ², with σ = std"),
        (-expected, "sign: log π = −Σ[(u − μ)²/(2σ²) + ½log(2πσ²)] (4.26)"),
    ])
    return "matches (4.26)"


def check_log_prob_stable(sub, rng) -> str:
    """Actions far in the tails (N = 5, m = 3): the log-density must stay finite (4.26).

    In each row one component lies 40 to 60 standard deviations from the mean, so (u − μ)²/(2σ²) is 800 to
    1800 and exp(−(u − μ)²/(2σ²)) underflows to 0 (below about e^−745): the log of a density computed first is
    −inf, while (4.26) is finite (about −800 to −1800).
    """
    N, m = 5, 3
    std = rng.uniform(0.05, 0.5, m)
    mean = rng.standard_normal((N, m))
    sign = rng.choice([-1.0, 1.0], (N, m))
    z = rng.uniform(0.5, 3.0, (N, m)) * sign
    far = rng.integers(0, m, N)
    z[np.arange(N), far] = rng.uniform(40.0, 60.0, N) * sign[np.arange(N), far]
    u = mean + z * std
    expected = log_prob(u, mean, std)
    a = as_array(sub.call("gaussian_log_prob", u, mean, std), "gaussian_log_prob", (N,))
    with np.errstate(all="ignore"):
        dens = np.exp(-((u - mean) ** 2) / (2 * std**2)) / np.sqrt(2 * np.pi * std**2)
        via_prod = np.log(np.prod(dens, -1))
        via_sum = np.log(dens).sum(-1)
    underflow = ("the density was computed before its log: exp(−(u − μ)²/(2σ²)) underflows to 0 this far in the "
                 "tail, and log(0) = −inf. Work with the log-density itself, (4.26): −Σ_j [(u_j − μ_j)²/(2σ_j²) + "
                 "½log(2πσ_j²)], a sum of finite terms (never log(prod(exp(...))))")
    compare(a, expected, what="log π(u) far in the tails", inputs=code_inputs(u=u, mean=mean, std=std),
            mistakes=[(via_prod, underflow), (via_sum, underflow)], rtol=1e-9)
    return f"finite far in the tails (down to {expected.min():.1f})"


def check_reward_to_go(sub, rng) -> str:
    """Random rewards (M = 3, T = 7), γ ∈ [0.5, 0.95], against (3.21)."""
    r = rng.standard_normal((3, 7))
    gamma = float(rng.uniform(0.5, 0.95))
    expected = rtg(r, gamma)
    out = as_array(sub.call("reward_to_go", r, gamma), "reward_to_go", r.shape)
    disc = gamma ** np.arange(r.shape[1])
    compare(out, expected, what="reward-to-go", inputs=code_inputs(rewards=r, gamma=gamma), mistakes=[
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
    ("score_variance", "the σ-score was taken with respect to the variance σ²: ∂log π/∂(σ²) = ((u − kx)² − σ²)/(2σ⁴); "
     "the parameter here is σ, and ∂log π/∂σ = ((u − kx)² − σ²)/σ³ (from (4.26))"),
    ("gamma_t_plus_1", "the discount is off by one: γ^(t+1) instead of γᵗ (3.15), (3.19); the reward of step t = 0 is "
     "not discounted"),
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
                inputs=code_inputs(x=x, u=u, r=r, k=k, sigma=sigma, gamma=gamma, estimator=estimator),
                mistakes=mistakes, rtol=1e-6)
        return "matches the estimator exactly on a random batch"
    run.__doc__ = f"The estimator {estimator!r} on a random batch (M = 4, T = 6), exactly."
    return run


NO_GAMMA_T = ("reward-to-go without the γᵗ factor of (3.19): (3.21) drops it, which estimates the gradient of a "
              "different (undiscounted-in-t) objective and is biased for the discounted return")
OWN_BASELINE = ("the baseline includes the trajectory's own return: b_t must not depend on the trajectory's own "
                "actions for (4.8)–(4.10) to give zero mean; use the mean over the other M − 1 trajectories")


def simulated_batches(seed: int):
    """The statistical items' data for a check seed: ``x, u, r`` of shape (R, M, T) = (2000, 5, 50), and ``gamma``.

    ``scalar-lqg`` under u ~ N(kx, σ²), k = −0.5, σ = 0.3, simulated by :func:`pgcontrol.sim.rollout_linear`
    from a seed derived from the check's seed (the module docstring).
    """
    p = plants.make("scalar-lqg")
    T = p.horizon
    ro = sim.rollout_linear(p, [[-K_STAT]], SIGMA_STAT, n_traj=R_STAT * M_STAT, horizon=T,
                            seed=int(np.random.SeedSequence([int(seed), 2]).generate_state(1)[0]))
    x = ro.states[:-1, :, 0].numpy().T.reshape(R_STAT, M_STAT, T)
    u = ro.actions[:, :, 0].numpy().T.reshape(R_STAT, M_STAT, T)
    r = -ro.costs.numpy().T.reshape(R_STAT, M_STAT, T)
    return x, u, r, p.gamma


def dump_inputs(path, seed: int) -> None:
    """Write the statistical items' inputs for check seed ``seed`` to ``path`` (``.npz``: x, u, r of shape
    (2000, 5, 50), k, sigma, gamma): call ``reinforce_gradient(x[i], u[i], r[i], k, sigma, gamma, estimator)``
    for each batch i to reproduce the check."""
    x, u, r, gamma = simulated_batches(seed)
    np.savez(path, x=x, u=u, r=r, k=K_STAT, sigma=SIGMA_STAT, gamma=gamma)


def _dump_command(seed: int) -> str:
    return (f"\ninputs: the 2000 batches are written to lab2_inputs.npz by\n  python -c \"from pgcontrol.labs.lab2 "
            f"import dump_inputs; dump_inputs('lab2_inputs.npz', seed={seed})\"")


def _estimates(sub) -> dict:
    """R = 2000 batches of M = 5 trajectories on scalar-lqg, and the student's three estimates on each (cached)."""
    key = ("lab2.estimates", sub.seed)
    if key in sub.cache:
        return sub.cache[key]
    x, u, r, gamma = simulated_batches(sub.seed)
    p = plants.make("scalar-lqg")
    dK, dstd = lqr.policy_gradient(p, [[-K_STAT]], SIGMA_STAT, horizon=p.horizon)
    exact = np.array([dK[0, 0], -dstd[0]])
    est = {}
    with quiet():
        for e in ESTIMATORS:
            try:
                est[e] = np.array([_call_gradient(sub, x[i], u[i], r[i], K_STAT, SIGMA_STAT, gamma, e)
                                   for i in range(R_STAT)])
            except StudentError as exc:
                raise StudentError(f"{exc}{_dump_command(sub.seed)}") from None
    if not all(np.all(np.isfinite(v)) for v in est.values()):
        raise StudentError("reinforce_gradient returned a non-finite value on the simulated batches"
                           + _dump_command(sub.seed))
    sub.cache[key] = (est, exact, (x, u, r, gamma))
    return sub.cache[key]


#: the known mistakes the statistical items can name: (variant of :func:`gradient`, message)
STAT_MISTAKES = [("no_discount_weight", None), ("own_baseline", None)] + COMMON


def _known_mistake(est, data) -> str:
    """The known mistake whose computed estimates the student's match on every batch and estimator, or ``""``.

    A hint is given only on such a match: a wrong answer that matches no known mistake is told which
    estimator and component is off, and nothing more.
    """
    x, u, r, gamma = data
    messages = {"no_discount_weight": NO_GAMMA_T, "own_baseline": OWN_BASELINE, **dict(COMMON)}
    for variant, _ in STAT_MISTAKES:
        wrong = {e: gradient(x, u, r, K_STAT, SIGMA_STAT, gamma, e, variant=variant).T for e in ESTIMATORS}
        right = {e: gradient(x, u, r, K_STAT, SIGMA_STAT, gamma, e).T for e in ESTIMATORS}
        differs = [e for e in ESTIMATORS if not np.allclose(wrong[e], right[e], rtol=1e-6, atol=1e-9)]
        if differs and all(np.allclose(est[e], wrong[e], rtol=1e-6, atol=1e-9) for e in ESTIMATORS):
            return "\nknown mistake: " + messages[variant]
    return ""


def check_unbiased(sub, rng) -> str:
    """Unbiasedness z-tests of the three estimators against lqr.policy_gradient (module docstring)."""
    est, exact, data = _estimates(sub)
    lines, bad = [], []
    for e in ESTIMATORS:
        mean, se, z = z_statistic(est[e], exact)
        lines.append(f"{e}: mean (dk, dσ) = ({mean[0]:.4g}, {mean[1]:.4g}) ± ({se[0]:.2g}, {se[1]:.2g}), "
                     f"z = ({z[0]:.2f}, {z[1]:.2f})")
        bad += [f"{e} ({c})" for c, zc in zip(("dk", "dσ"), z) if not abs(zc) < Z_MAX]
    head = (f"scalar-lqg, k = {K_STAT}, σ = {SIGMA_STAT}, {R_STAT} batches of M = {M_STAT}; exact gradient of the "
            f"return (dk, dσ) = ({exact[0]:.4g}, {exact[1]:.4g}) [lqr.policy_gradient]")
    if not bad:
        return head + "\n" + "\n".join(lines)
    msg = f"biased: {', '.join(bad)} miss(es) the exact gradient by more than {Z_MAX} standard errors."
    raise Mismatch(msg + _known_mistake(est, data) + "\n" + head + "\n" + "\n".join(lines)
                   + _dump_command(sub.seed))


def check_variance(sub, rng) -> str:
    """Var(total) > Var(rtg) > Var(rtg_baseline) for both components (module docstring)."""
    est, _, data = _estimates(sub)
    sd = {e: est[e].std(0, ddof=1) for e in ESTIMATORS}
    line = "; ".join(f"sd[{e}] = ({sd[e][0]:.3g}, {sd[e][1]:.3g})" for e in ESTIMATORS)
    ok = np.all(sd["total"] > sd["rtg"]) and np.all(sd["rtg"] > sd["rtg_baseline"])
    if ok:
        return "variance ordering holds: " + line
    fails = [f"sd[{a}] > sd[{b}] fails for {c}" for a, b in (("total", "rtg"), ("rtg", "rtg_baseline"))
             for i, c in enumerate(("dk", "dσ")) if not sd[a][i] > sd[b][i]]
    msg = ("the variance ordering total (3.15) > reward-to-go (3.19) > reward-to-go with baseline (4.11) fails ("
           + "; ".join(fails) + "): " + line)
    raise Mismatch(msg + _known_mistake(est, data) + _dump_command(sub.seed))


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
        Item("gaussian_log_prob.stable", "gaussian_log_prob: finite far in the tails, no exp then log (4.26)", 1,
             ("gaussian_log_prob",), check_log_prob_stable),
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
