"""Reference solution of lab 4 (not installed with the package)."""

import numpy as np


def sample_fisher(scores):
    """Mean outer product of the score vectors, (N, d) -> (d, d)."""
    S = np.asarray(scores, float)
    return S.T @ S / S.shape[0]


def natural_step(g, F, eps):
    """delta = sqrt(eps / g'F^+g) F^+ g (slides), pseudo-inverse for a singular F."""
    g = np.asarray(g, float)
    x = np.linalg.pinv(np.asarray(F, float)) @ g
    return np.sqrt(eps / (g @ x)) * x
