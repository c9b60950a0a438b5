"""Figure 2: learned linear gains of VPG, NPG, actor-critic and PPO against the Riccati gain K*.

Writes ``gains.md`` (table), ``gains.png`` (gain error vs env steps) and
``gains.json`` into ``--out`` (default ``figures/``); see
:mod:`pgcontrol.reproduce.gains` for the configurations and references.

Usage::

    python experiments/gains.py [--quick] [--seeds N] [--out figures]
"""

from pgcontrol.reproduce import script

if __name__ == "__main__":
    script("gains")
