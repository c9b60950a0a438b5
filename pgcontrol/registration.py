"""Gymnasium registration of pgcontrol's environment ids, done by ``import pgcontrol``.

Light on purpose (Gymnasium's registry only; the environments themselves, and
torch, are imported when an environment is made), so that
``gymnasium.make("pgcontrol/ScalarLQG-v0")`` works after ``import pgcontrol``,
and ``gymnasium.make("pgcontrol:pgcontrol/ScalarLQG-v0")`` works without it,
as Gymnasium plugins such as ale_py do.
"""

from __future__ import annotations

__all__ = ["ENV_IDS", "register_envs"]

ENV_IDS = ("pgcontrol/LinearGaussian-v0", "pgcontrol/ScalarLQG-v0")


def register_envs() -> None:
    """Register ``pgcontrol/LinearGaussian-v0`` and ``pgcontrol/ScalarLQG-v0`` with Gymnasium.

    Idempotent (ids already registered are left alone). Both ids have a
    ``vector_entry_point`` (:class:`pgcontrol.envs.LinearGaussianVectorEnv`),
    used by ``gymnasium.make_vec`` by default. ``pgcontrol/LinearGaussian-v0``
    has no ``max_episode_steps``: its episodes end at the plant's own horizon.
    """
    from gymnasium.envs.registration import register, registry  # Gymnasium's registry is all this needs

    specs = {
        "pgcontrol/LinearGaussian-v0": dict(kwargs={"plant": "double-integrator"}, max_episode_steps=None),
        "pgcontrol/ScalarLQG-v0": dict(kwargs={"plant": "scalar-lqg"}, max_episode_steps=50),
    }
    for env_id, spec in specs.items():
        if env_id not in registry:
            register(id=env_id, entry_point="pgcontrol.envs:LinearGaussianEnv",
                     vector_entry_point="pgcontrol.envs:LinearGaussianVectorEnv", **spec)
