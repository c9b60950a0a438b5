"""pgcontrol lab grade / check / list / start: isolation, CSV, Gradescope JSON, exit statuses."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgcontrol.labs import grader
from pgcontrol.labs._core import get_lab

SOLUTIONS = Path(__file__).parent / "lab_solutions"
REF3 = (SOLUTIONS / "lab3.py").read_text()
ITEMS3 = [it.id for it in get_lab(3).items]  # td_targets, critic_loss, actor_loss, fit_quadratic_value.{exact,lstsq}


def _replace(src: str, name: str, body: str) -> str:
    """``src`` with function ``name`` redefined after it (the last definition wins)."""
    return src + f"\n\ndef {name}(*args, **kwargs):\n" + "".join(f"    {ln}\n" for ln in body.splitlines())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Lab 3 graded on a folder of correct, wrong, crashing, hanging, memory-hungry, noisy, non-Python and notebook submissions."""
    from test_labs_notebooks import solved_notebook  # noqa: PLC0415
    import nbformat

    d = tmp_path_factory.mktemp("submissions")
    (d / "alice.py").write_text(REF3)
    (d / "bob_wrong.py").write_text(_replace(REF3, "critic_loss", "import numpy as np\nv, t = args\n"
                                             "return float(np.mean((np.asarray(t) - np.asarray(v)) ** 2) / 2)"))
    (d / "carol_crash_import.py").write_text("import numpy as np\nraise RuntimeError('oops at import')\n")
    (d / "dave_exit.py").write_text(_replace(REF3, "actor_loss", "import os\nos._exit(3)"))
    (d / "erin_hangs.py").write_text(_replace(REF3, "critic_loss", "while True:\n    pass"))
    (d / "frank_memory.py").write_text("import numpy as np\nBIG = np.ones(2 * 10**9)\n" + REF3)
    (d / "grace_prints.py").write_text(_replace(REF3, "actor_loss", "while True:\n    print('spam' * 100)"))
    (d / "heidi.txt").write_text("I did the lab on paper.\n")
    (d / "ivan_binary.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    (d / "judy_flagged.py").write_text("from pgcontrol.rollout import td_residuals\n" + REF3)
    (d / "ken.ipynb").write_text(nbformat.writes(solved_notebook(3)))
    (d / ".hidden.py").write_text("raise SystemExit\n")
    (d / "subfolder").mkdir()
    t0 = time.monotonic()
    reports = grader.grade(3, d, timeout=8, memory_mb=1024)
    elapsed = time.monotonic() - t0
    out = tmp_path_factory.mktemp("out")
    grader.write_csv(reports, 3, out / "grades.csv")
    grader.write_gradescope(reports, 3, out / "results.json")
    return {r.source: r for r in reports}, elapsed, out


def test_folder_of_submissions(graded):
    reports, elapsed, _ = graded
    assert sorted(reports) == ["alice.py", "bob_wrong.py", "carol_crash_import.py", "dave_exit.py", "erin_hangs.py",
                               "frank_memory.py", "grace_prints.py", "heidi.txt", "ivan_binary.py",
                               "judy_flagged.py", "ken.ipynb"]
    full = get_lab(3).max_score
    pts = {name: {r.id: r.points for r in rep.items} for name, rep in reports.items()}
    assert reports["alice.py"].score == full and reports["alice.py"].error is None
    assert reports["ken.ipynb"].score == full, str(reports["ken.ipynb"])
    assert pts["bob_wrong.py"] == {**pts["alice.py"], "critic_loss": 0}
    assert "mean instead of sum" in next(r.feedback for r in reports["bob_wrong.py"].items if r.id == "critic_loss")
    assert reports["carol_crash_import.py"].score == 0
    assert "RuntimeError: oops at import" in reports["carol_crash_import.py"].error
    # crashes/hangs keep the items graded before them
    assert pts["dave_exit.py"] == {"td_targets": 2, "critic_loss": 1, "actor_loss": 0,
                                   "fit_quadratic_value.exact": 0, "fit_quadratic_value.lstsq": 0}
    assert "exit status 3" in reports["dave_exit.py"].error
    assert pts["erin_hangs.py"] == {"td_targets": 2, "critic_loss": 0, "actor_loss": 0,
                                    "fit_quadratic_value.exact": 0, "fit_quadratic_value.lstsq": 0}
    assert "timed out after 8 s" in reports["erin_hangs.py"].error
    assert reports["frank_memory.py"].score == 0 and "out of memory" in reports["frank_memory.py"].error
    assert pts["grace_prints.py"]["actor_loss"] == 0 and reports["grace_prints.py"].score == full - 1
    assert "output limit" in reports["grace_prints.py"].error
    assert reports["heidi.txt"].score == 0 and "not a Python submission" in reports["heidi.txt"].error
    assert reports["ivan_binary.py"].score == 0 and "not" in reports["ivan_binary.py"].error
    assert reports["judy_flagged.py"].score == full
    assert reports["judy_flagged.py"].flags and "pgcontrol.rollout" in reports["judy_flagged.py"].flags[0]
    assert all(not rep.flags for name, rep in reports.items() if name != "judy_flagged.py")
    for rep in reports.values():  # one-line reasons
        assert rep.error is None or "\n" not in rep.error
    assert elapsed < 60


def test_csv_one_row_per_submission_one_column_per_item(graded):
    reports, _, out = graded
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert list(rows[0]) == ["submission", *ITEMS3, "score", "max_score", "flags", "reason"]
    by = {r["submission"]: r for r in rows}
    assert set(by) == set(reports)
    assert by["alice.py"]["score"] == "8" and by["alice.py"]["max_score"] == "8" and by["alice.py"]["reason"] == ""
    assert by["bob_wrong.py"]["critic_loss"] == "0" and by["bob_wrong.py"]["td_targets"] == "2"
    assert "timed out" in by["erin_hangs.py"]["reason"]
    assert "pgcontrol.rollout" in by["judy_flagged.py"]["flags"]


def test_gradescope_results_json(graded):
    reports, _, out = graded
    doc = json.loads((out / "results.json").read_text())
    assert doc["score"] == sum(r.score for r in reports.values())
    tests = doc["tests"]
    for t in tests:
        assert set(t) >= {"name", "score", "max_score", "output"}
    alice = [t for t in tests if t["name"].startswith("alice.py: ")]
    assert len(alice) == len(ITEMS3) and all(t["score"] == t["max_score"] for t in alice)
    assert any(t["name"].startswith("judy_flagged.py: flagged") and t["max_score"] == 0 for t in tests)


def test_gradescope_single_submission_has_plain_names(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "lab5.py").write_text((SOLUTIONS / "lab5.py").read_text())
    reports = grader.grade(5, tmp_path / "sub", timeout=60)
    grader.write_gradescope(reports, 5, tmp_path / "results.json")
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [t["name"] for t in doc["tests"]] == [it.title for it in get_lab(5).items]
    assert doc["score"] == get_lab(5).max_score


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pgcontrol.labs", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_cli_list_start_check(tmp_path):
    r = _cli("list")
    assert r.returncode == 0 and "lab 4: The natural gradient and the plateau" in r.stdout
    assert json.loads(_cli("list", "--json").stdout)[1]["functions"][2].startswith("reinforce_gradient(")
    r = _cli("start", "5", "--dir", tmp_path / "me")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "me" / "lab5.py").is_file() and (tmp_path / "me" / "lab5.ipynb").is_file()
    r = _cli("start", "5", "--dir", tmp_path / "me")
    assert r.returncode == 2 and r.stderr.startswith("pgcontrol: error:") and "--force" in r.stderr
    r = _cli("check", "5", tmp_path / "me" / "lab5.py")
    assert r.returncode == 1 and "score: 0/9" in r.stdout
    shutil.copy(SOLUTIONS / "lab5.py", tmp_path / "me" / "lab5.py")
    r = _cli("check", "5", tmp_path / "me" / "lab5.py", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["score"] == 9
    r = _cli("check", "5", tmp_path / "me" / "lab5.ipynb")  # the untouched handout: stubs
    assert r.returncode == 1 and "not filled in yet" in r.stdout


@pytest.mark.parametrize("args, message", [
    (("check", "7", "x.py"), "unknown lab '7'"),
    (("check", "two", "x.py"), "unknown lab 'two'"),
    (("check", "1", "missing.py"), "no such file"),
    (("grade", "1", "no_such_folder"), "no such folder"),
    (("check", "1"), "the following arguments are required"),
    (("frobnicate",), "invalid choice"),
])
def test_cli_usage_errors_are_one_line_status_2(tmp_path, args, message):
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgcontrol: error:") and message in lines[0], r.stderr


def test_cli_grade_writes_csv_and_gradescope(tmp_path):
    d = tmp_path / "subs"
    d.mkdir()
    (d / "a.py").write_text(REF3)
    (d / "b.py").write_text("def td_targets(*a):\n    raise ValueError('nope')\n")
    r = _cli("grade", "3", d, "--csv", tmp_path / "g.csv", "--gradescope", tmp_path / "r.json", "--timeout", "60")
    assert r.returncode == 1, r.stderr  # not everyone has full marks
    assert "a.py: 8/8" in r.stdout and "b.py: 0/8" in r.stdout
    assert len(list(csv.DictReader((tmp_path / "g.csv").open()))) == 2
    assert len(json.loads((tmp_path / "r.json").read_text())["tests"]) == 2 * len(ITEMS3)
