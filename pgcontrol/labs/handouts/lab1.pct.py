# %% [markdown]
# # Lab 1 — Riccati and the exact cost of a linear Gaussian policy
#
# Every later lab checks a *sampled* quantity (a gradient estimate, an advantage, a Fisher matrix) against an
# *exact* one. This lab builds the exact ones: the discounted LQR gain and the exact expected cost of any
# linear Gaussian policy. The scalar LQG example of the course slides ("Example: Policy Gradient for LQG",
# after Peters & Schaal 2008) is the running example of the course. Everything this lab asks for is derived
# below; the equation numbers (L1.1)–(L1.3) are this lab's own, and (3.1) is the return of the course notes.
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
# **Bellman's equation.** The optimal cost-to-go $V(x) = \min \mathbb E \sum_{t\ge0}\gamma^t c_t$ from $x_0 = x$ satisfies
#
# $$V(x) = \min_u \big\{x^\top Q x + u^\top R u + \gamma\, \mathbb E_w\, V(Ax + Bu + w)\big\}.$$
#
# **Guess a quadratic.** Try $V(x) = x^\top P x + q$ with $P$ symmetric. Since $\mathbb E[w] = 0$ and
# $\mathbb E[w^\top P w] = \operatorname{tr}(PW)$,
#
# $$\mathbb E_w V(Ax + Bu + w) = (Ax + Bu)^\top P (Ax + Bu) + \operatorname{tr}(PW) + q .$$
#
# The bracket is a quadratic in $u$: $u^\top(R + \gamma B^\top P B)u + 2\gamma u^\top B^\top P A x + (\dots)$.
# Its gradient in $u$ vanishes at
#
# $$u = -Kx, \qquad K = (R + \gamma B^\top P B)^{-1}\,\gamma B^\top P A .$$
#
# **Substitute back.** With this $u$ the bracket equals
# $x^\top\big[Q + \gamma A^\top P A - \gamma^2 A^\top P B (R + \gamma B^\top P B)^{-1} B^\top P A\big]x$ plus constants;
# matching the $x^\top(\cdot)x$ terms on both sides of Bellman's equation gives the **discounted algebraic Riccati
# equation** and its gain:
#
# $$P = Q + \gamma A^\top P A - \gamma^2 A^\top P B\,(R + \gamma B^\top P B)^{-1} B^\top P A,
# \qquad K = (R + \gamma B^\top P B)^{-1}\,\gamma B^\top P A. \tag{L1.1}$$
#
# (Matching the constants gives $q = \gamma[\operatorname{tr}(PW) + q]$, i.e. $q = \gamma\operatorname{tr}(PW)/(1-\gamma)$:
# the noise only adds a constant, and the optimal gain depends neither on $W$ nor on exploration.)
#
# **Solving it.** Iterate the right-hand side of (L1.1) from $P = Q$ until it stops changing (value iteration:
# each pass is one more step of the finite-horizon problem), or note that (L1.1) is the *undiscounted* Riccati
# equation of the pair $(\sqrt\gamma A, \sqrt\gamma B)$ and call `scipy.linalg.solve_discrete_are(np.sqrt(gamma) * A,
# np.sqrt(gamma) * B, Q, R)`. Mind the $\gamma$s: the undiscounted equation is a different problem with a
# different gain.

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
# Fix any gain $K$ and exploration $\Sigma_\varepsilon$. With $A_K = A - BK$ the closed loop is
# $x_{t+1} = A_K x_t + B\varepsilon_t + w_t$, and since $u_t = -Kx_t + \varepsilon_t$ with $\varepsilon_t$ independent of $x_t$,
# the expected stage cost given the state is
#
# $$\mathbb E[c_t \mid x_t] = x_t^\top (Q + K^\top R K)\, x_t + \operatorname{tr}(R\Sigma_\varepsilon).$$
#
# **The Lyapunov equation.** The value of the policy, $V_K(x) = \mathbb E\sum_t \gamma^t c_t$ from $x_0 = x$, obeys
# $V_K(x) = \mathbb E[c_0\mid x] + \gamma\,\mathbb E\,V_K(A_K x + B\varepsilon + w)$. Try $V_K(x) = x^\top P_K x + q$: the noise
# $B\varepsilon + w$ has mean 0 and covariance $N = B\Sigma_\varepsilon B^\top + W$, so
# $\mathbb E\,V_K(A_K x + B\varepsilon + w) = x^\top A_K^\top P_K A_K x + \operatorname{tr}(P_K N) + q$. Matching the quadratic
# terms gives the **discounted Lyapunov equation**
#
# $$P_K = Q + K^\top R K + \gamma A_K^\top P_K A_K, \tag{L1.2}$$
#
# and matching the constants, $q = \operatorname{tr}(R\Sigma_\varepsilon) + \gamma[\operatorname{tr}(P_K N) + q]$.
#
# **When it has a solution.** Unrolling (L1.2) gives $P_K = \sum_{t\ge0} \gamma^t (A_K^\top)^t (Q + K^\top RK) A_K^t
# = \sum_t (\sqrt\gamma A_K^\top)^t (Q + K^\top RK)(\sqrt\gamma A_K)^t$, which converges exactly when the spectral radius
# $\rho(\sqrt\gamma A_K) = \sqrt\gamma\,\rho(A_K) < 1$. Otherwise the discounted sum diverges and the cost is $+\infty$.
# Note the $\sqrt\gamma$: a closed loop with $\rho(A_K) \ge 1$ (unstable: the state grows like $\rho(A_K)^t$) still has a
# **finite** discounted cost when $\sqrt\gamma\,\rho(A_K) < 1$, because the discount $\gamma^t$ shrinks faster than
# $x_t^\top x_t$ grows. The check tests such a case.
#
# **The cost.** Solving for $q$ and averaging $x_0^\top P_K x_0$ over $x_0 \sim \mathcal N(\bar x_0, \Sigma_0)$, which gives
# $\operatorname{tr}(P_K(\bar x_0\bar x_0^\top + \Sigma_0))$:
#
# $$J(K, \sigma) = \operatorname{tr}\!\big(P_K(\bar x_0 \bar x_0^\top + \Sigma_0)\big)
# + \frac{\operatorname{tr}(R\Sigma_\varepsilon) + \gamma\operatorname{tr}\big(P_K (B\Sigma_\varepsilon B^\top + W)\big)}{1-\gamma}. \tag{L1.3}$$
#
# `scipy.linalg.solve_discrete_lyapunov(a, q)` solves $X = a X a^\top + q$: pass $a = \sqrt\gamma A_K^\top$.
# Test $\sqrt\gamma\,\rho(A_K) < 1$ **first** — for an unstable $a$ the solver still returns a (meaningless) matrix.
# (`np.abs(np.linalg.eigvals(M)).max()` is the spectral radius of `M`.)

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
        E sum_t gamma^t (x'Qx + u'Ru); float("inf") when sqrt(gamma) * rho(A - B K) >= 1
        (rho: the spectral radius). Finite whenever sqrt(gamma) * rho(A - B K) < 1, even if rho(A - B K) >= 1.
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
