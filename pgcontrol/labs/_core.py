"""The machinery shared by the six labs, gathered under one name for the labs' modules.

The code lives in modules by job:

* :mod:`pgcontrol.labs._model`: the item/report model (errors, :class:`Item`, :class:`Lab`, :class:`Report`);
* :mod:`pgcontrol.labs._submission`: loading a submission and the static scan of its imports;
* :mod:`pgcontrol.labs._run`: running a lab's items (:func:`run_lab`, the seeds);
* :mod:`pgcontrol.labs._author`: helpers for lab authors (:func:`compare`, :func:`as_array`, ...).

Grading keeps the checker and the student's code in separate processes:
:mod:`pgcontrol.labs._isolate` (the trusted side, and the isolation),
:mod:`pgcontrol.labs._worker` (the student's process), :mod:`pgcontrol.labs._wire`
(the plain data between them) and :mod:`pgcontrol.labs._guard` (the runtime
guard in the student's process).
"""

from __future__ import annotations

from ..files import atomic_write  # noqa: F401  (re-exported for the grader)
from ._author import (_literal, as_array, as_float, as_tuple, call_inputs, close, code_inputs,  # noqa: F401
                      compare, fmt, inputs_block, quiet, to_json, where_differs, z_statistic)
from ._model import (LAB_NUMBERS, Item, ItemResult, Lab, LabError, Mismatch, Report,  # noqa: F401
                     StudentError, SubmissionError, UnknownLabError, get_lab)
from ._run import run_lab, torch_threads  # noqa: F401
from ._submission import (ALLOWED_LABS_NAMES, FORBIDDEN_MODULES, Submission,  # noqa: F401
                          _namespace_flags, _one_line, load_submission, loading, notebook_code,
                          scan_imports)

__all__ = [
    "LabError", "UnknownLabError", "SubmissionError", "StudentError", "Mismatch",
    "Item", "Lab", "ItemResult", "Report", "Submission", "LAB_NUMBERS",
    "get_lab", "load_submission", "run_lab", "scan_imports", "notebook_code", "atomic_write", "compare",
    "as_array", "as_float", "as_tuple", "z_statistic", "code_inputs", "inputs_block", "call_inputs", "where_differs",
]

