"""Lab 5: PPO and GAE, eqs. (6.35)–(6.46).

The student writes

* ``gae(r, v, v_next, terminated, truncated, gamma, lam) -> adv`` for one
  environment's stream of T steps (arrays ``(T,)``, possibly several
  episodes): the TD residual (6.44)
  :math:`\\delta_t = r_t + \\gamma(1 - \\text{terminated}_t) V(x_{t+1}) - V(x_t)`
  — bootstrap with ``v_next`` at a truncation (the time limit: the state
  still has a future), not at a termination — and the recursion
  :math:`A_t = \\delta_t + \\gamma\\lambda(1 - \\text{done}_t) A_{t+1}` of
  (6.46), ``done = terminated | truncated``, which never chains across an
  episode end; the end of the stream is not an episode end (``v_next``
  bootstraps it). The checked streams are consistent: ``v_next[t] = v[t+1]``
  except at an episode end and at the last step, so reading ``v[t+1]``
  inside an episode is equivalent;
* ``ppo_clip_objective(logp, logp_old, adv, clip) -> float``: (6.37), the
  mean of :math:`\\min(\\rho_t A_t, \\mathrm{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon) A_t)`
  with the ratio :math:`\\rho_t = \\exp(\\log\\pi - \\log\\pi_{old})` (6.35), (6.39) — to maximise.

All items are deterministic (exact comparisons) on random streams.
"""

from __future__ import annotations

import numpy as np

from ._core import Item, Lab, as_array, as_float, code_inputs, compare


def gae_ref(r, v, v_next, terminated, truncated, gamma, lam, *, variant: str | None = None):
    """(6.44)–(6.46) on one stream; ``variant`` gives the known mistakes."""
    T = len(r)
    boot = ~terminated
    if variant == "bootstrap_termination":
        boot = np.ones(T, dtype=bool)
    if variant == "no_bootstrap_truncation":
        boot = ~(terminated | truncated)
    delta = r + gamma * boot * v_next - v
    done = terminated | truncated
    if variant == "chain":
        done = np.zeros(T, dtype=bool)
    decay = gamma * lam
    if variant == "no_lambda":
        decay = gamma
    if variant == "no_gamma":
        decay = lam
    adv = np.zeros(T)
    acc = 0.0
    for t in range(T - 1, -1, -1):
        acc = delta[t] + decay * (0.0 if done[t] else acc)
        adv[t] = acc
    return adv


GAE_MISTAKES = {
    "chain": "chains across an episode end: the recursion A_t = δ_t + γλA_{t+1} (6.46) must restart where an "
             "episode ends (terminated or truncated); the next step belongs to another episode",
    "no_bootstrap_truncation": "does not bootstrap at truncation: a time-limit end is not a terminal state, so "
                               "δ_t = r_t + γV(x_{t+1}) − V(x_t) (6.44) keeps γV(x_{t+1}) with v_next there",
    "bootstrap_termination": "bootstraps at termination: after a terminal state V = 0, so δ_t = r_t − V(x_t) (6.44)",
    "no_lambda": "λ is missing: GAE decays by γλ per step (6.46); this is λ = 1",
    "no_gamma": "γ is missing from the decay: GAE decays by γλ per step (6.46)",
}


def _stream(rng, T, *, term_at=(), trunc_at=()):
    """A consistent stream: ``v_next[t] = v[t + 1]`` wherever step t + 1 continues the episode of step t.

    ``v_next`` differs from ``v[t + 1]`` only where the buffer does not hold the next state: at an episode end
    (after a truncation, ``v_next[t]`` is the value of the final state, while ``v[t + 1]`` is the reset state
    of the next episode; after a termination it is a value that must not be used) and at the last step of
    the stream. So a GAE that reads ``v[t + 1]`` inside an episode is equivalent on these inputs.
    """
    r, v = rng.standard_normal(T), rng.standard_normal(T)
    terminated, truncated = np.zeros(T, dtype=bool), np.zeros(T, dtype=bool)
    terminated[list(term_at)] = True
    truncated[list(trunc_at)] = True
    v_next = np.append(v[1:], rng.standard_normal())
    v_next[list(trunc_at)] = rng.standard_normal(len(trunc_at))  # the final state's value, not the reset's
    v_next[list(term_at)] = rng.standard_normal(len(term_at)) * 5  # what a careless bootstrap would add
    return r, v, v_next, terminated, truncated


def _check_gae(sub, rng, stream, names, cases):
    r, v, v_next, terminated, truncated = stream
    for gamma, lam in cases:
        expected = gae_ref(r, v, v_next, terminated, truncated, gamma, lam)
        out = as_array(sub.call("gae", r, v, v_next, terminated, truncated, gamma, lam), "gae", (len(r),))
        mistakes = [(gae_ref(r, v, v_next, terminated, truncated, gamma, lam, variant=n), GAE_MISTAKES[n])
                    for n in names]
        compare(out, expected, what="advantages", inputs=code_inputs(
            r=r, v=v, v_next=v_next, terminated=terminated, truncated=truncated, gamma=gamma, lam=lam),
            mistakes=mistakes)


def check_gae_single(sub, rng) -> str:
    """One stretch of an episode (T = 8, no episode end): λ = 0 gives δ_t (6.44), λ = 1 (6.41), and a random λ (6.46)."""
    stream = _stream(rng, 8)
    gamma, lam = float(rng.uniform(0.8, 0.99)), float(rng.uniform(0.5, 0.97))
    _check_gae(sub, rng, stream, ["no_lambda", "no_gamma"], [(gamma, 0.0), (gamma, 1.0), (gamma, lam)])
    return "matches (6.44), (6.41) and (6.46)"


def check_gae_termination(sub, rng) -> str:
    """A stream of T = 12 with an episode that terminates at t = 4."""
    stream = _stream(rng, 12, term_at=(4,))
    gamma, lam = float(rng.uniform(0.8, 0.99)), float(rng.uniform(0.5, 0.97))
    _check_gae(sub, rng, stream, ["chain", "bootstrap_termination", "no_lambda"], [(gamma, lam)])
    return "no bootstrap at termination, no chaining"


def check_gae_truncation(sub, rng) -> str:
    """A stream of T = 12 with an episode truncated (time limit) at t = 6."""
    stream = _stream(rng, 12, trunc_at=(6,))
    gamma, lam = float(rng.uniform(0.8, 0.99)), float(rng.uniform(0.5, 0.97))
    _check_gae(sub, rng, stream, ["chain", "no_bootstrap_truncation", "no_lambda"], [(gamma, lam)])
    return "bootstraps at truncation, no chaining"


def ppo_ref(logp, logp_old, adv, clip):
    rho = np.exp(logp - logp_old)
    return float(np.mean(np.minimum(rho * adv, np.clip(rho, 1 - clip, 1 + clip) * adv)))


def check_ppo(sub, rng) -> str:
    """N = 16 samples, ratios in [0.5, 1.7] (both sides of the clip range), advantages of both signs, ε ∈ [0.1, 0.3]."""
    N = 16
    logp_old = rng.uniform(-3, 0, N)
    logp = logp_old + np.log(rng.uniform(0.5, 1.7, N))
    adv = rng.standard_normal(N)
    clip = float(rng.uniform(0.1, 0.3))
    rho = np.exp(logp - logp_old)
    clipped = np.clip(rho, 1 - clip, 1 + clip)
    out = as_float(sub.call("ppo_clip_objective", logp, logp_old, adv, clip), "ppo_clip_objective")
    compare(out, ppo_ref(logp, logp_old, adv, clip), what="clipped surrogate",
            inputs=code_inputs(logp=logp, logp_old=logp_old, adv=adv, clip=clip), mistakes=[
                (float(np.mean(np.maximum(rho * adv, clipped * adv))), "max instead of min: (6.37) takes the minimum "
                 "of the unclipped and the clipped objective, a pessimistic bound"),
                (float(np.mean(rho * adv)), "no clipping: this is the unclipped surrogate of (6.34); (6.37) takes "
                 "min(ρA, clip(ρ, 1 − ε, 1 + ε)A)"),
                (float(np.mean(np.minimum(rho, clipped) * adv)), "min over the ratios, then times A: (6.37) takes the "
                 "min of the two *products*, which differs when A < 0"),
                (float(np.mean(np.minimum((logp / logp_old) * adv, np.clip(logp / logp_old, 1 - clip, 1 + clip) * adv))),
                 "the ratio is π/π_old = exp(log π − log π_old) (6.39), not log π / log π_old"),
                (ppo_ref(logp, logp_old, adv, clip) * N, "summed instead of averaged: the objective is the mean over "
                 "the samples (the expectation in (6.37))"),
                (-ppo_ref(logp, logp_old, adv, clip), "sign: (6.37) is the objective to *maximise*"),
            ])
    return "matches (6.37)"


LAB = Lab(
    number=5,
    title="PPO and GAE",
    equations="(6.35)–(6.46)",
    functions={
        "gae": "gae(r, v, v_next, terminated, truncated, gamma, lam) -> adv",
        "ppo_clip_objective": "ppo_clip_objective(logp, logp_old, adv, clip) -> float",
    },
    summary="generalised advantage estimation on a stream with episode ends (termination vs truncation), and "
            "PPO's clipped surrogate",
    items=(
        Item("gae.single", "gae: within one episode, λ = 0, 1 and general λ (6.41)–(6.46)", 2, ("gae",),
             check_gae_single),
        Item("gae.termination", "gae: an episode that terminates (no bootstrap, no chaining) (6.44), (6.46)", 2,
             ("gae",), check_gae_termination),
        Item("gae.truncation", "gae: an episode truncated by the time limit (bootstrap, no chaining) (6.44), (6.46)",
             2, ("gae",), check_gae_truncation),
        Item("ppo_clip_objective", "ppo_clip_objective: mean of min(ρA, clip(ρ)A) (6.35)–(6.39)", 3,
             ("ppo_clip_objective",), check_ppo),
    ),
)
