"""Figure 1: the plateau of zero exploration (vanilla PG) against the natural gradient on scalar LQG.

    python experiments/plateau.py            # full: step-size grid, 10 seeds (~10 min on 2 cores)
    python experiments/plateau.py --quick    # best step sizes only (about a minute)

Same as ``pgcontrol reproduce plateau [--quick]``; writes figures/plateau.png and
figures/plateau.json. The experiment is :mod:`pgcontrol.reproduce.plateau`.
"""

import argparse

from pgcontrol.reproduce import headline, run

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="best step sizes only (no grid search)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10)")
    ap.add_argument("--out", default="figures", help="output folder (default figures/)")
    args = ap.parse_args()
    print(headline(run("plateau", quick=args.quick, seeds=args.seeds, out=args.out)))
