"""The labs' item and report model: errors, :class:`Item`, :class:`Lab`, :class:`ItemResult`, :class:`Report`.

A *lab* (:class:`Lab`) is a list of graded *items* (:class:`Item`). Each item
calls one or more of the student's functions on inputs drawn at check time
from its own seed and compares the answers with pgcontrol's exact closed
forms. An item is all-or-nothing: it earns its points or none, and its
feedback says why (the known mistake and its equation when the answer
matches one, otherwise the input, the expected and the actual value).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from ._submission import Submission

#: the labs, in order
LAB_NUMBERS = (1, 2, 3, 4, 5, 6)


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
        An item reaches the student's code only through ``sub.call(name, *args)``
        (plus ``sub.seed`` and ``sub.cache``): when grading, ``sub`` is a
        :class:`pgcontrol.labs._isolate.RemoteSubmission`, the arguments must be
        plain data (numbers, strings, NumPy arrays, tuples and lists of them) and
        the answers come back as floats, bools, tuples and float64 arrays.
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
