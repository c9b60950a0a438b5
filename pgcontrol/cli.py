"""The ``pgcontrol`` command line (also ``python -m pgcontrol``): one subcommand per task
(``plants``, ``lqr``, ``train``, ``eval``, ``reproduce``, ``sweep``, ``plot``, ``lab``, the
last with a Gradescope ``autograder``), each a thin
layer over the library; :func:`build_parser` is the one source of the synopsis, which
``pgcontrol --help`` and the documentation's command-line reference both render. Every user error
prints one line ``pgcontrol: error: ...`` on stderr and exits with status 2; a run that diverges
prints one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .errors import TrainingDiverged
from .names import ALGORITHMS
from .files import atomic_write, json_safe


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):  # noqa: D401 (argparse API)
        self.exit(2, f"pgcontrol: error: {message} (try `{self.prog} --help`)\n")


def _cmd_plants(args) -> int:
    from . import plants

    rows = plants.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(map(len, rows))
    for name, text in rows.items():
        print(f"{name:<{width}}  {text}")
    return 0


def _fmt(M) -> str:
    return np.array2string(np.asarray(M), precision=6, suppress_small=True, max_line_width=100)


def _cmd_lqr(args) -> int:
    from . import lqr, plants

    overrides = {}
    if args.gamma is not None:
        overrides["gamma"] = args.gamma
    plant = plants.make(args.name, **overrides)
    horizon = args.horizon
    K, P = lqr.optimal_gain(plant)
    J = lqr.policy_cost(plant, K, args.std, horizon)
    out = {
        "plant": plant.name,
        "gamma": plant.gamma,
        "objective": "infinite-horizon discounted" if horizon is None else f"{horizon} steps, discounted",
        "std": args.std,
        "K_opt": K.tolist(),
        "P_opt": P.tolist(),
        "J_opt": J,
        "spectral_radius_opt": lqr.spectral_radius(plant.A - plant.B @ K),
    }
    if args.k is not None:  # the slides' convention u = k x: K = -k
        args.gain = [-v for v in args.k]
    if args.gain is not None:
        Kg, _ = plant.check_gain(np.array(args.gain, dtype=float))
        Jg = lqr.policy_cost(plant, Kg, args.std, horizon)
        out.update(
            K=Kg.tolist(),
            J=Jg,
            gap=(Jg - J) / J if np.isfinite(Jg) else float("inf"),
            spectral_radius=lqr.spectral_radius(plant.A - plant.B @ Kg),
            gain_error=float(np.linalg.norm(Kg - K) / np.linalg.norm(K)),
        )
    if args.json:
        print(json.dumps(json_safe(out), indent=2, allow_nan=False))  # standard JSON: an infinite cost is null
        return 0
    print(f"plant {plant.name}: n={plant.n}, m={plant.m}, gamma={plant.gamma}; cost {out['objective']}, std={args.std}")
    print(f"K* (u = -K* x) =\n{_fmt(K)}")
    print(f"P* =\n{_fmt(P)}")
    print(f"J* = {J:.8g}" + ("" if np.isfinite(J) else _why_infinite(plant, horizon, args.std)))
    print(f"spectral radius of A - B K* = {out['spectral_radius_opt']:.6g}")
    if args.gain is not None:
        print(f"K =\n{_fmt(out['K'])}")
        print(f"J(K) = {out['J']:.8g}   (J(K) - J*)/J* = {out['gap']:.6g}   ||K - K*||/||K*|| = {out['gain_error']:.6g}")
        print(f"spectral radius of A - B K = {out['spectral_radius']:.6g}" + ("  (unstable)" if out["spectral_radius"] >= 1 else ""))
    return 0


def _why_infinite(plant, horizon, std) -> str:
    if horizon is None and plant.gamma == 1.0 and (np.any(plant.W != 0) or std):
        return ("  (with gamma = 1 the noise adds a cost at every step forever, so the infinite-horizon cost is "
                "infinite: give --horizon T for the T-step cost, or --gamma below 1)")
    return "  (the closed loop does not settle: the cost grows without bound)"


class CLIError(ValueError):
    """A command-line input that cannot be used (printed as one line, exit status 2)."""



STEPS_HELP = """\
--steps N is a budget of environment steps; it sets the number of iterations
to ceil(N / steps per iteration), where one iteration takes
  vpg, npg, trpo (episodic): num_envs x episode length (the plant's horizon T,
      or the Gymnasium time limit max_episode_steps); on Gymnasium tasks, where
      episodes may end early, iterations go on until N steps are spent;
  ac, ppo (and vpg, npg, trpo given n_steps): num_envs x n_steps (n_steps = 1 for ac with "online": true).
Without --steps: on a plant, unless the config sets "iterations", the plant's
default budget (pgcontrol.config.default_budget: 250 T (n m + m) steps, from
100 000 to 2 000 000); elsewhere, or with --resume, the config's "iterations".
With --resume, N is the budget of the whole run (continue a finished run with a
larger N). Every run stops once N environment steps have been taken, or when
the learner's stopping rule ends it.

--config FILE is a JSON object (or a TOML table, FILE ending in .toml) of the
learner's Config fields, e.g. {"num_envs": 32, "kl_bound": 0.01}; unknown keys
are errors that list the valid ones.

Files in the output folder: checkpoint.pt (policy, optimisers, normaliser
statistics, RNG state; see `pgcontrol eval`), progress.csv, history.json.
"""


def _int_at_least(lo: int, what: str):
    """An argparse type: an integer >= ``lo``, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = lo - 1
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be a {what} integer, got {text!r}")
        return v

    return parse


_positive_int = _int_at_least(1, "positive")
_seed = _int_at_least(0, "non-negative")


MAX_CONFIG_BYTES = 2**20


def _read_config_file(path: str) -> dict:
    """The table of a ``--config`` file: JSON, or TOML for a ``.toml`` name."""
    p = Path(path)
    if not p.exists():
        raise CLIError(f"config file {path!r} does not exist")
    if not p.is_file():
        raise CLIError(f"config file {path!r} is not a regular file")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise CLIError(f"config file {path!r} is larger than {MAX_CONFIG_BYTES} bytes")
    data = p.read_bytes()[:MAX_CONFIG_BYTES]
    if p.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            raise CLIError(f"reading the TOML file {path!r} needs Python >= 3.11; write it as JSON") from None
        try:
            values = tomllib.loads(data.decode("utf-8", errors="replace"))
        except tomllib.TOMLDecodeError as exc:
            raise CLIError(f"config file {path!r} is not valid TOML ({exc})") from None
        except RecursionError:
            raise CLIError(f"config file {path!r} nests its values too deeply") from None
    else:
        try:
            values = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CLIError(f"config file {path!r} is not valid JSON ({exc})") from None
        except RecursionError:
            raise CLIError(f"config file {path!r} nests its values too deeply") from None
    if not isinstance(values, dict):
        raise CLIError(f"config file {path!r} must hold an object of Config fields such as "
                       f'{{"num_envs": 32}}; got a {type(values).__name__}')
    return values


def _check_writable(out: Path) -> None:
    """Refuse an output folder that cannot be written, before any training starts (exit 2, not 1)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".pgcontrol-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CLIError(f"cannot write to the output folder {str(out)!r} ({exc.strerror or exc}); choose another "
                       "with --out") from None


def _env_label(env: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in env)


def _cmd_train(args) -> int:
    from .checkpoint import load_checkpoint
    from .config import MAX_THREADS, plan_run, preset, resolve_device
    from .envs import check_env_id, is_plant
    from .evaluate import lq_report
    from .plants import make as make_plant
    from .train import train

    if args.threads is not None and args.threads > MAX_THREADS:  # before any folder is made
        raise CLIError(f"--threads must be an integer from 1 to {MAX_THREADS}; got {args.threads}")
    env = args.env
    plant = make_plant(env) if is_plant(env) else None
    if plant is None:
        # an unknown Gymnasium id, or one with discrete actions, fails here, with one line
        check_env_id(env, env_modules=args.allow_env_module)
    seed = 0 if args.seed is None else args.seed
    out = Path(args.out) if args.out else Path("runs") / f"{args.algo}-{_env_label(env)}-seed{seed}"
    ckpt_path = out / "checkpoint.pt"
    ckpt = None
    if args.resume:
        if not ckpt_path.exists():
            raise CLIError(f"nothing to resume: {str(ckpt_path)!r} does not exist (train without --resume first, "
                           "or give the run's --out)")
        ckpt = load_checkpoint(ckpt_path)
    elif ckpt_path.exists():
        raise CLIError(f"{str(out)!r} already holds a run (checkpoint.pt); continue it with --resume "
                       "or choose another folder with --out")
    values = _read_config_file(args.config) if args.config else {}
    try:
        plan = plan_run(args.algo, env, values=values, source=args.config or "config", steps=args.steps,
                        seed=args.seed, policy_kind=args.policy, checkpoint=ckpt, override=args.override)
    except ValueError as exc:
        raise CLIError(str(exc).replace("the checkpoint", repr(str(ckpt_path)), 1)) from None
    config, seed = plan.config, plan.seed
    if ckpt is None and preset(args.algo, env) is None and not args.show_config:
        print(f"note: no preset for {args.algo} on {env}; using the learner's defaults"
              + (" with your --config" if values else ""), flush=True)
    if args.show_config:
        print(f"{type(config).__name__} for {args.algo} on {env} ({plan.budget}):")
        width = max(map(len, plan.sources))
        for field, origin in plan.sources.items():
            print(f"  {field:<{width}}  {getattr(config, field)!r:<24} {origin}")
        return 0
    device = resolve_device(args.device)
    _check_writable(out)
    done_before = ckpt["iteration"] + 1 if args.resume else 0
    print(f"{'resuming' if args.resume else 'training'} {args.algo} on {env} ({plan.policy_kind} policy, seed "
          f"{seed}, device {device}): {plan.budget}; writing to {out}", flush=True)
    logger = None
    if args.tensorboard:
        from .tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(args.tensorboard, out.name)
    try:
        history = train(args.algo, env, config=config, seed=seed, device=device, out_dir=out, resume=args.resume,
                        progress=True, policy_kind=plan.policy_kind,
                        checkpoint_every=max(1, min(10, config.iterations // 100)), max_steps=plan.max_steps,
                        threads=args.threads, overrides=plan.overrides, callback=logger,
                        env_modules=args.allow_env_module)
    finally:
        if logger is not None:
            logger.close()
    last = history[-1]
    if args.resume and last["iteration"] + 1 >= config.iterations and done_before >= config.iterations:
        print(f"nothing to do: the run already has {done_before} iterations (give a larger --steps to continue)")
    n_done = last["iteration"] + 1
    print(f"iterations: {n_done}{f' of {config.iterations}' if n_done <= config.iterations else ''}, "
          f"environment steps: {last['steps']}")
    rets = [row for row in history if "return_mean" in row]
    if rets:
        r = rets[-1]
        print(f"final mean return: {r['return_mean']:.6g} ± {r.get('return_std', float('nan')):.4g} (std over the "
              f"episodes of iteration {r['iteration']})")
    if plant is not None and "K" in last:
        rep = lq_report(plant, last["K"], last["std"])
        print(f"learned K  = {_fmt(rep['K'])}   std = {_fmt(rep['std'])}")
        print(f"optimal K* = {_fmt(rep['K_opt'])}   (Riccati, pgcontrol.lqr.optimal_gain)")
        print(f"J(K) = {rep['J_K']:.8g}   J* = {rep['J_opt']:.8g}   cost gap (J(K) - J*)/J* = {rep['gap']:.6g}   "
              f"||K - K*||/||K*|| = {rep['gain_error']:.6g}")
    print(f"files: {out / 'checkpoint.pt'}, {out / 'progress.csv'}, {out / 'history.json'}")
    return 0


def _cmd_eval(args) -> int:
    if args.video:
        os.environ.setdefault("MUJOCO_GL", "egl")  # headless MuJoCo rendering; must be set before mujoco loads
    from .checkpoint import load_checkpoint
    from .evaluate import evaluate, record_video, video_env

    ckpt = load_checkpoint(args.checkpoint)
    render_env = video_env(ckpt, args.video, seed=args.seed, env_modules=args.allow_env_module) if args.video else None
    res = evaluate(ckpt, args.episodes, seed=args.seed, env_modules=args.allow_env_module)
    if args.json:
        if render_env is not None:
            res["video"], res["video_frames"] = args.video, record_video(ckpt, args.video, seed=args.seed,
                                                                         env=render_env)
        print(json.dumps(json_safe(res), indent=1, allow_nan=False))  # standard JSON: non-finite values are null
        return 0
    print(f"checkpoint: {res['algo']} on {res['env']}, iteration {res['iteration']}, {res['steps']} environment steps")
    print(f"episode return (undiscounted sum of rewards of one episode, sampled with the stochastic policy), "
          f"{res['episodes']} episodes, seed {res['seed']}: {res['mean']:.6g} ± {res['std']:.4g} "
          f"(std; standard error {res['stderr']:.3g})")
    if res["train_return_mean"] is not None:
        print(f"  the last training iteration's mean episode return: {res['train_return_mean']:.6g}")
    if res["diverged_batches"]:
        print(f"warning: a state left the plant's bound in {res['diverged_batches']} batch(es) of episodes")
    lq = res.get("lq")
    if lq is not None:
        print(f"  its exact expectation, -J_T with gamma = 1 over T = {lq['horizon']} steps: "
              f"{lq['expected_return']:.6g}")
        print(f"K  = {_fmt(lq['K'])}   std = {_fmt(lq['std'])}   (u = -K x + std * noise)")
        print(f"K* = {_fmt(lq['K_opt'])}   (Riccati)")
        print("discounted cost J = E sum_t gamma^t c_t over an infinite horizon (exact, pgcontrol.lqr):")
        print(f"  J(K, std) = {lq['J']:.8g} with the exploration noise;  J(K) = {lq['J_K']:.8g} the gain alone;  "
              f"J* = {lq['J_opt']:.8g} the optimum")
        print(f"  cost gap (J(K) - J*)/J* = {lq['gap']:.6g}")
    if render_env is not None:
        n = record_video(ckpt, args.video, seed=args.seed, env=render_env)
        print(f"video: {args.video} ({n} frames, one episode)")
    return 0


def _cmd_reproduce(args) -> int:
    from . import reproduce

    out = reproduce.default_out(args.quick) if args.out is None else Path(args.out)
    _check_writable(out)
    t0 = time.time()
    try:
        summary = reproduce.run(args.name, quick=args.quick, seeds=args.seeds, out=out, progress=True,
                                workers=args.workers, ray=args.ray)
    except ModuleNotFoundError as exc:
        if exc.name == f"{reproduce.__name__}.{args.name}":
            raise CLIError(f"experiment {args.name!r} is not available in this installation "
                           f"(module {exc.name} is missing)") from None
        raise
    text = reproduce.headline(summary)
    if text:
        print(text)
    files = sorted(p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.stat().st_mtime >= t0 - 1) if out.is_dir() else []
    print(f"files written to {out}: {', '.join(p.name for p in files) if files else '(none)'}")
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import grid_from_toml, run_sweep, summary_table

    specs = grid_from_toml(args.file, max_runs=args.max_runs, env_modules=args.allow_env_module)
    out = Path(args.out) if args.out else Path("sweeps") / Path(args.file).stem
    _check_writable(out)
    backend = f"Ray ({args.ray or 'local'})" if args.ray is not None else f"{args.workers or os.cpu_count()} local worker(s)"
    print(f"sweep {args.file}: {len(specs)} runs on {backend}; runs in {out}", flush=True)
    results = run_sweep(specs, out, workers=args.workers, ray=args.ray, retries=args.retries, progress=True,
                        env_modules=args.allow_env_module)
    csv_text, md = summary_table(results)
    atomic_write(out / "summary.csv", csv_text)
    atomic_write(out / "summary.md", md)
    print(md, end="")
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:
        print(f"failed: {r['folder']}: {r['error']}")
    print(f"summary: {out / 'summary.csv'}, {out / 'summary.md'}")
    return 1 if failed else 0


def _cmd_plot(args) -> int:
    from .plot import plot_runs

    target = Path(args.out)
    if target.is_dir():
        raise CLIError(f"--out {args.out!r} is a folder; give an image file name such as runs.png")
    _check_writable(target.parent if str(target.parent) else Path("."))
    try:
        out = plot_runs(args.runs, args.out)
    except OSError as exc:
        raise CLIError(f"cannot write the figure {args.out!r} ({exc.strerror or exc})") from None
    print(f"figure written to {out}")
    return 0


def _env_module_option(p) -> None:
    p.add_argument("--allow-env-module", action="append", default=[], metavar="MODULE",
                   help="let a Gymnasium 'MODULE:EnvId' environment name import MODULE (runs its code; repeatable). "
                        "Without it such a name is refused: names read from checkpoints and sweep files are data")


def _runner_options(p) -> None:
    p.add_argument("--workers", type=_positive_int, metavar="N", help="local worker processes (default: the cores)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run each run as a Ray task: no ADDRESS starts a local Ray, 'auto' or an address joins a "
                        "cluster (pip install -e \".[ray]\")")


def build_parser() -> argparse.ArgumentParser:
    from .sweep import MAX_RUNS

    parser = _Parser(prog="pgcontrol", description="Policy-gradient control with exact LQ baselines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plants", help="list the plant catalog")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_plants)

    p = sub.add_parser("lqr", help="Riccati-optimal gain and exact costs for a catalog plant")
    p.add_argument("name", help="plant name (see `pgcontrol plants`)")
    p.add_argument("--gamma", type=float, help="override the plant's discount factor")
    p.add_argument("--horizon", type=int, help="evaluate costs over T steps (default: infinite horizon)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gain", type=float, nargs="+", metavar="K", help="a gain to evaluate, m*n numbers row-major (u = -K x)")
    g.add_argument("--k", type=float, nargs="+", metavar="k",
                   help="the same in the slides' convention u = k x (k = -K), e.g. --k -0.9 on scalar-lqg")
    p.add_argument("--std", type=float, default=0.0, help="exploration std of the policy (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_lqr)

    p = sub.add_parser(
        "train", help="train a policy (progress bar, CSV log, checkpoints)",
        description="Train a policy with one of the learners on a plant or a Gymnasium task.",
        epilog=STEPS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", required=True, choices=ALGORITHMS, help="the learner")
    p.add_argument("--env", required=True, metavar="ENV",
                   help="a plant name (see `pgcontrol plants`) or a Gymnasium id such as InvertedPendulum-v5")
    p.add_argument("--steps", type=_positive_int, metavar="N",
                   help="environment-step budget (converted to iterations, see below)")
    p.add_argument("--policy", choices=("linear", "mlp"),
                   help="policy class (default: linear on plants, mlp on Gymnasium tasks)")
    p.add_argument("--seed", type=_seed, metavar="S", help="random seed (default 0)")
    p.add_argument("--device", default="cpu", metavar="{cpu,cuda,auto}",
                   help="torch device (default cpu; auto = cuda when available)")
    p.add_argument("--config", metavar="FILE", help="JSON (or .toml) file of the learner's Config fields")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<algo>-<env>-seed<S>)")
    p.add_argument("--resume", action="store_true", help="continue the run in the output folder (with its own config)")
    p.add_argument("--override", nargs="+", metavar="KEY",
                   help="with --resume and --config: the config keys to change (exactly those in the file)")
    p.add_argument("--tensorboard", metavar="DIR", help="also log the metrics for TensorBoard under DIR/<run name> "
                                                        "(needs the tensorboard extra)")
    p.add_argument("--show-config", action="store_true",
                   help="print the resolved config and where each value comes from (preset, run, user, default), "
                        "then exit")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="torch intra-op threads (default 1: faster for these small tensors, see README)")
    _env_module_option(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "eval", help="evaluate a trained checkpoint (mean ± std return; exact J on LQ plants)",
        description="Rebuild a checkpoint's policy and environment (observation normaliser frozen), run "
                    "episodes with the stochastic policy and print the mean ± std undiscounted return.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.pt, or the run folder holding it")
    p.add_argument("--episodes", type=_positive_int, default=100, metavar="N", help="episodes to run (default 100)")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--video", metavar="FILE",
                   help="also record one episode (rgb_array rendering; .gif, or .mp4 with imageio-ffmpeg); "
                        "plants draw their phase plane, or bars")
    p.add_argument("--json", action="store_true", help="print the results (every episode's return included) as JSON")
    _env_module_option(p)
    p.set_defaults(func=_cmd_eval)

    from .reproduce import EXPERIMENTS

    p = sub.add_parser(
        "reproduce", help="run one of the reproductions behind the figures",
        description="Run one experiment of pgcontrol.reproduce and write its figure and JSON summary.\n\n"
                    + "\n".join(f"  {k}: {v}" for k, v in EXPERIMENTS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME", help=f"one of: {', '.join(EXPERIMENTS)}")
    p.add_argument("--quick", action="store_true", help="the short version (about a minute on two CPU cores)")
    p.add_argument("--seeds", type=_positive_int, metavar="N", help="number of seeds (default: the experiment's)")
    p.add_argument("--out", metavar="DIR", help="output folder (default figures; figures/quick with --quick, so that "
                                                 "the committed full-run files are never overwritten); the runs go "
                                                 "to DIR/runs/NAME, where a rerun finds the finished ones")
    _runner_options(p)
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser(
        "sweep", help="run a grid of training runs (seeds x settings) on local workers or Ray",
        description="Run the grid of a TOML file (algo, env, seeds, steps, policy and a [config] table; every list "
                    "is a dimension) as independent runs, skipping the ones already finished, and write "
                    "summary.csv and summary.md (final gap, gain error, return, steps, time; medians per setting).")
    p.add_argument("file", metavar="FILE.toml")
    _runner_options(p)
    p.add_argument("--retries", type=_int_at_least(0, "non-negative"), default=0, metavar="K",
                   help="try a failed run again up to K times")
    p.add_argument("--out", metavar="DIR", help="folder of the runs and the summary (default sweeps/<file name>)")
    p.add_argument("--max-runs", type=_positive_int, default=MAX_RUNS, metavar="N",
                   help=f"refuse a grid of more than N runs (default {MAX_RUNS})")
    _env_module_option(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser(
        "plot", help="learning curves of runs (and, on plants, the gain against K* and the step response)",
        description="Draw the learning curves of one or several runs (exact cost gap on plants, else the mean "
                    "return, against environment steps); for linear policies on plants also the gain "
                    "against K* and the closed-loop step response beside the LQR loop (python-control).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders written by `pgcontrol train`")
    p.add_argument("--out", default="runs.png", metavar="FILE", help="image file (default runs.png)")
    p.set_defaults(func=_cmd_plot)

    from .labs import cli as lab_cli  # the course lab: list, start, check, grade

    lab_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # every pgcontrol input error subclasses ValueError
        _error(exc)
        return 2
    except KeyboardInterrupt:
        print("pgcontrol: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pgcontrol eval --json | head`: the reader has gone, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second BrokenPipeError when Python flushes stdout at exit
        return 0
    except (RecursionError, MemoryError) as exc:  # an input nested too deeply, or asking for too much memory
        _error(f"the input is too deeply nested or too large ({type(exc).__name__})")
        return 2
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, TrainingDiverged):
            _error(f"training diverged: {exc}")
            return 1
        if type(exc).__module__.startswith("gymnasium"):  # e.g. gymnasium.error.NameNotFound
            _error(exc)
            return 2
        if isinstance(exc, OSError):  # a full disk, a folder that went away, ...
            _error(exc)
            return 1
        if os.environ.get("PGCONTROL_DEBUG"):
            raise
        _error(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]} (an unexpected error; "
               "set PGCONTROL_DEBUG=1 to see where it happened)", prefix="pgcontrol: internal error")
        return 1


def _error(exc, prefix: str = "pgcontrol: error") -> None:
    text = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{prefix}: {text}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
