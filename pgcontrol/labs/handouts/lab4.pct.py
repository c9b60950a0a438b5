# %% [markdown]
# # Lab 4 — The natural gradient and the plateau of zero exploration
#
# After the course slides ("steepest ascent under a metric $G$", "KL divergence and its Taylor expansion",
# "Fisher information matrix", "Example: Vanilla / Natural Policy Gradient for LQG") and Peters & Schaal (2008).
# Every formula this lab asks for is stated below; (3.19), (3.22) and (4.8) are the numbers of the course notes.
#
# **Why another metric.** The vanilla step $\theta \leftarrow \theta + \alpha\nabla J$ (3.22) is steepest ascent in the
# Euclidean metric of the parameters — but a step of the same length in $k$ and in $\sigma$ changes the policy by very
# different amounts. Measure the step by how much it changes the *distribution* instead. To second order,
#
# $$\mathrm{KL}(\pi_\theta \,\|\, \pi_{\theta+\delta}) \approx \tfrac12\,\delta^\top F(\theta)\,\delta,
# \qquad F(\theta) = \mathbb E\big[\nabla_\theta\log\pi_\theta(u\mid x)\,\nabla_\theta\log\pi_\theta(u\mid x)^\top\big],$$
#
# the **Fisher information** (the first-order term vanishes because the score has mean zero).
#
# **The natural step.** Maximise the linearised gain $g^\top\delta$ subject to $\delta^\top F \delta = \epsilon$. The Lagrangian
# $g^\top\delta - \tfrac\mu2(\delta^\top F\delta - \epsilon)$ is stationary at $g = \mu F\delta$, so $\delta = \mu^{-1}F^{-1}g$;
# the constraint gives $\mu^{-2}\,g^\top F^{-1} g = \epsilon$, hence
#
# $$\delta\theta = \sqrt{\frac{\epsilon}{g^\top F^{-1} g}}\; F^{-1} g,$$
#
# with the pseudo-inverse $F^\dagger$ in place of $F^{-1}$ when $F$ is singular (a parameter the data carry no
# information about gets no step). (pgcontrol's own NPG uses $2\epsilon$, so that the *mean KL* of a step is
# $\epsilon$; here $\epsilon$ is the slides' $\epsilon$: $\delta\theta^\top F\,\delta\theta = \epsilon$.)

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
# The scalar LQG of the slides: $x_{t+1} = x_t + u_t$, reward $r_t = -(x_t^2 + 0.1u_t^2)$, $\gamma = 0.9$, episodes of
# $T = 50$ steps from $x_0 \approx 0.3$, policy $u \sim \mathcal N(kx, \sigma^2)$, $\theta = (k, \sigma)$, from $k = -0.2$,
# $\sigma = 0.1$ (floor $10^{-3}$); the optimum is $k^\ast = -0.90755$. The driver
# `pgcontrol.labs.drivers.policy_gradient_run` does the rollouts and the gradient of lab 2 (reward-to-go with
# $\gamma^t$ and the leave-one-out baseline, (3.19), (4.8)); the *step* is yours.
#
# **Vanilla stalls.** Exploration costs ($J$ grows with $\sigma$ at every $k$, lab 1's figure), so the vanilla gradient
# mostly points down in $\sigma$: $\sigma$ collapses onto its floor while $k$ is still far from $k^\ast$, and there the
# score in $k$, $(u - kx)x/\sigma^2$, is all noise and the true gradient in $k$ is tiny — the **plateau of zero
# exploration**. The Fisher rescales each direction by its own information ($F_{\sigma\sigma} = 2/\sigma^2$ grows as
# $\sigma$ shrinks), so the natural step keeps moving $k$.
#
# **Converging, not only arriving.** A natural step always has the same size $\sqrt\epsilon$ in the Fisher metric.
# Near $k^\ast$ the true gradient vanishes and the sampled one is mostly noise, so a step of fixed size keeps
# jumping about $k^\ast$ (by some ±30 % here with a fixed $\epsilon = 0.05$ and 5 rollouts). The driver therefore
# shrinks the trust region and grows the batch with the update number $t$:
#
# $$\epsilon_t = \frac{0.05}{(1 + t/5)^2}, \qquad M_t = 5 + t \text{ rollouts},$$
#
# so that the steps shrink (their sizes still add up to enough to get there) while the gradient gets more
# accurate: the runs reach $k^\ast$ and stay within a few per cent of it. The vanilla runs get the same batches.
#
# **The graded item** runs 20 natural-gradient runs (at most 60 updates; a run stops once within 1 % of $k^\ast$)
# and needs 16 of them to get within 1 % of $k^\ast$ without diverging. A correct step succeeded in 100 of 100
# measured runs (median 16.5 updates), so it passes with probability > 0.999; $F$ instead of $F^{-1}$ succeeded in
# 42 of 100 and the step without the square root in 22 of 100, so they fail with probability > 0.999.
#
# **The figure** shows 16 runs of each: the median over the runs (line) and the band between the 25 % and 75 %
# quantiles (shaded), and the vanilla path with the exact gradient (dashed). A sampled vanilla run does not sit
# still on the floor: there the $\sigma$-score $((u - kx)^2 - \sigma^2)/\sigma^3$ is of order $1/\sigma$, so one noisy gradient
# throws $\sigma$ back up and the next pulls it down again. So $\sigma$ is drawn as each run's running median over 5
# updates before the median over runs: it shows where $\sigma$ spends its time: a twentieth to a hundredth of its start, while $k$ stalls.

# %% tags=["figure"]
import matplotlib.pyplot as plt

from pgcontrol.labs import drivers


def running_median(a, w=5):
    """Each run's median over the last w updates (fewer at the start)."""
    return np.array([[np.nanmedian(row[max(0, t - w + 1):t + 1]) for t in range(len(row))] for row in a])


k_opt = drivers.k_star()
schedule = dict(eps=drivers.EPS, eps_tau=drivers.EPS_TAU, growth=drivers.GROWTH)
natural = drivers.sampled_runs(lambda g, S, eps: natural_step(g, sample_fisher(S), eps), seeds=range(16),
                               updates=60, **schedule)
vanilla = drivers.sampled_runs(lambda g, S: 0.03 * g, seeds=range(16), updates=60, growth=drivers.GROWTH)
exact = drivers.exact_vanilla_path(0.03, 60)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
for runs, color, label in ((natural, "tab:orange", "natural (your step), ε_t = 0.05/(1 + t/5)²"),
                           (vanilla, "tab:blue", "vanilla, α = 0.03")):
    for ax, values in ((ax1, runs["k"]), (ax2, running_median(runs["sigma"]))):
        lo, med, hi = np.nanpercentile(values, [25, 50, 75], axis=0)
        ax.plot(med, color=color, label=label + ", median of 16")
        ax.fill_between(np.arange(len(med)), lo, hi, color=color, alpha=0.25, lw=0)
ax1.plot(exact.k, color="k", ls="--", label="vanilla, exact gradient")
ax2.plot(exact.sigma, color="k", ls="--")
ax1.axhline(k_opt, color="gray", ls=":", label=f"k* = {k_opt:.4f}")
ax1.set(xlabel="update t", ylabel="k", title="the gain: natural converges to k*, vanilla stalls")
ax2.set(xlabel="update t", ylabel="σ (log scale)", yscale="log",
        title="exploration σ (running median of 5; floor 1e-3)")
ax1.legend(fontsize=8)
fig.tight_layout()
plt.show()
last = np.abs(natural["k"][:, -20:] - k_opt).max(axis=1) / abs(k_opt)
print(f"natural: largest |k - k*|/|k*| over the last 20 updates, per run: {np.round(last, 3)}")
print(f"vanilla: median k after 60 updates {np.nanmedian(vanilla['k'][:, -1]):.3f} (k* = {k_opt:.3f})")

# %% [markdown]
# ## Your grade

# %% tags=["check"]
check(4, globals())
