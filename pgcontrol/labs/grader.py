"""Grade a folder of lab submissions, each in a process of its own (``pgcontrol lab grade``).

Every ``.py`` file and ``.ipynb`` notebook directly in the folder is one
submission, graded alone; any other file (``notes.txt``, a ``.pdf``) is
ignored and listed as such, hidden files and sub-folders are skipped.

Each submission is checked by :func:`pgcontrol.labs._isolate.check_isolated`:
the checker (inputs, expected values, points) runs in this process, the
submission in a separate, isolated one that only receives inputs and
returns outputs. See that module for what is isolated, and
``docs/teaching-grading.md`` for what still needs a container.

The grader never raises for a bad submission and writes its files every
time: the CSV is rewritten (atomically) after each submission, so the rows
already graded survive whatever comes next. While it grades it ignores the
signals a submission could send it (``SIGTERM``, ``SIGHUP``, ``SIGQUIT``,
``SIGUSR1``, ``SIGUSR2``, ``SIGALRM``, ``SIGPIPE``); ``Ctrl-C`` stops it after
writing the rows graded so far.

Outputs: a CSV with one row per submission and one column per item
(points), then ``score``, ``max_score``, ``flags`` and ``reason``; text that
comes from the submission (its file name, flags, reasons) is escaped for
spreadsheets (a cell starting with ``= + - @`` gets a leading ``'``; control
characters are replaced). Gradescope's ``results.json`` is one student's:
:func:`write_gradescope` takes exactly one report and never sums students.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import signal
from pathlib import Path

from . import _wire
from ._isolate import Limits, check_isolated
from ._model import LabError, Report, get_lab
from ..files import atomic_write

__all__ = ["grade", "grade_one", "submissions", "ignored", "write_csv", "write_gradescope", "validate_limits",
           "SUFFIXES", "Limits"]

SUFFIXES = (".py", ".ipynb")
DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_OUTPUT_LIMIT = 1 << 20
DEFAULT_DISK_MB = 64
_SHIELDED = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPIPE")


class GradeSettingError(LabError):
    """A grading setting (timeout, memory, disk, seed) out of its range."""


def validate_limits(*, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB, disk_mb=DEFAULT_DISK_MB,
                    output_limit=DEFAULT_OUTPUT_LIMIT, seed=None) -> Limits:
    """The :class:`Limits`, or :class:`GradeSettingError` naming the setting, its expected form and the value."""
    def bad(name, form, value):
        raise GradeSettingError(f"{name} must be {form}; got {value!r}")

    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= 86_400:
        bad("timeout", "a number of seconds in (0, 86400]", timeout)
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, (int, float)) or not math.isfinite(memory_mb) \
            or memory_mb != int(memory_mb) or not 256 <= memory_mb <= 1 << 20:
        bad("memory", "a whole number of MiB in [256, 1048576] (Python and NumPy need 256)", memory_mb)
    if isinstance(disk_mb, bool) or not isinstance(disk_mb, int) or not 1 <= disk_mb <= 1 << 16:
        bad("disk", "a whole number of MiB in [1, 65536]", disk_mb)
    if isinstance(output_limit, bool) or not isinstance(output_limit, int) or not 1024 <= output_limit <= 1 << 30:
        bad("output limit", "a whole number of bytes in [1024, 2**30]", output_limit)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        bad("seed", "an integer in [0, 2**63)", seed)
    return Limits(float(timeout), int(memory_mb), int(output_limit), int(disk_mb))


def grade_one(lab: int, path, *, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
              output_limit: int = DEFAULT_OUTPUT_LIMIT, disk_mb: int = DEFAULT_DISK_MB,
              seed: int | None = None) -> Report:
    """Grade one submission file in a process of its own. Never raises for a bad submission."""
    spec = get_lab(lab)
    limits = validate_limits(timeout=timeout, memory_mb=memory_mb, output_limit=output_limit, disk_mb=disk_mb,
                             seed=seed)
    path = Path(path)
    try:
        return check_isolated(spec, path, seed=seed, limits=limits, label=_wire.printable(path.name, 200))
    except Exception as exc:  # noqa: BLE001 (the grader's own failure on one row must not lose the others)
        from ._isolate import _failed

        return _failed(spec, spec.default_seed if seed is None else seed, _wire.printable(path.name, 200),
                       f"the grader could not grade this file: {type(exc).__name__}: {exc}")


def _listing(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise LabError(f"no such folder: {folder}")
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "~"))),
                  key=lambda p: p.name)


def submissions(folder) -> list[Path]:
    """The ``.py`` and ``.ipynb`` files directly in ``folder`` (hidden files skipped), sorted by name."""
    return [p for p in _listing(folder) if p.suffix.lower() in SUFFIXES]


def ignored(folder) -> list[Path]:
    """The other files of ``folder`` (not graded)."""
    return [p for p in _listing(folder) if p.suffix.lower() not in SUFFIXES]


@contextlib.contextmanager
def _shielded():
    """Ignore the signals a submission could send the grader (module docstring); restore them after."""
    old = {}
    for name in _SHIELDED:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            old[sig] = signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def grade(lab: int, folder, *, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
          output_limit: int = DEFAULT_OUTPUT_LIMIT, disk_mb: int = DEFAULT_DISK_MB, seed: int | None = None,
          progress=None, csv_path=None) -> list[Report]:
    """Grade every submission in ``folder``; one :class:`Report` per file, never one score for several.

    ``progress`` is called with each report as it is finished; with
    ``csv_path`` the CSV is rewritten after each one (and after an interrupt).
    """
    spec = get_lab(lab)
    validate_limits(timeout=timeout, memory_mb=memory_mb, output_limit=output_limit, disk_mb=disk_mb, seed=seed)
    files = submissions(folder)
    reports: list[Report] = []
    if csv_path is not None:
        write_csv(reports, spec.number, csv_path)
    with _shielded():
        try:
            for f in files:
                rep = grade_one(spec.number, f, timeout=timeout, memory_mb=memory_mb, output_limit=output_limit,
                                disk_mb=disk_mb, seed=seed)
                reports.append(rep)
                if csv_path is not None:
                    write_csv(reports, spec.number, csv_path)
                if progress is not None:
                    progress(rep)
        finally:
            if csv_path is not None:
                write_csv(reports, spec.number, csv_path)
    return reports


def _num(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 4)


def cell(text) -> str:
    """Student-controlled text as a safe CSV cell: no control character, no formula."""
    text = " ".join(_wire.printable(text, 2000).split())
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "|", "%") else text


def write_csv(reports: list[Report], lab: int, path) -> None:
    """One row per submission, one column per item (its points), then score, max_score, flags, reason."""
    spec = get_lab(lab)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["submission"] + [it.id for it in spec.items] + ["score", "max_score", "flags", "reason"])
    for rep in reports:
        pts = {r.id: r.points for r in rep.items}
        w.writerow([cell(rep.source)] + [_num(pts.get(it.id, 0)) for it in spec.items]
                   + [_num(rep.score), _num(spec.max_score), cell(" | ".join(rep.flags)), cell(rep.error or "")])
    atomic_write(path, buf.getvalue())


def gradescope_doc(report: Report | None, lab: int, *, hidden: Report | None = None, seconds: float = 0.0,
                   note: str = "") -> dict:
    """Gradescope's ``results.json`` for one student (``hidden``: the same file on the secret seed)."""
    spec = get_lab(lab)
    tests = []
    reports = [(report, "visible", "")] + ([(hidden, "after_published", " [hidden: secret seed]")] if hidden else [])
    for rep, visibility, suffix in reports:
        if rep is None:
            continue
        for r in rep.items:
            tests.append({"name": r.title + suffix, "number": str(len(tests) + 1), "score": _num(r.points),
                          "max_score": _num(r.max_points), "output": _wire.printable(r.feedback, 4000),
                          "visibility": visibility, "status": "passed" if r.passed else "failed"})
        if rep.flags:
            tests.append({"name": "flagged: uses pgcontrol's own implementation or refused operations" + suffix,
                          "number": str(len(tests) + 1), "score": 0, "max_score": 0,
                          "output": _wire.printable("\n".join(rep.flags), 4000), "visibility": visibility,
                          "status": "failed"})
    score = sum(float(t["score"]) for t in tests)
    lines = [f"pgcontrol lab {spec.number}: {spec.title}"]
    if report is not None:
        lines.append(f"{report.source}: {_num(report.score)}/{_num(spec.max_score)} on the public seed {report.seed}"
                     + (f"; {report.error}" if report.error else ""))
    if note:
        lines.append(note)
    return {"score": _num(score), "execution_time": max(0, int(round(seconds))),
            "output": _wire.printable("\n".join(lines), 8000), "tests": tests}


def write_gradescope(reports: list[Report], lab: int, path, **kwargs) -> None:
    """Gradescope's ``results.json`` for exactly one submission (one student); :class:`LabError` otherwise."""
    if len(reports) != 1:
        raise LabError(f"Gradescope's results.json holds one student's submission; this folder has {len(reports)} "
                       "(grade each student's file alone, or use the autograder: `pgcontrol lab autograder`)")
    atomic_write(path, json.dumps(gradescope_doc(reports[0], lab, **kwargs), indent=2, ensure_ascii=False) + "\n")
