"""The learners' names: the one list, light enough for ``pgcontrol --help`` (no torch).

:mod:`pgcontrol.algos` maps each name to its class (``LEARNERS``), and the command line's
``--algo`` offers exactly these.
"""

from __future__ import annotations

__all__ = ["ALGORITHMS"]

ALGORITHMS = ("vpg", "npg", "trpo", "ac", "ppo")
"""Vanilla PG (REINFORCE), natural PG, TRPO, actor-critic (A2C), PPO-GAE, in this order."""
