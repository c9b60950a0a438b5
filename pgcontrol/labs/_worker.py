"""Child process of the grader: check one submission, stream the item results as JSON lines.

``python -m pgcontrol.labs._worker LAB FILE --seed S --results RESULTS``

Writes to RESULTS one JSON object per line: ``{"item": {...}}`` for each
item as soon as it is graded, ``{"error": "..."}`` when the submission
cannot be loaded, and ``{"done": true}`` at the end. The parent
(:mod:`pgcontrol.labs.grader`) sets the resource limits, the wall-clock
timeout and the output cap, and turns a missing ``done`` into a reason.
What the student's code prints goes to this process's stdout.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="pgcontrol.labs._worker")
    ap.add_argument("lab", type=int)
    ap.add_argument("path")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--results", required=True)
    args = ap.parse_args(argv)
    from ._core import SubmissionError, get_lab, load_submission, run_lab

    with open(args.results, "a", encoding="utf-8") as out:
        def emit(obj) -> None:
            out.write(json.dumps(obj, default=float) + "\n")
            out.flush()

        lab = get_lab(args.lab)
        try:
            sub = load_submission(args.path)
        except SubmissionError as exc:
            emit({"error": str(exc)})
            return 0
        run_lab(lab, sub, seed=args.seed, on_item=lambda r: emit({"item": r.to_dict()}))
        emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
