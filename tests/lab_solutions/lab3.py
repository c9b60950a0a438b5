"""Reference solution of lab 3 (not installed with the package)."""

import numpy as np


def td_targets(r, v_next, terminated, gamma):
    """r + gamma V(x') unless terminated (4.21)."""
    r, v_next = np.asarray(r, float), np.asarray(v_next, float)
    return r + gamma * (1.0 - np.asarray(terminated, float)) * v_next


def critic_loss(v, targets):
    """(4.20) as written: 1/2 sum (targets - v)^2."""
    return float(0.5 * np.sum((np.asarray(targets, float) - np.asarray(v, float)) ** 2))


def actor_loss(logp, adv):
    """(4.22) as written: -sum logp * adv."""
    return float(-np.sum(np.asarray(logp, float) * np.asarray(adv, float)))


def fit_quadratic_value(x, returns):
    """Least squares over V(x) = x'Px + c with P symmetric: features x_i x_j (i <= j, doubled off the diagonal), 1."""
    x = np.asarray(x, float)
    N, n = x.shape
    iu = np.triu_indices(n)
    phi = x[:, iu[0]] * x[:, iu[1]] * np.where(iu[0] == iu[1], 1.0, 2.0)
    w, *_ = np.linalg.lstsq(np.hstack([phi, np.ones((N, 1))]), np.asarray(returns, float), rcond=None)
    P = np.zeros((n, n))
    P[iu] = w[:-1]
    P = P + np.triu(P, 1).T
    return P, float(w[-1])
