# %% [markdown]
# # Lab 4 — The natural gradient and the plateau of zero exploration
#
# Derivation: the slides `../shared/reference/004_*` ("steepest ascent under a metric $G$", "KL divergence and its
# Taylor expansion", "Fisher information matrix", "Example: Vanilla / Natural Policy Gradient for LQG"), after
# Peters & Schaal (2008).
#
# The vanilla step $\theta \leftarrow \theta + \alpha\nabla J$ (3.22) is steepest ascent in the Euclidean metric
# of the parameters — but a step of the same length in $k$ and in $\sigma$ changes the policy by very different
# amounts. Measure the step by how much it changes the *distribution* instead: to second order
# $\mathrm{KL}(\pi_\theta \,\|\, \pi_{\theta+\delta}) \approx \tfrac12\,\delta^\top F(\theta)\,\delta$ with the
# **Fisher information** $F(\theta) = \mathbb E\big[\nabla\log\pi\,\nabla\log\pi^\top\big]$. Maximising the
# linearised gain $g^\top\delta$ subject to $\delta^\top F \delta \le \epsilon$ (a Lagrangian, as on the slides)
# gives the **natural step**
#
# $$\delta\theta = \sqrt{\frac{\epsilon}{g^\top F^{-1} g}}\; F^{-1} g,$$
#
# with the pseudo-inverse $F^\dagger$ when $F$ is singular. (pgcontrol's own NPG uses $2\epsilon$, so that the
# *mean KL* of a step is $\epsilon$; here $\epsilon$ is the slides' $\epsilon$.)

# %%
import numpy as np

from pgcontrol.labs import check

# %% [markdown]
# ## 1. The sample Fisher
#
# With score vectors $s_i = \nabla_\theta\log\pi(u_i\mid x_i)$ (one row per sample), the Monte Carlo Fisher is the
# mean outer product $\hat F = \frac1N \sum_i s_i s_i^\top$. It is the raw second moment: the score has mean zero
# in expectation, but do **not** subtract the sample mean.

# %% tags=["stub"]
def sample_fisher(scores):
    """Sample Fisher information: the mean outer product of the score vectors (slides: Fisher information matrix).

    Parameters
    ----------
    scores : (N, d) array
        One score vector grad_theta log pi(u_i | x_i) per row.

    Returns
    -------
    (d, d) array
        (1/N) sum_i s_i s_i'.
    """
    raise NotImplementedError


# %% tags=["check"]
check(4, globals(), only="sample_fisher")

# %% tags=["stub"]
def natural_step(g, F, eps):
    """The natural-gradient step of the slides: delta = sqrt(eps / (g' F^+ g)) F^+ g.

    Parameters
    ----------
    g : (d,) array
        Gradient of the return (ascent direction).
    F : (d, d) array
        Fisher information (symmetric PSD, possibly singular: use the pseudo-inverse).
    eps : float
        Step size in the Fisher metric: delta' F delta = eps.

    Returns
    -------
    (d,) array
        delta, to be added to theta.
    """
    raise NotImplementedError


# %% tags=["check"]
check(4, globals(), only="natural_step")

# %% [markdown]
# ## 2. The plateau
#
# The scalar LQG of the slides, $u \sim \mathcal N(kx, \sigma^2)$ from $k = -0.2$, $\sigma = 0.1$ (floor
# $10^{-3}$), $M = 5$ rollouts of $T = 50$ steps per update, the gradient of lab 2 (reward-to-go with $\gamma^t$
# and the leave-one-out baseline). The driver `pgcontrol.labs.drivers.policy_gradient_run` does the rollouts and
# the gradient; the *step* is yours: the natural step with your Fisher, against the vanilla step
# $\alpha g$ (3.22). Exploration costs ($\partial J/\partial\sigma > 0$ everywhere, lab 1's figure), so the vanilla
# gradient mostly points down in $\sigma$: $\sigma$ collapses onto its floor while $k$ is far from $k^*$, and there
# the score in $k$, $(u - kx)x/\sigma^2$, is all noise — the **plateau of zero exploration**. The Fisher rescales
# each direction by its own information ($F_{\sigma\sigma} = 2/\sigma^2$ grows as $\sigma$ shrinks), so the natural
# step keeps moving $k$.
#
# The graded item runs 20 such natural-gradient runs (at most 100 updates) and needs 14 to get within 1 % of
# $k^*$: a correct step succeeds in about 97 % of runs (median about 15 updates), so it passes with probability
# > 0.9999; a step without the square root or with $F$ instead of $F^{-1}$ succeeds in at most 37 % and fails
# the item with probability > 0.99.

# %% tags=["figure"]
import matplotlib.pyplot as plt

from pgcontrol.labs import drivers

k_opt = drivers.k_star()
natural = [drivers.policy_gradient_run(lambda g, S: natural_step(g, sample_fisher(S), 0.05), updates=100, seed=s)
           for s in range(4)]
vanilla = [drivers.policy_gradient_run(lambda g, S: 0.03 * g, updates=100, seed=s) for s in range(4)]
exact = drivers.exact_vanilla_path(0.03, 100)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for i, (n, v) in enumerate(zip(natural, vanilla)):
    ax1.plot(n.k, color="tab:orange", alpha=0.8, label="natural (your step), ε = 0.05" if i == 0 else None)
    ax1.plot(v.k, color="tab:blue", alpha=0.8, label="vanilla, α = 0.03" if i == 0 else None)
    ax2.semilogy(n.sigma, color="tab:orange", alpha=0.8)
    ax2.semilogy(v.sigma, color="tab:blue", alpha=0.8)
ax1.plot(exact.k, color="k", ls="--", label="vanilla, exact gradient")
ax2.semilogy(exact.sigma, color="k", ls="--")
ax1.axhline(k_opt, color="gray", ls=":", label=f"k* = {k_opt:.4f}")
ax1.set(xlabel="update", ylabel="k", title="the gain")
ax2.set(xlabel="update", ylabel="σ", title="exploration (floor 1e-3)")
ax1.legend(fontsize=8)
plt.show()
print("updates to 1 % of k*: natural", [r.reached(k_opt) for r in natural], " vanilla", [r.reached(k_opt) for r in vanilla])

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(4, globals())
