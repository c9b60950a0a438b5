"""The learners, one file each: :mod:`.vpg`, :mod:`.npg` (natural PG and TRPO), :mod:`.ac`, :mod:`.ppo`."""

from __future__ import annotations

from ..errors import ConfigError
from ..names import ALGORITHMS
from .ac import ActorCritic
from .npg import NPG, TRPO
from .ppo import PPO
from .vpg import VPG

LEARNERS = {cls.name: cls for cls in (VPG, NPG, TRPO, ActorCritic, PPO)}
"""Each learner's class under its name, in the order of :data:`pgcontrol.names.ALGORITHMS` (the one list)."""


def get_algorithm(algo):
    """``(LearnerClass, name)`` for ``"vpg"``, ``"npg"``, ``"trpo"``, ``"ac"``, ``"ppo"`` or a learner class."""
    if isinstance(algo, type):
        return algo, getattr(algo, "name", algo.__name__.lower())
    if not isinstance(algo, str) or algo not in LEARNERS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of: {', '.join(ALGORITHMS)}")
    return LEARNERS[algo], algo

