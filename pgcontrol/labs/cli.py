"""``pgcontrol lab``: list, start, check and grade the course labs.

Wiring (in :mod:`pgcontrol.cli`)::

    from .labs import cli as lab_cli
    lab_cli.add_parser(sub)        # sub = parser.add_subparsers(...)
    # the `lab` parser sets func=lab_cli.run, so `args.func(args)` dispatches to it

Commands
--------
``pgcontrol lab list [--json]``
    The labs, their equations, functions and points.
``pgcontrol lab start N [--dir DIR] [--force]``
    Write ``DIR/labN.py`` (the stubs) and ``DIR/labN.ipynb`` (the handout);
    existing files are kept unless ``--force``.
``pgcontrol lab check N FILE [--json] [--only FUNCTION] [--seed S] [--timeout S] [--memory MB]``
    Grade one ``.py``/``.ipynb`` file, the file running in a process of its own
    (:mod:`pgcontrol.labs._isolate`); print the report.
``pgcontrol lab grade N DIR [--csv FILE] [--gradescope FILE] [--timeout S] [--memory MB] [--disk MB] [--seed S]``
    Grade every submission in DIR, each alone in its own process (:mod:`pgcontrol.labs.grader`);
    the CSV is rewritten after each one. ``--gradescope`` needs exactly one submission.
``pgcontrol lab autograder N --out FILE.zip [--pgcontrol SPEC] [--secret-seed-file FILE]``
    Write a Gradescope autograder (:mod:`pgcontrol.labs.autograder`).

Exit status: 0 at full marks (for ``grade``: every submission at full
marks; for ``list``/``start``: success), 1 otherwise, 2 for a usage error
(unknown lab, missing file or folder, bad option), which is one line
``pgcontrol: error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``lab`` command (with ``list``, ``start``, ``check``, ``grade``) to an argparse subparsers object."""
    p = subparsers.add_parser(
        "lab", help="course labs: list, start, check, grade",
        description="Six graded labs tied to the derivations: write the key functions, check them against "
                    "pgcontrol's exact closed forms.")
    sub = p.add_subparsers(dest="lab_command", required=True, metavar="{list,start,check,grade,autograder}")

    q = sub.add_parser("list", help="the labs, their equations and points")
    q.add_argument("--json", action="store_true", help="print JSON")

    q = sub.add_parser("start", help="write the stubs labN.py and the handout notebook labN.ipynb")
    q.add_argument("lab", metavar="N", help="lab number, 1-6")
    q.add_argument("--dir", default=".", metavar="DIR", help="where to write them (default: the current folder)")
    q.add_argument("--force", action="store_true", help="overwrite existing files")

    q = sub.add_parser("check", help="grade your labN.py or labN.ipynb")
    q.add_argument("lab", metavar="N", help="lab number, 1-6")
    q.add_argument("file", metavar="FILE", help="your .py file or .ipynb notebook")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.add_argument("--only", metavar="FUNCTION", help="check only the items of this function")
    q.add_argument("--seed", type=int, metavar="S", help="the check's seed (default: the lab's public seed)")
    q.add_argument("--timeout", type=float, default=600.0, metavar="S", help="wall-clock seconds (default 600)")
    q.add_argument("--memory", type=float, default=4096, metavar="MB", help="memory limit in MiB (default 4096)")

    q = sub.add_parser("grade", help="grade a folder of submissions (instructors)")
    q.add_argument("lab", metavar="N", help="lab number, 1-6")
    q.add_argument("folder", metavar="DIR", help="folder of .py / .ipynb submissions")
    q.add_argument("--csv", metavar="FILE", help="write one row per submission, one column per item")
    q.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json")
    q.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="wall-clock seconds per submission (default 120)")
    q.add_argument("--memory", type=float, default=2048, metavar="MB",
                   help="memory limit per submission in MiB (default 2048)")
    q.add_argument("--disk", type=int, default=64, metavar="MB", help="disk quota per submission in MiB (default 64)")
    q.add_argument("--seed", type=int, metavar="S",
                   help="the checks' seed (default: the lab's public seed; use your own to defeat hard-coded answers)")

    q = sub.add_parser("autograder", help="write a Gradescope autograder zip (instructors)")
    q.add_argument("lab", metavar="N", help="lab number, 1-6")
    q.add_argument("--out", required=True, metavar="FILE.zip", help="the zip to write")
    q.add_argument("--pgcontrol", metavar="SPEC",
                   help="install this pip requirement (e.g. pgcontrol==0.4.0) instead of a wheel of this checkout")
    q.add_argument("--secret-seed-file", metavar="FILE",
                   help="a file holding the secret seed of the hidden items (default: a fresh random seed)")
    q.add_argument("--timeout", type=float, default=600.0, metavar="S", help="wall-clock seconds (default 600)")
    q.add_argument("--memory", type=float, default=2048, metavar="MB", help="memory limit in MiB (default 2048)")
    p.set_defaults(func=run)
    return p


def _error(message) -> int:
    text = " ".join(str(message).split())
    print(f"pgcontrol: error: {text}", file=sys.stderr)
    return 2


def run(args) -> int:
    """Run the ``lab`` command parsed by :func:`add_parser`; return the exit status (see the module docstring)."""
    from ._core import LabError

    try:
        return _COMMANDS[args.lab_command](args)
    except LabError as exc:
        return _error(exc)
    except OSError as exc:  # an unwritable folder, a full disk
        return _error(exc)


def _list(args) -> int:
    from ._core import LAB_NUMBERS, get_lab

    labs = [get_lab(n) for n in LAB_NUMBERS]
    if args.json:
        print(json.dumps([{"lab": x.number, "title": x.title, "equations": x.equations, "points": x.max_score,
                           "functions": list(x.functions.values()),
                           "items": [{"id": i.id, "title": i.title, "points": i.points} for i in x.items]}
                          for x in labs], indent=2, ensure_ascii=False))
        return 0
    for x in labs:
        print(f"lab {x.number}: {x.title}  [{x.max_score} points; {x.equations}]")
        for sig in x.functions.values():
            print(f"    {sig}")
    print("start one with `pgcontrol lab start N`, check it with `pgcontrol lab check N labN.py`")
    return 0


def _start(args) -> int:
    from ._core import LabError, atomic_write, get_lab
    from .handouts import notebook_json, stub_source

    spec = get_lab(args.lab)
    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        raise LabError(f"{folder} exists and is not a folder")
    py, nb = folder / f"lab{spec.number}.py", folder / f"lab{spec.number}.ipynb"
    existing = [str(f) for f in (py, nb) if f.exists()]
    if existing and not args.force:
        raise LabError(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                       "pass --force to overwrite (your work in them would be lost)")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(py, stub_source(spec.number))
    atomic_write(nb, notebook_json(spec.number))
    print(f"lab {spec.number}: {spec.title}")
    print(f"wrote {py} (the functions to write) and {nb} (the handout)")
    print(f"open the handout with `jupyter lab {nb}` (Jupyter comes with `pip install \"pgcontrol[lab]\"`), "
          f"or write your functions in {py} with any editor")
    print(f"check your work with `pgcontrol lab check {spec.number} {py}` (or the check cells of the notebook)")
    return 0


def _check(args) -> int:
    from ._core import LabError, get_lab, to_json
    from ._isolate import check_isolated
    from .grader import validate_limits

    spec = get_lab(args.lab)
    limits = validate_limits(timeout=args.timeout, memory_mb=args.memory, seed=args.seed)
    if not Path(args.file).is_file():
        raise LabError(f"no such file: {args.file}")
    if args.only is not None and args.only not in spec.functions:
        raise LabError(f"lab {spec.number} has no function {args.only!r}; its functions are "
                       f"{', '.join(spec.functions)}")
    report = check_isolated(spec, args.file, seed=args.seed, only=args.only, limits=limits)
    print(to_json(report) if args.json else report)
    return 0 if report.full_marks else 1


def _grade(args) -> int:
    from ._core import LabError, get_lab
    from ._wire import printable
    from .grader import grade, ignored, submissions, validate_limits, write_gradescope

    spec = get_lab(args.lab)
    validate_limits(timeout=args.timeout, memory_mb=args.memory, disk_mb=args.disk, seed=args.seed)
    files = submissions(args.folder)
    if args.gradescope and len(files) != 1:
        raise LabError(f"--gradescope writes one student's results.json; {args.folder} has {len(files)} "
                       "submissions (use --csv for a class, or `pgcontrol lab autograder`)")
    for f in ignored(args.folder):
        print(f"ignored (not a .py or .ipynb submission): {printable(f.name, 200)}")

    def show(rep) -> None:
        line = f"{rep.source}: {rep.score:g}/{rep.max_score:g}"
        if rep.error:
            line += f"  ({rep.error})"
        if rep.flags:
            line += f"  [flagged: {'; '.join(rep.flags)}]"
        print(printable(line, 2000).replace("\n", " "), flush=True)

    reports = grade(spec.number, args.folder, timeout=args.timeout, memory_mb=int(args.memory), disk_mb=args.disk,
                    seed=args.seed, progress=show, csv_path=args.csv)
    if not reports:
        print(f"no submissions in {args.folder}")
    if args.csv:
        print(f"wrote {args.csv}")
    if args.gradescope:
        write_gradescope(reports, spec.number, args.gradescope)
        print(f"wrote {args.gradescope}")
    return 0 if reports and all(r.full_marks for r in reports) else 1


def _autograder(args) -> int:
    from ._core import get_lab
    from .autograder import build
    from .grader import validate_limits

    spec = get_lab(args.lab)
    limits = validate_limits(timeout=args.timeout, memory_mb=args.memory)
    out = build(spec.number, args.out, pgcontrol=args.pgcontrol, secret_seed_file=args.secret_seed_file,
                limits=limits)
    print(f"wrote {out}: upload it as the autograder of lab {spec.number} on Gradescope "
          "(see docs/teaching-grading.md)")
    return 0


_COMMANDS = {"list": _list, "start": _start, "check": _check, "grade": _grade, "autograder": _autograder}
