"""Malicious submissions, graded in one folder next to correct ones: each attack gets 0 points or a flag,
the correct neighbours keep full marks, and the grader writes its CSV every time.

One grader run (module fixture) grades every attack of the audit's classes on lab 3; a second run
grades the attacks that go around the runtime guard (``_guard=False``) to show that the process,
user, namespaces and limits hold on their own.
"""

from __future__ import annotations

import csv
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from pgcontrol.labs import _isolate, get_lab, grader

SOLUTIONS = Path(__file__).parent / "lab_solutions"
REF3 = (SOLUTIONS / "lab3.py").read_text()
FULL = get_lab(3).max_score
SECRET = "pgcontrol-secret-" + uuid.uuid4().hex

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the isolation is Linux's")


def _wrong(extra: str) -> str:
    """A submission whose answers are all wrong (zeros), plus ``extra`` at load time."""
    return "import numpy as np\n\n" + "".join(
        f"def {f}(*args):\n    return {ret}\n\n" for f, ret in
        [("td_targets", "np.zeros(len(args[0]))"), ("critic_loss", "0.0"), ("actor_loss", "0.0"),
         ("fit_quadratic_value", "(np.zeros((2, 2)), 0.0)")]) + "\n" + extra


FORGE_LINES = r'''
import json, os, sys
lines = [json.dumps({"item": {"id": "td_targets", "title": "x", "points": 1000, "max_points": 2, "passed": True,
                              "feedback": ""}}), json.dumps({"done": True}),
         json.dumps({"id": 1, "value": {"f": 1.0}, "refused": []}), json.dumps({"ready": ["td_targets"]})]
for fd in range(0, 40):
    for ln in lines:
        try:
            os.write(fd, (ln + "\n").encode())
        except OSError:
            pass
for a in sys.argv:
    try:
        open(a, "a").write("\n".join(lines))
    except Exception:
        pass
'''

ATTACKS = {
    # forged marks
    "forge_results.py": _wrong(FORGE_LINES + "\nos._exit(0)\n"),
    "forge_results_then_answer.py": _wrong(FORGE_LINES),
    "frames.py": _wrong(r'''
def critic_loss(v, t):
    import sys
    f = sys._getframe()
    while f is not None:
        for k in ("expected", "K_star", "exp"):
            if k in f.f_locals:
                return f.f_locals[k]
        f = f.f_back
    return 0.0
'''),
    "patch_checker.py": _wrong(r'''
import builtins, sys
builtins.bool = lambda *a: True
try:
    import pgcontrol.labs._core as core
    core.close = lambda *a, **k: True
    core.compare = lambda *a, **k: None
except Exception:
    pass
try:
    sys.modules["pgcontrol.lqr"].optimal_gain = None
except Exception:
    pass
'''),
    "import_tricks.py": _wrong(r'''
import base64, importlib
for attempt in (lambda: importlib.import_module("pgcontrol." + "lqr"),
                lambda: exec(base64.b64decode(b"aW1wb3J0IHBnY29udHJvbC5yb2xsb3V0").decode()),
                lambda: __import__("pgcontrol.labs.lab3"),
                lambda: getattr(__import__("pgcontrol.labs.drivers").labs.drivers, "lqr"),
                lambda: __import__("pgcontrol.labs._pg")):
    try:
        attempt()
    except Exception:
        pass
'''),
    "lying_float.py": REF3 + r'''
import numpy as np
class Liar(np.float64):
    def __eq__(self, other): return True
    def __sub__(self, other): return Liar(0.0)
    def __rsub__(self, other): return Liar(0.0)
    def __abs__(self): return Liar(0.0)
    def __le__(self, other): return True
    def __lt__(self, other): return True
    def __float__(self): return 12345.0
def critic_loss(v, t):
    return Liar(7.0)
''',
    # one student zeroes another
    "torch.py": "raise SystemExit('the real torch is gone')\n",
    "numpy.py": "raise SystemExit('the real numpy is gone')\n",
    # one submission kills the run
    "malformed_messages.py": _wrong(r'''
import os
bad = [b'{"id": 1, "value": {"f": 1.0}, "points": 1000}', b"5", b"[" * 100000, b'{"id": 1, "points": "2"}',
       b'{"id": ["x"], "value": 1}', b'{"ready": "yes"}', b'\xff\xfe']
def td_targets(*a):
    for fd in range(0, 40):
        for b in bad:
            try:
                os.write(fd, b + b"\n")
            except OSError:
                pass
    return 0.0
'''),
    "deep_nesting.py": "x = " + "-" * 200_000 + "1\n",
    "kill_parent.py": REF3 + "\nimport os, signal\n" + "".join(
        f"try:\n    os.kill({target}, signal.{sig})\nexcept Exception:\n    pass\n"
        for target in ("os.getppid()", "GRADER_PID") for sig in ("SIGTERM", "SIGKILL", "SIGSTOP")),
    # system exits in a function: that item only
    "exits_in_function.py": REF3 + "\ndef critic_loss(v, t):\n    raise SystemExit(0)\n"
                            "def actor_loss(logp, adv):\n    raise KeyboardInterrupt\n",
    # the machine
    "snoop.py": _wrong(r'''
import glob, os
found = []
for pattern in ("~/.ssh/*", "SUBMISSIONS/*", "SOLUTIONS/*", os.path.dirname(__file__) + "/../*"):
    for p in glob.glob(os.path.expanduser(pattern)):
        try:
            found.append(open(p).read()[:200])
        except Exception:
            pass
def critic_loss(v, t):
    raise ValueError(" ".join(found) or "nothing readable")
'''),
    "pth_writer.py": _wrong(r'''
import site, sys
for d in sys.path + [getattr(site, "getusersitepackages", lambda: "")()]:
    try:
        open(d + "/zz_pgcontrol_evil.pth", "w").write("import os; os.system('touch /tmp/pwned')\n")
    except Exception:
        pass
for p in ("SUBMISSIONS/alice.py",):
    try:
        open(p, "a").write("\nraise SystemExit\n")
    except Exception:
        pass
'''),
    "disk_filler.py": _wrong(r'''
import os
written = 0
for i in range(80):  # 40 MiB in files of 512 KiB, each under the per-file limit
    try:
        with open(f"blob{i}", "wb") as f:
            f.write(b"x" * (512 << 10))
        written += 512 << 10
    except Exception:
        break
def critic_loss(v, t):
    raise ValueError(f"wrote {written} bytes")
'''),
    "escape_codes.py": _wrong("def critic_loss(v, t):\n    raise ValueError('\\x1b[2J\\x1b]0;owned\\x07=cmd|calc')\n"),
    "=HYPERLINK(1).py": REF3,
    # correct neighbours: alice before every attack and zed after, plus one that imports torch
    "alice.py": REF3,
    "zed.py": REF3,
    "uses_torch.py": "import torch\n" + REF3,
    "uses_matplotlib.py": "import os, shutil\nimport matplotlib.pyplot as plt\nos.makedirs('out/a')\n"
                          "open('out/a/f', 'w').write('1')\nos.rename('out/a/f', 'out/g')\nshutil.rmtree('out')\n"
                          + REF3,
    "notes.txt": "not a submission\n",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    d = tmp_path_factory.mktemp("submissions")
    (d / "zz_secret.txt").write_text(SECRET)
    for name, src in ATTACKS.items():
        src = src.replace("SUBMISSIONS", str(d)).replace("SOLUTIONS", str(SOLUTIONS))
        src = src.replace("GRADER_PID", str(os.getpid()))
        (d / name).write_text(src)
    site_before = _pth_files()
    out = tmp_path_factory.mktemp("out")
    t0 = time.monotonic()
    reports = grader.grade(3, d, timeout=40, memory_mb=1024, disk_mb=16, csv_path=out / "grades.csv")
    elapsed = time.monotonic() - t0
    return {r.source: r for r in reports}, out / "grades.csv", site_before, elapsed, d


def _pth_files():
    return {os.path.join(p, f) for p in sys.path if os.path.isdir(p) for f in os.listdir(p) if f.endswith(".pth")}


def _text(rep) -> str:
    return str(rep) + " ".join(rep.flags) + (rep.error or "")


def test_correct_neighbours_keep_full_marks(graded):
    reports, *_ = graded
    for name in ("alice.py", "zed.py", "uses_torch.py", "uses_matplotlib.py", "=HYPERLINK(1).py"):
        assert reports[name].score == FULL and not reports[name].flags, str(reports[name])
    assert "notes.txt" not in reports and "zz_secret.txt" not in reports


@pytest.mark.parametrize("name", ["forge_results.py", "forge_results_then_answer.py", "frames.py",
                                  "patch_checker.py", "malformed_messages.py"])
def test_forged_marks_score_zero(graded, name):
    rep = graded[0][name]
    assert rep.score == 0, str(rep)
    assert all(r.points <= r.max_points for r in rep.items)


def test_pgcontrol_implementations_are_refused_and_flagged(graded):
    rep = graded[0]["import_tricks.py"]
    assert rep.score == 0
    refused = " ".join(rep.flags)
    for mod in ("pgcontrol.lqr", "pgcontrol.rollout", "pgcontrol.labs.lab3", "pgcontrol.labs._pg"):
        assert f"refused at run time: import of {mod}" in refused, refused


def test_lying_float_subclass_is_read_as_its_number(graded):
    rep = graded[0]["lying_float.py"]
    pts = {r.id: r.points for r in rep.items}
    assert pts["critic_loss"] == 0 and rep.score == FULL - 1, str(rep)


def test_submissions_named_like_modules_shadow_nothing(graded):
    reports = graded[0]
    assert reports["torch.py"].score == 0 and reports["numpy.py"].score == 0
    assert reports["uses_torch.py"].score == FULL


def test_malformed_messages_end_that_row_only(graded):
    rep = graded[0]["malformed_messages.py"]
    assert rep.score == 0 and "malformed" in (rep.error or ""), rep.error
    assert graded[0]["zed.py"].score == FULL


def test_deep_nesting_does_not_crash_the_grader(graded):
    rep = graded[0]["deep_nesting.py"]
    assert rep.score == 0 and rep.error


def test_signalling_the_grader_changes_nothing(graded):
    rep = graded[0]["kill_parent.py"]
    assert rep.score == FULL  # the grader survived its own row and the ones after it
    assert graded[0]["zed.py"].score == FULL


def test_system_exit_and_keyboard_interrupt_fail_one_item(graded):
    rep = graded[0]["exits_in_function.py"]
    pts = {r.id: r.points for r in rep.items}
    assert pts["critic_loss"] == 0 and pts["actor_loss"] == 0
    assert rep.score == FULL - 2 and rep.error is None, str(rep)
    assert "SystemExit" in str(rep) and "KeyboardInterrupt" in str(rep)


def test_no_secret_file_or_sibling_reaches_the_report(graded):
    reports, csv_path, *_ = graded
    rep = reports["snoop.py"]
    assert SECRET not in _text(rep)
    assert "Reference solutio" not in _text(rep)  # the solutions' docstring
    assert SECRET not in csv_path.read_text()


def test_no_pth_file_and_no_sibling_written(graded):
    reports, _, site_before, _, folder = graded
    assert _pth_files() == site_before
    assert (folder / "alice.py").read_text() == REF3
    assert not Path("/tmp/pwned").exists()


def test_disk_quota_is_total_not_per_file(graded):
    rep = graded[0]["disk_filler.py"]
    assert rep.score == 0
    if "disk quota" not in (rep.error or ""):  # the tmpfs refused the writes past 16 MiB
        fb = next(r.feedback for r in rep.items if r.id == "critic_loss")
        written = int(fb.split("wrote ")[1].split()[0])
        assert 8 << 20 <= written <= 16 << 20, fb
    assert graded[0]["zed.py"].score == FULL


def test_csv_escapes_formulas_and_control_characters(graded):
    _, csv_path, *_ = graded
    text = csv_path.read_text()
    assert "\x1b" not in text and "\x07" not in text
    rows = {r["submission"]: r for r in csv.DictReader(csv_path.open())}
    assert "'=HYPERLINK(1).py" in rows
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "@")) or value.lstrip("+-").replace(".", "").isdigit()


def test_every_row_written(graded):
    reports, csv_path, *_ = graded
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(reports) == sum(1 for n in ATTACKS if n.endswith(".py"))


# --------------------------------------------------------------------------- around the guard


DAEMON = r'''
import os, sys, time
MARK = "MARKER"
def spawn(script):
    import _posixsubprocess
    r, w = os.pipe()
    return _posixsubprocess.fork_exec([b"/bin/sh", b"-c", script.encode()], [b"/bin/sh"], True, (), None, None,
                                      -1, -1, -1, -1, -1, -1, r, w, True, True, -1, None, None, None, -1, None, False)
# a setsid daemon and its child, and 20 forked children: each touches MARK every 0.1 s for a minute
spawn(f"(for i in $(seq 600); do touch {MARK}; sleep 0.1; done) & for i in $(seq 600); do touch {MARK}; sleep 0.1; done")
for _ in range(20):
    if os.fork() == 0:
        try:
            for _ in range(600):
                open(MARK, "a").close()
                os.utime(MARK)
                time.sleep(0.1)
        finally:
            os._exit(0)
'''


@pytest.fixture(scope="module")
def unguarded(tmp_path_factory, open_folder):
    """Attacks with the runtime guard off: the process, its user, namespaces and limits must hold alone."""
    d = tmp_path_factory.mktemp("unguarded")
    marker = open_folder / "outlived-guard-off"
    (d / "daemon.py").write_text(REF3 + DAEMON.replace("MARKER", str(marker)))
    (d / "alice.py").write_text(REF3)
    caps = _isolate.capabilities()
    if caps["unshare"] or caps["root"]:  # otherwise only grader.grade's shield stands between it and pytest
        (d / "kill.py").write_text(REF3 + f"\nimport os, signal\nfor s in (signal.SIGTERM, signal.SIGINT):\n"
                                   f"    try:\n        os.kill({os.getpid()}, s)\n    except Exception:\n"
                                   f"        pass\n")
    lab = get_lab(3)
    limits = _isolate.Limits(timeout=40, memory_mb=1024, disk_mb=16)
    reports, ended = {}, {}
    for f in sorted(d.iterdir()):
        reports[f.name] = _isolate.check_isolated(lab, f, limits=limits, _guard=False)
        ended[f.name] = time.time()
    return reports, marker, ended


@pytest.fixture(scope="module")
def open_folder():
    """A folder the student's user can write to (pytest's own are closed to other users), removed after."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="pgcontrol-test-"))
    os.chmod(folder, 0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _outlived(marker: Path, ended: float) -> bool:
    """Whether something touched ``marker`` after the row ended (it is touched every 0.1 s while alive)."""
    time.sleep(max(0.0, ended + 1.0 - time.time()))
    return marker.exists() and marker.stat().st_mtime > ended + 0.05


def test_forked_children_and_setsid_daemons_die_with_the_row(unguarded):
    reports, marker, ended = unguarded
    assert reports["daemon.py"].score == FULL  # it answered correctly, then everything it started was killed
    assert marker.exists()  # they ran during the row
    assert not _outlived(marker, ended["daemon.py"])


def test_the_grader_cannot_be_signalled(unguarded):
    caps = _isolate.capabilities()
    if not (caps["unshare"] or caps["root"]):
        pytest.skip("no PID namespace and not root: same-user signals are only shielded by the grader (docs)")
    reports = unguarded[0]
    assert reports["kill.py"].score == FULL and reports["alice.py"].score == FULL


def test_without_namespaces_the_rest_still_holds(tmp_path, open_folder):
    """No ``unshare``: the private folder, the subreaper and (as root) a user of its own still contain the row;
    modules named like the real ones beside the submission shadow nothing."""
    marker = open_folder / "outlived-no-namespaces"
    for shadow in ("torch.py", "numpy.py", "scipy.py"):
        (tmp_path / shadow).write_text("raise SystemExit('shadowed')\n")
    f = tmp_path / "daemon.py"
    f.write_text("import torch\n" + REF3 + DAEMON.replace("MARKER", str(marker)))
    rep = _isolate.check_isolated(get_lab(3), f, limits=_isolate.Limits(timeout=40, memory_mb=1024),
                                  namespaces=False, _guard=False)
    ended = time.time()
    assert rep.score == FULL, str(rep)
    assert marker.exists() and not _outlived(marker, ended)


def test_signal_shield_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with grader._shielded():
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) == before


# --------------------------------------------------------------------------- the messages, without a process


class _FakeProcess:
    """Stands for the student's process: replies with canned messages."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.closed = False

    def _send(self, obj):
        pass

    def receive(self):
        return self.replies.pop(0)

    def close(self):
        self.closed = True


@pytest.mark.parametrize("reply", [
    {"id": 1, "value": {"f": 1.0}, "points": 1000},
    {"id": 2, "value": {"f": 1.0}},
    {"id": ["x"], "value": {"f": 1.0}},
    {"id": 1, "value": {"f": 1.0}, "raised": "x"},
    {"id": 1, "raised": 5},
    {"id": 1, "value": {"f": "2"}},
    {"id": 1, "value": {"nd": [10**9, 10**9], "dt": "f8", "b64": "AAAA"}},
    {"id": 1, "value": {"nd": [2], "dt": "O", "b64": ""}},
    {"id": 1, "value": {"f": 1.0}, "refused": "everything"},
])
def test_malformed_replies_end_the_row(reply):
    from pgcontrol.labs._model import StudentError

    proc = _FakeProcess([reply])
    sub = _isolate.RemoteSubmission(proc, "x.py", "")
    with pytest.raises(StudentError, match="malformed"):
        sub.call("td_targets", 1.0)
    assert proc.closed and "malformed" in sub.dead
    with pytest.raises(StudentError):
        sub.call("td_targets", 1.0)  # every later call fails at once


def test_wire_round_trip_and_bounds():
    import numpy as np

    from pgcontrol.labs import _wire

    x = (np.arange(6.0).reshape(2, 3), np.array([True, False]), np.array([1, 2]), 3, 2.5, "rtg", None, [np.nan])
    back = _wire.decode_value(_wire.loads(_wire.dumps({"v": _wire.encode_value(x)}))["v"])
    assert back[0].dtype == np.float64 and back[0].shape == (2, 3) and back[1].dtype == bool
    assert back[2].dtype == np.int64 and back[3:7] == (3, 2.5, "rtg", None) and np.isnan(back[7][0])
    out = _wire.encode_value((np.float32(1.5), np.array([1, 2])), outputs=True)
    assert _wire.decode_value(out)[1].dtype == np.float64  # answers are float64
    assert isinstance(_wire.decode_value(_wire.encode_value(object(), outputs=True)), _wire.Opaque)
    for bad in (b"[" * 100_000, b"5", b'"x"', b"\xff"):
        with pytest.raises(_wire.WireError):
            _wire.loads(bad)
    nested = {"seq": [], "tuple": True}
    for _ in range(20):
        nested = {"seq": [nested], "tuple": True}
    with pytest.raises(_wire.WireError, match="nested"):
        _wire.decode_value(nested)
    assert _wire.printable("a\x1b[2Jb\x07") == "a?[2Jb?"


def test_drivers_expose_only_what_handouts_call():
    import ast

    from pgcontrol.labs import drivers
    from pgcontrol.reproduce import plateau

    public = {n for n in vars(drivers) if not n.startswith("_")}
    assert public <= set(drivers.__all__) | {"annotations", "dataclass", "np"}
    for internal in ("lqr", "plants", "sim", "torch", "_scores_and_gradient", "static_reference"):
        assert not hasattr(drivers, internal)
    imported = {a.name for node in ast.walk(ast.parse(Path(drivers.__file__).read_text()))
                if isinstance(node, ast.ImportFrom) for a in node.names}
    assert "lab6" not in imported and "_pg" in imported
    pg = ast.parse((Path(drivers.__file__).parent / "_pg.py").read_text())
    assert not any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("lab") for n in ast.walk(pg))
    assert plateau.RunResult is drivers.PGRun  # one record of a policy-gradient run


def test_inf_everywhere_earns_nothing(tmp_path):
    from pgcontrol.labs import _core

    f = tmp_path / "lab1.py"
    f.write_text("import numpy as np\ndef dare_gain(A, B, Q, R, gamma):\n"
                 "    return np.full((B.shape[1], A.shape[0]), np.inf), np.full(A.shape, np.inf)\n"
                 "def policy_cost(*args):\n    return float('inf')\n")
    report = _core.run_lab(get_lab(1), _core.load_submission(f))  # the items' design, not the isolation
    assert report.score == 0


def test_a_call_costs_well_under_a_millisecond_or_so():
    """Lab 2 calls the student's estimator 6000 times: the pipe must not read a byte at a time (9 ms a call)."""
    import numpy as np

    proc = _isolate.StudentProcess(REF3, "lab3.py", _isolate.Limits(timeout=120))
    try:
        sub = _isolate.RemoteSubmission(proc, "lab3.py", REF3)
        sub.start()
        v, t = np.random.default_rng(0).random((2, 250))
        t0 = time.perf_counter()
        for _ in range(100):
            sub.call("critic_loss", v, t)
        per_call = (time.perf_counter() - t0) / 100
    finally:
        proc.close()
    assert per_call < 0.005, f"{per_call * 1000:.1f} ms a call"


def test_temporary_folder_inside_a_closed_one(tmp_path):
    """TMPDIR under a folder other users cannot enter (pytest's own, /root/...): the student's user still runs."""
    import subprocess

    tmp = tmp_path / "t"
    tmp.mkdir()
    os.chmod(tmp_path, 0o700)
    r = subprocess.run([sys.executable, "-m", "pgcontrol.labs", "check", "3", str(SOLUTIONS / "lab3.py")],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp)})
    assert r.returncode == 0 and f"score: {FULL}/{FULL}" in r.stdout, r.stdout + r.stderr


def test_a_call_that_raises_names_the_inputs_sent(tmp_path):
    """The student's process only says what it raised; the trusted side adds the inputs it sent, by parameter name."""
    f = tmp_path / "lab3.py"
    f.write_text(REF3 + "\n\ndef critic_loss(v, targets):\n    raise ValueError('boom')\n")
    report = _isolate.check_isolated(get_lab(3), f, only="critic_loss")
    fb = next(r.feedback for r in report.items if not r.passed)
    assert "raised ValueError: boom" in fb and "\nv = np.array([" in fb and "\ntargets = np.array([" in fb, fb
