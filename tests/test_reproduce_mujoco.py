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


def test_the_sb3_reference_curve_comes_from_the_benchmark_json(tmp_path):
    import json

    import numpy as np

    from pgcontrol.reproduce import mujoco

    # one row per episode (SB3) or per iteration with its episode count (pgcontrol)
    curve = [[100, 1.0, 1], [200, 3.0, 1], [300, 5.0, 2]]
    np.testing.assert_allclose(mujoco.rolling_return(curve, [50, 150, 250, 400], last=2), [np.nan, 1.0, 2.0, 5.0])
    assert mujoco.last_episodes_mean(curve, last=2) == 5.0  # the last row holds two episodes
    assert mujoco.last_episodes_mean(curve, last=3) == (2 * 5.0 + 3.0) / 3
    assert mujoco.last_episodes_mean(curve, last=9) == (2 * 5.0 + 3.0 + 1.0) / 4  # all there is
    data = {"settings": {"ppo": {"n_steps": 2048}}, "num_envs": 1, "results": {"ppo HalfCheetah-v5": {
        "sb3": [{"curve": [[s, float(s), 1] for s in range(100, 3001, 100)]},
                {"curve": [[s, 2.0 * s, 1] for s in range(100, 3001, 100)]}]}}}
    (tmp_path / "b.json").write_text(json.dumps(data))
    ref = mujoco.reference_curve("HalfCheetah-v5", 3000, tmp_path / "b.json")
    assert ref["seeds"] == 2 and ref["steps"][-1] == 3000 and ref["settings"] == {"n_steps": 2048}
    # at 3000 steps: the last 10 episodes are 2100..3000, mean 2550 (×1 and ×2; mean over seeds ×1.5)
    assert ref["returns"][-1] == 1.5 * 2550
    assert mujoco.reference_curve("Hopper-v5", 3000, tmp_path / "b.json") is None
    assert mujoco.reference_curve("HalfCheetah-v5", 3000, tmp_path / "missing.json") is None
