"""Reference solution of lab 2 (not installed with the package)."""

import numpy as np


def gaussian_log_prob(u, mean, std):
    """(4.26), summed over the last axis."""
    u, mean, std = np.asarray(u, float), np.asarray(mean, float), np.asarray(std, float)
    return -(((u - mean) ** 2) / (2 * std**2) + 0.5 * np.log(2 * np.pi * std**2)).sum(-1)


def reward_to_go(rewards, gamma):
    """G_t = sum_{k>=t} gamma^(k-t) r_k (3.21), rewards (M, T)."""
    r = np.asarray(rewards, float)
    G = np.zeros_like(r)
    acc = np.zeros(r.shape[:-1])
    for t in range(r.shape[-1] - 1, -1, -1):
        acc = r[..., t] + gamma * acc
        G[..., t] = acc
    return G


def reinforce_gradient(x, u, r, k, sigma, gamma, estimator):
    """(3.15) / (3.19) / (3.19) with a leave-one-out baseline, averaged over M trajectories (3.24)."""
    x, u, r = (np.asarray(a, float) for a in (x, u, r))
    M, T = r.shape
    e = u - k * x
    score_k = e * x / sigma**2
    score_s = (e**2 - sigma**2) / sigma**3
    disc = gamma ** np.arange(T)
    if estimator == "total":
        ret = (disc * r).sum(1)
        return float((score_k.sum(1) * ret).mean()), float((score_s.sum(1) * ret).mean())
    G = reward_to_go(r, gamma)
    if estimator == "rtg":
        psi = disc * G
    elif estimator == "rtg_baseline":
        b = (G.sum(0, keepdims=True) - G) / (M - 1)
        psi = disc * (G - b)
    else:
        raise ValueError(f"unknown estimator {estimator!r}")
    return float((score_k * psi).sum(1).mean()), float((score_s * psi).sum(1).mean())
