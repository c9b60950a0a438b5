"""Running a lab's items on a submission (:func:`run_lab`).

Seeds. A check runs with one integer ``seed`` (default: the lab's fixed
:attr:`Lab.default_seed`), printed in the report. Item ``i`` draws its inputs
from ``numpy.random.SeedSequence([seed, i])``, so rerunning the same file
gives the same report, and checking one function alone (``only=``) draws
exactly the inputs of the full check. Instructors can grade with a seed of
their own (``--seed``) so that answers hard-coded for the public inputs fail.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable

import numpy as np

from ._model import ItemResult, Lab, LabError, Mismatch, Report, StudentError
from ._submission import Submission, _namespace_flags, scan_imports

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
            except Exception as exc:  # noqa: BLE001 (an answer the item could not use fails the item, no more)
                res = ItemResult(item.id, item.title, 0, item.points, False,
                                 f"the answer could not be checked: {type(exc).__name__}: {str(exc)[:300]}")
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
