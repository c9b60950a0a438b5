"""Reference solution of lab 5 (not installed with the package)."""

import numpy as np


def gae(r, v, v_next, terminated, truncated, gamma, lam):
    """GAE (6.44)-(6.46) on one stream: bootstrap unless terminated, restart at every episode end."""
    r, v, v_next = (np.asarray(a, float) for a in (r, v, v_next))
    terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
    delta = r + gamma * (~terminated) * v_next - v
    adv = np.zeros_like(r)
    acc = 0.0
    for t in range(len(r) - 1, -1, -1):
        if terminated[t] or truncated[t]:
            acc = 0.0
        acc = delta[t] + gamma * lam * acc
        adv[t] = acc
    return adv


def ppo_clip_objective(logp, logp_old, adv, clip):
    """Mean of min(rho A, clip(rho, 1 - eps, 1 + eps) A) (6.37), rho = exp(logp - logp_old) (6.39)."""
    rho = np.exp(np.asarray(logp, float) - np.asarray(logp_old, float))
    adv = np.asarray(adv, float)
    return float(np.mean(np.minimum(rho * adv, np.clip(rho, 1 - clip, 1 + clip) * adv)))
