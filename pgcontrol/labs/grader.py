"""Grade a folder of lab submissions, one subprocess each (``pgcontrol lab grade``).

Every ``.py`` file and ``.ipynb`` notebook directly in the folder is one
submission; any other file (``.pdf``, ``.txt``, ...) gets a row with zero
points and the reason; hidden files and sub-folders are skipped.

Isolation. Each submission runs in its own Python process
(:mod:`pgcontrol.labs._worker`) in a new session, in an empty temporary
working directory, with

* a wall-clock ``timeout`` (the whole process group is killed when it runs out),
* an address-space limit of ``memory_mb`` (``resource.RLIMIT_AS``): an
  allocation beyond it raises ``MemoryError`` in the student's code,
* an output cap: what the submission prints goes to a file limited to
  ``output_limit`` bytes (``resource.RLIMIT_FSIZE``); past it, printing
  raises ``OSError`` in the student's code,
* a CPU-time limit of ``timeout + 5`` s (``RLIMIT_CPU``) as a backstop.

The child streams each item's result as soon as it is graded, so a
submission that hangs or crashes in its fifth item keeps the points of the
first four; the items it never reached get zero with a one-line reason
(timed out / ran out of memory / crashed with status N / printed too much).
The grader itself never raises for a bad submission. These limits contain
accidents (an infinite loop, a runaway allocation), not attacks: the
submission runs with the grader's user rights, so grade untrusted code in a
container (as Gradescope does).

Static scan. Before running anything, the source (a notebook's code cells)
is scanned with :func:`pgcontrol.labs._core.scan_imports`; imports of
pgcontrol's own implementations are listed as flags in the report, the
CSV and the Gradescope output (they do not change the score).

Outputs (written atomically): a CSV with one row per submission and one
column per item (points), plus ``score``, ``max_score``, ``flags`` and
``reason``; and Gradescope's ``results.json``
(``{"score", "output", "tests": [{"name", "score", "max_score", "output", "status"}]}``;
with several submissions the test names are prefixed with the file name).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ._core import (ItemResult, LabError, Report, SubmissionError, atomic_write, get_lab, notebook_code,
                    scan_imports)

__all__ = ["grade", "grade_one", "write_csv", "write_gradescope", "SUFFIXES"]

SUFFIXES = (".py", ".ipynb")
DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_OUTPUT_LIMIT = 1 << 20


def _limits(memory_mb: int, output_limit: int, cpu_s: float):
    def apply() -> None:  # runs in the child between fork and exec
        import resource

        mem = int(memory_mb) << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(output_limit), int(output_limit)))
        cpu = int(cpu_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _tail(path: Path, limit: int = 400) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    text = data[-4000:].decode("utf-8", errors="replace").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:limit]


def _scan(path: Path) -> list[str]:
    try:
        code = notebook_code(path) if path.suffix.lower() == ".ipynb" else path.read_text(errors="replace")
    except (OSError, SubmissionError):
        return []
    return scan_imports(code)


def grade_one(lab: int, path, *, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
              output_limit: int = DEFAULT_OUTPUT_LIMIT, seed: int | None = None) -> Report:
    """Grade one submission file in a subprocess (see the module docstring). Never raises for a bad submission."""
    spec = get_lab(lab)
    path = Path(path)
    seed = spec.default_seed if seed is None else int(seed)
    report = Report(spec.number, spec.title, seed, path.name)
    results: dict[str, ItemResult] = {}
    reason = None
    if path.suffix.lower() not in SUFFIXES:
        reason = f"not a Python submission: {path.name} is neither a .py file nor a .ipynb notebook"
    else:
        report.flags = _scan(path)
        with tempfile.TemporaryDirectory(prefix="pgcontrol-grade-") as tmp:
            tmp = Path(tmp)
            res_file, out_file = tmp / "results.jsonl", tmp / "output.txt"
            work = tmp / "work"
            work.mkdir()
            env = dict(os.environ, PYTHONIOENCODING="utf-8", MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp / "mpl"),
                       OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
            cmd = [sys.executable, "-m", "pgcontrol.labs._worker", str(spec.number), str(path.resolve()),
                   "--seed", str(seed), "--results", str(res_file)]
            timed_out = False
            with open(out_file, "wb") as out:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        cwd=work, env=env, start_new_session=True,
                                        preexec_fn=_limits(memory_mb, output_limit, timeout))
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    rc = proc.wait()
            done, error = False, None
            if res_file.exists():
                for line in res_file.read_text(encoding="utf-8", errors="replace").splitlines():
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if "item" in obj:
                        r = obj["item"]
                        results[r["id"]] = ItemResult(**r)
                    elif "error" in obj:
                        error = obj["error"]
                    elif obj.get("done"):
                        done = True
            printed = out_file.stat().st_size if out_file.exists() else 0
            if error is not None:
                reason = error
            elif timed_out:
                reason = f"timed out after {timeout:g} s (wall clock); items not reached get 0"
            elif printed >= output_limit:
                reason = f"printed more than the output limit of {output_limit} bytes"
            elif not done:
                if rc is not None and rc < 0:
                    sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
                    why = " (CPU time limit)" if sig == "SIGXCPU" else ""
                    reason = f"crashed: killed by {sig}{why}"
                else:
                    last = _tail(out_file)
                    reason = f"crashed with exit status {rc}" + (f": {last}" if last else "")
                    if "MemoryError" in last:
                        reason = f"ran out of memory (limit {memory_mb} MiB): {last}"
            if printed >= output_limit and reason and "output limit" not in reason:
                reason += f" (and printed more than the output limit of {output_limit} bytes)"
            report.error = reason
    for item in spec.items:
        r = results.get(item.id)
        if r is None:
            r = ItemResult(item.id, item.title, 0, item.points, False, reason or "not graded")
        elif reason and "output limit" in reason and not r.passed:
            r.feedback += f" [{reason}]"
        report.items.append(r)
    if reason and report.error is None:
        report.error = reason
    return report


def submissions(folder) -> list[Path]:
    """The files of ``folder`` that are graded (hidden files and sub-folders skipped), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabError(f"no such folder: {folder}")
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "~"))),
                  key=lambda p: p.name)


def grade(lab: int, folder, *, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
          output_limit: int = DEFAULT_OUTPUT_LIMIT, seed: int | None = None, progress=None) -> list[Report]:
    """Grade every submission in ``folder`` (see the module docstring); one :class:`Report` per file.

    ``progress`` is called with each report as it is finished.
    """
    spec = get_lab(lab)
    if timeout <= 0:
        raise LabError(f"timeout must be positive; got {timeout!r}")
    if memory_mb < 256:
        raise LabError(f"memory limit must be at least 256 MiB (Python and NumPy need it); got {memory_mb!r}")
    files = submissions(folder)
    reports = []
    for f in files:
        rep = grade_one(spec.number, f, timeout=timeout, memory_mb=memory_mb, output_limit=output_limit, seed=seed)
        reports.append(rep)
        if progress is not None:
            progress(rep)
    return reports


def _num(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 4)


def write_csv(reports: list[Report], lab: int, path) -> None:
    """One row per submission, one column per item (its points), then score, max_score, flags, reason."""
    spec = get_lab(lab)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["submission"] + [it.id for it in spec.items] + ["score", "max_score", "flags", "reason"])
    for rep in reports:
        pts = {r.id: r.points for r in rep.items}
        w.writerow([rep.source] + [_num(pts.get(it.id, 0)) for it in spec.items]
                   + [_num(rep.score), _num(spec.max_score), " | ".join(rep.flags), rep.error or ""])
    atomic_write(path, buf.getvalue())


def write_gradescope(reports: list[Report], lab: int, path) -> None:
    """Gradescope autograder ``results.json`` (see the module docstring)."""
    spec = get_lab(lab)
    many = len(reports) > 1
    tests, lines = [], []
    for rep in reports:
        prefix = f"{rep.source}: " if many else ""
        for r in rep.items:
            tests.append({"name": prefix + r.title, "score": _num(r.points), "max_score": _num(r.max_points),
                          "output": r.feedback, "status": "passed" if r.passed else "failed"})
        if rep.flags:
            tests.append({"name": prefix + "flagged: uses pgcontrol's own implementation", "score": 0,
                          "max_score": 0, "output": "\n".join(rep.flags), "status": "failed"})
        lines.append(f"{rep.source}: {_num(rep.score)}/{_num(spec.max_score)}"
                     + (f" — {rep.error}" if rep.error else "") + (f" — flagged ({len(rep.flags)})" if rep.flags else ""))
    if not reports:
        lines.append("no submission found (.py or .ipynb)")
    seed = reports[0].seed if reports else spec.default_seed
    doc = {
        "score": _num(sum(r.score for r in reports)),
        "output": f"pgcontrol lab {spec.number}: {spec.title} (seed {seed})\n" + "\n".join(lines),
        "tests": tests,
    }
    atomic_write(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
