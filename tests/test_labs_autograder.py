"""``pgcontrol lab autograder``: the zip, unpacked into a temporary autograder root, grades a correct, a wrong,
an attacking and a missing submission, and its results.json follows Gradescope's specification every time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pgcontrol.labs import autograder, get_lab
from pgcontrol.labs._core import LabError

SOLUTIONS = Path(__file__).parent / "lab_solutions"
LAB = 3
FULL = get_lab(LAB).max_score

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the autograder runs on Linux")


def validate_results(doc: dict) -> None:
    """Gradescope's results.json specification (autograder_samples docs/specs.md), as far as pgcontrol uses it."""
    allowed_top = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility",
                   "extra_data", "tests", "leaderboard"}
    assert set(doc) <= allowed_top, set(doc) - allowed_top
    assert isinstance(doc["score"], (int, float)) and not isinstance(doc["score"], bool)
    assert isinstance(doc["execution_time"], int) and doc["execution_time"] >= 0
    assert isinstance(doc["output"], str)
    assert isinstance(doc["tests"], list)
    for t in doc["tests"]:
        assert set(t) == {"name", "number", "score", "max_score", "output", "visibility", "status"}, t
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["number"], str)
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= max(t["max_score"], 0) or t["max_score"] == 0 and t["score"] == 0
        assert isinstance(t["output"], str)
        assert t["visibility"] in ("hidden", "after_due_date", "after_published", "visible")
        assert t["status"] in ("passed", "failed")
    assert abs(doc["score"] - sum(t["score"] for t in doc["tests"])) < 1e-9


@pytest.fixture(scope="module")
def zipped(tmp_path_factory):
    d = tmp_path_factory.mktemp("ag")
    seed_file = d / "seed.txt"
    seed_file.write_text("987654321\n")
    out = autograder.build(LAB, d / f"lab{LAB}_autograder.zip", pgcontrol="pgcontrol==0.1.0",
                           secret_seed_file=seed_file)
    return out


def _run(zip_path: Path, root: Path, files: dict[str, str], env_extra=None) -> dict:
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        os.chmod(root / "source" / name, 0o755)
    (root / "submission").mkdir()
    for name, text in files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_text(text)
    env = {**os.environ, "PGCONTROL_AUTOGRADER_ROOT": str(root), "PGCONTROL_AUTOGRADER_PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", **(env_extra or {})}
    r = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads((root / "results" / "results.json").read_text())
    validate_results(doc)
    return doc


def test_zip_contents(zipped):
    with zipfile.ZipFile(zipped) as z:
        names = set(z.namelist())
        assert names == {"setup.sh", "run_autograder", "pgcontrol_autograder.json", "secret_seed"}
        setup = z.read("setup.sh").decode()
        assert "download.pytorch.org/whl/cpu torch" in setup and "pip install pgcontrol==0.1.0" in setup
        assert z.read("secret_seed").decode().strip() == "987654321"
        assert json.loads(z.read("pgcontrol_autograder.json"))["lab"] == LAB
        assert "987654321" not in z.read("run_autograder").decode()  # never on a command line


def test_correct_wrong_attacking_and_missing(zipped, tmp_path):
    ref = (SOLUTIONS / f"lab{LAB}.py").read_text()
    # correct, with the notebook `lab start` wrote beside it: only lab3.py is graded, once
    doc = _run(zipped, tmp_path / "a", {"lab3.py": ref, "lab3.ipynb": "{not json", "notes.txt": "hi"})
    n = len(get_lab(LAB).items)
    assert doc["score"] == 2 * FULL and len(doc["tests"]) == 2 * n
    assert [t["visibility"] for t in doc["tests"]] == ["visible"] * n + ["after_published"] * n
    assert "987654321" not in json.dumps(doc)
    # wrong
    wrong = ref + "\ndef critic_loss(v, t):\n    return 0.0\n"
    doc = _run(zipped, tmp_path / "b", {"sub/lab3.py": wrong})
    assert doc["score"] == 2 * (FULL - 1)
    # attacking: reads the secret seed and the solutions, forges results.json, imports pgcontrol.lqr
    attack = ref + r'''
import glob, json, os
leak = []
for p in glob.glob("ROOT/source/*") + glob.glob("ROOT/results/*"):
    try:
        leak.append(open(p).read()[:100])
    except Exception as e:
        leak.append(type(e).__name__)
try:
    os.makedirs("ROOT/results", exist_ok=True)
    open("ROOT/results/results.json", "w").write(json.dumps({"score": 1000, "tests": []}))
except Exception:
    pass
try:
    import pgcontrol.lqr
except Exception:
    pass
def critic_loss(v, t):
    raise ValueError("leak: " + " ".join(leak) + " env: " + os.environ.get("PGCONTROL_SECRET_SEED", "none"))
'''.replace("ROOT", str(tmp_path / "c"))
    doc = _run(zipped, tmp_path / "c", {"lab3.py": attack}, {"PGCONTROL_SECRET_SEED": "55555"})
    text = json.dumps(doc)
    assert doc["score"] == 2 * (FULL - 1)
    assert "987654321" not in text and "55555" not in text and '"lab": 3' not in text
    assert any(t["name"].startswith("flagged") and "pgcontrol.lqr" in t["output"] for t in doc["tests"])
    # missing: a visible failing test that lists what was submitted
    doc = _run(zipped, tmp_path / "d", {"lab2.py": ref})
    assert doc["score"] == 0 and "lab2.py" in doc["tests"][0]["output"] and doc["tests"][0]["status"] == "failed"


def test_results_written_when_pgcontrol_cannot_start(zipped, tmp_path):
    doc = _run(zipped, tmp_path / "e", {"lab3.py": "x = 1\n"}, {"PGCONTROL_AUTOGRADER_PYTHON": "/nonexistent/python"})
    assert doc["score"] == 0 and doc["tests"][0]["name"] == "Autograder failed"


def test_pick_submission_rule(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "lab4.py").write_text("")
    (tmp_path / "deep" / "lab4.ipynb").write_text("")
    assert autograder.pick_submission(tmp_path, 4) == tmp_path / "deep" / "er" / "lab4.py"
    (tmp_path / "lab4.py").write_text("")
    assert autograder.pick_submission(tmp_path, 4) == tmp_path / "lab4.py"
    assert autograder.pick_submission(tmp_path, 5) is None


def test_bad_settings(tmp_path):
    (tmp_path / "seed").write_text("-4")
    with pytest.raises(LabError, match="secret seed file must hold one integer"):
        autograder.build(LAB, tmp_path / "a.zip", pgcontrol="pgcontrol", secret_seed_file=tmp_path / "seed")
    with pytest.raises(LabError, match="one pip requirement"):
        autograder.build(LAB, tmp_path / "a.zip", pgcontrol="pgcontrol; rm -rf /")


@pytest.mark.slow
def test_wheel_of_this_checkout(tmp_path):
    out = autograder.build(LAB, tmp_path / "w.zip")
    with zipfile.ZipFile(out) as z:
        wheels = [n for n in z.namelist() if n.endswith(".whl")]
        assert len(wheels) == 1 and f"/autograder/source/{wheels[0]}" in z.read("setup.sh").decode()
