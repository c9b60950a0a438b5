"""The gains reproduction (figure 2) in quick mode: scalar-lqg and double-integrator, 1 seed.

Checks the files and the qualitative claims of the figure: the exact references
(policy iteration, exact-gradient descent) reach K* to < 1e-6 from the same
initial gain; every learner, with its default config, keeps every seed
stabilising and ends within 1 % of the optimal cost and 10 % of K* on both plants
within 100 k steps. The quick run takes about 25 s of CPU, most of it PPO.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pgcontrol import lqr, plants
from pgcontrol.reproduce import gains, run


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("gains")
    return out, run("gains", quick=True, out=out, progress=False)


def test_files_and_headline(quick):
    out, summary = quick
    for name in ("gains.md", "gains.png", "gains.json"):
        assert (out / name).stat().st_size > 0
    assert (out / "gains.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "gains.json").read_text())
    assert data["plants"] == ["scalar-lqg", "double-integrator"] and data["seeds"] == 1
    table = (out / "gains.md").read_text()
    for method in ("policy iteration", "exact-gradient descent", "VPG", "NPG", "TRPO", "actor-critic", "PPO",
                   "default config"):
        assert method in table
    assert len(summary["headline"]) == 2 and all(isinstance(s, str) for s in summary["headline"])


def test_references_reach_k_star(quick):
    _, summary = quick
    for p, ref in summary["references"].items():
        K_star, _ = lqr.optimal_gain(plants.make(p))
        np.testing.assert_allclose(ref["K_star"], K_star)
        assert ref["initial"]["gain_error"] > 0.5
        for key in ("policy_iteration", "gradient_descent"):
            assert ref[key]["gain_error"] < 1e-6, (p, key, ref[key]["gain_error"])
            assert ref[key]["gap"] < 1e-10
            assert ref[key]["iterations_to_1e-6"] is not None
        # Hewer's iteration converges quadratically: a handful of steps
        assert ref["policy_iteration"]["iterations_to_1e-6"] <= 10


def test_learners_stabilise_and_approach_k_star(quick):
    _, summary = quick
    for p, by_method in summary["learners"].items():
        assert set(by_method) == set(gains.LEARNERS)
        k0_error = summary["references"][p]["initial"]["gain_error"]
        for name, entry in by_method.items():
            s = entry["summary"]
            assert s["seeds"] == 1 and s["stabilising"] == 1.0 and s["diverged"] == 0, (p, name)
            assert s["steps"] > 0
            assert s["gain_error"]["max"] < min(0.1, k0_error), (p, name, s["gain_error"])
            assert s["gap"]["max"] < 0.01, (p, name, s["gap"])
            assert s["steps"] <= 1.01 * gains.QUICK_CAP  # the last batch rounds up to whole episodes / env steps
            assert all(r["stop_reason"] for r in entry["runs"])


def test_a_run_with_taken_back_updates_is_summarised_from_its_gains(monkeypatch):
    """A history row of an update the guard took back holds no gain: the run's gain, gap and curve come
    from the rows that do, its steps and stop reason from the last row."""
    rows = [{"iteration": 0, "steps": 100, "K": [[0.5, 1.0]], "std": [0.5], "gain_error": 0.3, "gap": 0.2},
            {"iteration": 1, "steps": 200, "rejected": "cost blow-up in the rollouts", "step_shrink": 0.5},
            {"iteration": 2, "steps": 300, "K": [[0.6, 1.1]], "std": [0.5], "gain_error": 0.1, "gap": 0.05},
            {"iteration": 3, "steps": 400, "rejected": "cost blow-up in the rollouts", "step_shrink": 0.5,
             "stop_reason": "max_steps"}]
    monkeypatch.setattr(gains, "train", lambda *a, **k: rows)
    out = gains.run_learner("double-integrator", "npg", 0, 400)
    assert out["gap"] == 0.05 and out["K"] == [[0.6, 1.1]] and out["steps"] == 400
    assert out["stop_reason"] == "max_steps" and out["curve"]["steps"] == [100, 300]
