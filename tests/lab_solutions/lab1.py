"""Reference solution of lab 1 (not installed with the package)."""

import numpy as np
import scipy.linalg


def dare_gain(A, B, Q, R, gamma):
    """Discounted LQR by iterating the Riccati recursion (L1.1) to its fixed point."""
    A, B, Q, R = (np.atleast_2d(np.asarray(M, float)) for M in (A, B, Q, R))
    P = Q.copy()
    for _ in range(100_000):
        G = R + gamma * B.T @ P @ B
        K = np.linalg.solve(G, gamma * B.T @ P @ A)
        P_new = Q + gamma * A.T @ P @ A - gamma * A.T @ P @ B @ K
        P_new = (P_new + P_new.T) / 2
        if np.max(np.abs(P_new - P)) <= 1e-13 * max(1.0, np.max(np.abs(P))):
            P = P_new
            break
        P = P_new
    K = np.linalg.solve(R + gamma * B.T @ P @ B, gamma * B.T @ P @ A)
    return K, P


def policy_cost(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov):
    """Exact discounted cost of u = -Kx + eps (L1.2)-(L1.3); inf when sqrt(gamma)(A - BK) is unstable."""
    A, B, Q, R, W, K = (np.atleast_2d(np.asarray(M, float)) for M in (A, B, Q, R, W, K))
    Acl = A - B @ K
    if np.max(np.abs(np.linalg.eigvals(np.sqrt(gamma) * Acl))) >= 1:
        return float("inf")
    P = scipy.linalg.solve_discrete_lyapunov(np.sqrt(gamma) * Acl.T, Q + K.T @ R @ K)
    Se = np.diag(np.asarray(std, float).ravel() ** 2)
    N = B @ Se @ B.T + W
    m0 = np.asarray(x0_mean, float).ravel()
    S0 = np.outer(m0, m0) + np.asarray(x0_cov, float)
    return float(np.trace(P @ S0) + (np.trace(R @ Se) + gamma * np.trace(P @ N)) / (1 - gamma))
