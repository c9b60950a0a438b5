"""Reproductions behind ``pgcontrol reproduce NAME`` and the figures in ``figures/``.

Each experiment is a module with one entry point::

    run(*, quick: bool = False, seeds: int | None = None, out: Path, progress: bool = True,
        workers: int | None = None, ray: str | None = None) -> dict

It writes ``out/<name>.png`` (the figure) and ``out/<name>.json`` (the summary;
``.md`` tables where useful) atomically (``out`` defaults to ``figures``, and to
``figures/quick`` for ``quick=True``, so a quick run never overwrites the
committed full-run files), and returns the summary dict, whose
``"headline"`` entry is a list of one-line strings printed by the CLI.
``quick=True`` finishes in about a minute on two CPU cores and is what CI runs;
``seeds`` overrides the number of seeds.

Every experiment is a sweep (:mod:`pgcontrol.sweep`): its independent cells
(one seed of one learner, one chunk of rollouts) are runs in
``out/runs/<name>/``, on ``workers`` local processes (default: the cores) or
as Ray tasks (``ray``). A run's numbers depend only on its specification, so
the figure is the same on any backend, and an interrupted reproduction
resumes where it stopped. The scripts ``experiments/<name>.py``
call the same function, so a figure's command is either
``pgcontrol reproduce NAME`` or ``python experiments/NAME.py``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
from pathlib import Path

from ..errors import RunFailed
from ..files import atomic_write
from ..sweep import failures, run_sweep

EXPERIMENTS = {
    "plateau": "Peters & Schaal's scalar LQG: vanilla PG stalls on the zero-exploration plateau, NPG converges",
    "gains": "every learner with its default config: learned linear gains against the Riccati gain K* on five LQ plants",
    "variance": "variance and bias of the REINFORCE / baseline / GAE gradient estimators vs rollouts",
    "lqg": "learned static output feedback against the Kalman-filter LQG controller",
    "mujoco": "learning curves of the four learners on InvertedPendulum-v5 and HalfCheetah-v5",
}


class UnknownExperimentError(ValueError):
    """The experiment name is not one of :data:`EXPERIMENTS`."""


def default_out(quick: bool) -> Path:
    """``figures`` for a full run; ``figures/quick`` for ``--quick``, which never overwrites the committed files."""
    return Path("figures/quick") if quick else Path("figures")


def run(name: str, *, quick: bool = False, seeds: int | None = None, out: str | Path | None = None,
        progress: bool = True, workers: int | None = None, ray: str | None = None) -> dict:
    """Run one reproduction; see the module docstring. ``out`` defaults to :func:`default_out`."""
    if name not in EXPERIMENTS:
        raise UnknownExperimentError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    if seeds is not None and seeds < 1:
        raise ValueError(f"--seeds must be a positive integer; got {seeds}")
    out = default_out(quick) if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"{__name__}.{name}")
    return module.run(quick=quick, seeds=seeds, out=out, progress=progress, workers=workers, ray=ray)


def sweep(name: str, specs, out: Path, *, workers: int | None = None, ray: str | None = None,
          progress: bool = True) -> list[dict]:
    """Run an experiment's cells (:class:`~pgcontrol.sweep.RunSpec` / :class:`~pgcontrol.sweep.TaskSpec`) as one sweep.

    In ``out/runs/<name>``; finished cells are reused (same specification,
    same code). Raises :class:`~pgcontrol.errors.RunFailed` naming the
    first failure if any cell failed: a figure needs every cell.
    """
    results = run_sweep(specs, Path(out) / "runs" / name, workers=workers, ray=ray, progress=progress)
    msg = failures(results)
    if msg:
        raise RunFailed(f"reproduce {name}: {msg}")
    return results


def save_figure(fig, path: str | Path, **kw) -> None:
    """Save a ``matplotlib.figure.Figure`` atomically (PNG, 150 dpi unless overridden).

    Build figures with ``matplotlib.figure.Figure`` (not pyplot): no backend
    or display is needed and nothing global changes.
    """
    buf = io.BytesIO()
    kw.setdefault("dpi", 150)
    kw.setdefault("bbox_inches", "tight")
    fig.savefig(buf, format="png", **kw)
    atomic_write(path, buf.getvalue())


def save_json(path: str | Path, obj) -> None:
    """Write a JSON summary atomically (NumPy scalars become floats)."""
    atomic_write(path, json.dumps(obj, indent=1, default=float) + "\n")


def headline(summary: dict) -> str:
    """The lines the CLI prints for a summary."""
    return "\n".join(summary.get("headline", []))


def script(name: str, argv: list[str] | None = None) -> dict:
    """The command line of ``experiments/<name>.py``: ``[--quick] [--seeds N] [--out DIR] [--no-progress]``.

    Runs :func:`run` and prints the headline; the same as ``pgcontrol reproduce NAME``.
    """
    ap = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=EXPERIMENTS[name])
    ap.add_argument("--quick", action="store_true", help="the reduced run CI executes (about a minute)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (or repetitions); default per experiment")
    ap.add_argument("--out", default=None, help="output folder (default: figures, or figures/quick with --quick)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--workers", type=int, default=None, help="local worker processes (default: the cores)")
    ap.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                    help="run the cells as Ray tasks (no ADDRESS: a local Ray; 'auto' or an address: a cluster)")
    args = ap.parse_args(argv)
    summary = run(name, quick=args.quick, seeds=args.seeds, out=args.out, progress=not args.no_progress,
                  workers=args.workers, ray=args.ray)
    print(headline(summary))
    return summary
