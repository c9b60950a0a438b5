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

A run may also be a :class:`TaskSpec`: one call of a function of pgcontrol's
own that returns a JSON-able dict (the reproductions whose cells are not plain
training runs: the plateau's learners on simulator batches, the variance
experiment's chunks of rollouts, the LQG experiment's scored NPG runs). Every
``pgcontrol reproduce NAME`` is a sweep of such runs, in ``<out>/runs/NAME``.

A finished run is reused only if the package's code is the same as when it
ran (:func:`code_fingerprint`, recorded in its ``result.json``): after an
edit, a rerun recomputes it rather than report stale numbers.

Backends: ``workers=1`` runs in this process; ``workers=N`` a local
``ProcessPoolExecutor`` (spawned processes); ``ray=""`` a local Ray, ``ray="auto"``
or an address an existing Ray cluster (``pip install -e ".[ray]"``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
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
from .files import atomic_write

__all__ = ["MAX_RUNS", "RunSpec", "TaskSpec", "grid", "grid_from_toml", "code_fingerprint", "run_one", "run_sweep",
           "failures", "summary_table"]


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
        algo, env = ("".join(c if c.isalnum() or c in "-_." and i else "_" for i, c in enumerate(str(v)[:64]))
                     for v in (self.algo, self.env))  # never a path: no separator, no leading dot
        return f"{algo}-{env}-seed{self.seed}-{digest}"

    @property
    def setting(self) -> str:
        """The specification without its seed: what medians are taken over."""
        over = ", ".join(f"{k}={v}" for k, v in self.overrides)
        return f"{self.algo} on {self.env}" + (f" ({over})" if over else "")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One call ``fn(**kwargs, seed=seed)`` of a function of pgcontrol's own, which returns a JSON-able dict.

    Attributes
    ----------
    fn : str
        ``"pgcontrol.<module>:<function>"``; only pgcontrol's own modules
        (a sweep never imports code named by its data).
    kwargs : tuple of (key, value)
        JSON-able arguments, sorted by key (:meth:`make` sorts them).
    seed : int
    """

    fn: str
    kwargs: tuple = ()
    seed: int = 0

    @classmethod
    def make(cls, fn: str, seed: int = 0, **kwargs) -> "TaskSpec":
        return cls(fn, tuple(sorted(kwargs.items())), int(seed))

    def as_dict(self) -> dict:
        return {"fn": self.fn, "kwargs": dict(self.kwargs), "seed": self.seed}

    @property
    def folder(self) -> str:
        """``<function>-seed<S>-<10 hex digits of the specification's hash>``."""
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.fn.rpartition(':')[2]}-seed{self.seed}-{digest}"

    @property
    def setting(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs)
        return f"{self.fn.rpartition(':')[2]}({args})"

    def function(self):
        """The function named by :attr:`fn` (imported; pgcontrol's own modules only)."""
        module, _, name = self.fn.partition(":")
        if not (module == "pgcontrol" or module.startswith("pgcontrol.")) or not name:
            raise ConfigError(f"a task names a function as 'pgcontrol.<module>:<function>'; got {self.fn!r}")
        return getattr(importlib.import_module(module), name)


def spec_from_dict(d: dict):
    """The :class:`RunSpec` or :class:`TaskSpec` of a result's ``"spec"`` entry (:meth:`as_dict`)."""
    if "fn" in d:
        return TaskSpec.make(d["fn"], d["seed"], **d["kwargs"])
    return RunSpec(**{**d, "overrides": tuple(sorted(d["overrides"].items()))})


MAX_RUNS = 10_000
"""Largest grid built without ``max_runs`` (``--max-runs``): a larger one is refused before it is built."""
MAX_SWEEP_FILE_BYTES = 2**20
"""Largest sweep file read (1 MiB)."""
_SCALARS = (str, int, float, bool)


def _as_list(name: str, value) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError(f"sweep: {name} is an empty list; give at least one value")
    return values


def _check_value(key: str, value):
    """A config value of a grid: a number, string or boolean, or a list of them (kept as a tuple: ``hidden``)."""
    if isinstance(value, _SCALARS) and not (isinstance(value, float) and not math.isfinite(value)):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= 1024 and all(
            isinstance(v, _SCALARS) and not (isinstance(v, float) and not math.isfinite(v)) for v in value):
        return tuple(value)
    raise ConfigError(f"sweep: config.{key} values must be finite numbers, strings, booleans or lists of them "
                      f"(a list of lists is a dimension: hidden = [[64, 64], [256, 256]]); got {str(value)[:120]}")


def _check_seeds(seeds) -> list[int]:
    seeds = _as_list("seeds", seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < 2**63:
            raise ConfigError(f"sweep: seeds must be non-negative integers (below 2**63); got {repr(s)[:80]}")
    dup = sorted({int(s) for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ConfigError(f"sweep: seed {dup[0]} is listed more than once; each seed must be distinct (a repeated "
                          "seed would repeat a run and count it twice in the medians)")
    return [int(s) for s in seeds]


def grid(algo, env, seeds, *, config: dict | None = None, steps: int | None = None, policy: str | None = None,
         max_runs: int = MAX_RUNS, env_modules=()):
    """The product of the listed values: ``algo``, ``env``, ``seeds`` and each ``config`` entry may be a list.

    A value that is itself a list (``hidden = [[64, 64], [256, 256]]``, two
    values) is kept as a tuple. Every value is checked before the grid is
    built: the number of runs at most ``max_runs`` (default :data:`MAX_RUNS`),
    counted first; algorithms by name; environments by
    :func:`pgcontrol.envs.check_env_name` (a ``"module:EnvId"`` name imports
    nothing unless ``env_modules`` names the module); seeds non-negative
    integers without repeats; every setting's config by
    :func:`pgcontrol.config.resolve_config`.

    Raises
    ------
    ConfigError
        For any value of the wrong type or range, a repeated run, or a grid
        larger than ``max_runs``.
    """
    from .algos import get_algorithm
    from .envs import check_env_name

    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise ConfigError(f"max_runs must be a positive integer; got {max_runs!r}")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"sweep: config must be a table of Config fields; got {type(config).__name__}")
    algos, envs, seeds = _as_list("algo", algo), _as_list("env", env), _check_seeds(seeds)
    keys = sorted(config)
    dims = {k: _as_list(f"config.{k}", config[k]) for k in keys}
    size = len(algos) * len(envs) * len(seeds) * math.prod(len(v) for v in dims.values())
    if size > max_runs:
        raise ConfigError(f"sweep: the grid has {size} runs, more than {max_runs} (raise the limit with --max-runs, "
                          "or max_runs in Python)")
    for a in algos:
        get_algorithm(a)  # an unknown name (or a path such as '../x') is refused here
    for e in envs:
        check_env_name(e, env_modules=env_modules)
    for k in keys:
        dims[k] = [_check_value(k, v) for v in dims[k]]
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"sweep: steps must be a positive integer (an environment-step budget); got {steps!r}")
    if policy not in (None, "linear", "mlp"):
        raise ConfigError(f"sweep: policy must be 'linear' or 'mlp'; got {str(policy)[:80]!r}")
    specs = []
    for a, e, *values in itertools.product(algos, envs, *(dims[k] for k in keys)):
        for s in seeds:
            specs.append(RunSpec(a, e, tuple(zip(keys, values)), s, steps, policy))
    if len(set(specs)) != len(specs):
        dup = next(sp for i, sp in enumerate(specs) if sp in specs[:i])
        raise ConfigError(f"sweep: the run {dup.setting}, seed {dup.seed} is listed more than once")
    from .config import resolve_config

    for a, e, over in dict.fromkeys((sp.algo, sp.env, sp.overrides) for sp in specs):
        resolve_config(a, e, dict(over), source="sweep config")  # every setting's Config, checked before any run
    return specs


def grid_from_toml(path, *, max_runs: int = MAX_RUNS, env_modules=()) -> list[RunSpec]:
    """A grid from a TOML file: ``algo``, ``env``, ``seeds`` (or ``seed``), ``steps``, ``policy`` and a ``[config]``
    table; every list is a dimension of the grid (as Ray Tune's ``grid_search`` or hydra's multirun).

    The file must be a regular file of at most :data:`MAX_SWEEP_FILE_BYTES`;
    its values are checked by :func:`grid`.
    """
    import stat
    import tomllib

    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        raise ConfigError(f"sweep file {str(path)!r} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"sweep file {str(path)!r} is not a regular file")
    if st.st_size > MAX_SWEEP_FILE_BYTES:
        raise ConfigError(f"sweep file {str(path)!r} is {st.st_size} bytes; at most {MAX_SWEEP_FILE_BYTES}")
    try:
        t = tomllib.loads(p.read_bytes()[:MAX_SWEEP_FILE_BYTES].decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"sweep file {str(path)!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {str(path)!r} is not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"sweep file {str(path)!r} nests its arrays or tables too deeply") from None
    known = {"algo", "env", "seeds", "seed", "steps", "policy", "config"}
    unknown = sorted(set(t) - known)
    if unknown or "algo" not in t or "env" not in t:
        raise ConfigError(f"sweep file {str(path)!r}: expected keys algo, env, seeds (or seed), steps, policy and a "
                          f"[config] table; " + (f"unknown: {', '.join(unknown)[:200]}" if unknown
                                                 else "algo and env are required"))
    return grid(t["algo"], t["env"], t.get("seeds", t.get("seed", 0)), config=t.get("config"), steps=t.get("steps"),
                policy=t.get("policy"), max_runs=max_runs, env_modules=env_modules)


def _result(spec, status: str, history=None, error=None, seconds=0.0, output=None) -> dict:
    last = (history or [{}])[-1]
    return {"spec": spec.as_dict(), "folder": spec.folder, "status": status, "error": error, "seconds": seconds,
            "code": code_fingerprint(), "history": history or [], "output": output, "gap": last.get("gap"),
            "gain_error": last.get("gain_error"), "return_mean": last.get("return_mean"), "steps": last.get("steps", 0)}


def _encode(value):
    """``value`` as standard JSON, losslessly: a non-finite float becomes ``{"float": "inf"}`` (and back, :func:`_decode`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value):
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("float"), str):
            return float(value["float"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _read_result(folder: Path) -> dict:
    return _decode(json.loads((folder / "result.json").read_text()))


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the package's source (every ``pgcontrol/**/*.py``): a finished run is reused only under the same code."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _finished(spec, root: Path) -> dict | None:
    """The result of a finished run of ``spec`` under the current code, or None."""
    folder = Path(root) / spec.folder
    if not (folder / "result.json").is_file() or (folder / "result.json").stat().st_size > 64 * 2**20:
        return None
    try:
        done = _read_result(folder)
    except (OSError, ValueError, RecursionError):  # damaged: run it again
        return None
    if not isinstance(done, dict) or done.get("code") != code_fingerprint():
        return None
    number = lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))  # noqa: E731
    same_spec = done.get("spec") == _decode(json.loads(json.dumps(_encode(spec.as_dict()))))
    if not (same_spec and done.get("status") in ("ok", "diverged", "failed")
            and isinstance(done.get("seconds"), (int, float))
            and all(number(done.get(k)) for k in ("gap", "gain_error", "return_mean", "steps"))):
        return None  # not this run's result, or damaged: run it again
    return done


def _inside(root: Path, folder: str) -> Path:
    """``root / folder``, refused unless it is a direct child of ``root`` (names come from sweep files)."""
    path = root / folder
    if not folder or folder.startswith(".") or "/" in folder or "\\" in folder or path.resolve().parent != root.resolve():
        raise ConfigError(f"a run's folder name {folder[:120]!r} would leave the sweep's folder {str(root)!r}")
    return path


def run_one(spec, root: str | Path, *, env_modules=()) -> dict:
    """Run one :class:`RunSpec` (train) or :class:`TaskSpec` into ``root/<spec.folder>``, or read it back if done.

    The run happens in a temporary folder that is renamed when it is
    complete, so a folder with ``result.json`` is always a finished run; it
    is reused if the code is unchanged (:func:`code_fingerprint`).
    """
    root = Path(root)
    final = _inside(root, spec.folder)
    done = _finished(spec, root)
    if done is not None:
        return done
    tmp = root / f".{spec.folder}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    if isinstance(spec, TaskSpec):
        output = spec.function()(**dict(spec.kwargs), seed=spec.seed)
        result = _result(spec, "ok", output=output, seconds=time.perf_counter() - t0)
    else:
        result = _train(spec, tmp, t0, env_modules)
    atomic_write(tmp / "result.json", json.dumps(_encode(result), indent=1, allow_nan=False) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)  # atomic: a killed sweep leaves only .tmp folders, never a half-written run
    return _read_result(final)  # what a rerun reads back: the same numbers either way


def _train(spec: RunSpec, out: Path, t0: float, env_modules=()) -> dict:
    from .config import resolve_config  # local: keeps `pgcontrol.sweep` (and the CLI) light until a run starts
    from .train import train

    try:
        config, _ = resolve_config(spec.algo, spec.env, dict(spec.overrides), source=spec.setting)
        history = train(spec.algo, spec.env, config=config, seed=spec.seed, out_dir=out, progress=False,
                        policy_kind=spec.policy or ("linear" if _is_plant(spec.env) else "mlp"),
                        max_steps=spec.steps, checkpoint_every=max(1, config.iterations), env_modules=env_modules)
        return _result(spec, "ok", history, seconds=time.perf_counter() - t0)
    except TrainingDiverged as exc:
        return _result(spec, "diverged", error=str(exc), seconds=time.perf_counter() - t0)


def _is_plant(env: str) -> bool:
    from .plants import names

    return env in names()


def _run_safely(spec: RunSpec, root: str, env_modules=()) -> dict:
    """The worker's entry point: an exception becomes a failed result (one line), never a crashed sweep."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a run's numbers never depend on the worker's core count
    try:
        return run_one(spec, root, env_modules=env_modules)
    except Exception as exc:  # noqa: BLE001 - isolate the run: report and go on
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _result(spec, "failed", error=f"{type(exc).__name__}: {msg}", seconds=0.0) | {
            "traceback": traceback.format_exc(limit=3)}
    finally:
        torch.set_num_threads(threads)


def failures(results: list[dict]) -> str | None:
    """One line naming the failed runs and the first error, or None when every run finished."""
    bad = [r for r in results if r["status"] == "failed"]
    if not bad:
        return None
    return f"{len(bad)} of {len(results)} runs failed; {bad[0]['folder']}: {bad[0]['error']}"


def run_sweep(specs, root, *, workers: int | None = None, ray: str | None = None, retries: int = 0,
              progress: bool = True, env_modules=()) -> list[dict]:
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
    env_modules : iterable of str
        Modules that a Gymnasium ``"module:EnvId"`` name may import (:func:`pgcontrol.envs.check_env_name`).
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
    pending = []
    for i, spec in enumerate(specs):  # finished runs are read here: no worker is started for them
        done = _finished(spec, root)
        if done is None:
            pending.append(i)
        else:
            results[i] = done
            _tick(bar, done)
    for attempt in range(int(retries) + 1):
        if not pending:
            break
        if ray is not None:
            got = _run_ray(specs, pending, root, ray, bar, env_modules)
        elif workers == 1:
            got = {}
            for k, i in enumerate(pending):
                got[i] = _run_safely(specs[i], str(root), env_modules)
                _tick(bar, got[i], running=int(k + 1 < len(pending)))
        else:
            got = _run_pool(specs, pending, root, workers, bar, env_modules)
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


def _tick(bar, result, running: int = 0):
    """Count a finished run; ``running``: the runs still in flight (the bar's ETA is tqdm's)."""
    if bar is None:
        return
    bar.counts[result["status"]] = bar.counts.get(result["status"], 0) + 1
    bar.set_postfix({**bar.counts, "running": running}, refresh=False)
    bar.update(1)


def _run_pool(specs, pending, root, workers, bar, env_modules=()) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    got = {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_safely, specs[i], str(root), tuple(env_modules)): i for i in pending}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                got[i] = fut.result()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory): report, do not stop
                got[i] = _result(specs[i], "failed", error=f"the worker process died ({exc})")
            _tick(bar, got[i], running=min(workers, len(futures) - len(got)))
    return got


def _run_ray(specs, pending, root, address, bar, env_modules=()) -> dict:
    try:
        import ray as _ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install -e \".[ray]\" (or pip install ray)") from None
    if not _ray.is_initialized():
        _ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
    task = _ray.remote(num_cpus=1, max_retries=0)(_run_safely)
    refs = {task.remote(specs[i], str(Path(root).resolve()), tuple(env_modules)): i for i in pending}
    got = {}
    remaining = list(refs)
    while remaining:
        done, remaining = _ray.wait(remaining, num_returns=1)
        i = refs[done[0]]
        try:
            got[i] = _ray.get(done[0])
        except Exception as exc:  # noqa: BLE001 - a task whose worker died
            got[i] = _result(specs[i], "failed", error=f"the Ray task failed ({type(exc).__name__})")
        _tick(bar, got[i], running=len(remaining))  # submitted and not yet done (the cluster runs what fits)
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
        spec = spec_from_dict(r["spec"])
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
