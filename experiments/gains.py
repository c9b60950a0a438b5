"""Figure 2: learned linear gains of VPG, NPG, actor-critic and PPO against the Riccati gain K*.

Writes ``gains.md`` (table), ``gains.png`` (gain error vs env steps) and
``gains.json`` into ``--out`` (default ``figures/``); see
:mod:`pgcontrol.reproduce.gains` for the configurations and references.

Usage::

    python experiments/gains.py [--quick] [--seeds N] [--out figures]
"""

from __future__ import annotations

import argparse

from pgcontrol import reproduce


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="scalar-lqg and double-integrator only, 2 seeds (about a minute; what CI runs)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5, quick 2)")
    ap.add_argument("--out", default="figures", help="output folder (default: figures)")
    ap.add_argument("--no-progress", action="store_true", help="do not print one line per run")
    args = ap.parse_args(argv)
    summary = reproduce.run("gains", quick=args.quick, seeds=args.seeds, out=args.out,
                            progress=not args.no_progress)
    print(reproduce.headline(summary))


if __name__ == "__main__":
    main()
