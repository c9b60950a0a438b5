"""Helpers for lab authors: converting the student's answers, comparing them, formatting feedback."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import numpy as np

from ._model import Mismatch, Report, StudentError

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
    """The inputs of a call that raised, named by ``f``'s parameters (:func:`inputs_block`); shapes only when large.

    ``f`` is the function or, when it lives in another process (the isolated grading path), the list of
    its parameters' names (``None``: ``arg0``, ``arg1``, ...).
    """
    import inspect

    if f is None or isinstance(f, (list, tuple)):
        names = list(f or [])
        bound = {(names[i] if i < len(names) else f"arg{i}"): a for i, a in enumerate(args)} | dict(kwargs)
    else:
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
