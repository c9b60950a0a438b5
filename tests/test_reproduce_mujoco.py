"""The MuJoCo reproduction's quick mode: all four learners train MLP policies on InvertedPendulum-v5."""

from __future__ import annotations

import json

import pytest

from pgcontrol.reproduce import mujoco, run

pytest.importorskip("mujoco")


def test_quick_mode_every_learner_improves(tmp_path):
    summary = run("mujoco", quick=True, out=tmp_path, progress=False)
    assert (tmp_path / "mujoco.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "mujoco.json").read_text())["quick"] is True
    res = summary["results"]["InvertedPendulum-v5"]
    assert set(res) == set(mujoco.LEARNERS)
    for algo, r in res.items():
        assert r["diverged"] == 0, algo
        # the budget is spent (within one iteration) and learning moved the return up
        assert mujoco.QUICK_BUDGET * 0.75 <= r["steps_median"] <= mujoco.QUICK_BUDGET * 1.5, algo
        assert r["final_return_median"] > 1.3 * r["first_return_median"], algo
