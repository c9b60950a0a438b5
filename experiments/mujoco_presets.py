"""The shipped MuJoCo presets at their full budgets: the final return of each seed, and mean ± std.

    python experiments/mujoco_presets.py --out figures/mujoco_presets.json   # PPO on HalfCheetah-v5 and Hopper-v5,
                                                                             # seeds 0-2, 1 M steps (~1 h, 2 workers)
    python experiments/mujoco_presets.py --runs ppo:InvertedPendulum-v5 --steps 150000
    python experiments/mujoco_presets.py --quick                             # InvertedPendulum-v5, 1 seed, 5 000 steps
    python experiments/mujoco_presets.py --runs ppo:Hopper-v5 --set anneal_lr=true log_std0=-0.5   # a variant

Every run is ``train(algo, env)`` with the preset of ``pgcontrol.config.PRESETS``
and nothing else (``policy_kind="mlp"``), a run of a ``pgcontrol.sweep`` in
``--dir`` (an interrupted invocation resumes where it stopped). The final
return is the mean return of the last 10 episodes, as in
``experiments/bench_vs_sb3.py``; the JSON keeps every run's learning curve.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

# experiments/mujoco.py would shadow the mujoco package (here and in the spawned workers)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from pgcontrol.reproduce.mujoco import last_episodes_mean
from pgcontrol.sweep import RunSpec, run_sweep

DEFAULT_RUNS = ["ppo:HalfCheetah-v5", "ppo:Hopper-v5"]


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, metavar="ALGO:ENV",
                   help=f"(algorithm, environment) presets to run; default: {' '.join(DEFAULT_RUNS)}")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None, help="environment steps per run (default: the preset's)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dir", default="runs/mujoco_presets", help="the sweep's folder (finished runs are reused)")
    p.add_argument("--out", default=None, help="JSON of every run; default: none")
    p.add_argument("--quick", action="store_true", help="InvertedPendulum-v5, seed 0, 5 000 steps")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="config fields over the presets, VALUE in JSON (anneal_lr=true hidden=[256,256])")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.seeds, args.steps = ["ppo:InvertedPendulum-v5"], [0], 5000
    for run in args.runs:
        if run.count(":") != 1:
            p.error(f"--runs takes ALGO:ENV such as ppo:Hopper-v5; got {run!r}")
    overrides = []
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key:
            p.error(f"--set takes FIELD=VALUE such as anneal_lr=true; got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text  # a bare string such as activation=relu
        overrides.append((key, tuple(value) if isinstance(value, list) else value))
    args.overrides = tuple(sorted(overrides))
    return args


def specs(args) -> list[RunSpec]:
    return [RunSpec(algo, env, overrides=args.overrides, seed=seed, steps=args.steps, policy="mlp")
            for algo, env in (run.split(":") for run in args.runs) for seed in args.seeds]


def summarise(results: list[dict]) -> dict:
    """``{"ALGO ENV": {"seeds": [...], "returns": [...], "mean", "std", "steps", "steps_per_s", "curves"}}``."""
    table: dict[str, dict] = {}
    for r in results:
        if r["status"] != "ok":
            raise SystemExit(f"{r['folder']}: {r['status']} ({r.get('error')})")
        rows = [h for h in r["history"] if "return_mean" in h]
        curve = [[h["steps"], h["return_mean"], h["episodes"]] for h in rows]
        entry = table.setdefault(f"{r['spec']['algo']} {r['spec']['env']}",
                                 {"seeds": [], "returns": [], "steps": [], "seconds": [], "curves": []})
        entry["seeds"].append(r["spec"]["seed"])
        entry["returns"].append(last_episodes_mean(curve))
        entry["steps"].append(r["history"][-1]["steps"])
        entry["seconds"].append(r["seconds"])
        entry["curves"].append(curve)
    for entry in table.values():
        rets = entry["returns"]
        entry["mean"] = statistics.fmean(rets)
        entry["std"] = statistics.stdev(rets) if len(rets) > 1 else 0.0
        entry["steps_per_s"] = sum(entry["steps"]) / sum(entry["seconds"])
    return table


def report(table: dict) -> list[str]:
    lines = [f"{'preset':28s} {'steps':>9s} {'steps/s':>8s}  final return (last 10 episodes) per seed -> mean ± std"]
    for name, e in table.items():
        seeds = ", ".join(f"{s}: {r:.0f}" for s, r in zip(e["seeds"], e["returns"]))
        lines.append(f"{name:28s} {max(e['steps']):9d} {e['steps_per_s']:8.0f}  {seeds} -> "
                     f"{e['mean']:.0f} ± {e['std']:.0f}")
    return lines


def main(argv=None) -> dict:
    args = parse(argv)
    results = run_sweep(specs(args), args.dir, workers=args.workers)
    table = summarise(results)
    print("\n".join(report(table)))
    if args.out:
        from pgcontrol.files import atomic_write

        command = "python experiments/mujoco_presets.py " + " ".join(sys.argv[1:] if argv is None else argv)
        atomic_write(args.out, json.dumps({"command": command.strip(), "results": table}, indent=1) + "\n")
    return table


if __name__ == "__main__":
    main()
