# %% [markdown]
# # Lab 3 — Baselines and actor-critic
#
# The equation numbers (4.1)–(4.23) are those of the course notes on baselines and actor-critic; every formula
# this lab asks for is stated below. The reward-to-go of lab 2 is a one-sample estimate of the action value
# $Q^\pi(x_t, u_t) = \mathbb E[\sum_{k\ge t}\gamma^{k-t}r_k \mid x_t, u_t]$ (4.4)–(4.6). Subtracting a baseline $b_t$ that does not
# depend on the action leaves the gradient unbiased, because $\mathbb E_{u\sim\pi}[\nabla\log\pi(u\mid x)\,b] =
# b\,\nabla\!\int\pi(u\mid x)\,du = b\,\nabla 1 = 0$ (4.8)–(4.10); the best-known choice $b = V^\pi(x_t)$ turns $Q^\pi - b$ into
# the advantage $A^\pi = Q^\pi - V^\pi$ (4.11)–(4.13). Actor-critic learns $V$ with a critic $V_\phi$ and uses the
# one-step TD advantage $A_\phi(x_i, u_i) = r_i + \gamma V_\phi(x_{i+1}) - V_\phi(x_i)$ (4.17), (4.21).

# %%
import numpy as np

from pgcontrol.labs import check

# %% [markdown]
# ## 1. TD targets
#
# The critic is fitted to the Bellman equation (4.18) with one sample: $V_\phi(x_i) \approx r_i + \gamma V_\phi(x_{i+1})$
# (4.19). After a **terminal** state there is no future, so the target is $r_i$ alone (take $V(x_{i+1}) = 0$):
#
# $$\text{target}_i = r_i + \gamma\,(1 - \text{terminated}_i)\,V_\phi(x_{i+1}). \tag{4.21}$$
#
# (A time-limit *truncation* is different — the state still has a future — which lab 5 deals with.)

# %% tags=["stub"]
def td_targets(r, v_next, terminated, gamma):
    """Bootstrapped critic targets r_i + gamma V(x_{i+1}), with no bootstrap after termination, eqs. (4.19)-(4.21).

    Parameters
    ----------
    r : (N,) array
        Rewards r_i.
    v_next : (N,) array
        Critic values V(x_{i+1}) of the next states.
    terminated : (N,) bool array
        True where x_{i+1} is terminal.
    gamma : float

    Returns
    -------
    (N,) array
    """
    raise NotImplementedError


# %% tags=["check"]
check(3, globals(), only="td_targets")

# %% [markdown]
# ## 2. The critic's and the actor's losses
#
# The critic minimises the squared TD error (4.20), written as a **sum** with a factor ½:
#
# $$\text{Loss}_\text{critic} = \frac12 \sum_i \big(r_i + \gamma V_\phi(x_{i+1}) - V_\phi(x_i)\big)^2 = \frac12\sum_i(\text{target}_i - v_i)^2.$$
#
# The actor follows the policy gradient with the advantage; written as a loss to **minimise** (4.22)–(4.23):
#
# $$\text{Loss}_\text{actor} = -\sum_i \log\pi_\theta(u_i \mid x_i)\, A_\phi(x_i, u_i).$$
#
# (The targets and advantages are constants for these losses: in an autodiff framework detach them.)

# %% tags=["stub"]
def critic_loss(v, targets):
    """The critic loss of eq. (4.20) as written: 0.5 * sum_i (targets_i - v_i)**2.

    Parameters
    ----------
    v, targets : (N,) arrays

    Returns
    -------
    float
    """
    raise NotImplementedError


# %% tags=["check"]
check(3, globals(), only="critic_loss")

# %% tags=["stub"]
def actor_loss(logp, adv):
    """The actor loss of eq. (4.22) as written: -sum_i logp_i * adv_i (to minimise, eq. (4.23)).

    Parameters
    ----------
    logp : (N,) array
        log pi(u_i | x_i).
    adv : (N,) array
        Advantages A(x_i, u_i).

    Returns
    -------
    float
    """
    raise NotImplementedError


# %% tags=["check"]
check(3, globals(), only="actor_loss")

# %% [markdown]
# ## 3. A quadratic baseline
#
# In lab 1 you found that the value of a linear Gaussian policy on an LQ plant is exactly $V(x) = x^\top P_K x + q$.
# So for LQ problems the natural critic — and the natural baseline of (4.11) — is a quadratic
# $V(x) = x^\top P x + c$ with $P$ symmetric, fitted by least squares to observed returns. It is linear in its
# parameters: $x^\top P x = \sum_i P_{ii} x_i^2 + 2\sum_{i<j} P_{ij} x_i x_j$, so the features are $x_i^2$,
# $2x_ix_j$ ($i<j$) and $1$ — $n(n+1)/2 + 1$ unknowns. Minimise $\sum_i \big(\text{return}_i - x_i^\top P x_i - c\big)^2$ over
# those unknowns with `np.linalg.lstsq`, then fill the symmetric $P$ from them.

# %% tags=["stub"]
def fit_quadratic_value(x, returns):
    """Least-squares fit of the baseline V(x) = x'Px + c of eq. (4.11) (P symmetric) to observed returns.

    Parameters
    ----------
    x : (N, n) array
        States.
    returns : (N,) array
        Observed (discounted) returns from those states.

    Returns
    -------
    P : (n, n) symmetric array
    c : float
    """
    raise NotImplementedError


# %% tags=["check"]
check(3, globals(), only="fit_quadratic_value")

# %% [markdown]
# ## 4. Your critic on real returns
#
# Monte Carlo returns of a linear policy on the double integrator from random initial states, your fitted $P$,
# and the exact $P_K$ of the finite-horizon value (lab 1's Lyapunov recursion): the fit recovers it up to the
# sampling noise.

# %% tags=["figure"]
import matplotlib.pyplot as plt

from pgcontrol import plants, sim

p = plants.make("double-integrator", x0_mean=[0.0, 0.0], x0_cov=np.eye(2))
K = np.array([[0.3, 0.8]])
ro = sim.rollout_linear(p, K, 0.1, n_traj=400, horizon=60, seed=0)
x0 = ro.states[0].numpy()
G = ro.discounted_cost(p.gamma).numpy() * -1.0  # returns = -costs
P_fit, c_fit = fit_quadratic_value(x0, G)
# exact value of the T-step return from x0: V(x) = -(x'P_0x + const), P_t = Q + K'RK + gamma A_K'P_{t+1}A_K
Acl, P_exact = p.A - p.B @ K, np.zeros((2, 2))
for _ in range(60):
    P_exact = p.Q + K.T @ p.R @ K + p.gamma * Acl.T @ P_exact @ Acl
print("fitted P:\n", np.round(P_fit, 3), "\nexact -P_0:\n", np.round(-P_exact, 3))
fig, ax = plt.subplots(figsize=(5, 3.5))
pred = np.einsum("ni,ij,nj->n", x0, P_fit, x0) + c_fit
ax.plot(G, pred, ".", alpha=0.5)
ax.plot([G.min(), G.max()], [G.min(), G.max()], "k:")
ax.set(xlabel="observed return", ylabel="your V(x0)", title="quadratic critic on 400 returns")
plt.show()

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(3, globals())
