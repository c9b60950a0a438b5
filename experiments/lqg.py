"""Reproduce figures/lqg.png and figures/lqg.json (see pgcontrol/reproduce/lqg.py).

    python experiments/lqg.py            # full run, writes figures/lqg.{png,json}
    python experiments/lqg.py --quick    # the CI-sized run
"""

from __future__ import annotations

import argparse

from pgcontrol.reproduce import EXPERIMENTS, headline, run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=EXPERIMENTS["lqg"])
    ap.add_argument("--quick", action="store_true", help="small CI-sized run")
    ap.add_argument("--seeds", type=int, default=None, help="override the number of seeds / repetitions")
    ap.add_argument("--out", default="figures", help="output folder (default: figures)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    summary = run("lqg", quick=args.quick, seeds=args.seeds, out=args.out, progress=not args.no_progress)
    print(headline(summary))


if __name__ == "__main__":
    main()
