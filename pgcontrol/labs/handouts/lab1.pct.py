# %% [markdown]
# # Lab 1 — Riccati and the exact cost of a linear Gaussian policy
#
# Every later lab checks a *sampled* quantity (a gradient estimate, an advantage, a Fisher matrix) against an
# *exact* one. This lab builds the exact ones: the discounted LQR gain and the exact expected cost of any
# linear Gaussian policy. The scalar LQG example of the slides (`../shared/reference/004_*`, "Example: Policy
# Gradient for LQG") is the running example of the course.
#
# **Setting.** A linear plant $x_{t+1} = A x_t + B u_t + w_t$, $w_t \sim \mathcal N(0, W)$, stage cost
# $c_t = x_t^\top Q x_t + u_t^\top R u_t$ (the reward is $r_t = -c_t$), discount $\gamma$, initial state
# $x_0 \sim \mathcal N(\bar x_0, \Sigma_0)$, and the policy (pgcontrol's convention, used everywhere)
#
# $$u_t = -K x_t + \varepsilon_t, \qquad \varepsilon_t \sim \mathcal N(0, \Sigma_\varepsilon),\ \Sigma_\varepsilon = \mathrm{diag}(\sigma^2).$$
#
# The objective is the expected discounted cost $J = \mathbb E \sum_{t \ge 0} \gamma^t c_t$, the negative of the
# return $J(\theta)$ of (3.1).
#
# Run each check cell after writing the function above it. `check` grades against pgcontrol's exact closed forms
# on plants drawn at check time, and names the mistake when it is a known one.

# %%
import numpy as np

from pgcontrol.labs import check

# %% [markdown]
# ## 1. The discounted Riccati equation
#
# Guess that the optimal cost-to-go is quadratic, $V(x) = x^\top P x + \text{const}$. Bellman's equation
# $V(x) = \min_u \{x^\top Q x + u^\top R u + \gamma\, \mathbb E\, V(Ax + Bu + w)\}$ is a quadratic in $u$;
# setting its gradient to zero gives $u = -Kx$ and, substituting back, the **discounted algebraic Riccati
# equation**
#
# $$P = Q + \gamma A^\top P A - \gamma^2 A^\top P B\,(R + \gamma B^\top P B)^{-1} B^\top P A,
# \qquad K = (R + \gamma B^\top P B)^{-1}\,\gamma B^\top P A. \tag{L1.1}$$
#
# The noise only adds a constant: the optimal gain does not depend on $W$ or on exploration.
# Iterate the recursion from $P = Q$ until it stops changing (value iteration), or solve it with
# `scipy.linalg.solve_discrete_are` for the pair $(\sqrt\gamma A, \sqrt\gamma B)$. Mind the $\gamma$s: the
# undiscounted equation is a different problem with a different gain.

# %% tags=["stub"]
def dare_gain(A, B, Q, R, gamma):
    """Discounted LQR gain and cost-to-go matrix, eq. (L1.1).

    Parameters
    ----------
    A : (n, n) array
    B : (n, m) array
    Q : (n, n) array, symmetric PSD
    R : (m, m) array, symmetric PD
    gamma : float in (0, 1]

    Returns
    -------
    K : (m, n) array
        The optimal policy is u = -K x (pgcontrol's sign convention).
    P : (n, n) array
        Symmetric; the optimal cost-to-go is x'Px (+ a noise constant).
    """
    raise NotImplementedError


# %% tags=["check"]
check(1, globals(), only="dare_gain")

# %% [markdown]
# ## 2. The exact cost of a linear Gaussian policy
#
# Fix any $K$. With $A_K = A - BK$ the closed loop is $x_{t+1} = A_K x_t + B\varepsilon_t + w_t$ and
# $\mathbb E[c_t \mid x_t] = x_t^\top (Q + K^\top R K) x_t + \operatorname{tr}(R\Sigma_\varepsilon)$. The value of
# the policy is again quadratic, $V_K(x) = x^\top P_K x + q$, where $P_K$ solves the **discounted Lyapunov
# equation**
#
# $$P_K = Q + K^\top R K + \gamma A_K^\top P_K A_K, \tag{L1.2}$$
#
# which has a (unique, PSD) solution exactly when $\sqrt\gamma A_K$ is Schur stable (spectral radius $< 1$);
# otherwise the discounted sum diverges and the cost is $+\infty$. The constant collects the noise paid at every
# step, $q = [\operatorname{tr}(R\Sigma_\varepsilon) + \gamma \operatorname{tr}(P_K N)]/(1-\gamma)$ with the injected
# covariance $N = B\Sigma_\varepsilon B^\top + W$, and averaging over $x_0$:
#
# $$J(K, \sigma) = \operatorname{tr}\!\big(P_K(\bar x_0 \bar x_0^\top + \Sigma_0)\big)
# + \frac{\operatorname{tr}(R\Sigma_\varepsilon) + \gamma\operatorname{tr}\big(P_K (B\Sigma_\varepsilon B^\top + W)\big)}{1-\gamma}. \tag{L1.3}$$
#
# `scipy.linalg.solve_discrete_lyapunov(a, q)` solves $X = a X a^\top + q$: pass $a = \sqrt\gamma A_K^\top$.
# Test stability **first** — for an unstable $a$ the solver still returns a (meaningless) matrix.

# %% tags=["stub"]
def policy_cost(A, B, Q, R, W, gamma, K, std, x0_mean, x0_cov):
    """Exact infinite-horizon discounted expected cost of u = -K x + eps, eqs. (L1.2)-(L1.3).

    Parameters
    ----------
    A, B, Q, R : arrays (n, n), (n, m), (n, n), (m, m)
    W : (n, n) array
        Process-noise covariance.
    gamma : float in (0, 1)
    K : (m, n) array
        Gain, u = -K x + eps.
    std : (m,) array
        Exploration standard deviations, eps ~ N(0, diag(std**2)).
    x0_mean : (n,) array
    x0_cov : (n, n) array

    Returns
    -------
    float
        E sum_t gamma^t (x'Qx + u'Ru); float("inf") when sqrt(gamma) (A - B K) is not Schur stable.
    """
    raise NotImplementedError


# %% tags=["check"]
check(1, globals(), only="policy_cost")

# %% [markdown]
# ## 3. The cost landscape of the scalar LQG
#
# The slides' plant (`scalar-lqg`): $A = B = 1$, $Q = 1$, $R = 0.1$, $\gamma = 0.9$, $x_0 \approx 0.3$. With your
# two functions: the cost of $u \sim \mathcal N(kx, \sigma^2)$ (so $K = -k$) over $k$ for a few $\sigma$, and the
# optimum $k^* = -K^*$ from your Riccati gain. Exploration costs: $J$ grows with $\sigma$ at every $k$ — which is
# why, in lab 4, the vanilla gradient is so eager to shrink $\sigma$.

# %% tags=["figure"]
import matplotlib.pyplot as plt

from pgcontrol import plants

p = plants.make("scalar-lqg")
K_star, _ = dare_gain(p.A, p.B, p.Q, p.R, p.gamma)
ks = np.linspace(-1.8, -0.05, 200)
fig, ax = plt.subplots(figsize=(6, 3.5))
for s in (0.0, 0.1, 0.3):
    ax.plot(ks, [policy_cost(p.A, p.B, p.Q, p.R, p.W, p.gamma, [[-k]], [s], p.x0_mean, p.x0_cov) for k in ks],
            label=f"σ = {s}")
ax.axvline(-K_star[0, 0], color="k", ls=":", label=f"k* = {-K_star[0, 0]:.4f}")
ax.set(xlabel="k  (u ~ N(kx, σ²))", ylabel="exact cost J", yscale="log", title="scalar-lqg: your exact cost (L1.3)")
ax.legend()
plt.show()

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(1, globals())
