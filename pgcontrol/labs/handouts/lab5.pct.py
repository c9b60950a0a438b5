# %% [markdown]
# # Lab 5 — PPO and GAE
#
# The equation numbers (6.1)–(6.46) are those of the course notes on trust regions, PPO and GAE; every formula
# this lab asks for is stated below. Importance sampling turns the improvement $J(\theta) - J(\theta_\text{old})$ into an
# expected advantage under the old policy, weighted by the ratio $\pi_\theta/\pi_\text{old}$; TRPO maximises it under a
# KL constraint (6.34), PPO replaces the constraint by clipping the ratio (6.35)–(6.39). The advantages come from
# GAE, an exponentially weighted mix of $n$-step advantages (6.40)–(6.46).

# %%
import numpy as np

from pgcontrol.labs import check

# %% [markdown]
# ## 1. Generalised advantage estimation on a stream
#
# With the TD residual $\delta_t = r_t + \gamma V(x_{t+1}) - V(x_t)$ (6.44), the $n$-step advantage is
# $\sum_{k<n} \gamma^k \delta_{t+k}$ (6.45) and the $\lambda$-weighted mix collapses to (6.46):
#
# $$A^\text{GAE}_t = \sum_{k \ge t} (\gamma\lambda)^{k-t}\,\delta_k
# \quad\Longleftrightarrow\quad A_t = \delta_t + \gamma\lambda\,A_{t+1}.$$
#
# $\lambda = 0$ gives $\delta_t$ (6.40); $\lambda = 1$ gives the Monte Carlo advantage (6.41). In practice one
# environment's buffer of $T$ steps holds several episodes, and the two ways an episode ends differ:
#
# * **terminated** (a terminal state): no future, so $\delta_t = r_t - V(x_t)$;
# * **truncated** (the time limit): the state *has* a future — bootstrap with `v_next[t]`, the value of the
#   real next state (not of the reset state that follows in the buffer).
#
# In both cases the recursion must restart: $A_{t+1}$ belongs to the next episode. The last step of the buffer is
# not an episode end unless flagged: it bootstraps with `v_next` like any other step. With
# $\text{done}_t = \text{terminated}_t \lor \text{truncated}_t$:
#
# $$\delta_t = r_t + \gamma\,(1 - \text{terminated}_t)\,\texttt{v\_next}_t - v_t, \qquad
# A_t = \delta_t + \gamma\lambda\,(1 - \text{done}_t)\,A_{t+1}, \quad A_T = 0 .$$
#
# **What `v_next` holds.** `v_next[t]` is $V(x_{t+1})$, the value of the state that *followed* step $t$. Inside an
# episode that state is the next entry of the buffer, so `v_next[t] == v[t + 1]`. The two differ in exactly two
# places: at an episode end (after a truncation `v_next[t]` is the value of the final state, while `v[t + 1]` is
# the reset state of the next episode; after a termination `v_next[t]` must not be used at all) and at the last
# step of the buffer (there is no `v[T]`). So reading `v[t + 1]` inside an episode and `v_next[t]` at those places
# is the same computation; the check's inputs are built that way.

# %% tags=["stub"]
def gae(r, v, v_next, terminated, truncated, gamma, lam):
    """Generalised advantage estimates of one environment's stream, eqs. (6.44)-(6.46).

    Parameters
    ----------
    r : (T,) array
        Rewards.
    v : (T,) array
        V(x_t).
    v_next : (T,) array
        V(x_{t+1}) of the true next state (at a truncation: of the final state before the reset).
    terminated, truncated : (T,) bool arrays
        The episode ended at step t by a terminal state / by the time limit.
    gamma, lam : float

    Returns
    -------
    (T,) array
        A_t = delta_t + gamma * lam * A_{t+1}, restarted at every episode end; delta_t bootstraps
        unless terminated.
    """
    raise NotImplementedError


# %% tags=["check"]
check(5, globals(), only="gae")

# %% [markdown]
# ## 2. The clipped surrogate
#
# The ratio $\rho_t = \pi_\theta(u_t\mid x_t)/\pi_\text{old}(u_t\mid x_t) = \exp(\log\pi_\theta - \log\pi_\text{old})$
# (6.35), (6.39); the PPO objective (6.37), to **maximise**, is the mean of
#
# $$L^\text{clip}_t = \min\big(\rho_t A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\,A_t\big).$$
#
# The min makes it a pessimistic bound: moving the ratio beyond the clip range never helps, and when $A_t < 0$ the
# unclipped term is the one that counts for large $\rho_t$.

# %% tags=["stub"]
def ppo_clip_objective(logp, logp_old, adv, clip):
    """PPO's clipped surrogate objective, eq. (6.37): mean_t min(rho_t A_t, clip(rho_t, 1 - clip, 1 + clip) A_t).

    Parameters
    ----------
    logp, logp_old : (N,) arrays
        log pi_theta(u_t | x_t) and log pi_old(u_t | x_t); rho_t = exp(logp - logp_old) (6.39).
    adv : (N,) array
        Advantages.
    clip : float
        epsilon of (6.36).

    Returns
    -------
    float
        The objective to maximise.
    """
    raise NotImplementedError


# %% tags=["check"]
check(5, globals(), only="ppo_clip_objective")

# %% [markdown]
# ## 3. What the clip does
#
# The objective of one sample as a function of the ratio, for a positive and a negative advantage (your function
# with $N = 1$): flat beyond $1 + \epsilon$ when $A > 0$, beyond $1 - \epsilon$ when $A < 0$.

# %% tags=["figure"]
import matplotlib.pyplot as plt

rho = np.linspace(0.3, 1.8, 200)
fig, ax = plt.subplots(figsize=(6, 3.5))
for a in (1.0, -1.0):
    ax.plot(rho, [ppo_clip_objective(np.log([r]), np.zeros(1), np.array([a]), 0.2) for r in rho], label=f"A = {a:+g}")
ax.set(xlabel="ratio ρ", ylabel="L_clip", title="your clipped surrogate, ε = 0.2 (6.37)")
ax.legend()
plt.show()

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(5, globals())
