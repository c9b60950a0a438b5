"""Running a submission in a process of its own, and checking it from this one (the trusted side).

:func:`check_isolated` is what ``pgcontrol lab check`` and ``pgcontrol lab grade``
run. The checker (drawing the inputs, computing the expected values,
scoring) stays in the calling process; the submission runs in a separate
process (:mod:`pgcontrol.labs._worker`) that receives only the inputs of each
call and sends back only the outputs, as validated plain data
(:mod:`pgcontrol.labs._wire`). It knows no seed, no expected value and no
results file; points only ever come from this side.

The student's process, on Linux:

* sees only its own copy of the submission, in a fresh private folder (its
  working directory, ``HOME`` and ``TMPDIR``), and a ``sys.path`` made of the
  standard library, site-packages and pgcontrol (``python -I -S``: no
  ``.pth`` file runs, the submissions' folder is never on it);
* gets a minimal environment (no variable of the grader's, so no secret);
* runs as an unprivileged user when the grader is root (a user of its own,
  :func:`capabilities`), so it cannot read the instructor's files, other
  submissions or the home folder, nor write outside its folder, nor signal
  the grader;
* runs in new PID, network and mount namespaces when ``unshare`` allows
  (as root, or through a user namespace): no network, no view of other
  processes, a tmpfs of ``disk_mb`` as its folder (the total disk quota),
  and every process it starts dies with it;
* has resource limits: address space (``memory_mb``), file size, CPU time,
  no core dumps, and a process count when it has a user of its own;
* is killed when its row ends, finished or not, with all its descendants:
  the PID namespace, or else the grader is a child subreaper and kills every
  process reparented to it (``setsid`` daemons included) and, with a user of
  its own, every process of that user.

What still needs a container is in ``docs/teaching-grading.md``.
"""

from __future__ import annotations

import functools
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _wire
from ._author import call_inputs
from ._model import Lab, Report, StudentError, SubmissionError
from ._run import run_lab
from ._submission import notebook_code, scan_imports

__all__ = ["Limits", "capabilities", "check_isolated", "StudentProcess"]

#: the largest submission file read (bytes)
MAX_SOURCE = 2 << 20
_WORKER = Path(__file__).with_name("_worker.py")
_PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Limits:
    """Per-submission limits: wall clock (s), memory (MiB), printed output (bytes), disk (MiB)."""

    timeout: float = 120.0
    memory_mb: int = 2048
    output_limit: int = 1 << 20
    disk_mb: int = 64


class _Dead(Exception):
    """The student's process is gone or misbehaved; the message is the reason (one line)."""


# --------------------------------------------------------------------------- what the machine allows


def _probe(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _as_user(uid: int, action=None) -> bool:
    """Run ``action()`` in a forked child that has become ``uid`` (no groups); True if the child got through."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if action is not None:
                action()
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def _probe_setuid(uid: int) -> bool:
    return _as_user(uid)


@functools.lru_cache(maxsize=None)
def capabilities(namespaces: bool = True) -> dict:
    """What isolation this machine allows: ``{"root", "uid", "own_uid", "unshare", "subreaper"}``.

    ``unshare`` is the command prefix that makes PID, network and mount
    namespaces (``None`` where ``unshare`` is missing or refused: e.g. a
    container without ``CAP_SYS_ADMIN`` or with user namespaces disabled).
    ``uid`` is the user the student runs as when the grader is root: a user
    of its own (``PGCONTROL_GRADE_UID``, default 2 000 000 000 + the grader's
    PID modulo 100 000) when the kernel accepts it, else ``nobody`` (65534).
    """
    root = sys.platform.startswith("linux") and os.geteuid() == 0
    uid, own = None, False
    if root:
        env = os.environ.get("PGCONTROL_GRADE_UID", "")
        uid = int(env) if env.isdigit() else 2_000_000_000 + os.getpid() % 100_000
        own = uid != 65534 and _probe_setuid(uid)
        if not own:
            uid = 65534
    prefix = None
    exe = shutil.which("unshare")
    if namespaces and exe and sys.platform.startswith("linux") and os.environ.get("PGCONTROL_GRADE_NO_UNSHARE") != "1":
        cmd = [exe, "--pid", "--fork", "--kill-child", "--net", "--mount", "--mount-proc"]
        if not root:
            cmd[1:1] = ["--user", "--map-root-user"]
        # the worker's own steps: a tmpfs (the disk quota), and as root the bind and move of _reveal
        script = "mount -t tmpfs -o size=64k pgcontrol-probe /tmp"
        if root:
            script += " && mkdir /tmp/a /tmp/b /tmp/c && mount --bind /tmp/a /tmp/b && mount --move /tmp/b /tmp/c"
        if _probe(cmd + ["sh", "-c", script]):
            prefix = cmd
    hidden = _unreadable(uid) if root else []
    if hidden and prefix is None:
        uid, own = None, False  # Python itself is out of an unprivileged user's reach, and no namespace to fix it
    return {"root": root, "uid": uid, "own_uid": own, "unshare": prefix, "subreaper": _subreaper(),
            "reveal": hidden if prefix else []}


def _hidden(extra=()) -> list[str]:
    """Folders the student may not read: the submissions' folder, the checkout's tests (solutions), the home folder.

    Inside the mount namespace each gets an empty tmpfs on top; without
    namespaces the guard refuses to open files there (and the user, when the
    grader is root, does the rest).
    """
    tests = _PACKAGE.parent / "tests"
    cands = [str(x) for x in extra] + [str(tests)] + [os.path.expanduser("~")]
    needed = _needed()
    out = []
    for c in cands:
        c = os.path.realpath(c)
        if not os.path.isdir(c) or c in out or c == "/":
            continue
        if any(n == c or n.startswith(c + os.sep) for n in needed) or tempfile.gettempdir().startswith(c):
            continue
        out.append(c)
    return out


def _needed() -> list[str]:
    """Folders the student's process must reach: Python's prefixes, site-packages, pgcontrol, the temporary folder."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                                           os.path.dirname(os.path.realpath(sys.executable)), str(_PACKAGE),
                                           tempfile.gettempdir())}
    dirs.update(_python_path())
    return sorted(dirs)


def _unreadable(uid: int) -> list[list[str]]:
    """``[[A, S...], ...]``: folders A closed to other users above needed folders S (e.g. ``/root`` above pyenv).

    Inside its mount namespace, the worker mounts an empty tmpfs on each A and
    binds back only the S below it, so the student's Python works as ``uid``
    while the rest of A (a home folder) stays out of sight.
    """
    plan: dict[str, set[str]] = {}
    for d in _needed():
        parts = Path(d).parts
        for i in range(2, len(parts) + 1):
            a = str(Path(*parts[:i]))
            try:
                mode = os.stat(a).st_mode
            except OSError:
                break
            if not mode & 0o001:
                plan.setdefault(a, set()).add(d)  # the folder itself: the folders between get a tmpfs's 0755
                break
    out = []
    for a, subs in sorted(plan.items()):
        keep = [s for s in sorted(subs) if s != a and not any(s.startswith(k + os.sep) for k in subs if k != s)]
        out.append([a, *keep])
    return out


@functools.lru_cache(maxsize=1)
def _subreaper() -> bool:
    """Make this process a child subreaper (Linux): orphans of the student's processes come back to it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _children() -> set[int]:
    """PIDs whose parent is this process (from /proc)."""
    me, out = os.getpid(), set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read(512)
            ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            out.add(int(e))
    return out


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a user of the student's own), from a helper running as that user."""

    def kill_all():
        for _ in range(1000):  # ends with ESRCH once none is left
            os.kill(-1, signal.SIGKILL)

    _as_user(uid, kill_all)


def _python_path() -> list[str]:
    """The student's ``sys.path``: the standard library and site-packages of this Python, nothing else."""
    prefixes = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                     sys.base_exec_prefix)})
    out = []
    for p in sys.path:
        if not p:
            continue
        rp = os.path.realpath(p)
        if not rp.startswith(prefixes) or not os.path.isdir(rp) or rp in out:
            continue
        if rp == str(_PACKAGE.parent):
            continue  # a checkout on sys.path would show its tests (the solutions); pgcontrol comes from pkg/
        out.append(rp)
    return out


# --------------------------------------------------------------------------- the student's process


class StudentProcess:
    """One submission in its own process (module docstring); :meth:`close` kills it and all it started."""

    def __init__(self, code: str, name: str, limits: Limits, *, preload=(), namespaces: bool = True,
                 hide=(), guard: bool = True):
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout
        caps = capabilities(namespaces)
        self.caps = caps
        self.base = Path(tempfile.mkdtemp(prefix="pgcontrol-grade-"))
        uid = caps["uid"]
        self.uid = uid
        self.work = self.base / "work"
        self.work.mkdir()
        pkg = self.base / "pkg"
        pkg.mkdir()
        os.symlink(_PACKAGE, pkg / "pgcontrol")
        code_file = self.base / "code.py"
        code_file.write_text(code, encoding="utf-8")
        self.log = self.base / "output.txt"
        if uid is not None:
            os.chmod(self.base, 0o711)
            os.chmod(pkg, 0o755)
            os.chown(self.work, uid, uid)
            os.chmod(self.work, 0o700)
        self.tmpfs = caps["unshare"] is not None
        cfg = {"folder": str(self.work), "code": str(code_file), "name": name,
               "path": _python_path() + [str(pkg)], "preload": list(preload),
               "uid": uid, "gid": uid, "tmpfs": (limits.disk_mb << 20) if self.tmpfs else 0,
               "nproc": 64 if caps["own_uid"] else 0, "reveal": caps["reveal"], "hide": _hidden(hide),
               "guard": bool(guard)}
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.work), "TMPDIR": str(self.work), "LANG": "C.UTF-8",
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(self.work), "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        cmd = [sys.executable, "-I", "-S", "-X", "utf8", "-B", str(_WORKER)]
        if caps["unshare"]:
            cmd = caps["unshare"] + ["--"] + cmd
        self.before = _children()
        self._log_fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_fd,
                                     cwd=self.base, env=env, start_new_session=True, close_fds=True,
                                     preexec_fn=_limits(limits))
        self._buf = bytearray()
        self._closed = False
        self.dead: str | None = None
        self._send(cfg)

    # -- messages

    def _send(self, obj) -> None:
        """Write one message within the deadline (a process that stops reading cannot block the grader)."""
        data = memoryview(_wire.dumps(obj))
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        try:
            while data:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    return  # the reply's read reports the timeout
                _, ready, _ = select.select([], [fd], [], min(remaining, 0.25))
                if ready:
                    data = data[os.write(fd, data[: 1 << 16]):]
        except (BrokenPipeError, OSError):
            pass  # the reply's read reports what happened

    def receive(self) -> dict:
        """The next message, within the deadline; :class:`_Dead` with the reason otherwise."""
        fd = self.proc.stdout.fileno()
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                try:
                    return _wire.loads(line)
                except _wire.WireError as exc:
                    raise _Dead(f"the submission's process sent a malformed message: {exc}") from None
            if len(self._buf) > _wire.MAX_MESSAGE:
                raise _Dead(f"the submission's process sent a message larger than {_wire.MAX_MESSAGE >> 20} MiB")
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise _Dead(f"timed out after {self.limits.timeout:g} s (wall clock); items not reached get 0")
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.25))
            self._check_disk()
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise _Dead(self._exit_reason())
                self._buf += chunk

    def _check_disk(self) -> None:
        if self.tmpfs:
            return  # the tmpfs is the quota
        total, count = 0, 0
        stack = [str(self.work)]
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:
                continue
            for e in entries:
                count += 1
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    else:
                        total += e.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    pass
            if count > 10_000 or total > self.limits.disk_mb << 20:
                raise _Dead(f"wrote more than the disk quota ({self.limits.disk_mb} MiB or 10000 files)")

    def printed_too_much(self) -> bool:
        try:
            return self.log.stat().st_size >= self.limits.output_limit
        except OSError:
            return False

    def _exit_reason(self) -> str:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "closed its output and kept running"
        last = _tail(self.log)
        if rc is not None and rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            return f"crashed: killed by {sig}" + (" (CPU time limit)" if sig == "SIGXCPU" else "")
        if "MemoryError" in last:
            return f"ran out of memory (limit {self.limits.memory_mb} MiB): {last}"
        return f"crashed with exit status {rc}" + (f": {last}" if last else "")

    # -- the end of the row

    def close(self) -> None:
        """Kill the student's process and everything it started; remove its folder (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        os.close(self._log_fd)
        if self.caps["own_uid"]:
            _kill_uid(self.uid)
        for _ in range(200):  # orphans reparented to this subreaper: setsid daemons, forked children
            extra = _children() - self.before
            if not extra:
                break
            for pid in extra:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError, PermissionError):
                    pass
        shutil.rmtree(self.base, ignore_errors=True)


def _limits(limits: Limits):
    def apply() -> None:  # runs in the child between fork and exec
        import resource

        mem = int(limits.memory_mb) << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        size = int(limits.output_limit)  # the log, and any one file; the folder's total is the disk quota
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        cpu = int(limits.timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
            signal.signal(s, signal.SIG_DFL)
    return apply


def _tail(path: Path, limit: int = 400) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4000))
            data = f.read()
    except OSError:
        return ""
    lines = [ln for ln in data.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    return _wire.printable(lines[-1] if lines else "", limit)


class RemoteSubmission:
    """What the lab items see: ``call(name, *args)`` sends the inputs to the student's process.

    Same interface as :class:`pgcontrol.labs._submission.Submission` for the
    items (``call``, ``seed``, ``cache``, ``source``); the answers are plain
    floats, bools, tuples and float64 arrays.
    """

    def __init__(self, proc: StudentProcess, source: str, code: str, params: dict | None = None):
        self.proc = proc
        self.params = dict(params or {})  # name -> its parameters' names (the lab's signatures), for feedback
        self.source = source
        self.code = code
        self.filename = None
        self.namespace: dict = {}
        self.seed = 0
        self.cache: dict = {}
        self.refused: list[str] = []
        self.dead: str | None = None
        self._next = 0

    def _note(self, msg: dict) -> None:
        refused = msg.get("refused", [])
        if not isinstance(refused, list):
            raise _Dead("the submission's process sent a malformed message: 'refused' is not a list")
        for r in refused[:50]:
            text = _wire.printable(r, 300)
            if text not in self.refused and len(self.refused) < 50:
                self.refused.append(text)

    def start(self) -> None:
        """Wait for the submission to load; :class:`SubmissionError` with the reason if it did not."""
        try:
            msg = self.proc.receive()
        except _Dead as exc:
            self.dead = str(exc)
            raise SubmissionError(f"{self.source}: {exc}") from None
        unknown = set(msg) - {"ready", "error", "refused"}
        self._note(msg)
        if unknown or not (isinstance(msg.get("ready"), list) or isinstance(msg.get("error"), str)):
            self.dead = "the submission's process sent a malformed message"
            raise SubmissionError(self.dead)
        if "error" in msg:
            self.dead = _wire.printable(msg["error"], 600)
            raise SubmissionError(self.dead)

    def function(self, name: str):
        return functools.partial(self.call, name)

    def call(self, name: str, *args, **kwargs):
        if self.dead is not None:
            raise StudentError(self.dead)
        if kwargs:
            raise TypeError("the student's functions are called with positional arguments only")
        self._next += 1
        rid = self._next
        sent = [_wire.encode_value(a) for a in args]
        self.proc._send({"id": rid, "call": name, "args": sent})
        try:
            msg = self.proc.receive()
            self._note(msg)
            keys = set(msg)
            if msg.get("id") != rid or not keys <= {"id", "value", "raised", "refused"} or \
                    len(keys & {"value", "raised"}) != 1:
                raise _Dead("the submission's process sent a malformed message (unknown keys or id)")
            if "raised" in msg:
                if not isinstance(msg["raised"], str):
                    raise _Dead("the submission's process sent a malformed message ('raised' is not text)")
                raise StudentError(_wire.printable(msg["raised"], 600) + self._inputs(name, sent))
            try:
                return _wire.decode_value(msg["value"])
            except _wire.WireError as exc:
                raise _Dead(f"the submission's process sent a malformed answer: {exc}") from None
        except _Dead as exc:
            self.dead = str(exc)
            self.proc.close()
            raise StudentError(self.dead) from None


    def _inputs(self, name: str, sent: list) -> str:
        """The inputs this side sent to a call that raised (:func:`~pgcontrol.labs._author.call_inputs`)."""
        if name not in self.params:  # "missing: ... defines no function": no inputs to show
            return ""
        try:
            args = [_wire.decode_value(a) for a in sent]
        except _wire.WireError:
            return ""
        return call_inputs(self.params[name], args, {})


def param_names(lab: Lab) -> dict[str, list[str]]:
    """``{function: [its parameters' names]}`` from the lab's signatures (``"f(a, b) -> c"``)."""
    out = {}
    for name, sig in lab.functions.items():
        m = re.match(r"\s*\w+\s*\(([^)]*)\)", sig)
        if m:
            out[name] = [p.split("=")[0].strip() for p in m.group(1).split(",") if p.strip()]
    return out


def _preload(code: str) -> list[str]:
    """Heavy modules the submission names, imported before the guard goes up (torch loads native code)."""
    return [m for m in ("scipy", "scipy.linalg", "torch", "matplotlib", "matplotlib.pyplot")
            if m.split(".")[0] in code]


def read_code(path: Path) -> str:
    """The code of a ``.py`` file or a notebook's code cells; :class:`SubmissionError` with the reason otherwise."""
    suffix = path.suffix.lower()
    if suffix not in (".py", ".ipynb"):
        raise SubmissionError(f"{path.name}: a submission must be a .py file or a .ipynb notebook")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SubmissionError(f"cannot read {path.name}: {exc.strerror}") from None
    if size > MAX_SOURCE * (8 if suffix == ".ipynb" else 1):
        raise SubmissionError(f"{path.name} is {size} bytes, more than a submission may be")
    if suffix == ".ipynb":
        try:
            return notebook_code(path)
        except (RecursionError, MemoryError):
            raise SubmissionError(f"{path.name} is not a readable Jupyter notebook (nested too deeply)") from None
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name} is not a text file (not UTF-8): not a Python submission") from None


def safe_scan(code: str) -> list[str]:
    """:func:`scan_imports`, which never fails (a source nested too deeply for the parser is itself a flag)."""
    try:
        return scan_imports(code)
    except (RecursionError, MemoryError, ValueError, SyntaxError):
        return ["the source is nested too deeply to be read (not scanned)"]


def check_isolated(lab: Lab, path, *, seed: int | None = None, only: str | None = None,
                   limits: Limits = Limits(), label: str | None = None, namespaces: bool = True,
                   hide_extra=(), _guard: bool = True) -> Report:
    """Check the submission file ``path`` with the submission in its own process (module docstring).

    Never raises for a bad submission: what went wrong is ``report.error``
    (and the items not graded get 0 with that reason). Raises
    :class:`~pgcontrol.labs._model.LabError` only for a bad ``seed``/``only``.
    """
    path = Path(path)
    source = _wire.printable(label or path.name, 200)
    seed = lab.default_seed if seed is None else seed
    try:
        code = read_code(path)
    except SubmissionError as exc:
        return _failed(lab, seed, source, str(exc), only)
    flags = [_wire.printable(f, 300) for f in safe_scan(code)]
    name = f"lab{lab.number}.py"
    proc = StudentProcess(code, name, limits, preload=_preload(code), namespaces=namespaces,
                          hide=[path.resolve().parent, *hide_extra], guard=_guard)
    sub = RemoteSubmission(proc, source, code, param_names(lab))
    try:
        try:
            sub.start()
        except SubmissionError as exc:
            rep = _failed(lab, seed, source, str(exc), only)
            rep.flags = flags + [f"refused at run time: {r}" for r in sub.refused]
            return rep
        with np.errstate(all="ignore"):
            report = run_lab(lab, sub, seed=seed, only=only)
        noisy = proc.printed_too_much()
    finally:
        proc.close()
    if noisy and sub.dead is None and report.error is None:
        report.error = f"printed more than the output limit of {limits.output_limit} bytes"
    report.flags = flags + [f for f in report.flags if f not in flags]
    report.flags += [f"refused at run time: {r}" for r in sub.refused]
    if sub.dead is None and report.error is None:  # an allocation that failed inside a function: say so
        oom = next((r.feedback for r in report.items if "ran out of memory" in r.feedback), None)
        if oom is not None:
            report.error = f"ran out of memory (limit {limits.memory_mb} MiB): {oom.splitlines()[0]}"
    if sub.dead is not None:
        report.error = sub.dead
        for r in report.items:
            if not r.passed and r.feedback != sub.dead and sub.dead in r.feedback:
                r.feedback = sub.dead
    return report


def _failed(lab: Lab, seed, source: str, reason: str, only=None) -> Report:
    from ._model import ItemResult

    rep = Report(lab.number, lab.title, int(seed), source, error=_wire.printable(reason, 600))
    for it in lab.items:
        if only is None or it.functions == (only,):
            rep.items.append(ItemResult(it.id, it.title, 0, it.points, False, rep.error))
    return rep
