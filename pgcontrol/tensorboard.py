"""Optional TensorBoard logging of training (``pgcontrol train --tensorboard DIR``; SB3's convention).

Needs the ``tensorboard`` package: ``pip install -e ".[tensorboard]"``.
"""

from __future__ import annotations

import math

from .errors import ConfigError

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger:
    """A ``train(callback=...)`` that writes every scalar metric of a row at its environment-step count."""

    def __init__(self, log_dir, run_name: str = "run"):
        try:
            from torch.utils.tensorboard import SummaryWriter  # local: tensorboard is an optional extra
        except ImportError:
            raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard "
                              "(or pip install -e \".[tensorboard]\")") from None
        self.writer = SummaryWriter(log_dir=f"{log_dir}/{run_name}")

    def __call__(self, row: dict) -> None:
        for key, value in row.items():
            if key not in ("iteration", "steps") and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(key, value, global_step=int(row["steps"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
