"""Time the exact natural gradient, policy gradient and Fisher of pgcontrol.lqr on a big random plant.

The closed-loop moments (two discounted Lyapunov equations, O(n³) each) are
computed once per call. Target of the reliability issue: ``natural_gradient``
on a 200-state plant in under 3 s on 2 cores (it took 16.5 s when the moments
were computed three times).

Usage::

    python experiments/bench_natural_gradient.py [--n 200] [--m 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pgcontrol import lqr, plants


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    p = plants.random(args.n, args.m, seed=0)
    K, _ = lqr.optimal_gain(p)
    K = 1.05 * K  # a stabilising gain that is not the optimum
    std = np.full(p.m, 0.3)
    print(f"random plant n = {p.n}, m = {p.m}, gamma = {p.gamma}; K = 1.05 K*, std = 0.3")
    for name, f in (("policy_cost", lambda: lqr.policy_cost(p, K, std)),
                    ("policy_gradient", lambda: lqr.policy_gradient(p, K, std)),
                    ("fisher", lambda: lqr.fisher(p, K, std)),
                    ("natural_gradient", lambda: lqr.natural_gradient(p, K, std))):
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t)
        print(f"{name:17s} {best:8.3f} s")


if __name__ == "__main__":
    main()
