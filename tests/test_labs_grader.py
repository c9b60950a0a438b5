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
from pgcontrol.labs._core import LabError, get_lab

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
    (d / "fiona_50gb.py").write_text(_replace(REF3, "critic_loss", "import numpy as np\nreturn float(np.ones(50 * 10**9 // 8).sum())"))
    (d / "grace_prints.py").write_text(_replace(REF3, "actor_loss", "while True:\n    print('spam' * 100)"))
    (d / "heidi.txt").write_text("I did the lab on paper.\n")
    (d / "ivan_binary.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    (d / "judy_flagged.py").write_text("from pgcontrol.rollout import td_residuals\n" + REF3)
    (d / "ken.ipynb").write_text(nbformat.writes(solved_notebook(3)))
    (d / ".hidden.py").write_text("raise SystemExit\n")
    (d / "subfolder").mkdir()
    t0 = time.monotonic()
    out = tmp_path_factory.mktemp("out")
    reports = grader.grade(3, d, timeout=8, memory_mb=1024, csv_path=out / "grades.csv")
    elapsed = time.monotonic() - t0
    return {r.source: r for r in reports}, elapsed, out


def test_folder_of_submissions(graded):
    reports, elapsed, _ = graded
    assert sorted(reports) == ["alice.py", "bob_wrong.py", "carol_crash_import.py", "dave_exit.py", "erin_hangs.py",
                               "fiona_50gb.py", "frank_memory.py", "grace_prints.py", "ivan_binary.py",
                               "judy_flagged.py", "ken.ipynb"]  # heidi.txt is not a submission: ignored
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
    assert reports["fiona_50gb.py"].score == full - 1 and "out of memory" in reports["fiona_50gb.py"].error
    assert reports["ivan_binary.py"].score == 0 and "not" in reports["ivan_binary.py"].error
    assert reports["judy_flagged.py"].score == 0  # the import is refused at run time, and flagged
    assert reports["judy_flagged.py"].flags and "pgcontrol.rollout" in reports["judy_flagged.py"].flags[0]
    assert "refused at run time: import of pgcontrol.rollout" in reports["judy_flagged.py"].flags
    assert all(not rep.flags for name, rep in reports.items() if name != "judy_flagged.py")
    for rep in reports.values():  # one-line reasons
        assert rep.error is None or "\n" not in rep.error
    assert elapsed < 120


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
    assert "out of memory" in by["fiona_50gb.py"]["reason"]


def test_gradescope_never_sums_students(graded):
    reports, _, out = graded
    with pytest.raises(LabError, match="one student"):
        grader.write_gradescope(list(reports.values()), 3, out / "results.json")
    assert not (out / "results.json").exists()
    grader.write_gradescope([reports["judy_flagged.py"]], 3, out / "results.json")
    doc = json.loads((out / "results.json").read_text())
    assert doc["score"] == 0
    assert [t["name"] for t in doc["tests"][:len(ITEMS3)]] == [it.title for it in get_lab(3).items]
    assert doc["tests"][-1]["name"].startswith("flagged") and doc["tests"][-1]["max_score"] == 0
    assert all(t["visibility"] == "visible" and t["status"] in ("passed", "failed") for t in doc["tests"])


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
    (("grade", "1", ".", "--seed", "-1"), "seed must be an integer in [0, 2**63); got -1"),
    (("grade", "1", ".", "--timeout", "nan"), "timeout must be a number of seconds"),
    (("grade", "1", ".", "--memory", "1e15"), "memory must be a whole number of MiB"),
    (("check", "1", "x.py", "--timeout", "-3"), "timeout must be"),
    (("autograder", "1", "--out", "x.tar"), "--out must name a .zip file"),
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
    (d / "notes.txt").write_text("my notes")
    r = _cli("grade", "3", d, "--csv", tmp_path / "g.csv", "--gradescope", tmp_path / "r.json", "--timeout", "60")
    assert r.returncode == 2 and "one student" in r.stderr and not (tmp_path / "r.json").exists()
    (d / "b.py").write_text("def td_targets(*a):\n    raise ValueError('\\x1b[31mnope')\n")
    r = _cli("grade", "3", d, "--csv", tmp_path / "g.csv", "--timeout", "60")
    assert r.returncode == 1, r.stderr  # not everyone has full marks
    assert "a.py: 8/8" in r.stdout and "b.py: 0/8" in r.stdout and "ignored" in r.stdout and "notes.txt" in r.stdout
    assert "\x1b" not in r.stdout
    assert len(list(csv.DictReader((tmp_path / "g.csv").open()))) == 2
    (d / "b.py").unlink()
    r = _cli("grade", "3", d, "--gradescope", tmp_path / "r.json", "--timeout", "60")
    assert r.returncode == 0 and len(json.loads((tmp_path / "r.json").read_text())["tests"]) == len(ITEMS3)
