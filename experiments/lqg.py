"""Reproduce figures/lqg.png and figures/lqg.json (see pgcontrol/reproduce/lqg.py).

    python experiments/lqg.py            # full run, writes figures/lqg.{png,json}
    python experiments/lqg.py --quick    # the CI-sized run
"""

from pgcontrol.reproduce import script

if __name__ == "__main__":
    script("lqg")
