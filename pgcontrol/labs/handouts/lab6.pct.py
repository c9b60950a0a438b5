# %% [markdown]
# # Lab 6 — Output feedback and the Kalman filter (LQG)
#
# So far the policy saw the state. Now the plant `double-integrator-output` is observed through its position
# only, $y_t = C x_t + v_t$ with $C = [1\ 0]$, $v_t \sim \mathcal N(0, V)$, $V = 10^{-2}$, and process noise
# $w_t \sim \mathcal N(0, W)$, $W = 10^{-3} I$:
#
# $$x_{t+1} = A x_t + B u_t + w_t, \qquad A = \begin{bmatrix}1 & 1\\ 0 & 1\end{bmatrix},\ B = \begin{bmatrix}0\\ 1\end{bmatrix}.$$
#
# A *static* output feedback $u_t = -k_y y_t$ cannot damp the double integrator: $A - Bk_yC$ has eigenvalues
# $1 \pm i\sqrt{k_y}$, of modulus $\sqrt{1 + k_y} > 1$ for every $k_y > 0$ — only the discount and the finite horizon
# keep its cost finite. A **filter** reconstructs the velocity from the history of $y$. This lab derives the
# steady-state Kalman predictor, and compares controllers by what they may use (their *information pattern*):
#
# | controller | $u_t$ may use | |
# | --- | --- | --- |
# | static output gain $u_t = -k_y y_t$ | $y_t$ | |
# | LQR gain on the **predicted** estimate, $u_t = -K\hat x_{t\mid t-1}$ | $y_0, \dots, y_{t-1}$ | optimal for this pattern |
# | LQR gain on the **filtered** estimate, $u_t = -K\hat x_{t\mid t}$ | $y_0, \dots, y_t$ | optimal for this pattern |
# | LQR with the full state, $u_t = -Kx_t$ | $x_t$ | a lower bound |
#
# **Separation principle.** For a linear plant with Gaussian noise and a quadratic cost, the best controller
# that may use the measurements up to some time is the LQR gain $K$ of lab 1 applied to the conditional mean of
# the state given those measurements (certainty equivalence: the estimation error does not depend on the
# controls, so it only adds a constant to the cost). With $y_0, \dots, y_{t-1}$ (a one-sample measurement delay,
# e.g. the time to compute $u_t$) that mean is the **predicted** estimate $\hat x_{t\mid t-1}$; with
# $y_0, \dots, y_t$ — the information of the static gain — it is the **filtered** estimate $\hat x_{t\mid t}$. The
# steady-state gains below are the optimum of the infinite-horizon problem; over the plant's $T = 150$ steps the
# exact optimum has time-varying gains, and the steady-state ones are nearly as good.

# %%
import numpy as np

from pgcontrol.labs import check

# %% [markdown]
# ## 1. The steady-state Kalman predictor
#
# **The predictor.** Keep an estimate $\hat x_t = \hat x_{t\mid t-1}$ of $x_t$ built from $y_0, \dots, y_{t-1}$, and
# correct the model's prediction by the new measurement's surprise (the *innovation* $y_t - C\hat x_t$):
#
# $$\hat x_{t+1} = A\hat x_t + Bu_t + L(y_t - C\hat x_t).$$
#
# **Its error.** Subtracting from $x_{t+1} = Ax_t + Bu_t + w_t$, with $y_t = Cx_t + v_t$, the error $e_t = x_t - \hat x_t$
# obeys $e_{t+1} = (A - LC)e_t + w_t - Lv_t$ — the control cancels. Since $e_t$, $w_t$ and $v_t$ are independent,
# its covariance $S_t = \mathrm{Cov}(e_t)$ follows
#
# $$S_{t+1} = (A - LC)S_t(A - LC)^\top + W + LVL^\top
# = AS_tA^\top + W - LCS_tA^\top - AS_tC^\top L^\top + L(CS_tC^\top + V)L^\top .$$
#
# **The best gain (complete the square).** Write $\Sigma = CS_tC^\top + V$ (the innovation covariance, positive
# definite) and $L^\ast = AS_tC^\top\Sigma^{-1}$. Then
#
# $$S_{t+1} = AS_tA^\top + W - L^\ast\Sigma L^{\ast\top} + (L - L^\ast)\,\Sigma\,(L - L^\ast)^\top .$$
#
# The last term is positive semidefinite and vanishes only at $L = L^\ast$: this gain makes the error variance
# smallest in every direction at once. At the steady state ($S_{t+1} = S_t = S$) this gives the **filter Riccati
# equation** and the **predictor gain**:
#
# $$S = ASA^\top + W - ASC^\top(CSC^\top + V)^{-1}CSA^\top, \tag{L6.1}$$
#
# $$L = ASC^\top(CSC^\top + V)^{-1}. \tag{L6.2}$$
#
# **Solving it.** (L6.1) is lab 1's control Riccati equation (L1.1) with $\gamma = 1$ for the **dual** pair:
# $A \to A^\top$, $B \to C^\top$, $Q \to W$, $R \to V$. So iterate the recursion from $S = W$ until it stops changing,
# or call `scipy.linalg.solve_discrete_are(A.T, C.T, W, V)`.
#
# **Predicted and filtered.** $S$ is the *prediction* (prior) error covariance, of $x_t - \hat x_{t\mid t-1}$. Once
# $y_t$ arrives, the **filtered** estimate is $\hat x_{t\mid t} = \hat x_{t\mid t-1} + L_f(y_t - C\hat x_{t\mid t-1})$ with the
# measurement-update gain $L_f = SC^\top(CSC^\top + V)^{-1}$, and its error covariance is
# $S - SC^\top(CSC^\top + V)^{-1}CS$. Predicting one step ahead, $\hat x_{t+1\mid t} = A\hat x_{t\mid t} + Bu_t$, which is
# the predictor above with $L = AL_f$. The function below returns the **predictor** gain $L$ and the **prediction**
# covariance $S$.

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
# ## 2. Filters against the static gain
#
# The controller $u_t = -K\hat x_{t\mid t-1}$ with the LQR gain $K$ and your predictor. On the augmented state
# $z = (x, \hat x)$ the closed loop is linear,
#
# $$x' = Ax - BK\hat x + w,\qquad \hat x' = LCx + (A - BK - LC)\hat x + Lv, \tag{L6.3}$$
#
# so its cost is exact too (a Lyapunov recursion, as in lab 1). The check simulates 6000 episodes driven by your
# $L$ and compares the mean cost with the exact cost of (L6.3) built on the correct $L$ (a z-test, $|z| < 4.5$),
# and with the best static output gain. Note the information: this controller does **not** use $y_t$, one
# measurement fewer than the static gain, and it still costs about 9 times less.
#
# The figure adds the like-for-like comparison: the LQR gain on the **filtered** estimate $\hat x_{t\mid t}$ (built from
# your $S$ through $L_f$), which uses $y_t$ exactly as the static gain does. It is the best of the three output
# feedbacks; the full-state LQR, which sees $x_t$ itself, is the lower bound no output feedback reaches.

# %% tags=["figure"]
import matplotlib.pyplot as plt

from pgcontrol import plants
from pgcontrol.labs import drivers

p = plants.make("double-integrator-output")
L, S = kalman_gain(p.A, p.C, p.W, p.V)
c = drivers.output_feedback_comparison(L, S=S, episodes=2000)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
names = [f"static gain\nk_y = {c['k_static']:.3g}\nuses y_t", "predictor + LQR\nuses y_0..y_(t-1)",
         "filter + LQR\nuses y_0..y_t", "full-state\nLQR (x_t)"]
costs = [c["J_static"], c["J_filter"], c["J_current"], c["J_lqr"]]
ax1.bar(names, costs, color=["tab:blue", "tab:orange", "tab:green", "gray"])
for i, j in enumerate(costs):
    ax1.text(i, j, f"{j:.3g}", ha="center", va="bottom")
ax1.set(ylabel="discounted T-step cost (log scale)", yscale="log", ylim=(1, 60),
        title="output feedback on double-integrator-output")
ax1.set_yticks([1, 2, 3, 5, 10, 20, 50], labels=["1", "2", "3", "5", "10", "20", "50"])
ax1.minorticks_off()
ax1.tick_params(axis="x", labelsize=8)
ax2.plot(c["x_static"], label="static output gain")
ax2.plot(c["x_filter"], label="your predictor + LQR gain")
ax2.set(xlabel="t", ylabel="position", title="one episode")
ax2.legend()
fig.tight_layout()
plt.show()
print(f"static {c['J_static']:.3f}   predictor + LQR {c['J_filter']:.3f} ± {c['se_filter']:.3f}   "
      f"filter + LQR {c['J_current']:.3f} ± {c['se_current']:.3f}   full-state LQR {c['J_lqr']:.3f}")

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(6, globals())
