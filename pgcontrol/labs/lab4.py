"""Lab 4: the natural gradient and the plateau of zero exploration (course slides).

The student writes

* ``sample_fisher(scores) -> F``: :math:`\\hat F = \\frac1N\\sum_i s_i s_i^\\top`,
  the mean outer product of the score vectors :math:`s_i = \\nabla_\\theta\\log\\pi(u_i|x_i)`
  (slides: the Fisher information matrix :math:`F(\\theta) = \\mathbb E[\\nabla\\log\\pi\\nabla\\log\\pi^\\top]`),
  shape ``(N, d) -> (d, d)``;
* ``natural_step(g, F, eps) -> delta``: the slides' step
  :math:`\\delta\\theta = \\sqrt{\\epsilon / (g^\\top F^{\\dagger} g)}\\,F^{\\dagger} g`
  (pseudo-inverse :math:`F^\\dagger`, which is :math:`F^{-1}` when F is invertible).
  Note ε here is the slides' ε (δθᵀFδθ = ε); pgcontrol's NPG uses 2ε.

Then a provided driver (:func:`pgcontrol.labs.drivers.policy_gradient_run`)
runs natural policy gradient with the student's two functions on
``scalar-lqg`` from the Peters & Schaal start k = −0.2, σ = 0.1 (σ floor
1e-3), gradient of the return by reward-to-go with γᵗ and the leave-one-out
baseline ((3.19), (4.8)). Update t uses M_t = 5 + t rollouts of T = 50 steps
and the trust region ε_t = 0.05/(1 + t/5)²: a natural step of fixed size
cannot settle (near k* the sampled gradient is mostly noise, and the step
keeps its length √ε), so the schedule shrinks ε and grows the batch, and the
runs converge to k* and stay there (the handout's figure).

Statistical item (stated test and power)
----------------------------------------
*Plateau*: 20 independent runs (seeds derived from the check's seed) of at
most 60 updates; a run succeeds when k gets within 1 % of k* = −0.90755
without diverging (the run stops there). The item passes when at least 16
of the 20 succeed. Measured per-run success rates (100 runs each, seeds
1000–1099): correct step 100/100 (median 16.5 updates), so at a rate of
0.97 or more P(pass) > 0.9997; F instead of F⁻¹ 42/100 (58 diverged),
P(≥ 16 of 20) ≈ 6e-4; the step without the square root 22/100, P ≈ 6e-8:
those mistakes fail with probability > 0.999. The report shows, for
contrast, the vanilla step (3.22) with the *exact* gradient from the same
start (α = 0.03), which is still far from k* after 60 updates with σ on
its floor: the plateau. The check runs in about a second.
"""

from __future__ import annotations

import numpy as np

from . import drivers
from ._core import Item, Lab, Mismatch, StudentError, as_array, code_inputs, compare, inputs_block, quiet

EPS = 0.05
RUNS, NEED, UPDATES = 20, 16, 60


def fisher_ref(S):
    return S.T @ S / len(S)


def step_ref(g, F, eps):
    x = np.linalg.pinv(F) @ g
    return np.sqrt(eps / (g @ x)) * x


def check_fisher(sub, rng) -> str:
    """Random scores (N = 50, d = 3) with a non-zero mean, against (1/N) Σ s sᵀ."""
    N, d = 50, 3
    S = rng.standard_normal((N, d)) + rng.uniform(0.5, 1.5, d)
    out = sub.call("sample_fisher", S)
    a = as_array(out, "sample_fisher")
    if a.shape == (N, N):
        raise Mismatch(f"returned shape {a.shape}: the Fisher is d × d ({d} × {d}), the mean of the outer products "
                       "s_i s_iᵀ of the score *vectors* (rows of `scores`), i.e. SᵀS/N, not SSᵀ")
    a = as_array(a, "sample_fisher", (d, d))
    compare(a, fisher_ref(S), what="F", inputs=code_inputs(scores=S), mistakes=[
        (np.cov(S.T, bias=True), "the covariance of the scores: the Fisher is E[∇log π ∇log πᵀ] (slides), the raw "
         "second moment; do not subtract the sample mean (it is zero only in expectation)"),
        (np.cov(S.T), "the covariance of the scores: the Fisher is E[∇log π ∇log πᵀ] (slides), the raw second moment"),
        (S.T @ S, "summed instead of averaged: F̂ = (1/N) Σ s sᵀ"),
    ])
    return "matches (1/N) Σ s sᵀ"


def _wrong_steps(g, F, eps):
    Fi = np.linalg.pinv(F)
    x = Fi @ g
    q = g @ x
    return [
        ((eps / q) * x, "the square root is missing: δθ = sqrt(ε / (gᵀF⁻¹g)) F⁻¹g (slides), so that δθᵀFδθ = ε"),
        (np.sqrt(eps / (g @ F @ g)) * (F @ g), "F instead of F⁻¹: the natural direction is F⁻¹g (slides), the "
         "steepest ascent in the Fisher metric"),
        (np.sqrt(eps / q) * (F @ g), "F instead of F⁻¹ in the direction: δθ = sqrt(ε / (gᵀF⁻¹g)) F⁻¹g (slides)"),
        (np.sqrt(2 * eps / q) * x, "2ε instead of ε: pgcontrol's NPG uses 2ε (mean KL ε); this lab's step is the "
         "slides' δθ = sqrt(ε / (gᵀF⁻¹g)) F⁻¹g"),
        (x, "not scaled: the step is F⁻¹g times sqrt(ε / (gᵀF⁻¹g)) (slides)"),
        (-np.sqrt(eps / q) * x, "sign: the step ascends the return, δθ = +sqrt(ε / (gᵀF⁻¹g)) F⁻¹g"),
    ]


def check_step(sub, rng) -> str:
    """Random g (d = 3) and SPD F, ε ∈ [0.01, 0.1], against the slides' step."""
    d = 3
    G = rng.standard_normal((d, d))
    F = G @ G.T + 0.5 * np.eye(d)
    g = rng.standard_normal(d)
    eps = float(rng.uniform(0.01, 0.1))
    out = as_array(sub.call("natural_step", g, F, eps), "natural_step", (d,))
    compare(out, step_ref(g, F, eps), what="δθ", inputs=code_inputs(g=g, F=F, eps=eps),
            mistakes=_wrong_steps(g, F, eps))
    return "matches sqrt(ε / gᵀF⁻¹g) F⁻¹g"


def check_step_singular(sub, rng) -> str:
    """A singular F (a parameter whose score is always 0, as σ at a fixed std): the pseudo-inverse step."""
    d = 3
    S = rng.standard_normal((40, d))
    S[:, 2] = 0.0
    F = fisher_ref(S)
    g = rng.standard_normal(d)
    eps = float(rng.uniform(0.01, 0.1))
    inputs = code_inputs(g=g, F=F, eps=eps) + "\n# F is singular here (rank 2 of 3)"
    try:
        out = as_array(sub.call("natural_step", g, F, eps), "natural_step", (d,))
    except StudentError as exc:
        if "not filled in yet" in str(exc):
            raise
        raise Mismatch(f"{exc}\nF here is singular (rank 2 of 3): the slides' step uses the pseudo-inverse F(θ)† "
                       "(np.linalg.pinv), not F⁻¹" + inputs_block(inputs)) from None
    mistakes = _wrong_steps(g, F, eps)
    with np.errstate(all="ignore"):
        try:
            x = np.linalg.inv(F) @ g
            mistakes.append((np.sqrt(eps / (g @ x)) * x, "the inverse of a singular F: np.linalg.inv returns a "
                             "meaningless matrix here (F has rank 2 of 3); the slides' step uses the pseudo-inverse "
                             "F(θ)† (np.linalg.pinv)"))
        except np.linalg.LinAlgError:
            pass
    if not np.all(np.isfinite(out)):
        raise Mismatch(f"δθ is not finite: {out.tolist()}; F here is singular (rank 2 of 3), and the slides' step "
                       "uses the pseudo-inverse F(θ)† (np.linalg.pinv), not F⁻¹" + inputs_block(inputs))
    compare(out, step_ref(g, F, eps), what="δθ (F singular, rank 2 of 3)", inputs=inputs, mistakes=mistakes)
    return "uses the pseudo-inverse"


def check_plateau(sub, rng) -> str:
    """Natural PG with the student's functions reaches k* where vanilla PG stalls (module docstring)."""
    k_opt = drivers.k_star()
    seeds = np.random.SeedSequence([sub.seed, 4]).generate_state(RUNS)

    def step(g, S, eps):
        F = as_array(sub.call("sample_fisher", S), "sample_fisher", (2, 2))
        return as_array(sub.call("natural_step", g, F, eps), "natural_step", (2,))

    times, diverged, failed = [], 0, []
    with quiet(), np.errstate(all="ignore"):
        for s in seeds:
            run = drivers.policy_gradient_run(step, updates=UPDATES, seed=int(s), stop_within=drivers.TOL,
                                              eps=drivers.EPS, eps_tau=drivers.EPS_TAU, growth=drivers.GROWTH)
            diverged += run.diverged
            times.append(None if run.diverged else run.reached(k_opt))
            if times[-1] is None:
                failed.append(int(s))
    ok = [t for t in times if t is not None]
    vanilla = drivers.exact_vanilla_path(0.03, UPDATES)
    summary = (f"natural PG (ε_t = {drivers.EPS}/(1 + t/{drivers.EPS_TAU:g})², M_t = {drivers.ROLLOUTS} + t rollouts) "
               f"reached |k − k*|/|k*| < 1 % in {len(ok)}/{RUNS} runs (need {NEED}); median "
               f"{np.median(ok) if ok else float('nan'):.0f} updates; {diverged} diverged.\n"
               f"vanilla PG with the exact gradient (α = 0.03) after {UPDATES} updates: k = {vanilla.k[-1]:.4f} "
               f"(k* = {k_opt:.5f}), σ = {vanilla.sigma[-1]:.3g}: the plateau of zero exploration")
    if len(ok) >= NEED:
        return summary
    hint = ""
    probe = _probe_step_mistake(sub)
    if probe:
        hint = "\nknown mistake: " + probe
    repro = (f"\nreproduce a failed run: drivers.policy_gradient_run(lambda g, S, eps: natural_step(g, sample_fisher(S), "
             f"eps), updates={UPDATES}, seed={failed[0]}, stop_within={drivers.TOL}, eps={drivers.EPS}, "
             f"eps_tau={drivers.EPS_TAU}, growth={drivers.GROWTH}) (from pgcontrol.labs import drivers); "
             f"failed seeds: {failed}") if failed else ""
    raise Mismatch(summary + hint + repro)


def _probe_step_mistake(sub) -> str:
    """The known mistake that the student's ``natural_step`` matches on a fixed probe input, or ``""``.

    A hint is given only on such a match (the student's step computed on g, F, ε below equals the mistake's).
    """
    g = np.array([0.7, -1.3])
    F = np.array([[2.0, 0.3], [0.3, 0.5]])
    eps = 0.05
    try:
        with quiet():
            out = as_array(sub.call("natural_step", g, F, eps), "natural_step", (2,))
    except (StudentError, Mismatch):
        return ""
    for value, message in _wrong_steps(g, F, eps):
        if np.allclose(out, value, rtol=1e-6, atol=1e-12):
            return message
    return ""


LAB = Lab(
    number=4,
    title="The natural gradient and the plateau",
    equations="course slides: Fisher information, δθ = sqrt(ε / gᵀF⁻¹g) F⁻¹g; (3.19), (4.8)",
    functions={
        "sample_fisher": "sample_fisher(scores) -> F",
        "natural_step": "natural_step(g, F, eps) -> delta",
    },
    summary="the Fisher information as the metric of policy space, the natural step, and why vanilla PG stalls on "
            "the plateau of zero exploration (Peters & Schaal) while the natural gradient reaches k*",
    items=(
        Item("sample_fisher", "sample_fisher: F̂ = (1/N) Σ s sᵀ (slides: Fisher information)", 2,
             ("sample_fisher",), check_fisher),
        Item("natural_step.exact", "natural_step: δθ = sqrt(ε / gᵀF⁻¹g) F⁻¹g (slides)", 3, ("natural_step",),
             check_step),
        Item("natural_step.singular", "natural_step: singular F, pseudo-inverse F† (slides)", 2, ("natural_step",),
             check_step_singular),
        Item("plateau", "plateau: your natural PG reaches 1 % of k* on scalar-lqg where vanilla PG stalls "
             "(statistical, 20 runs)", 3, ("sample_fisher", "natural_step"), check_plateau, statistical=True),
    ),
)
