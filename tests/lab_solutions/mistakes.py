"""Known-wrong solutions: each replaces one function of the reference solution with a classic mistake.

``MISTAKES`` lists (lab, name, {function: wrong implementation}, items it must lose, substring of the
feedback). The tests check that each loses exactly those items, with that message.
"""

import numpy as np
import scipy.linalg

from lab1 import dare_gain as _dare
from lab2 import reward_to_go as _rtg
from lab4 import sample_fisher as _fisher


# ---------------------------------------------------------------- lab 1
def dare_undiscounted(A, B, Q, R, gamma):
    return _dare(A, B, Q, R, 1.0)


def cost_no_exploration(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov):
    from lab1 import policy_cost
    return policy_cost(A, B, Q, R, W, gamma, K, np.zeros_like(np.asarray(std, float)), x0_mean, x0_cov)


def cost_never_inf(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov):
    A, B, Q, R, W, K = (np.atleast_2d(np.asarray(M, float)) for M in (A, B, Q, R, W, K))
    Acl = A - B @ K
    P = scipy.linalg.solve_discrete_lyapunov(np.sqrt(gamma) * Acl.T, Q + K.T @ R @ K)
    Se = np.diag(np.asarray(std, float).ravel() ** 2)
    S0 = np.outer(x0_mean, x0_mean) + x0_cov
    return float(np.trace(P @ S0) + (np.trace(R @ Se) + gamma * np.trace(P @ (B @ Se @ B.T + W))) / (1 - gamma))


def cost_rho_undiscounted(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov):
    """Stability tested on rho(A - BK) instead of sqrt(gamma) rho(A - BK)."""
    from lab1 import policy_cost
    A, B, K = (np.atleast_2d(np.asarray(M, float)) for M in (A, B, K))
    if np.max(np.abs(np.linalg.eigvals(A - B @ K))) >= 1:
        return float("inf")
    return policy_cost(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov)


def cost_always_inf(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov):
    return float("inf")


# ---------------------------------------------------------------- lab 2
def log_prob_via_prod(u, mean, std):
    """log(prod(exp(...))): the density first, then its log."""
    dens = np.exp(-((u - mean) ** 2) / (2 * std**2)) / np.sqrt(2 * np.pi * std**2)
    return np.log(np.prod(dens, axis=-1))


def log_prob_no_log_sigma(u, mean, std):
    return -(((u - mean) ** 2) / (2 * std**2) + 0.5 * np.log(2 * np.pi)).sum(-1)


def rtg_undiscounted(rewards, gamma):
    return _rtg(rewards, 1.0)


def _grad(x, u, r, k, sigma, gamma, estimator, *, gamma_t=True, own=False, score_var=False, shift=0, scale_ds=1.0):
    M, T = r.shape
    e = u - k * x
    sk, ss = e * x / sigma**2, (e**2 - sigma**2) / sigma**3
    if score_var:
        ss = (e**2 - sigma**2) / (2 * sigma**4)
    ss = ss * scale_ds
    disc = gamma ** np.arange(shift, T + shift)
    if estimator == "total":
        ret = (disc * r).sum(1)
        return float((sk.sum(1) * ret).mean()), float((ss.sum(1) * ret).mean())
    G = _rtg(r, gamma)
    if estimator == "rtg_baseline":
        G = G - (G.mean(0, keepdims=True) if own else (G.sum(0, keepdims=True) - G) / (M - 1))
    psi = disc * G if gamma_t else G
    return float((sk * psi).sum(1).mean()), float((ss * psi).sum(1).mean())


def grad_no_gamma_t(x, u, r, k, sigma, gamma, estimator):
    return _grad(x, u, r, k, sigma, gamma, estimator, gamma_t=False)


def grad_own_baseline(x, u, r, k, sigma, gamma, estimator):
    return _grad(x, u, r, k, sigma, gamma, estimator, own=True)


def grad_score_variance(x, u, r, k, sigma, gamma, estimator):
    """The sigma-score taken with respect to the variance."""
    return _grad(x, u, r, k, sigma, gamma, estimator, score_var=True)


def grad_gamma_t_plus_1(x, u, r, k, sigma, gamma, estimator):
    """gamma^(t+1) instead of gamma^t, everywhere."""
    return _grad(x, u, r, k, sigma, gamma, estimator, shift=1)


def grad_unknown(x, u, r, k, sigma, gamma, estimator):
    """A wrong answer that is none of the known mistakes: d/dsigma 1.5 times too large."""
    return _grad(x, u, r, k, sigma, gamma, estimator, scale_ds=1.5)


# ---------------------------------------------------------------- lab 3
def td_bootstrap_always(r, v_next, terminated, gamma):
    return np.asarray(r) + gamma * np.asarray(v_next)


def critic_mean(v, targets):
    return float(0.5 * np.mean((np.asarray(targets) - np.asarray(v)) ** 2))


def actor_no_minus(logp, adv):
    return float(np.sum(np.asarray(logp) * np.asarray(adv)))


def fit_nonsymmetric(x, returns):
    x = np.asarray(x, float)
    N, n = x.shape
    phi = np.einsum("ni,nj->nij", x, x).reshape(N, n * n)
    w, *_ = np.linalg.lstsq(np.hstack([phi, np.ones((N, 1))]), returns, rcond=None)
    return w[:-1].reshape(n, n) + np.triu(np.ones((n, n)), 1) * 0.3, float(w[-1])


# ---------------------------------------------------------------- lab 4
def fisher_covariance(scores):
    return np.cov(np.asarray(scores, float).T, bias=True)


def step_no_sqrt(g, F, eps):
    x = np.linalg.pinv(F) @ g
    return (eps / (g @ x)) * x


def step_F_not_inverse(g, F, eps):
    x = F @ g
    return np.sqrt(eps / (g @ x)) * x


def step_inv(g, F, eps):
    x = np.linalg.inv(F) @ g
    return np.sqrt(eps / (g @ x)) * x


# ---------------------------------------------------------------- lab 5
def _gae(r, v, v_next, terminated, truncated, gamma, lam, *, chain=False, boot_trunc=True):
    terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
    nob = terminated if boot_trunc else (terminated | truncated)
    delta = r + gamma * (~nob) * v_next - v
    adv, acc = np.zeros(len(r)), 0.0
    for t in range(len(r) - 1, -1, -1):
        if not chain and (terminated[t] or truncated[t]):
            acc = 0.0
        acc = delta[t] + gamma * lam * acc
        adv[t] = acc
    return adv


def gae_v_shift(r, v, v_next, terminated, truncated, gamma, lam):
    """Correct GAE that reads V(x_{t+1}) from v[t + 1] inside an episode and from v_next only at episode ends."""
    r, v, v_next = (np.asarray(a, float) for a in (r, v, v_next))
    terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
    T = len(r)
    nxt = np.array([v[t + 1] if t + 1 < T and not (terminated[t] or truncated[t]) else v_next[t] for t in range(T)])
    return _gae(r, v, nxt, terminated, truncated, gamma, lam)


def gae_chains(r, v, v_next, terminated, truncated, gamma, lam):
    return _gae(r, v, v_next, terminated, truncated, gamma, lam, chain=True)


def gae_no_bootstrap_truncation(r, v, v_next, terminated, truncated, gamma, lam):
    return _gae(r, v, v_next, terminated, truncated, gamma, lam, boot_trunc=False)


def ppo_max(logp, logp_old, adv, clip):
    rho = np.exp(np.asarray(logp) - np.asarray(logp_old))
    return float(np.mean(np.maximum(rho * adv, np.clip(rho, 1 - clip, 1 + clip) * adv)))


# ---------------------------------------------------------------- lab 6
def kalman_filter_gain(A, C, W, V):
    from lab6 import kalman_gain
    L, S = kalman_gain(A, C, W, V)
    return np.linalg.solve(np.atleast_2d(A), L), S


MISTAKES = [
    (1, "undiscounted Riccati gain", {"dare_gain": dare_undiscounted}, {"dare_gain.discounted"},
     "a Riccati gain of the undiscounted problem"),
    (1, "cost without exploration noise", {"policy_cost": cost_no_exploration},
     {"policy_cost.exact", "policy_cost.unstable"},
     "the exploration noise ε is missing"),
    (1, "cost never inf", {"policy_cost": cost_never_inf}, {"policy_cost.unstable"}, "the cost is inf"),
    (1, "stability on rho(A - BK)", {"policy_cost": cost_rho_undiscounted}, {"policy_cost.unstable"},
     "stability tested on ρ(A − BK) instead of ρ(√γ(A − BK))"),
    (1, "cost always inf", {"policy_cost": cost_always_inf}, {"policy_cost.exact", "policy_cost.unstable"},
     "J is wrong"),
    (2, "log-density as log(prod(exp))", {"gaussian_log_prob": log_prob_via_prod}, {"gaussian_log_prob.stable"},
     "the density was computed before its log"),
    (2, "log-density without -log sigma", {"gaussian_log_prob": log_prob_no_log_sigma},
     {"gaussian_log_prob", "gaussian_log_prob.stable"},
     "missing the −log σ term"),
    (2, "undiscounted reward-to-go", {"reward_to_go": rtg_undiscounted}, {"reward_to_go"}, "(3.20)"),
    (2, "reward-to-go without gamma^t", {"reinforce_gradient": grad_no_gamma_t},
     {"reinforce.rtg", "reinforce.rtg_baseline", "reinforce.unbiased", "reinforce.variance"},
     "reward-to-go without the γᵗ factor of (3.19)"),
    (2, "baseline with own return", {"reinforce_gradient": grad_own_baseline},
     {"reinforce.rtg_baseline", "reinforce.unbiased"}, "the baseline includes the trajectory's own return"),
    (2, "sigma-score with respect to the variance", {"reinforce_gradient": grad_score_variance},
     {"reinforce.total", "reinforce.rtg", "reinforce.rtg_baseline", "reinforce.unbiased"},
     "the σ-score was taken with respect to the variance σ²"),
    (2, "discount off by one", {"reinforce_gradient": grad_gamma_t_plus_1},
     {"reinforce.total", "reinforce.rtg", "reinforce.rtg_baseline", "reinforce.unbiased"},
     "the discount is off by one"),
    (3, "bootstrap at termination", {"td_targets": td_bootstrap_always}, {"td_targets"}, "bootstraps after a terminal state"),
    (3, "critic mean", {"critic_loss": critic_mean}, {"critic_loss"}, "mean instead of sum"),
    (3, "actor without minus", {"actor_loss": actor_no_minus}, {"actor_loss"}, "the loss to *minimise*"),
    (3, "nonsymmetric P", {"fit_quadratic_value": fit_nonsymmetric},
     {"fit_quadratic_value.exact", "fit_quadratic_value.lstsq"}, "P is not symmetric"),
    (4, "Fisher as covariance", {"sample_fisher": fisher_covariance}, {"sample_fisher"}, "the covariance of the scores"),
    (4, "natural step without sqrt", {"natural_step": step_no_sqrt},
     {"natural_step.exact", "natural_step.singular", "plateau"}, "the square root is missing"),
    (4, "natural step with F", {"natural_step": step_F_not_inverse},
     {"natural_step.exact", "natural_step.singular", "plateau"}, "F instead of F⁻¹"),
    (4, "natural step with inv", {"natural_step": step_inv}, {"natural_step.singular"}, "pseudo-inverse"),
    (5, "GAE chains across episodes", {"gae": gae_chains}, {"gae.termination", "gae.truncation"},
     "chains across an episode end"),
    (5, "GAE no bootstrap at truncation", {"gae": gae_no_bootstrap_truncation}, {"gae.truncation"},
     "does not bootstrap at truncation"),
    (5, "PPO with max", {"ppo_clip_objective": ppo_max}, {"ppo_clip_objective"}, "max instead of min"),
    (6, "filter gain instead of predictor", {"kalman_gain": kalman_filter_gain},
     {"kalman_gain.random", "filter_vs_static"}, "the measurement-update (filter) gain"),
]
