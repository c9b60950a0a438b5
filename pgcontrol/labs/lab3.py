"""Lab 3: baselines and actor-critic, eqs. (4.8)–(4.22).

The student writes

* ``td_targets(r, v_next, terminated, gamma) -> array``: the critic's
  bootstrapped targets :math:`r_i + \\gamma V(x_{i+1})` of (4.19)–(4.21),
  with no bootstrap after a terminal state (:math:`V = 0` there);
* ``critic_loss(v, targets) -> float``: (4.20) as written,
  :math:`\\tfrac12\\sum_i(\\text{targets}_i - v_i)^2` (a sum);
* ``actor_loss(logp, adv) -> float``: (4.22) as written,
  :math:`-\\sum_i \\log\\pi_i\\,A_i` (the quantity to minimise, (4.23));
* ``fit_quadratic_value(x, returns) -> (P, c)``: the least-squares fit of the
  baseline :math:`V(x) = x^\\top P x + c` (P symmetric) to observed returns —
  the value function of a linear policy on an LQ plant has exactly this form
  (lab 1's :math:`x^\\top P_K x + q`), so it is the natural critic/baseline of (4.11)–(4.13).

All items are deterministic (exact comparisons) on random inputs.
"""

from __future__ import annotations

import numpy as np

from ._core import Item, Lab, Mismatch, as_array, as_float, as_tuple, code_inputs, compare, fmt


def check_td(sub, rng) -> str:
    """Random r, v_next (N = 8) with some terminated steps, γ ∈ [0.8, 0.99], against (4.21)."""
    N = 8
    r, v_next = rng.standard_normal(N), rng.standard_normal(N) * 3
    terminated = np.zeros(N, dtype=bool)
    terminated[rng.choice(N, 3, replace=False)] = True
    gamma = float(rng.uniform(0.8, 0.99))
    expected = r + gamma * (~terminated) * v_next
    out = as_array(sub.call("td_targets", r, v_next, terminated, gamma), "td_targets", (N,))
    compare(out, expected, what="TD targets", inputs=code_inputs(
            r=r, v_next=v_next, terminated=terminated, gamma=gamma), mistakes=[
                (r + gamma * v_next, "bootstraps after a terminal state: there is no future after termination, "
                 "V(x_{i+1}) = 0 there, so the target is r_i alone (4.21)"),
                (r, "never bootstraps: the target is r_i + γV(x_{i+1}) unless the episode terminated (4.19)–(4.21)"),
                (r + (~terminated) * v_next, "γ is missing from the bootstrap term γV(x_{i+1}) (4.21)"),
                (r + gamma * terminated * v_next, "the termination mask is inverted: bootstrap unless terminated (4.21)"),
            ])
    return "matches (4.21)"


def check_critic(sub, rng) -> str:
    """Random v, targets (N = 9) against ½Σ(targets − v)² (4.20)."""
    v, t = rng.standard_normal(9), rng.standard_normal(9)
    sq = (t - v) ** 2
    out = as_float(sub.call("critic_loss", v, t), "critic_loss")
    compare(out, 0.5 * sq.sum(), what="critic loss", inputs=code_inputs(v=v, targets=t), mistakes=[
        (0.5 * sq.mean(), "mean instead of sum: (4.20) as written is ½ Σ_i (…)², a sum"),
        (sq.mean(), "mean squared error: (4.20) as written is ½ Σ_i (…)², a sum with the factor ½"),
        (sq.sum(), "the factor ½ of (4.20) is missing"),
        (-0.5 * sq.sum(), "sign: the critic loss (4.20) is a sum of squares, ≥ 0"),
    ])
    return "matches (4.20)"


def check_actor(sub, rng) -> str:
    """Random logp, adv (N = 9) against −Σ logp·adv (4.22)."""
    logp, adv = rng.standard_normal(9) - 1.0, rng.standard_normal(9)
    prod = logp * adv
    out = as_float(sub.call("actor_loss", logp, adv), "actor_loss")
    compare(out, -prod.sum(), what="actor loss", inputs=code_inputs(logp=logp, adv=adv), mistakes=[
        (prod.sum(), "sign: (4.22) is −Σ log π A, the loss to *minimise* (4.23); without the minus sign gradient "
         "descent makes good actions less likely"),
        (-prod.mean(), "mean instead of sum: (4.22) as written is a sum over the samples"),
    ])
    return "matches (4.22)"


def _features(x):
    n = x.shape[1]
    iu = np.triu_indices(n)
    quad = x[:, iu[0]] * x[:, iu[1]] * np.where(iu[0] == iu[1], 1.0, 2.0)
    return np.hstack([quad, np.ones((len(x), 1))]), iu


def lstsq_value(x, returns):
    """The unique least-squares (P symmetric, c): features x_i² and 2x_ix_j (i < j) and 1."""
    Phi, iu = _features(x)
    w, *_ = np.linalg.lstsq(Phi, returns, rcond=None)
    n = x.shape[1]
    P = np.zeros((n, n))
    P[iu] = w[:-1]
    P = P + np.triu(P, 1).T
    return P, float(w[-1])


def _call_fit(sub, x, returns):
    n = x.shape[1]
    P, c = as_tuple(sub.call("fit_quadratic_value", x, returns), "fit_quadratic_value", 2)
    P = as_array(P, "P returned by fit_quadratic_value", (n, n))
    c = as_float(c, "c returned by fit_quadratic_value")
    if not np.allclose(P, P.T, rtol=1e-8, atol=1e-10):
        raise Mismatch(f"P is not symmetric: {fmt(P, 4)}. xᵀPx only sees (P + Pᵀ)/2, so fit the n(n+1)/2 distinct "
                       "entries (features x_i², 2x_ix_j for i < j) or symmetrise")
    return P, c


def _fit_mistakes(x, returns):
    """The P of two known wrong fits (off-diagonals counted once; no constant)."""
    n = x.shape[1]
    iu = np.triu_indices(n)
    quad = x[:, iu[0]] * x[:, iu[1]]
    w, *_ = np.linalg.lstsq(np.hstack([quad, np.ones((len(x), 1))]), returns, rcond=None)
    P_half = np.zeros((n, n))
    P_half[iu] = w[:-1]
    P_half = P_half + np.triu(P_half, 1).T  # off-diagonals counted once: twice too large
    Phi, iu2 = _features(x)
    w0, *_ = np.linalg.lstsq(Phi[:, :-1], returns, rcond=None)
    P0 = np.zeros((n, n))
    P0[iu2] = w0
    P0 = P0 + np.triu(P0, 1).T
    return [
        (P_half, "the off-diagonal entries are twice too large: xᵀPx = Σ_i P_ii x_i² + 2 Σ_{i<j} P_ij x_i x_j, so the "
         "feature of P_ij (i < j) is 2x_ix_j"),
        (P0, "no constant c: V(x) = xᵀPx + c needs the column of ones (the noise and x0 terms of lab 1's q)"),
    ]


def check_fit_exact(sub, rng) -> str:
    """Noise-free returns xᵀP x + c of a random symmetric P (n = 3), N = 40 states: recover P and c."""
    n, N = 3, 40
    G = rng.standard_normal((n, n))
    P_true, c_true = (G + G.T) / 2, float(rng.uniform(-2, 2))
    x = rng.standard_normal((N, n))
    returns = np.einsum("ni,ij,nj->n", x, P_true, x) + c_true
    P, c = _call_fit(sub, x, returns)
    inputs = code_inputs(x=x, returns=returns) + f"\n# returns = xᵀPx + c exactly, P = {P_true.tolist()!r}, c = {c_true!r}"
    compare(P, P_true, what="P", inputs=inputs, mistakes=_fit_mistakes(x, returns), rtol=1e-6, atol=1e-8)
    compare(c, c_true, what="c", inputs=inputs, rtol=1e-6, atol=1e-8)
    return "recovers P and c exactly"


def check_fit_noisy(sub, rng) -> str:
    """Noisy returns (n = 2, N = 30): (P, c) must be the unique least-squares minimiser over symmetric P."""
    n, N = 2, 30
    x = rng.standard_normal((N, n))
    returns = 2 * x[:, 0] ** 2 + x[:, 0] * x[:, 1] + 0.5 * x[:, 1] ** 2 + 1.0 + rng.standard_normal(N)
    P_exp, c_exp = lstsq_value(x, returns)
    P, c = _call_fit(sub, x, returns)
    inputs = code_inputs(x=x, returns=returns)
    compare(P, P_exp, what="P", inputs=inputs, mistakes=_fit_mistakes(x, returns), rtol=1e-6, atol=1e-8)
    compare(c, c_exp, what="c", inputs=inputs, rtol=1e-6, atol=1e-8)
    return "the least-squares minimiser"


LAB = Lab(
    number=3,
    title="Baselines and actor-critic",
    equations="(4.8)–(4.22)",
    functions={
        "td_targets": "td_targets(r, v_next, terminated, gamma) -> array",
        "critic_loss": "critic_loss(v, targets) -> float",
        "actor_loss": "actor_loss(logp, adv) -> float",
        "fit_quadratic_value": "fit_quadratic_value(x, returns) -> (P, c)",
    },
    summary="why a baseline keeps the gradient unbiased, the critic's TD targets and loss, the actor's loss, "
            "and a quadratic value function (the exact form of an LQ value) as the baseline",
    items=(
        Item("td_targets", "td_targets: r + γV(x') unless terminated (4.19)–(4.21)", 2, ("td_targets",), check_td),
        Item("critic_loss", "critic_loss: ½ Σ (target − V)² (4.20)", 1, ("critic_loss",), check_critic),
        Item("actor_loss", "actor_loss: −Σ log π · A (4.22)", 1, ("actor_loss",), check_actor),
        Item("fit_quadratic_value.exact", "fit_quadratic_value: recovers xᵀPx + c from exact returns", 2,
             ("fit_quadratic_value",), check_fit_exact),
        Item("fit_quadratic_value.lstsq", "fit_quadratic_value: the least-squares fit on noisy returns", 2,
             ("fit_quadratic_value",), check_fit_noisy),
    ),
)
