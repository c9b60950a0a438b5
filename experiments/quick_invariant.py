"""Run every reproduction's ``--quick`` mode and compare its JSON numbers with an earlier run.

A refactoring must not change a number: run this before the change
(``--out before``), then after it (``--out after --against before``). Wall-clock
fields (``wall_s``, ``cpu_s``, ``seconds``, ``steps_per_s``) and the headline strings that
quote them are skipped; every other number must be identical (bit for bit).

Usage::

    python experiments/quick_invariant.py --out /tmp/before
    python experiments/quick_invariant.py --out /tmp/after --against /tmp/before
    python experiments/quick_invariant.py --out /tmp/after --against /tmp/before --no-run   # compare only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# this folder holds mujoco.py, which must not shadow the mujoco package when run as a script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from pgcontrol import reproduce  # noqa: E402

WALL_CLOCK = ("wall_s", "cpu_s", "seconds", "steps_per_s", "headline")


def differences(a, b, path: str = "") -> list[str]:
    """Paths where two JSON values differ, wall-clock fields skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in one run" for k in set(a) ^ set(b)]
        for k in set(a) & set(b):
            if k not in WALL_CLOCK:
                out += differences(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b or (a != a and b != b) else [f"{path}: {a!r} vs {b!r}"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for this run's outputs")
    ap.add_argument("--against", help="folder of an earlier run to compare with")
    ap.add_argument("--no-run", action="store_true", help="only compare existing outputs")
    ap.add_argument("--only", nargs="+", default=list(reproduce.EXPERIMENTS), help="experiments to run")
    args = ap.parse_args(argv)
    if not args.no_run:
        for name in args.only:
            reproduce.run(name, quick=True, out=args.out, progress=False)
            print(f"ran {name} --quick", flush=True)
    if not args.against:
        return 0
    bad = 0
    for name in args.only:
        a = json.loads((Path(args.against) / f"{name}.json").read_text())
        b = json.loads((Path(args.out) / f"{name}.json").read_text())
        diff = differences(a, b)
        bad += bool(diff)
        print(f"{name}: {'identical' if not diff else f'{len(diff)} differences, e.g. ' + '; '.join(diff[:3])}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
