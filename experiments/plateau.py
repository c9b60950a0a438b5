"""Figure 1: the plateau of zero exploration (vanilla PG) against the natural gradient on scalar LQG.

    python experiments/plateau.py            # full: step-size grid, 10 seeds (~10 min on 2 cores)
    python experiments/plateau.py --quick    # best step sizes only (about a minute)

Same as ``pgcontrol reproduce plateau [--quick]``; writes figures/plateau.png and
figures/plateau.json. The experiment is :mod:`pgcontrol.reproduce.plateau`.
"""

from pgcontrol.reproduce import script

if __name__ == "__main__":
    script("plateau")
