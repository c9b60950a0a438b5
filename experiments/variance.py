"""Reproduce figures/variance.png and figures/variance.json (see pgcontrol/reproduce/variance.py).

    python experiments/variance.py            # full run, writes figures/variance.{png,json}
    python experiments/variance.py --quick    # the CI-sized run
"""

from __future__ import annotations

import argparse

from pgcontrol.reproduce import EXPERIMENTS, headline, run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=EXPERIMENTS["variance"])
    ap.add_argument("--quick", action="store_true", help="small CI-sized run")
    ap.add_argument("--seeds", type=int, default=None, help="override the number of seeds / repetitions")
    ap.add_argument("--out", default="figures", help="output folder (default: figures)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    summary = run("variance", quick=args.quick, seeds=args.seeds, out=args.out, progress=not args.no_progress)
    print(headline(summary))


if __name__ == "__main__":
    main()
