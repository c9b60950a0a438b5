"""The learners, one file each: :mod:`.vpg`, :mod:`.npg` (natural PG and TRPO), :mod:`.ac`, :mod:`.ppo`."""

from __future__ import annotations

from ..errors import ConfigError
from .ac import ActorCritic
from .npg import NPG, TRPO
from .ppo import PPO
from .vpg import VPG

LEARNERS = {"vpg": VPG, "npg": NPG, "trpo": TRPO, "ac": ActorCritic, "ppo": PPO}
ALGORITHMS = tuple(LEARNERS)
"""The learners' names, in order: the one list ``get_algorithm`` and the CLI's ``--algo`` take."""


def get_algorithm(algo):
    """``(LearnerClass, name)`` for ``"vpg"``, ``"npg"``, ``"trpo"``, ``"ac"``, ``"ppo"`` or a learner class."""
    if isinstance(algo, type):
        return algo, getattr(algo, "name", algo.__name__.lower())
    if not isinstance(algo, str) or algo not in LEARNERS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of: {', '.join(ALGORITHMS)}")
    return LEARNERS[algo], algo

