# %% [markdown]
# # Lab 6 — Output feedback and the Kalman filter (LQG)
#
# So far the policy saw the state. Now the plant `double-integrator-output` is observed through its position
# only, $y_t = C x_t + v_t$ with $C = [1\ 0]$, $v_t \sim \mathcal N(0, V)$, $V = 10^{-2}$, and process noise
# $w_t \sim \mathcal N(0, W)$, $W = 10^{-3} I$:
#
# $$x_{t+1} = A x_t + B u_t + w_t, \qquad A = \begin{bmatrix}1 & 1\\ 0 & 1\end{bmatrix},\ B = \begin{bmatrix}0\\ 1\end{bmatrix}.$$
#
# A *static* output feedback $u = -k_y y$ cannot damp the double integrator: $A - Bk_yC$ has eigenvalues
# $1 \pm i\sqrt{k_y}$, of modulus $\sqrt{1 + k_y} > 1$ for every $k_y > 0$ — only the discount and the finite horizon
# keep its cost finite. A **filter** reconstructs the velocity from the history of $y$; by the separation
# principle the optimal output feedback is the LQR gain of lab 1 applied to the Kalman estimate.

# %%
import numpy as np

from pgcontrol.labs import check

# %% [markdown]
# ## 1. The steady-state Kalman predictor
#
# Predict $\hat x_{t+1} = A\hat x_t + Bu_t + L(y_t - C\hat x_t)$ (with $\hat x_t = \hat x_{t|t-1}$). The error
# $e_t = x_t - \hat x_t$ obeys $e_{t+1} = (A - LC)e_t + w_t - Lv_t$, so its covariance $S$ satisfies
# $S' = (A - LC)S(A - LC)^\top + W + LVL^\top$. Minimising over $L$ (complete the square) gives the **predictor
# gain** and, at the fixed point, the **filter Riccati equation**:
#
# $$S = ASA^\top + W - ASC^\top(CSC^\top + V)^{-1}CSA^\top, \tag{L6.1}$$
#
# $$L = ASC^\top(CSC^\top + V)^{-1}. \tag{L6.2}$$
#
# (L6.1) is lab 1's control Riccati equation for the **dual** pair: $A \to A^\top$, $B \to C^\top$, $Q \to W$,
# $R \to V$ (and $\gamma = 1$): `scipy.linalg.solve_discrete_are(A.T, C.T, W, V)`, or iterate it. $S$ is the
# *prediction* (prior) error covariance; the measurement update would use $L_f = SC^\top(CSC^\top+V)^{-1}$, and
# $L = AL_f$.

# %% tags=["stub"]
def kalman_gain(A, C, W, V):
    """Steady-state Kalman predictor gain and prediction-error covariance, eqs. (L6.1)-(L6.2).

    Parameters
    ----------
    A : (n, n) array
    C : (p, n) array
    W : (n, n) array
        Process-noise covariance.
    V : (p, p) array
        Measurement-noise covariance.

    Returns
    -------
    L : (n, p) array
        Predictor gain, x_hat' = A x_hat + B u + L (y - C x_hat).
    S : (n, n) array
        Steady-state covariance of x_t - x_hat_{t|t-1}, the fixed point of (L6.1).
    """
    raise NotImplementedError


# %% tags=["check"]
check(6, globals(), only="kalman_gain")

# %% [markdown]
# ## 2. Filter against static gain
#
# The controller $u_t = -K\hat x_t$ with the LQR gain $K$ and your predictor. On the augmented state
# $z = (x, \hat x)$ the closed loop is linear,
#
# $$x' = Ax - BK\hat x + w,\qquad \hat x' = LCx + (A - BK - LC)\hat x + Lv, \tag{L6.3}$$
#
# so its cost is exact too (a Lyapunov recursion, as in lab 1); the check compares it with a simulation of 6000
# episodes driven by your $L$ (z-test, $|z| < 4.5$), and with the best static output gain. Below: the costs, and
# one episode of the position under each controller.

# %% tags=["figure"]
import matplotlib.pyplot as plt

from pgcontrol import plants
from pgcontrol.labs import drivers

p = plants.make("double-integrator-output")
L, S = kalman_gain(p.A, p.C, p.W, p.V)
c = drivers.output_feedback_comparison(L, episodes=2000)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
names = [f"best static\nk_y = {c['k_static']:.3g}", "your filter\n+ LQR gain", "LQR with\nthe full state"]
ax1.bar(names, [c["J_static"], c["J_filter"], c["J_lqr"]], color=["tab:blue", "tab:orange", "gray"])
ax1.set(ylabel="discounted T-step cost", yscale="log", title="output feedback on double-integrator-output")
ax2.plot(c["x_static"], label="best static output gain")
ax2.plot(c["x_filter"], label="your filter + LQR gain")
ax2.set(xlabel="t", ylabel="position", title="one episode")
ax2.legend()
plt.show()
print(f"static {c['J_static']:.3f}   filter {c['J_filter']:.3f} ± {c['se_filter']:.3f}   full-state LQR {c['J_lqr']:.3f}")

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(6, globals())
