"""Re-measure the statistical items' error rates over many check seeds (slow: about 6 min on 2 cores).

The labs' docstrings state each statistical test and its power; this reruns the items with many seeds:
a correct solution must pass every time, each listed mistake must fail every time (with these sample
sizes, a single flip would contradict the stated rates of 0.999 and 0.99 only weakly, but would be worth a look).
Run with ``python -m pytest -q -m slow tests/test_labs_power.py``.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

import pytest

from pgcontrol.labs._core import Submission, get_lab, run_lab

sys.path.insert(0, str(Path(__file__).parent / "lab_solutions"))
import mistakes  # noqa: E402

pytestmark = pytest.mark.slow


def _item_passes(lab, ns, item_id, seed) -> bool:
    """Run one item alone (its simulated data depend on the check seed only, not on its position)."""
    spec = get_lab(lab)
    item = next(it for it in spec.items if it.id == item_id)
    alone = dataclasses.replace(spec, items=(item,))
    (res,) = run_lab(alone, Submission(dict(ns), "power"), seed=seed).items
    return res.passed


def _ref(lab):
    return dict(vars(importlib.import_module(f"lab{lab}")))


CASES = [  # (lab, item, overrides or None for the reference, expected pass, seeds)
    (2, "reinforce.unbiased", None, True, 40),
    (2, "reinforce.unbiased", {"reinforce_gradient": mistakes.grad_no_gamma_t}, False, 15),
    (2, "reinforce.unbiased", {"reinforce_gradient": mistakes.grad_own_baseline}, False, 15),
    (2, "reinforce.variance", None, True, 40),
    (2, "reinforce.variance", {"reinforce_gradient": mistakes.grad_no_gamma_t}, False, 15),
    (2, "reinforce.variance", {"reinforce_gradient": mistakes.grad_own_baseline}, True, 15),
    (4, "plateau", None, True, 30),
    (4, "plateau", {"natural_step": mistakes.step_no_sqrt}, False, 15),
    (4, "plateau", {"natural_step": mistakes.step_F_not_inverse}, False, 15),
    (6, "filter_vs_static", None, True, 30),
    (6, "filter_vs_static", {"kalman_gain": mistakes.kalman_filter_gain}, False, 15),
]


@pytest.mark.parametrize("lab, item, overrides, expected, seeds", CASES,
                         ids=[f"lab{c[0]}-{c[1]}-{'ref' if c[2] is None else next(iter(c[2].values())).__name__}"
                              for c in CASES])
def test_statistical_item_error_rates(lab, item, overrides, expected, seeds):
    ns = _ref(lab)
    ns.update(overrides or {})
    outcomes = [_item_passes(lab, ns, item, 10_000 + s) for s in range(seeds)]
    assert outcomes == [expected] * seeds
