"""Plain data between the checker and the student's process: one JSON object per line, validated.

Both directions carry only ``null``, booleans, numbers, short strings,
lists (for tuples and lists) and arrays. An array travels as
``{"nd": [shape...], "dt": "f8" | "i8" | "b1", "b64": base64 of the little-endian bytes}``:
no pickle, no object that runs code when read. :func:`decode` checks every
field (known keys, types, that the byte count equals the product of the
shape, depth and size limits) before it allocates anything, and raises
:class:`WireError` otherwise. The student's answers come back as plain
Python floats, bools and float64 arrays: whatever object the student's code
returned (a subclass of ``np.float64`` whose comparisons lie, a tensor), the
checker only ever sees its numbers.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np

#: the largest message (bytes of one JSON line) either side accepts
MAX_MESSAGE = 64 << 20
#: nesting of lists within a value
MAX_DEPTH = 8
MAX_STRING = 4000
MAX_NDIM = 8
_DTYPES = {"f8": np.dtype("<f8"), "i8": np.dtype("<i8"), "b1": np.dtype("?")}


class WireError(ValueError):
    """A message that is not well-formed plain data (the reason is one line)."""


class Opaque:
    """Stands for a returned object that is not plain data (its type name only); converting it fails."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<a {self.type_name}>"

    __str__ = __repr__


# --------------------------------------------------------------------------- encoding


def _array(a: np.ndarray, dtype_key: str | None = None) -> dict:
    if dtype_key is None:
        dtype_key = "b1" if a.dtype == bool else "i8" if a.dtype.kind in "iu" else "f8"
    a = np.ascontiguousarray(a, dtype=_DTYPES[dtype_key])
    return {"nd": [int(s) for s in a.shape], "dt": dtype_key, "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def encode_value(v, depth: int = 0, *, outputs: bool = False):
    """``v`` as plain JSON-able data.

    With ``outputs=True`` (the student's side) numbers and arrays become
    float64 and anything that is not numeric becomes ``{"opaque": type name}``;
    otherwise (the checker's inputs) integer and boolean arrays keep their type.
    """
    if depth > MAX_DEPTH:
        return {"opaque": "too deeply nested value"}
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v[:MAX_STRING]
    if isinstance(v, (tuple, list)):
        return {"seq": [encode_value(x, depth + 1, outputs=outputs) for x in v], "tuple": isinstance(v, tuple)}
    if isinstance(v, (int, np.integer)) and not outputs and not isinstance(v, np.bool_):
        return {"int": int(v)} if abs(int(v)) < 2**63 else {"opaque": "int"}
    if isinstance(v, (float, int, np.floating, np.integer, np.bool_)):
        return {"f": float(v)}
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor
        try:
            v = v.detach().cpu().numpy()
        except Exception:  # noqa: BLE001
            return {"opaque": type(v).__name__}
    if isinstance(v, np.ndarray):
        try:
            return _array(v, "f8" if outputs else None)
        except (TypeError, ValueError):
            return {"opaque": f"array of {v.dtype}"}
    if outputs:
        return {"opaque": type(v).__name__[:80]}
    raise TypeError(f"cannot send a {type(v).__name__} to the student's process")


def dumps(obj) -> bytes:
    """One message: compact JSON (NaN and infinities allowed), newline-terminated."""
    return (json.dumps(obj, separators=(",", ":"), allow_nan=True) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- decoding


def loads(line: bytes) -> dict:
    """Parse one message; :class:`WireError` unless it is a JSON object of bounded size and nesting."""
    if len(line) > MAX_MESSAGE:
        raise WireError(f"a message of {len(line)} bytes (more than {MAX_MESSAGE})")
    try:
        obj = json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WireError(f"not a JSON message ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise WireError(f"a message must be a JSON object; got {type(obj).__name__}")
    return obj


def decode_value(v, depth: int = 0):
    """The inverse of :func:`encode_value`, validating every field; :class:`WireError` on anything else."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        if len(v) > MAX_STRING:
            raise WireError("string too long")
        return v
    if not isinstance(v, dict) or len(v) == 0:
        raise WireError(f"unexpected value of type {type(v).__name__}")
    keys = set(v)
    if keys == {"f"}:
        x = v["f"]
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise WireError("'f' must be a number")
        return float(x)
    if keys == {"int"}:
        x = v["int"]
        if isinstance(x, bool) or not isinstance(x, int) or abs(x) >= 2**63:
            raise WireError("'int' must be an integer")
        return int(x)
    if keys == {"opaque"}:
        if not isinstance(v["opaque"], str):
            raise WireError("'opaque' must be a string")
        return Opaque(_printable(v["opaque"])[:80])
    if keys == {"seq", "tuple"}:
        seq, is_tuple = v["seq"], v["tuple"]
        if not isinstance(seq, list) or not isinstance(is_tuple, bool):
            raise WireError("'seq' must be a list")
        out = [decode_value(x, depth + 1) for x in seq]
        return tuple(out) if is_tuple else out
    if keys == {"nd", "dt", "b64"}:
        shape, dt, data = v["nd"], v["dt"], v["b64"]
        if dt not in _DTYPES:
            raise WireError(f"unknown array type {str(dt)[:20]!r}")
        if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape):
            raise WireError("an array's shape must be a short list of non-negative integers")
        if not isinstance(data, str):
            raise WireError("an array's data must be a base64 string")
        count = math.prod(shape)
        if count * _DTYPES[dt].itemsize != len(data) // 4 * 3 - data[-2:].count("="):
            raise WireError("an array's data does not match its shape")
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raise WireError("an array's data is not base64") from None
        a = np.frombuffer(raw, dtype=_DTYPES[dt]).reshape(shape)
        return a.astype(a.dtype.newbyteorder("="), copy=True)
    raise WireError(f"unknown value keys {sorted(keys)[:5]}")


def _printable(text: str) -> str:
    """``text`` without control characters (ESC sequences and the like), newlines and tabs kept."""
    return "".join(ch if ch in "\n\t" or (ch.isprintable()) else "?" for ch in text)


def printable(text, limit: int = MAX_STRING) -> str:
    """Student-controlled text made safe to print and store: control characters replaced, length capped."""
    text = _printable(str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."
