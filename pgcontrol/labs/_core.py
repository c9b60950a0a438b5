"""The machinery shared by the six labs: items, reports, loading a submission, the static scan.

A *lab* (:class:`Lab`) is a list of graded *items* (:class:`Item`). Each item
calls one or more of the student's functions on inputs drawn at check time
from its own seed and compares the answers with pgcontrol's exact closed
forms. An item is all-or-nothing: it earns its points or none, and its
feedback says why (the known mistake and its equation when the answer
matches one, otherwise the input, the expected and the actual value).

Seeds. A check runs with one integer ``seed`` (default: the lab's fixed
:attr:`Lab.default_seed`), printed in the report. Item ``i`` draws its inputs
from ``numpy.random.SeedSequence([seed, i])``, so rerunning the same file
gives the same report, and checking one function alone (``only=``) draws
exactly the inputs of the full check. Instructors can grade with a seed of
their own (``--seed``) so that answers hard-coded for the public inputs fail.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import io
import json
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..files import atomic_write  # noqa: F401  (re-exported for the grader)

__all__ = [
    "LabError", "UnknownLabError", "SubmissionError", "StudentError", "Mismatch",
    "Item", "Lab", "ItemResult", "Report", "Submission", "LAB_NUMBERS",
    "get_lab", "load_submission", "run_lab", "scan_imports", "notebook_code", "atomic_write", "compare",
    "as_array", "as_float", "as_tuple", "z_statistic", "code_inputs", "inputs_block", "call_inputs", "where_differs",
]

#: the labs, in order
LAB_NUMBERS = (1, 2, 3, 4, 5, 6)

#: pgcontrol modules that implement what the labs ask the student to write
FORBIDDEN_MODULES = (
    "pgcontrol.lqr", "pgcontrol.rollout", "pgcontrol.algos", "pgcontrol.policies",
    "pgcontrol.reproduce", "pgcontrol.train",
)
#: inside pgcontrol.labs only ``check`` (and the drivers the handouts call) may be imported
ALLOWED_LABS_NAMES = {"check", "drivers"}


class LabError(ValueError):
    """Base class of the labs' usage errors (unknown lab, unreadable submission, bad option)."""


class UnknownLabError(LabError):
    """The lab number is not one of :data:`LAB_NUMBERS`."""


class SubmissionError(LabError):
    """The submission cannot be read or run at all (missing file, not Python, syntax error)."""


class StudentError(Exception):
    """The student's function raised, is missing, or returned something unusable.

    Raised by :meth:`Submission.call` and the conversion helpers; an item that
    sees it fails with the message (one line).
    """


class Mismatch(Exception):
    """An item's comparison failed; the message is the feedback."""


# --------------------------------------------------------------------------- items and labs


@dataclass(frozen=True)
class Item:
    """One graded item of a lab.

    Attributes
    ----------
    id : str
        Short stable name, used as the CSV column (``"dare_gain.discounted"``).
    title : str
        One line for the report, with the equation number.
    points : int
    functions : tuple of str
        The student's functions the item calls (``check(..., only=name)``
        runs the items of one function).
    run : callable
        ``run(sub, rng) -> str``: returns a short note on success, raises
        :class:`Mismatch` (or :class:`StudentError`) with the feedback on failure.
    statistical : bool
        Whether the item is a statistical test (its docstring states the test and its power).
    """

    id: str
    title: str
    points: int
    functions: tuple[str, ...]
    run: Callable[["Submission", np.random.Generator], str]
    statistical: bool = False


@dataclass(frozen=True)
class Lab:
    """A lab: its number, title, the equations it covers, the functions it asks for and its items."""

    number: int
    title: str
    equations: str
    functions: dict[str, str]  # name -> signature, e.g. "dare_gain(A, B, Q, R, gamma) -> (K, P)"
    items: tuple[Item, ...]
    summary: str = ""

    @property
    def max_score(self) -> int:
        return sum(it.points for it in self.items)

    @property
    def default_seed(self) -> int:
        """The fixed public seed of the lab's check."""
        return 2024_000 + self.number


def get_lab(number) -> Lab:
    """The :class:`Lab` with this number (1–6); :class:`UnknownLabError` otherwise."""
    try:
        n = int(number)
        if isinstance(number, bool) or n != float(number) or n not in LAB_NUMBERS:
            raise ValueError
    except (TypeError, ValueError):
        raise UnknownLabError(
            f"unknown lab {number!r}; the labs are {', '.join(map(str, LAB_NUMBERS))} (see `pgcontrol lab list`)"
        ) from None
    return importlib.import_module(f"pgcontrol.labs.lab{n}").LAB


# --------------------------------------------------------------------------- results


@dataclass
class ItemResult:
    """The outcome of one item for one submission."""

    id: str
    title: str
    points: float
    max_points: float
    passed: bool
    feedback: str
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Report:
    """A lab check of one submission: per-item results, flags, score.

    ``str(report)`` is the text report; :meth:`to_dict` the JSON one.
    """

    lab: int
    title: str
    seed: int
    source: str
    items: list[ItemResult] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    error: str | None = None  # a reason that concerns the whole submission

    @property
    def score(self) -> float:
        return float(sum(r.points for r in self.items))

    @property
    def max_score(self) -> float:
        return float(sum(r.max_points for r in self.items))

    @property
    def full_marks(self) -> bool:
        return bool(self.items) and self.score == self.max_score

    def to_dict(self) -> dict:
        return {
            "lab": self.lab, "title": self.title, "source": self.source, "seed": self.seed,
            "score": self.score, "max_score": self.max_score, "error": self.error,
            "flags": list(self.flags), "items": [r.to_dict() for r in self.items],
        }

    def __str__(self) -> str:
        out = [f"pgcontrol lab {self.lab}: {self.title}",
               f"submission: {self.source}    seed: {self.seed}"]
        if self.error:
            out.append(f"!! {self.error}")
        for flag in self.flags:
            out.append(f"!! flagged: {flag}")
        for r in self.items:
            mark = "PASS" if r.passed else "FAIL"
            pts = f"{_num(r.points)}/{_num(r.max_points)}"
            out.append(f"  {mark} {pts:>5}  {r.title}")
            for line in r.feedback.splitlines():
                out.append(f"              {line}")
        out.append(f"score: {_num(self.score)}/{_num(self.max_score)}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<lab {self.lab} report for {self.source}: {_num(self.score)}/{_num(self.max_score)}>"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


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


# --------------------------------------------------------------------------- running a lab


def run_lab(lab: Lab, sub: Submission, *, seed: int | None = None, only: str | None = None,
            on_item: Callable[[ItemResult], None] | None = None) -> Report:
    """Run the items of ``lab`` on ``sub`` (see the module docstring for the seeds).

    ``only`` restricts the check to the items of one function (items that
    combine several functions run only in the full check). ``on_item`` is
    called with each result as soon as it is known (the grader streams them).
    """
    seed = lab.default_seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise LabError(f"seed must be an integer in [0, 2**63); got {seed!r}")
    seed = int(seed)
    if only is not None and only not in lab.functions:
        raise LabError(f"lab {lab.number} has no function {only!r}; its functions are {', '.join(lab.functions)}")
    report = Report(lab.number, lab.title, seed, sub.source)
    sub.seed = seed
    if sub.code is not None:
        report.flags.extend(scan_imports(sub.code))
    report.flags.extend(f for f in _namespace_flags(sub, lab) if f not in report.flags)
    with torch_threads(1):
        for index, item in enumerate(lab.items):
            if only is not None and item.functions != (only,):
                continue  # items that need several functions run in the full check only
            rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
            t0 = time.perf_counter()
            try:
                note = item.run(sub, rng)
                res = ItemResult(item.id, item.title, item.points, item.points, True, note or "")
            except (Mismatch, StudentError) as exc:
                res = ItemResult(item.id, item.title, 0, item.points, False, str(exc))
            except MemoryError:
                res = ItemResult(item.id, item.title, 0, item.points, False, "ran out of memory")
            res.seconds = round(time.perf_counter() - t0, 3)
            report.items.append(res)
            if on_item is not None:
                on_item(res)
    return report


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` threads inside the block and restore the setting after it.

    The checks simulate tiny batches; on a loaded 2-core machine torch's
    default thread pool makes them many times slower.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- comparison helpers


def fmt(x, precision: int = 5) -> str:
    """A compact one-line rendering of a number or array for feedback."""
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.{precision}g}"
    a = np.asarray(x)
    if a.dtype == object:
        return repr(x)[:200]
    s = np.array2string(a, precision=precision, threshold=12, edgeitems=3, separator=", ",
                        max_line_width=10_000, suppress_small=False)
    return re.sub(r"\s+", " ", s)


def as_array(value, name: str, shape: tuple | None = None) -> np.ndarray:
    """The student's return value as a float array (torch tensors and lists accepted).

    Raises :class:`StudentError` naming the function's output when it is not
    numeric or has the wrong shape (``shape``, with ``None`` for "any").
    """
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise StudentError(f"{name} should be a numeric array; got {type(value).__name__} {str(value)[:80]}") from None
    if shape is not None:
        if a.shape != tuple(shape):
            if a.size == int(np.prod(shape)) and a.squeeze().shape == tuple(s for s in shape if s != 1):
                a = a.reshape(shape)  # (n,) for (n, 1) and the like: harmless
            else:
                raise StudentError(f"{name} has shape {a.shape}; expected {tuple(shape)}")
    return a


def as_float(value, name: str) -> float:
    """The student's return value as a Python float (0-d arrays and 1-element tensors accepted)."""
    a = as_array(value, name)
    if a.size != 1:
        raise StudentError(f"{name} should be a single number; got an array of shape {a.shape}")
    return float(a.reshape(()))


def as_tuple(value, name: str, n: int) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != n:
        raise StudentError(f"{name} should return a tuple of {n} values; got {type(value).__name__}"
                           + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    return tuple(value)


def close(a, b, *, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    with np.errstate(invalid="ignore"):  # a finite value is never close to an infinite one (rtol·inf = inf)
        ok = both_inf | (np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= atol + rtol * np.abs(b)))
    return bool(np.all(ok))


def compare(actual, expected, *, what: str, inputs: str, mistakes=(), rtol: float = 1e-6,
            atol: float = 1e-9) -> None:
    """Raise :class:`Mismatch` unless ``actual`` matches ``expected``.

    ``mistakes`` is a sequence of ``(value, message)``: when ``actual``
    matches a known mistake's *computed* value the feedback is that message
    (which names the equation); otherwise it says which output (``what``)
    differs. Either way it ends with ``inputs``, all the inputs of the call
    (:func:`code_inputs`), so the failure can be reproduced.
    """
    if close(actual, expected, rtol=rtol, atol=atol):
        return
    for value, message in mistakes:
        try:
            if value is not None and close(actual, value, rtol=max(rtol, 1e-6), atol=atol):
                raise Mismatch(f"known mistake: {message}\n{what}: expected {fmt(expected)}, got {fmt(actual)}"
                               + inputs_block(inputs))
        except (ValueError, TypeError, FloatingPointError):
            continue
    raise Mismatch(f"{what} is wrong{where_differs(actual, expected, rtol=rtol, atol=atol)} (it matches none of "
                   f"the known mistakes)\nexpected {fmt(expected)}\n     got {fmt(actual)}" + inputs_block(inputs))


def z_statistic(samples: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, standard error, z)`` of i.i.d. rows ``samples`` against ``target`` (per column)."""
    samples = np.asarray(samples, dtype=float)
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(samples.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (mean - target) / se
    return mean, se, z


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=float)


@contextlib.contextmanager
def quiet():
    """Swallow what the student's code prints while the checker calls it."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield buf


# --------------------------------------------------------------------------- reproducible feedback (lab authors)


def _literal(value) -> str:
    """``value`` as a Python expression that rebuilds it exactly (floats by their shortest round-trip repr)."""
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        dtype = "" if kind == "f" else ", dtype=bool" if kind == "b" else f", dtype=np.{value.dtype.name}"
        return f"np.array({value.tolist()!r}{dtype})"
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return repr(value.item())
    return repr(value)


def code_inputs(**inputs) -> str:
    """All the inputs of a failed call, as Python lines a student can paste to reproduce it.

    ``code_inputs(A=A, gamma=0.9)`` gives ``"A = np.array([[...]])\ngamma = 0.9"``,
    exact to the last bit (NumPy arrays through ``tolist()``, floats by ``repr``).
    """
    return "\n".join(f"{name} = {_literal(value)}" for name, value in inputs.items())


def call_inputs(f, args, kwargs, *, max_elements: int = 400) -> str:
    """The inputs of a call that raised, named by ``f``'s parameters (:func:`inputs_block`); shapes only when large."""
    import inspect

    try:
        bound = inspect.signature(f).bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"arg{i}": a for i, a in enumerate(args)} | dict(kwargs)
    size = sum(np.size(v) for v in bound.values() if isinstance(v, (np.ndarray, float, int)))
    if size > max_elements:
        shapes = ", ".join(f"{k}: shape {v.shape}" if isinstance(v, np.ndarray) else f"{k} = {_literal(v)}"
                           for k, v in bound.items())
        return f"\ninputs: {shapes}"
    return inputs_block(code_inputs(**{str(k): v for k, v in bound.items()}))


def where_differs(actual, expected, *, rtol: float = 1e-6, atol: float = 1e-9) -> str:
    """`` at index [1]`` / `` at 3 of 12 entries, first [0, 2]``: where an array answer differs ("" for scalars)."""
    try:
        a, b = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        return ""
    if a.shape != b.shape or a.size < 2:
        return ""
    bad = np.argwhere(~np.array([close(x, y, rtol=rtol, atol=atol) for x, y in zip(a.ravel(), b.ravel())])
                      .reshape(a.shape))
    if len(bad) == 0:
        return ""
    first = list(map(int, bad[0]))
    return f" at index {first}" if len(bad) == 1 else f" at {len(bad)} of {a.size} entries, first {first}"


def inputs_block(inputs: str) -> str:
    """The ``inputs`` part of a failure's feedback: inline when short, else a block to paste into Python."""
    if not inputs:
        return ""
    if "\n" in inputs or len(inputs) > 100:
        return "\ninputs (paste into Python to reproduce; `import numpy as np` first):\n" + inputs
    return f"\ninput: {inputs}"
