"""Sweeps: grids of independent training runs on a local process pool, serially, or as Ray tasks.

A sweep is a list of :class:`RunSpec` — algorithm, environment (plant name or
Gymnasium id), config overrides, seed, step budget. Each run trains with
:func:`pgcontrol.train.train` into its own folder, named from the content of
its specification (``<algo>-<env>-seed<S>-<hash>``), written under a
temporary name and renamed when the run is complete, so that:

* a rerun finds the finished runs and skips them (an interrupted or killed
  sweep resumes where it stopped);
* a run's numbers depend only on its specification: the backend, the worker
  and the order never change them (torch uses one thread per run);
* a run that raises, or a worker that dies, is reported with its error and
  does not stop the others (``retries`` tries it again).

Backends: ``workers=1`` runs in this process; ``workers=N`` a local
``ProcessPoolExecutor`` (spawned processes); ``ray=""`` a local Ray, ``ray="auto"``
or an address an existing Ray cluster (``pip install -e ".[ray]"``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import shutil
import time
import traceback
from pathlib import Path

import numpy as np

from .errors import ConfigError, TrainingDiverged
from .files import atomic_write, json_safe

__all__ = ["RunSpec", "grid", "grid_from_toml", "run_one", "run_sweep", "summary_table"]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep.

    Attributes
    ----------
    algo : str
        ``"vpg"``, ``"npg"``, ``"trpo"``, ``"ac"`` or ``"ppo"``.
    env : str
        A plant name or a Gymnasium id.
    overrides : tuple of (key, value)
        Config fields over the (algorithm, environment) preset (:data:`pgcontrol.config.PRESETS`).
    seed : int
    steps : int or None
        Environment-step budget (``train(max_steps=...)``); None: the config's iterations.
    policy : str or None
        ``"linear"`` or ``"mlp"`` (default: linear on plants, MLP elsewhere).
    """

    algo: str
    env: str
    overrides: tuple = ()
    seed: int = 0
    steps: int | None = None
    policy: str | None = None

    def as_dict(self) -> dict:
        return {"algo": self.algo, "env": self.env, "overrides": dict(self.overrides), "seed": self.seed,
                "steps": self.steps, "policy": self.policy}

    @property
    def folder(self) -> str:
        """``<algo>-<env>-seed<S>-<10 hex digits of the specification's hash>``."""
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
        env = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.env)
        return f"{self.algo}-{env}-seed{self.seed}-{digest}"

    @property
    def setting(self) -> str:
        """The specification without its seed: what medians are taken over."""
        over = ", ".join(f"{k}={v}" for k, v in self.overrides)
        return f"{self.algo} on {self.env}" + (f" ({over})" if over else "")


def grid(algo, env, seeds, *, config: dict | None = None, steps: int | None = None, policy: str | None = None):
    """The product of the listed values: ``algo``, ``env``, ``seeds`` and each ``config`` entry may be a list."""
    as_list = lambda v: list(v) if isinstance(v, (list, tuple)) else [v]  # noqa: E731
    config = config or {}
    keys = sorted(config)
    specs = []
    for a, e, *values in itertools.product(as_list(algo), as_list(env), *(as_list(config[k]) for k in keys)):
        for s in as_list(seeds):
            specs.append(RunSpec(a, e, tuple(zip(keys, values)), int(s), steps, policy))
    return specs


def grid_from_toml(path) -> list[RunSpec]:
    """A grid from a TOML file: ``algo``, ``env``, ``seeds`` (or ``seed``), ``steps``, ``policy`` and a ``[config]``
    table; every list is a dimension of the grid (as Ray Tune's ``grid_search`` or hydra's multirun)."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep file {str(path)!r} does not exist")
    try:
        t = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {str(path)!r} is not valid TOML ({exc})") from None
    known = {"algo", "env", "seeds", "seed", "steps", "policy", "config"}
    unknown = sorted(set(t) - known)
    if unknown or "algo" not in t or "env" not in t:
        raise ConfigError(f"sweep file {str(path)!r}: expected keys algo, env, seeds (or seed), steps, policy and a "
                          f"[config] table; " + (f"unknown: {', '.join(unknown)}" if unknown else "algo and env are required"))
    return grid(t["algo"], t["env"], t.get("seeds", t.get("seed", 0)), config=t.get("config"), steps=t.get("steps"),
                policy=t.get("policy"))


def _result(spec: RunSpec, status: str, history=None, error=None, seconds=0.0) -> dict:
    last = (history or [{}])[-1]
    return {"spec": spec.as_dict(), "folder": spec.folder, "status": status, "error": error, "seconds": seconds,
            "history": history or [], "gap": last.get("gap"), "gain_error": last.get("gain_error"),
            "return_mean": last.get("return_mean"), "steps": last.get("steps", 0)}


def run_one(spec: RunSpec, root: str | Path) -> dict:
    """Train one specification into ``root/<spec.folder>`` (or read it back if it is already complete).

    The run trains in a temporary folder that is renamed when it is complete,
    so a folder with ``result.json`` is always a finished run.
    """
    from .config import resolve_config  # local: keeps `pgcontrol.sweep` (and the CLI) light until a run starts
    from .train import train

    root = Path(root)
    final = root / spec.folder
    if (final / "result.json").is_file():
        return json.loads((final / "result.json").read_text())
    tmp = root / f".{spec.folder}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        config, _ = resolve_config(spec.algo, spec.env, dict(spec.overrides), source=spec.setting)
        history = train(spec.algo, spec.env, config=config, seed=spec.seed, out_dir=tmp, progress=False,
                        policy_kind=spec.policy or ("linear" if _is_plant(spec.env) else "mlp"),
                        max_steps=spec.steps, checkpoint_every=max(1, config.iterations))
        result = _result(spec, "ok", history, seconds=time.perf_counter() - t0)
    except TrainingDiverged as exc:
        result = _result(spec, "diverged", error=str(exc), seconds=time.perf_counter() - t0)
    atomic_write(tmp / "result.json", json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)  # atomic: a killed sweep leaves only .tmp folders, never a half-written run
    return result


def _is_plant(env: str) -> bool:
    from .plants import names

    return env in names()


def _run_safely(spec: RunSpec, root: str) -> dict:
    """The worker's entry point: an exception becomes a failed result (one line), never a crashed sweep."""
    import torch

    torch.set_num_threads(1)
    try:
        return run_one(spec, root)
    except Exception as exc:  # noqa: BLE001 - isolate the run: report and go on
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _result(spec, "failed", error=f"{type(exc).__name__}: {msg}", seconds=0.0) | {
            "traceback": traceback.format_exc(limit=3)}


def run_sweep(specs, root, *, workers: int | None = None, ray: str | None = None, retries: int = 0,
              progress: bool = True) -> list[dict]:
    """Run every specification (skipping finished ones); returns the results in the order of ``specs``.

    Parameters
    ----------
    workers : int, optional
        Local processes (default: the number of cores); 1 runs in this process.
    ray : str, optional
        Run each specification as a Ray task: ``""`` starts a local Ray,
        ``"auto"`` or an address joins a cluster.
    retries : int
        Tries again a run that failed (raised, or its worker died), up to this many times.
    """
    specs = list(specs)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".*.tmp-*"):  # the temporary folders of runs a kill interrupted
        shutil.rmtree(stale, ignore_errors=True)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer; got {workers!r}")
    results: dict[int, dict] = {}
    bar = _bar(len(specs), progress)
    pending = list(range(len(specs)))
    for attempt in range(int(retries) + 1):
        if not pending:
            break
        if ray is not None:
            got = _run_ray(specs, pending, root, ray, bar)
        elif workers == 1:
            got = {}
            for i in pending:
                got[i] = _run_safely(specs[i], str(root))
                _tick(bar, got[i])
        else:
            got = _run_pool(specs, pending, root, workers, bar)
        results.update(got)
        pending = [i for i in pending if results[i]["status"] == "failed"]
        if pending and attempt < retries and bar is not None:
            bar.write(f"retrying {len(pending)} failed run(s)")
    if bar is not None:
        bar.close()
    return [results[i] for i in range(len(specs))]


def _bar(total, progress):
    if not progress:
        return None
    from tqdm.auto import tqdm  # local: tqdm.auto probes for Jupyter

    bar = tqdm(total=total, desc="sweep", unit="run", dynamic_ncols=True)
    bar.counts = {"ok": 0, "diverged": 0, "failed": 0}
    return bar


def _tick(bar, result):
    if bar is None:
        return
    bar.counts[result["status"]] = bar.counts.get(result["status"], 0) + 1
    bar.set_postfix(bar.counts, refresh=False)
    bar.update(1)


def _run_pool(specs, pending, root, workers, bar) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    got = {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_safely, specs[i], str(root)): i for i in pending}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                got[i] = fut.result()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory): report, do not stop
                got[i] = _result(specs[i], "failed", error=f"the worker process died ({exc})")
            _tick(bar, got[i])
    return got


def _run_ray(specs, pending, root, address, bar) -> dict:
    try:
        import ray as _ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install -e \".[ray]\" (or pip install ray)") from None
    if not _ray.is_initialized():
        _ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
    task = _ray.remote(num_cpus=1, max_retries=0)(_run_safely)
    refs = {task.remote(specs[i], str(Path(root).resolve())): i for i in pending}
    got = {}
    remaining = list(refs)
    while remaining:
        done, remaining = _ray.wait(remaining, num_returns=1)
        i = refs[done[0]]
        try:
            got[i] = _ray.get(done[0])
        except Exception as exc:  # noqa: BLE001 - a task whose worker died
            got[i] = _result(specs[i], "failed", error=f"the Ray task failed ({type(exc).__name__})")
        _tick(bar, got[i])
    return got


def summary_table(results: list[dict]) -> tuple[str, str]:
    """``(csv, markdown)``: one row per run, then the median [min–max] per setting (the seeds pooled)."""
    import csv
    import io

    cols = ["setting", "seed", "status", "gap", "gain_error", "return_mean", "steps", "seconds", "error"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    rows = []
    for r in results:
        spec = RunSpec(**{**r["spec"], "overrides": tuple(sorted(r["spec"]["overrides"].items()))})
        row = {"setting": spec.setting, "seed": spec.seed, "status": r["status"], "gap": r["gap"],
               "gain_error": r["gain_error"], "return_mean": r["return_mean"], "steps": r["steps"],
               "seconds": round(r["seconds"], 2), "error": r["error"] or ""}
        rows.append(row)
        w.writerow(row)

    def stat(values):
        v = [x for x in values if x is not None and math.isfinite(x)]
        return "—" if not v else f"{np.median(v):.4g} [{min(v):.3g}–{max(v):.3g}]"

    md = ["| setting | runs (ok / diverged / failed) | final gap | gain error | return | steps | seconds |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for setting, group in itertools.groupby(sorted(rows, key=lambda r: r["setting"]), key=lambda r: r["setting"]):
        g = list(group)
        counts = " / ".join(str(sum(r["status"] == s for r in g)) for s in ("ok", "diverged", "failed"))
        md.append(f"| {setting} | {counts} | {stat([r['gap'] for r in g])} | {stat([r['gain_error'] for r in g])} | "
                  f"{stat([r['return_mean'] for r in g])} | {stat([r['steps'] for r in g])} | "
                  f"{stat([r['seconds'] for r in g])} |")
    return buf.getvalue(), "\n".join(md) + "\n"
