"""Pictures of training runs: learning curves, and for linear policies on plants the gain against K* and the
closed-loop step response beside the LQR loop (python-control). Behind ``pgcontrol plot``.

Everything is drawn on :class:`matplotlib.figure.Figure` objects (no pyplot,
no display) and written atomically.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from . import lqr
from .errors import ConfigError
from .checkpoint import checkpoint_plant, load_checkpoint
from .files import atomic_write

__all__ = ["MAX_HISTORY_BYTES", "load_run", "runs_figure", "plot_runs"]


MAX_HISTORY_BYTES = 64 * 2**20
"""Largest ``history.json`` read (64 MiB)."""


def _real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300


def _check_history(history, where: str, plant) -> list[dict]:
    """The rows of a ``history.json``, checked: what the figure reads must be numbers of the right shape."""
    if not isinstance(history, list) or not history:
        raise ConfigError(f"{where} holds no iterations yet")
    for i, row in enumerate(history):
        if not isinstance(row, dict) or not _real(row.get("steps")):
            raise ConfigError(f"{where}: row {i} must be a table with a number 'steps'; got {str(row)[:80]}")
        for key in ("gap", "return_mean"):
            if row.get(key) is not None and not _real(row[key]):
                raise ConfigError(f"{where}: row {i}: {key!r} must be a number or null; got {str(row[key])[:80]}")
    if plant is not None and "K" in history[-1]:
        shape = (plant.m, plant.p if plant.has_output else plant.n)
        for i, row in enumerate(history):
            K = row.get("K")
            ok = isinstance(K, list) and len(K) == shape[0] and all(
                isinstance(r, list) and len(r) == shape[1] and all(_real(v) for v in r) for r in K)
            if not ok:
                raise ConfigError(f"{where}: row {i}: 'K' must be a {shape[0]} x {shape[1]} list of numbers (the "
                                  f"plant's gain shape); got {str(K)[:80]}")
    return history


def load_run(path) -> dict:
    """A run folder's ``history.json`` (and its plant, if any) as ``{"name", "history", "plant"}``.

    ``history.json`` must be a regular file of at most :data:`MAX_HISTORY_BYTES`
    whose rows hold numbers where the figure reads them.
    """
    import os
    import stat

    path = Path(path)
    hist_file = path / "history.json" if path.is_dir() else path
    try:
        st = os.stat(hist_file)
    except OSError:
        raise ConfigError(f"no run at {str(path)!r}: expected a folder with history.json (written by pgcontrol train)") \
            from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{str(hist_file)!r} is not a regular file")
    if st.st_size > MAX_HISTORY_BYTES:
        raise ConfigError(f"{str(hist_file)!r} is {st.st_size} bytes; at most {MAX_HISTORY_BYTES} are read")
    try:
        history = json.loads(hist_file.read_bytes()[:MAX_HISTORY_BYTES])
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, or an integer too long to convert
        raise ConfigError(f"{str(hist_file)!r} is not valid JSON ({(str(exc).splitlines() or [''])[0][:200]})") \
            from None
    except RecursionError:
        raise ConfigError(f"{str(hist_file)!r} nests its values too deeply") from None
    ckpt_file = hist_file.parent / "checkpoint.pt"
    plant = checkpoint_plant(load_checkpoint(ckpt_file)) if os.path.lexists(ckpt_file) else None
    history = _check_history(history, repr(str(hist_file)), plant)
    return {"name": hist_file.parent.name, "history": history, "plant": plant}


def _series(history, key):
    steps = np.array([row["steps"] for row in history if row.get(key) is not None], dtype=float)
    values = np.array([row[key] for row in history if row.get(key) is not None], dtype=float)
    return steps, values


def runs_figure(runs: list[dict]):
    """The figure of :func:`plot_runs`: learning curves, and gain / step-response panels for linear LQ runs."""
    from matplotlib.figure import Figure  # local: matplotlib only when drawing

    linear = [r for r in runs if r["plant"] is not None and "K" in r["history"][-1]]
    ncols = 1 + (2 if len(linear) > 0 else 0)
    fig = Figure(figsize=(5 * ncols, 4), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    ax = axes[0]
    gap_runs = [r for r in runs if any(row.get("gap") is not None for row in r["history"])]
    for i, r in enumerate(runs):
        if r in gap_runs:
            s, v = _series(r["history"], "gap")
            ax.semilogy(s, np.maximum(v, 1e-12), color=f"C{i}", label=r["name"])
        else:
            s, v = _series(r["history"], "return_mean")
            ax.plot(s, v, color=f"C{i}", label=r["name"])
    ax.set(xlabel="environment steps", ylabel="cost gap (J(K) − J*)/J*" if gap_runs else "mean episode return",
           title="learning curves")
    ax.legend(fontsize=7)
    if linear:
        import control  # local: python-control takes ~1 s to import

        axg, axs = axes[1], axes[2]
        drawn: set[str] = set()
        for i, r in enumerate(runs):
            if r not in linear:
                continue
            p = r["plant"]
            K_opt = lqr.optimal_gain(p)[0]
            s = np.array([row["steps"] for row in r["history"]], dtype=float)
            Ks = np.array([np.asarray(row["K"], dtype=float).ravel() for row in r["history"]])
            for j in range(Ks.shape[1]):
                axg.plot(s, Ks[:, j], color=f"C{i}", lw=1, alpha=1.0 if j == 0 else 0.6,
                         label=f"{r['name']}" if j == 0 else None)
                axg.axhline(K_opt.ravel()[j], color=f"C{i}", ls=":", lw=1)
            T = np.arange(0, 60)
            loops = [(np.asarray(r["history"][-1]["K"]), "-", f"{r['name']} (learned K)")]
            if p.name not in drawn:  # the LQR loop once per plant
                drawn.add(p.name)
                loops.append((K_opt, ":", f"{p.name}: LQR K*"))
            for K, style, label in loops:
                t, y = control.step_response(lqr.closed_loop(p, K), T=T * p.dt if p.dt else T, input=0, output=0)
                axs.plot(np.asarray(t), np.asarray(y).ravel(), style, color=f"C{i}" if style == "-" else "k",
                         label=label)
        axg.set(xlabel="environment steps", ylabel="gain entries K_ij", title="learned gain (dotted: K*)")
        axg.legend(fontsize=7)
        axs.set(xlabel="time (s)" if any(r["plant"].dt for r in linear) else "time step",
                ylabel="first output", title="closed-loop step response, input 1 → output 1")
        axs.legend(fontsize=7)
    return fig


def plot_runs(paths, out) -> Path:
    """Draw the runs in ``paths`` (run folders) into the image ``out`` (PNG, or any format matplotlib writes)."""
    runs = [load_run(p) for p in paths]
    fig = runs_figure(runs)
    out = Path(out)
    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix.lstrip(".") or "png", dpi=120)
    atomic_write(out, buf.getvalue())
    return out
