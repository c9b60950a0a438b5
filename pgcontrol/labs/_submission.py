"""Loading a submission (a file, a notebook, ``globals()``) and the static scan of its imports."""

from __future__ import annotations

import ast
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._author import call_inputs
from ._model import Lab, StudentError, SubmissionError

#: pgcontrol modules that implement what the labs ask the student to write
FORBIDDEN_MODULES = (
    "pgcontrol.lqr", "pgcontrol.rollout", "pgcontrol.algos", "pgcontrol.policies",
    "pgcontrol.reproduce", "pgcontrol.train",
)
#: inside pgcontrol.labs only ``check`` (and the drivers the handouts call) may be imported
ALLOWED_LABS_NAMES = {"check", "drivers"}


# --------------------------------------------------------------------------- submissions


def _one_line(exc: BaseException, filename: str | None = None) -> str:
    """``"ValueError: msg (lab2.py, line 12)"``: the exception and the student's innermost line."""
    msg = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {msg[0]}" if msg and msg[0] else type(exc).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    where = None
    for fs in traceback.extract_tb(exc.__traceback__):
        if filename is not None and fs.filename == filename:
            where = fs
    if where is not None:
        text += f" (line {where.lineno} of {Path(where.filename).name}: `{(where.line or '').strip()}`)"
    return text


@dataclass
class Submission:
    """The student's namespace (functions by name) and where it came from.

    Build it with :func:`load_submission`.
    """

    namespace: dict
    source: str  # a label: the file name, or "globals()"
    filename: str | None = None  # the file whose code defined the functions (for line numbers)
    code: str | None = None  # the source text, when known (static scan)
    seed: int = 0  # the check's seed (set by run_lab); items that share simulated data key on it
    cache: dict = field(default_factory=dict)  # data shared between the items of one check

    def function(self, name: str) -> Callable:
        f = self.namespace.get(name)
        if f is None:
            raise StudentError(f"{self.source} defines no function `{name}`")
        if not callable(f):
            raise StudentError(f"`{name}` in {self.source} is a {type(f).__name__}, not a function")
        return f

    def call(self, name: str, *args, **kwargs):
        """Call the student's ``name`` on copies of the arguments; exceptions become :class:`StudentError`."""
        f = self.function(name)
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        try:
            with np.errstate(all="ignore"):
                return f(*args, **kwargs)
        except NotImplementedError:
            raise StudentError(f"`{name}` raised NotImplementedError: the stub is not filled in yet") from None
        except MemoryError:
            raise StudentError(f"`{name}` ran out of memory") from None
        except Exception as exc:  # noqa: BLE001 (any student error is feedback)
            raise StudentError(f"`{name}` raised {_one_line(exc, self.filename)}"
                               + call_inputs(f, args, kwargs)) from None


#: depth of submissions being executed; while > 0 their own ``check(...)`` calls do nothing
_LOADING = {"depth": 0}


def loading() -> bool:
    """True while :func:`load_submission` executes a submission (its ``check`` calls are skipped)."""
    return _LOADING["depth"] > 0


def notebook_code(path: Path) -> str:
    """The code cells of a notebook as one script (cells tagged ``check`` or ``figure`` left out).

    IPython magics (lines starting with ``%`` or ``!``) are commented out.
    Each cell is preceded by a ``# cell N`` comment, so line numbers in
    feedback can be traced.
    """
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 (nbformat raises many kinds)
        raise SubmissionError(f"{path.name} is not a readable Jupyter notebook ({_one_line(exc)})") from None
    parts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"check", "figure"}:
            continue
        lines = [("# " + ln) if ln.lstrip().startswith(("%", "!")) else ln for ln in cell.source.splitlines()]
        parts.append(f"# cell {i}\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def load_submission(source, *, label: str | None = None) -> Submission:
    """Turn what the student gave into a :class:`Submission`.

    Parameters
    ----------
    source : dict, module, str or Path
        ``globals()`` of a notebook, a module, or the path of a ``.py`` file
        or a ``.ipynb`` notebook (its code cells are executed, except those
        tagged ``check`` or ``figure``).

    Raises
    ------
    SubmissionError
        Missing file, wrong suffix, not Python (syntax error), or the code
        raised while being run (the first line of the error and its line).
    """
    if isinstance(source, dict):
        code = _ipython_history(source)
        return Submission(dict(source), label or "globals()", None, code)
    if hasattr(source, "__dict__") and not isinstance(source, (str, os.PathLike)):
        path = getattr(source, "__file__", None)
        code = Path(path).read_text(errors="replace") if path and Path(path).is_file() else None
        return Submission(dict(vars(source)), label or getattr(source, "__name__", "module"), path, code)
    path = Path(source)
    if not path.is_file():
        raise SubmissionError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        code = notebook_code(path)
    elif suffix == ".py":
        try:
            code = path.read_text()
        except UnicodeDecodeError:
            raise SubmissionError(f"{path.name} is not a text file (not UTF-8): not a Python submission") from None
    else:
        raise SubmissionError(f"{path.name}: a submission must be a .py file or a .ipynb notebook")
    filename = str(path.resolve())
    try:
        compiled = compile(code, filename, "exec")
    except (SyntaxError, ValueError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        raise SubmissionError(
            f"{path.name} is not valid Python: {type(exc).__name__}: {getattr(exc, 'msg', exc)}{where}"
        ) from None
    namespace: dict[str, Any] = {"__name__": "__lab_submission__", "__file__": filename}
    _LOADING["depth"] += 1
    old_path = list(sys.path)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        exec(compiled, namespace)  # noqa: S102 (running the student's code is the point)
    except SystemExit as exc:
        raise SubmissionError(f"{path.name} called exit({exc.code!r}) while being loaded") from None
    except MemoryError:
        raise SubmissionError(f"{path.name} ran out of memory while being loaded") from None
    except Exception as exc:  # noqa: BLE001
        raise SubmissionError(f"{path.name} raised while being loaded: {_one_line(exc, filename)}") from None
    finally:
        _LOADING["depth"] -= 1
        sys.path[:] = old_path
    return Submission(namespace, label or path.name, filename, code)


def _ipython_history(ns: dict) -> str | None:
    """The cells run so far in an IPython session (``In``), for the static scan of ``check(n, globals())``."""
    cells = ns.get("In")
    if isinstance(cells, list) and all(isinstance(c, str) for c in cells):
        return "\n".join(cells)  # IPython stores the cells already transformed to Python
    return None


# --------------------------------------------------------------------------- static scan


def _forbidden(module: str) -> bool:
    if any(module == m or module.startswith(m + ".") for m in FORBIDDEN_MODULES):
        return True
    if module.startswith("pgcontrol.labs."):
        return module.split(".")[2] not in ALLOWED_LABS_NAMES
    return False


def scan_imports(code: str) -> list[str]:
    """Imports of pgcontrol's own implementations in ``code``, found statically with :mod:`ast`.

    Flags ``import pgcontrol.lqr``, ``from pgcontrol import lqr``,
    ``from pgcontrol.rollout import gae``, attribute use such as
    ``pgcontrol.lqr.optimal_gain`` after ``import pgcontrol``, and
    ``importlib.import_module("pgcontrol.lqr")`` / ``__import__`` with a
    literal name. ``from pgcontrol.labs import check`` and
    ``pgcontrol.plants`` / ``pgcontrol.sim`` are allowed. Returns one
    message per offending line (empty when clean or when the code does not parse).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute):
            parts, cur = [node.attr], node.value
            while isinstance(cur, ast.Attribute):
                parts.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == "pgcontrol":
                names = [".".join(["pgcontrol"] + parts[::-1])]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            fn = node.func
            fname = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if fname in ("import_module", "__import__"):
                names = [node.args[0].value]
        bad = next((n for n in names if _forbidden(n)), None)
        if bad is not None:
            hits.append((getattr(node, "lineno", 0), bad))
    seen, out = set(), []
    for line, name in sorted(hits):
        if line in seen:
            continue
        seen.add(line)
        out.append(f"line {line} uses pgcontrol's own implementation `{name}`")
    return out


def _namespace_flags(sub: Submission, lab: Lab) -> list[str]:
    """A lab function that *is* pgcontrol's (or the checker's) implementation, found by its module."""
    out = []
    for name in lab.functions:
        f = sub.namespace.get(name)
        mod = getattr(f, "__module__", None) or ""
        if mod and _forbidden(mod) or mod.startswith("pgcontrol.labs.lab"):
            out.append(f"`{name}` is {mod}.{getattr(f, '__qualname__', name)}, pgcontrol's own implementation")
    return out
