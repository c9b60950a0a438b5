"""Every exception pgcontrol raises: the ground floor, imported by every other module.

All input errors are :class:`ValueError` subclasses whose message names the
setting, the expected form and the value received, so ``except ValueError``
catches every bad input and the command line can print it as one line.
:class:`TrainingDiverged` is not an input error: it is raised when training
produces a non-finite quantity or an exploding state.
"""

from __future__ import annotations

__all__ = ["InvalidPlantError", "NotStabilizableError", "PolicyError", "ConfigError", "CheckpointError",
           "TrainingDiverged", "RunFailed"]


class InvalidPlantError(ValueError):
    """A plant (or a matrix, gain, seed or env argument passed with one) is malformed."""


class NotStabilizableError(ValueError):
    """(A, B) is not stabilisable (for the discounted problem), so no LQR gain exists."""


class PolicyError(ValueError):
    """A policy or critic was built or called with malformed input."""


class ConfigError(ValueError):
    """A training argument or configuration value is invalid."""


class CheckpointError(ConfigError):
    """A checkpoint is missing, corrupt, incomplete, or holds something other than tensors and plain data."""


class TrainingDiverged(RuntimeError):
    """Training produced a non-finite quantity or an exploding state; the last good checkpoint is kept."""


class RunFailed(RuntimeError):
    """Runs of a sweep failed (raised, or their worker died) where every run was needed (a reproduction)."""
