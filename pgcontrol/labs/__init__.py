"""pgcontrol's course labs: six graded exercises tied to the derivations.

A student writes the key functions of each lab (Riccati, REINFORCE,
actor-critic, the natural gradient, PPO/GAE, the Kalman filter) and
:func:`check` grades them against pgcontrol's exact closed forms, on inputs
drawn at check time, naming the mistake and its equation when it is a known
one. ``pgcontrol lab list | start | check | grade`` is the command line
(:mod:`pgcontrol.labs.cli`); :mod:`pgcontrol.labs.grader` grades a folder of
submissions for an instructor.

>>> from pgcontrol.labs import check          # doctest: +SKIP
>>> check(2, globals())                       # in the lab 2 notebook
>>> check(2, "lab2.py")                       # or a file

Importing this package imports nothing heavy; each lab's module
(``pgcontrol.labs.lab1`` ...) is loaded when it is checked.
"""

from __future__ import annotations

from ._core import (LAB_NUMBERS, LabError, Report, SubmissionError, UnknownLabError, get_lab,
                    load_submission, loading, run_lab)

__all__ = ["check", "get_lab", "LAB_NUMBERS", "Report", "LabError", "UnknownLabError", "SubmissionError"]


def check(lab, source, *, only: str | None = None, seed: int | None = None, verbose: bool = True) -> Report | None:
    """Grade the functions of lab ``lab`` and print the report (self-study: in this process).

    This check runs the student's functions in the calling process, which is
    right for a notebook's own ``check(N, globals())`` cells and nothing
    else: a student's code could change its result. ``pgcontrol lab check``,
    ``pgcontrol lab grade`` and the Gradescope autograder run the file in a
    separate, isolated process (:mod:`pgcontrol.labs._isolate`).

    Parameters
    ----------
    lab : int
        The lab number, 1–6.
    source : dict, module, str or Path
        ``globals()`` (in the lab's notebook), a module, or the path of a
        ``.py`` file or ``.ipynb`` notebook.
    only : str, optional
        Check only the items of this function (the notebooks' check cells).
    seed : int, optional
        The check's seed; default the lab's fixed public seed (printed in
        the report). The same file and seed always give the same report.
    verbose : bool
        Print the text report (default True).

    Returns
    -------
    Report
        ``report.score``, ``report.max_score``, ``report.items``,
        ``report.to_dict()``. ``None`` while a submission is itself being
        loaded by the checker or the grader (its own ``check`` calls are skipped).

    Raises
    ------
    UnknownLabError, SubmissionError, LabError
        For an unknown lab, an unreadable submission or an unknown ``only``.
    """
    if loading():
        return None
    spec = get_lab(lab)
    sub = load_submission(source)
    report = run_lab(spec, sub, seed=seed, only=only)
    if verbose:
        print(report, flush=True)
    return report
