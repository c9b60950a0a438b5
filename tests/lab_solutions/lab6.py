"""Reference solution of lab 6 (not installed with the package)."""

import numpy as np
import scipy.linalg


def kalman_gain(A, C, W, V):
    """Steady-state Kalman predictor: S from the dual Riccati equation (L6.1), L = A S C'(C S C' + V)^-1 (L6.2)."""
    A, C, W, V = (np.atleast_2d(np.asarray(M, float)) for M in (A, C, W, V))
    S = scipy.linalg.solve_discrete_are(A.T, C.T, W, V)
    S = (S + S.T) / 2
    L = A @ S @ C.T @ np.linalg.inv(C @ S @ C.T + V)
    return L, S
