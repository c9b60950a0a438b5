# %% [markdown]
# # Lab 2 — REINFORCE on the scalar LQG
#
# The equation numbers are those of the course notes: (3.1)–(3.27) for the objective, the log-derivative trick and
# REINFORCE, (4.8)–(4.11) for baselines and (4.24)–(4.26) for the Gaussian policy. Every formula this lab asks for
# is stated below. You write the three ingredients of REINFORCE and `check` compares them with the exact gradient
# of lab 1's exact cost (`pgcontrol.lqr.policy_gradient`), on the course slides' scalar LQG.
#
# **The policy of the slides.** $u_t \sim \mathcal N(k x_t, \sigma^2)$, parameters $\theta = (k, \sigma)$
# (pgcontrol's $K$ is $-k$). The plant `scalar-lqg` is $x_{t+1} = x_t + u_t$, reward
# $r_t = -(x_t^2 + 0.1 u_t^2)$, $\gamma = 0.9$, episodes of $T = 50$ steps.

# %%
import numpy as np

from pgcontrol.labs import check

# %% [markdown]
# ## 1. The log-density of a diagonal Gaussian
#
# A diagonal Gaussian policy factorises over the action components (4.24)–(4.25), so its log-density is a sum
# (4.26):
#
# $$\log\pi_\theta(u \mid x) = -\sum_{j=1}^m \Big[\frac{(u_j - \mu_j)^2}{2\sigma_j^2} + \frac12 \log(2\pi\sigma_j^2)\Big].$$
#
# The second term is $\tfrac12\log 2\pi + \log\sigma_j$: the $\log\sigma_j$ part is what makes the density
# normalised, and it is what produces the $-1/\sigma$ in the score with respect to $\sigma$. Dropping it is the
# classic bug.
#
# Compute it **as a sum of logs**, never as the log of a density: far in the tails (an action 40 standard
# deviations from the mean, as happens with a small $\sigma$) $\exp(-(u-\mu)^2/(2\sigma^2))$ underflows to 0 in floating
# point, and `log(prod(exp(...)))` gives $-\infty$ where (4.26) is a finite number such as $-800$. The check tries
# such actions.

# %% tags=["stub"]
def gaussian_log_prob(u, mean, std):
    """Log-density of a diagonal Gaussian, eq. (4.26), summed over the last axis.

    Parameters
    ----------
    u, mean : (..., m) arrays
    std : (m,) array (broadcasts against u)

    Returns
    -------
    (...) array
        log N(u; mean, diag(std**2)).
    """
    raise NotImplementedError


# %% tags=["check"]
check(2, globals(), only="gaussian_log_prob")

# %% [markdown]
# ## 2. The reward-to-go
#
# The log-derivative trick (3.11)–(3.12) and the factorisation of the trajectory density (3.5), (3.13)–(3.14)
# give the REINFORCE gradient (3.15):
#
# $$\nabla_\theta J = \mathbb E\Big[\Big(\sum_t \nabla_\theta\log\pi_\theta(u_t\mid x_t)\Big)\Big(\sum_t \gamma^t r_t\Big)\Big].$$
#
# Causality — an action cannot change the rewards before it — removes the past rewards (3.17)–(3.18); pulling
# $\gamma^t$ out of $\gamma^k = \gamma^t \gamma^{k-t}$ gives (3.19):
#
# $$\nabla_\theta J = \mathbb E\Big[\sum_t \gamma^t\, \nabla_\theta\log\pi_\theta(u_t\mid x_t)\; G_t\Big],
# \qquad G_t = \sum_{k \ge t} \gamma^{k-t} r_k \quad \text{(the reward-to-go of (3.21))}.$$
#
# The reward-to-go $G_t$ of (3.21) drops the $\gamma^t$ in front, and many implementations drop it from the gradient
# too: that is the gradient of a different objective — biased for the discounted return. Keep $\gamma^t$ (it starts
# at $\gamma^0 = 1$ for the first step). The statistical items of the check show the bias.

# %% tags=["stub"]
def reward_to_go(rewards, gamma):
    """Discounted reward-to-go G_t = sum_{k >= t} gamma^(k - t) r_k, the inner sum of (3.21).

    Parameters
    ----------
    rewards : (M, T) array
        M trajectories of T rewards.
    gamma : float

    Returns
    -------
    (M, T) array
    """
    raise NotImplementedError


# %% tags=["check"]
check(2, globals(), only="reward_to_go")

# %% [markdown]
# ## 3. Three REINFORCE estimators
#
# For $u \sim \mathcal N(kx, \sigma^2)$, differentiating (4.26) gives the scores
#
# $$\frac{\partial \log\pi}{\partial k} = \frac{(u - kx)\,x}{\sigma^2}, \qquad
# \frac{\partial \log\pi}{\partial \sigma} = \frac{(u - kx)^2 - \sigma^2}{\sigma^3}.$$
#
# The Monte Carlo estimate (3.23)–(3.24) averages over $M$ trajectories. Write three estimators of the gradient of
# the expected discounted **return**:
#
# * `"total"` — (3.15): $\frac1M\sum_m (\sum_t \nabla\log\pi_t)(\sum_t\gamma^t r_t)$;
# * `"rtg"` — (3.19): $\frac1M\sum_m \sum_t \gamma^t \nabla\log\pi_t\, G_t$;
# * `"rtg_baseline"` — (3.19) with $G_t - b_t$. A baseline that does not depend on the action leaves the gradient
#   unchanged (4.8)–(4.10): $\mathbb E[\nabla\log\pi\, b] = b\,\nabla\!\int\pi = 0$. Use
#   $b_t^{(m)} = \frac1{M-1}\sum_{j \ne m} G_t^{(j)}$, the mean over the **other** trajectories at the same $t$.
#   Including trajectory $m$'s own return makes $b$ depend on its actions, and the estimator is biased by the
#   factor $1 - 1/M$.

# %% tags=["stub"]
def reinforce_gradient(x, u, r, k, sigma, gamma, estimator):
    """REINFORCE estimate of the gradient of the expected discounted return, eqs. (3.15), (3.19), (3.24).

    The policy is the slides' u ~ N(k x, sigma**2), theta = (k, sigma).

    Parameters
    ----------
    x, u, r : (M, T) arrays
        States, actions and rewards of M trajectories.
    k, sigma : float
    gamma : float
    estimator : {"total", "rtg", "rtg_baseline"}
        (3.15); (3.19) with the gamma^t factor; (3.19) minus the mean reward-to-go of the other
        M - 1 trajectories at the same t (4.8)-(4.11).

    Returns
    -------
    (dk, dsigma) : tuple of floats
        The estimate of d(return)/dk and d(return)/dsigma, averaged over the M trajectories (3.24).
    """
    raise NotImplementedError


# %% tags=["check"]
check(2, globals(), only="reinforce_gradient")

# %% [markdown]
# The statistical items of that check simulate 2000 batches of $M = 5$ trajectories with `pgcontrol.sim` at
# $k = -0.5$, $\sigma = 0.3$ and compare the mean of your estimates with the exact gradient by a z-test
# ($|z| < 4.5$ for each estimator and component: a correct solution passes with probability > 0.999; the
# known biased variants are 14 or more standard errors off). All three are unbiased; they differ in variance.
#
# ## 4. Variance against the number of rollouts
#
# The spread of your three estimators of $\partial J/\partial k$ over 200 batches, for several batch sizes $M$.
# All fall like $1/\sqrt M$; causality and the baseline lower the constant.

# %% tags=["figure"]
import matplotlib.pyplot as plt

from pgcontrol.labs import drivers

v = drivers.variance_vs_rollouts(reinforce_gradient, Ms=(2, 5, 10, 20, 50), batches=200)
fig, ax = plt.subplots(figsize=(6.5, 4))
for e, label in (("total", "total return (3.15)"), ("rtg", "reward-to-go (3.19)"),
                 ("rtg_baseline", "reward-to-go − baseline (4.11)")):
    ax.loglog(v["M"], v[e], "o-", label=label)
ax.set_xticks(v["M"], labels=[str(M) for M in v["M"]])
ax.minorticks_off()
ax.set(xlabel="rollouts per estimate M", ylabel="std of the estimate of ∂(return)/∂k",
       title="your three estimators on scalar-lqg at k = −0.5, σ = 0.3\n"
             f"(the exact gradient of the return ∂(return)/∂k = {v['exact']:.3f})")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(2, globals())
