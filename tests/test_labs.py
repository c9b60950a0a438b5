"""pgcontrol.labs: reference solutions score full marks, known mistakes lose exactly their items.

The reference solutions and the known-wrong functions live in tests/lab_solutions/ (not installed).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pgcontrol import labs
from pgcontrol.labs import _core
from pgcontrol.labs._core import Submission, get_lab, run_lab

SOLUTIONS = Path(__file__).parent / "lab_solutions"
sys.path.insert(0, str(SOLUTIONS))
import mistakes  # noqa: E402  (tests/lab_solutions/mistakes.py)


def _reference(lab: int) -> dict:
    return dict(vars(importlib.import_module(f"lab{lab}")))


_REF_REPORTS: dict[int, _core.Report] = {}


def reference_report(lab: int) -> _core.Report:
    if lab not in _REF_REPORTS:
        _REF_REPORTS[lab] = labs.check(lab, SOLUTIONS / f"lab{lab}.py", verbose=False)
    return _REF_REPORTS[lab]


@pytest.mark.parametrize("lab", _core.LAB_NUMBERS)
def test_reference_solution_full_marks(lab):
    report = reference_report(lab)
    assert report.full_marks, str(report)
    assert report.max_score >= 8
    assert report.flags == []
    assert report.seed == get_lab(lab).default_seed


@pytest.mark.parametrize("lab, name, overrides, lost, message", mistakes.MISTAKES,
                         ids=[f"lab{m[0]}-{m[1]}" for m in mistakes.MISTAKES])
def test_known_mistake_loses_exactly_its_items(lab, name, overrides, lost, message):
    ns = _reference(lab)
    ns.update(overrides)
    report = run_lab(get_lab(lab), Submission(ns, name))
    failed = {r.id for r in report.items if not r.passed}
    assert failed == lost, str(report)
    feedback = "\n".join(r.feedback for r in report.items if not r.passed)
    assert message in feedback, str(report)
    assert report.score == report.max_score - sum(it.points for it in get_lab(lab).items if it.id in lost)


@pytest.mark.parametrize("lab", _core.LAB_NUMBERS)
def test_stubs_score_zero_with_not_implemented(lab):
    """A submission whose functions all raise NotImplementedError gets 0 and says so."""
    def stub(*args, **kwargs):
        raise NotImplementedError
    ns = {name: stub for name in get_lab(lab).functions}
    report = run_lab(get_lab(lab), Submission(ns, "stubs"))
    assert report.score == 0
    assert all("not filled in yet" in r.feedback for r in report.items), str(report)


def test_same_file_same_report_and_seed_option():
    a = labs.check(3, SOLUTIONS / "lab3.py", verbose=False).to_dict()
    b = labs.check(3, SOLUTIONS / "lab3.py", verbose=False).to_dict()
    for d in (a, b):
        for it in d["items"]:
            it.pop("seconds")
    assert a == b
    c = labs.check(3, SOLUTIONS / "lab3.py", seed=7, verbose=False)
    assert c.seed == 7 and c.full_marks


def test_hard_coded_answer_fails_with_another_seed():
    """An answer recorded for the public seed's inputs fails when the instructor grades with another seed."""
    ref = _reference(5)
    seen = {}

    def recorder(logp, logp_old, adv, clip):
        seen["value"] = ref["ppo_clip_objective"](logp, logp_old, adv, clip)
        return seen["value"]

    run_lab(get_lab(5), Submission({"ppo_clip_objective": recorder}, "rec"), only="ppo_clip_objective")
    hard = {"ppo_clip_objective": lambda *a: seen["value"]}
    assert run_lab(get_lab(5), Submission(hard, "hard"), only="ppo_clip_objective").full_marks
    assert not run_lab(get_lab(5), Submission(hard, "hard"), seed=99, only="ppo_clip_objective").full_marks


def test_torch_outputs_are_accepted():
    torch = pytest.importorskip("torch")
    ref = _reference(3)
    ns = {k: (lambda f: (lambda *a: torch.as_tensor(np.asarray(f(*a)))))(ref[k])
          for k in ("td_targets", "critic_loss", "actor_loss")}
    report = run_lab(get_lab(3), Submission(ns, "torch"))
    assert {r.id for r in report.items if r.passed} == {"td_targets", "critic_loss", "actor_loss"}


def test_only_runs_the_items_of_one_function_with_the_same_inputs():
    full = reference_report(2)
    part = labs.check(2, SOLUTIONS / "lab2.py", only="reward_to_go", verbose=False)
    assert [r.id for r in part.items] == ["reward_to_go"]
    assert part.items[0].feedback == next(r for r in full.items if r.id == "reward_to_go").feedback
    with pytest.raises(labs.LabError, match="no function 'dare_gain'"):
        labs.check(2, SOLUTIONS / "lab2.py", only="dare_gain", verbose=False)


def test_wrong_shapes_and_missing_functions_are_feedback_not_crashes():
    ns = {"gaussian_log_prob": lambda u, mean, std: np.zeros_like(u), "reward_to_go": "not a function"}
    report = run_lab(get_lab(2), Submission(ns, "odd"), only="gaussian_log_prob")
    assert "sum the last axis" in report.items[0].feedback
    report = run_lab(get_lab(2), Submission(ns, "odd"), only="reward_to_go")
    assert "not a function" in report.items[0].feedback
    report = run_lab(get_lab(6), Submission({}, "empty"))
    assert report.score == 0 and "defines no function `kalman_gain`" in report.items[0].feedback


def test_exception_feedback_names_the_line(tmp_path):
    f = tmp_path / "lab3.py"
    f.write_text("import numpy as np\n\ndef critic_loss(v, targets):\n    return undefined_name\n")
    report = labs.check(3, f, only="critic_loss", verbose=False)
    assert "NameError" in report.items[0].feedback and "line 4 of lab3.py" in report.items[0].feedback


def test_usage_errors_are_value_errors(tmp_path):
    with pytest.raises(labs.UnknownLabError, match="unknown lab 7"):
        labs.check(7, SOLUTIONS / "lab1.py")
    with pytest.raises(labs.SubmissionError, match="no such file"):
        labs.check(1, tmp_path / "missing.py")
    bad = tmp_path / "lab1.py"
    bad.write_text("def dare_gain(:\n")
    with pytest.raises(labs.SubmissionError, match="not valid Python"):
        labs.check(1, bad)
    txt = tmp_path / "lab1.txt"
    txt.write_text("hello")
    with pytest.raises(labs.SubmissionError, match=".py file or a .ipynb"):
        labs.check(1, txt)
    assert issubclass(labs.LabError, ValueError)


@pytest.mark.parametrize("code, flagged", [
    ("from pgcontrol import lqr\n", "pgcontrol.lqr"),
    ("import pgcontrol.rollout as r\n", "pgcontrol.rollout"),
    ("from pgcontrol.algos.ppo import PPO\n", "pgcontrol.algos.ppo"),
    ("import pgcontrol\nK = pgcontrol.lqr.optimal_gain\n", "pgcontrol.lqr"),
    ("import importlib\nm = importlib.import_module('pgcontrol.lqr')\n", "pgcontrol.lqr"),
    ("from pgcontrol.labs.lab1 import check_cost\n", "pgcontrol.labs.lab1"),
    ("from pgcontrol.labs import check\nfrom pgcontrol import plants, sim\nimport numpy\n", None),
])
def test_static_scan_flags_pgcontrols_own_implementations(code, flagged):
    hits = _core.scan_imports(code)
    if flagged is None:
        assert hits == []
    else:
        assert len(hits) == 1 and flagged in hits[0]


def test_flag_appears_in_the_report(tmp_path):
    f = tmp_path / "lab6.py"
    f.write_text("from pgcontrol import lqr, plants\nimport numpy as np\n\ndef kalman_gain(A, C, W, V):\n"
                 "    raise NotImplementedError\n")
    report = labs.check(6, f, verbose=False, only="kalman_gain")
    assert report.flags and "line 1" in report.flags[0] and "pgcontrol.lqr" in report.flags[0]
    assert "flagged" in str(report)


def test_report_json_round_trip():
    d = json.loads(_core.to_json(reference_report(1)))
    assert d["score"] == d["max_score"] == 10 and len(d["items"]) == 4


def test_check_under_its_budget():
    """Each lab's check is far under a 30 s budget (measured per item in the reports)."""
    for lab in _core.LAB_NUMBERS:
        assert sum(r.seconds for r in reference_report(lab).items) < 15


def test_notebook_globals_are_scanned_through_the_ipython_history():
    """check(n, globals()) in a notebook: the cells run so far (IPython's `In`) are scanned too."""
    ns = {"In": ["", "import numpy as np", "from pgcontrol import lqr\nK = lqr.optimal_gain"], **_reference(1)}
    report = run_lab(get_lab(1), _core.load_submission(ns), only="dare_gain")
    assert report.flags and "pgcontrol.lqr" in report.flags[0]


def test_a_function_taken_from_pgcontrol_is_flagged():
    from pgcontrol import lqr

    ns = {**_reference(6), "kalman_gain": lqr.kalman_filter}
    report = run_lab(get_lab(6), Submission(ns, "ns"), only="kalman_gain")
    assert any("pgcontrol.lqr.kalman_filter" in f for f in report.flags)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed_is_a_lab_error(seed):
    with pytest.raises(labs.LabError, match="seed must be an integer"):
        labs.check(5, SOLUTIONS / "lab5.py", seed=seed, verbose=False)


def test_a_submission_that_checks_itself_is_not_run_twice(tmp_path, capsys):
    f = tmp_path / "lab5.py"
    f.write_text((SOLUTIONS / "lab5.py").read_text()
                 + "\nfrom pgcontrol.labs import check\ncheck(5, __file__)\n"
                 + "if __name__ == '__main__':\n    raise SystemExit('main block must not run')\n")
    report = labs.check(5, f)
    assert report.full_marks
    assert capsys.readouterr().out.count("score: 9/9") == 1


# ---------------------------------------------------------------- the checker's gaps, each on several seeds

SEEDS = (0, 1, 2, 3, 4)


def _item(lab, ns, item_id, seed):
    """One item's result on ``seed`` (the items of its function run; inputs depend on the seed and index only)."""
    spec = get_lab(lab)
    fn = next(it for it in spec.items if it.id == item_id).functions[0]
    report = run_lab(spec, Submission(dict(ns), "sub"), seed=seed, only=fn)
    return next(r for r in report.items if r.id == item_id)


@pytest.mark.parametrize("seed", SEEDS)
def test_lab1_stability_uses_the_discounted_spectral_radius(seed):
    """Every seed has a finite case with √γ·ρ(A − BK) < 1 ≤ ρ(A − BK): the undiscounted test fails it."""
    ref = _reference(1)
    assert _item(1, ref, "policy_cost.unstable", seed).passed
    wrong = _item(1, {**ref, "policy_cost": mistakes.cost_rho_undiscounted}, "policy_cost.unstable", seed)
    assert not wrong.passed and "instead of ρ(√γ(A − BK))" in wrong.feedback


@pytest.mark.parametrize("seed", SEEDS)
def test_lab1_unstable_item_is_paired_with_a_finite_case(seed):
    """Returning inf everywhere, or never, loses the stability item."""
    ref = _reference(1)
    for bad in (mistakes.cost_always_inf, mistakes.cost_never_inf):
        assert not _item(1, {**ref, "policy_cost": bad}, "policy_cost.unstable", seed).passed


@pytest.mark.parametrize("seed", SEEDS)
def test_lab2_log_density_is_checked_far_in_the_tails(seed):
    ref = _reference(2)
    res = _item(2, ref, "gaussian_log_prob.stable", seed)
    assert res.passed, res.feedback
    wrong = _item(2, {**ref, "gaussian_log_prob": mistakes.log_prob_via_prod}, "gaussian_log_prob.stable", seed)
    assert not wrong.passed and "computed before its log" in wrong.feedback
    # the ordinary item does not see the mistake: the tails are what catch it
    assert _item(2, {**ref, "gaussian_log_prob": mistakes.log_prob_via_prod}, "gaussian_log_prob", seed).passed


def test_lab2_statistical_hints_only_on_a_computed_match():
    """A mistake is named only when the estimates equal that mistake's on every batch; otherwise no hint."""
    ref = _reference(2)
    spec = get_lab(2)
    for fn, right, wrong_hint in ((mistakes.grad_score_variance, "with respect to the variance", "without the γᵗ"),
                                  (mistakes.grad_gamma_t_plus_1, "off by one", "without the γᵗ"),
                                  (mistakes.grad_no_gamma_t, "without the γᵗ", "off by one")):
        report = run_lab(spec, Submission({**ref, "reinforce_gradient": fn}, fn.__name__))
        fb = next(r for r in report.items if r.id == "reinforce.unbiased").feedback
        assert right in fb and wrong_hint not in fb, fb
    report = run_lab(spec, Submission({**ref, "reinforce_gradient": mistakes.grad_unknown}, "unknown"))
    for r in report.items:
        if not r.passed:
            assert "known mistake:" not in r.feedback, r.feedback
            assert "dump_inputs" in r.feedback or "inputs" in r.feedback


def test_a_finite_answer_never_matches_an_infinite_mistake():
    assert not _core.close(280.18, np.inf) and _core.close(np.inf, np.inf) and not _core.close(-np.inf, np.inf)


@pytest.mark.parametrize("seed", SEEDS)
def test_lab5_v_next_is_consistent_with_v(seed):
    """A GAE that reads v[t + 1] inside an episode (v_next only at episode ends) is equivalent on the inputs."""
    ns = {**_reference(5), "gae": mistakes.gae_v_shift}
    report = run_lab(get_lab(5), Submission(ns, "v-shift"), seed=seed, only="gae")
    assert report.full_marks, str(report)


def _pasted_inputs(feedback: str) -> dict:
    block = feedback.split("inputs (paste into Python to reproduce; `import numpy as np` first):\n", 1)[1]
    ns = {"np": np}
    exec("\n".join(ln for ln in block.splitlines() if "=" in ln or ln.startswith("#")), ns)  # noqa: S102
    return ns


def test_lab1_feedback_reproduces_the_failure():
    """The feedback carries A, B, Q, R, W, x0 (all the inputs), exactly: pasting them gives the same value."""
    ref = _reference(1)
    report = run_lab(get_lab(1), Submission({**ref, "policy_cost": mistakes.cost_no_exploration}, "x"))
    fb = next(r for r in report.items if r.id == "policy_cost.exact").feedback
    ns = _pasted_inputs(fb)
    args = [ns[k] for k in ("A", "B", "Q", "R", "W", "gamma", "K", "std", "x0_mean", "x0_cov")]
    got = mistakes.cost_no_exploration(*args)
    assert f"got {_core.fmt(got)}" in fb
    assert f"expected {_core.fmt(ref['policy_cost'](*args))}" in fb


def test_lab6_feedback_has_W_and_V():
    ref = _reference(6)
    report = run_lab(get_lab(6), Submission({**ref, "kalman_gain": mistakes.kalman_filter_gain}, "x"),
                     only="kalman_gain")
    fb = next(r for r in report.items if r.id == "kalman_gain.random").feedback
    ns = _pasted_inputs(fb)
    L, _ = mistakes.kalman_filter_gain(ns["A"], ns["C"], ns["W"], ns["V"])
    assert f"got {_core.fmt(L)}" in fb


def test_lab4_check_is_fast():
    """Lab 4's check (its 20 plateau runs included) takes under 3 s of CPU (wall time varies with the load)."""
    import time

    reference_report(4)  # imports and caches warm
    sub = Submission(_reference(4), "ref")
    t0 = time.process_time()
    report = run_lab(get_lab(4), sub)
    assert report.full_marks and time.process_time() - t0 < 3.0


def test_a_raising_function_gets_its_inputs_back():
    """A function that raises is told the exception and all the inputs of the call (pasteable)."""
    def td_targets(r, v_next, terminated, gamma):
        raise ValueError("boom")
    report = run_lab(get_lab(3), Submission({"td_targets": td_targets}, "x"), only="td_targets")
    fb = report.items[0].feedback
    ns = _pasted_inputs(fb)
    assert "ValueError: boom" in fb and {"r", "v_next", "terminated", "gamma"} <= set(ns)
    assert ns["terminated"].dtype == bool and ns["r"].shape == (8,)


def test_lab4_plateau_names_a_mistake_only_when_the_step_is_that_mistake():
    ref = _reference(4)
    spec = get_lab(4)
    alone = dataclasses.replace(spec, items=tuple(it for it in spec.items if it.id == "plateau"))
    (res,) = run_lab(alone, Submission({**ref, "natural_step": mistakes.step_no_sqrt}, "no-sqrt")).items
    assert not res.passed and "known mistake: the square root is missing" in res.feedback, res.feedback
    ten = {**ref, "natural_step": lambda g, F, eps: 10 * ref["natural_step"](g, F, eps)}
    (res,) = run_lab(alone, Submission(ten, "ten")).items
    assert not res.passed and "known mistake" not in res.feedback.lower(), res.feedback
    assert "drivers.policy_gradient_run(" in res.feedback and "failed seeds" in res.feedback


def test_an_unknown_mistake_is_told_which_output_differs():
    """No known mistake matches: the feedback names the output and the entry that differ (dσ, index 1)."""
    spec = get_lab(2)
    alone = dataclasses.replace(spec, items=tuple(it for it in spec.items if it.id == "reinforce.total"))
    (res,) = run_lab(alone, Submission({**_reference(2), "reinforce_gradient": mistakes.grad_unknown}, "x")).items
    assert "(dk, dsigma) for estimator='total' is wrong at index [1]" in res.feedback, res.feedback
    assert "known mistake:" not in res.feedback
