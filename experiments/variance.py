"""Reproduce figures/variance.png and figures/variance.json (see pgcontrol/reproduce/variance.py).

    python experiments/variance.py            # full run, writes figures/variance.{png,json}
    python experiments/variance.py --quick    # the CI-sized run
"""

from pgcontrol.reproduce import script

if __name__ == "__main__":
    script("variance")
