"""The learners, one file each: :mod:`.vpg`, :mod:`.npg` (natural PG and TRPO), :mod:`.ac`, :mod:`.ppo`."""

from __future__ import annotations

from ..errors import ConfigError


def get_algorithm(algo):
    """``(LearnerClass, name)`` for ``"vpg"``, ``"npg"``, ``"trpo"``, ``"ac"``, ``"ppo"`` or a learner class."""

    if isinstance(algo, type):
        return algo, getattr(algo, "name", algo.__name__.lower())
    if algo == "vpg":
        from .vpg import VPG as A
    elif algo == "npg":
        from .npg import NPG as A
    elif algo == "trpo":
        from .npg import TRPO as A
    elif algo == "ac":
        from .ac import ActorCritic as A
    elif algo == "ppo":
        from .ppo import PPO as A
    else:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of: vpg, npg, trpo, ac, ppo")
    return A, algo


ALGORITHMS = ("vpg", "npg", "trpo", "ac", "ppo")
