"""Every learner's default on every state-feedback catalog plant and on random plants, from two starts.

For each (plant, start, learner, seed): ``train(learner, plant, policy=<linear, K0, σ0>, seed=seed,
max_steps=CAP)`` with no config (the learner's defaults), then the exact cost gap of the final gain
(:func:`pgcontrol.evaluate.lq_report`). The starts are the documented default
(:func:`pgcontrol.policies.default_initial_gain`) and a far stabilising one
(:func:`pgcontrol.policies.far_initial_gain`, the LQR gain with R₀ = 100 R). With the ``bench`` extra,
SB3 PPO and A2C and sb3-contrib TRPO run with a linear policy from the same K0 and σ0 with the same budget
and SB3's defaults otherwise (``experiments/sb3_linear.py``) where ``--learners`` names them.

Per learner the table gives the fraction of runs below 1 % gap, the median and 90th-percentile final
gap, the fraction ending worse than their start (final gap > start gap and >= 0.1 %), divergences, and
the median environment steps used.

Each run is one JSON line in ``--out`` (default ``figures/bench_plants.jsonl``); runs already there are
skipped, so an interrupted run resumes and runs of several processes (e.g. ``--learners npg``) merge.

    python experiments/bench_plants.py --quick            # 6 random plants × 1 seed, default start
    python experiments/bench_plants.py                    # the full table
    python experiments/bench_plants.py --table            # print the table of what --out holds

``--sample N`` runs (or tabulates) only N (plant, start, seed) keys drawn at random from that grid
(:func:`sample_keys`, a fixed stream): the SB3 learners take 6–25 min a run, so they are compared with
pgcontrol's on a sample. ``--also F ...`` reads more results files (before ``--out``, which wins where
both hold a run): the table of several learners whose latest runs are in different files.
``--per-key`` adds a line per key: its start gap and every learner's final gap.

    python experiments/bench_plants.py --learners sb3-trpo sb3-ppo --sample 12 --out F
    python experiments/bench_plants.py --table --sample 12 --learners ppo sb3-trpo --out F --also G
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pgcontrol import plants as P
from pgcontrol.errors import TrainingDiverged
from pgcontrol.evaluate import lq_report
from pgcontrol.names import ALGORITHMS
from pgcontrol.policies import build_policy, default_initial_gain, default_std0, far_initial_gain
from pgcontrol.train import train

CATALOG = ("scalar-lqg", "double-integrator", "laplacian-3", "cartpole-linearized", "mass-spring-damper")
LEARNERS = ALGORITHMS  # pgcontrol.names: the one list of the learners
SB3 = ("sb3-ppo", "sb3-a2c", "sb3-trpo")
CAP = 1_000_000


def random_specs(count: int = 20) -> list[tuple[int, int, int]]:
    """(n, m, seed) of the random plants: n in 2–8, m in 1–min(4, n), drawn once from a fixed stream."""
    rng = np.random.default_rng(2026)
    out = []
    for i in range(count):
        n = int(rng.integers(2, 9))
        m = int(rng.integers(1, min(4, n) + 1))
        out.append((n, m, 100 + i))
    return out


SAMPLE_SEED = 20261207


def sample_keys(count: int, keys: list[str], starts: list[str], seeds: list[int]) -> list[tuple[str, str, int]]:
    """``count`` (plant, start, seed) keys drawn without replacement from the grid ``keys × starts × seeds``.

    The draw is a fixed stream (``default_rng(SAMPLE_SEED)``) over the grid in that order, so the same
    arguments give the same sample; the keys come in the order drawn.
    """
    grid = [(k, s, sd) for k in keys for s in starts for sd in seeds]
    if not 1 <= count <= len(grid):
        raise ValueError(f"--sample must be an integer from 1 to the grid's {len(grid)} keys; got {count}")
    idx = np.random.default_rng(SAMPLE_SEED).choice(len(grid), count, replace=False)
    return [grid[i] for i in idx]


def plant_by_key(key: str):
    if key.startswith("random-"):
        n, m, seed = (int(v) for v in key.removeprefix("random-").split("-"))
        return P.random(n, m, seed)
    return P.make(key)


def plant_keys(quick: bool) -> list[str]:
    rnd = [f"random-{n}-{m}-{s}" for n, m, s in random_specs()]
    return rnd[:6] if quick else list(CATALOG) + rnd


def start_gain(plant, start: str) -> np.ndarray:
    return default_initial_gain(plant) if start == "default" else far_initial_gain(plant)


def run_one(key: str, start: str, learner: str, seed: int, cap: int) -> dict:
    plant = plant_by_key(key)
    K0 = start_gain(plant, start)
    pol = build_policy("linear", plant.n, plant.m, plant=plant, K0=K0, std0=default_std0(plant))
    std0 = pol.std.copy()
    gap0 = lq_report(plant, K0, std0, expected_return=False)["gap"]
    t0 = time.perf_counter()
    row = {"plant": key, "n": plant.n, "m": plant.m, "start": start, "learner": learner, "seed": seed, "cap": cap,
           "start_gap": gap0}
    if learner.startswith("sb3-"):
        row.update(_run_sb3(plant, learner, K0, std0, seed, cap))
    else:
        try:
            hist = train(learner, plant, policy=pol, seed=seed, max_steps=cap, progress=False, threads=1)
            row.update(diverged=False, steps=hist[-1]["steps"], stop_reason=hist[-1].get("stop_reason"),
                       rejected=sum(1 for h in hist if "rejected" in h))
            row["final_gap"] = lq_report(plant, pol.K, pol.std, expected_return=False)["gap"]
        except TrainingDiverged as exc:
            row.update(diverged=True, final_gap=float("inf"), steps=None, error=str(exc)[:200])
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def _run_sb3(plant, learner, K0, std0, seed, cap) -> dict:  # pragma: no cover - needs the bench extra
    import sb3_linear  # experiments/sb3_linear.py, next to this file

    K, diverged, steps = sb3_linear.linear_run(learner.removeprefix("sb3-"), plant, K0, std0, seed, cap)
    gap = float("inf") if diverged else lq_report(plant, K, std0, expected_return=False)["gap"]
    return {"diverged": bool(diverged), "final_gap": gap, "steps": steps}


def percentile(values, q: float) -> float:
    """NumPy's (linear) percentile, except that a quantile reaching a diverged run's infinite gap is inf, not nan."""
    s = np.sort(np.asarray(values, float))
    h = (len(s) - 1) * q / 100
    lo, hi = int(np.floor(h)), int(np.ceil(h))
    if lo == hi or s[lo] == s[hi]:
        return float(s[lo])
    return float(s[lo] + (h - lo) * (s[hi] - s[lo]))  # inf where s[hi] is inf and s[lo] is not


def table(rows: list[dict]) -> str:
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["learner"], []).append(r)
    lines = ["| learner | runs | < 1 % | median gap | 90th pct gap | worse than start | diverged | median steps |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    order = [k for k in LEARNERS + SB3 if k in by]
    for k in order:
        rs = by[k]
        g = np.array([r["final_gap"] for r in rs], float)
        worse = sum(1 for r in rs if r["final_gap"] > r["start_gap"] and r["final_gap"] >= 1e-3)
        steps = [r["steps"] for r in rs if r.get("steps") is not None]
        lines.append(f"| {k} | {len(rs)} | {np.mean(g < 0.01):.0%} | {np.median(g):.3%} | "
                     f"{percentile(g, 90):.3%} | {worse}/{len(rs)} | {sum(r['diverged'] for r in rs)} | "
                     f"{int(np.median(steps)) if steps else '-'} |")
    return "\n".join(lines)


def per_key_table(rows: list[dict]) -> str:
    """One line per (plant, start, seed): its start gap and each learner's final gap (``-``: not run)."""
    learners = [k for k in LEARNERS + SB3 if any(r["learner"] == k for r in rows)]
    start_gaps = {(r["plant"], r["start"], r["seed"]): r["start_gap"] for r in rows}  # keys in first-seen order
    gaps = {(r["plant"], r["start"], r["seed"], r["learner"]): r for r in rows}
    lines = ["| plant | start | seed | start gap | " + " | ".join(learners) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in learners) + " |"]
    for k, start_gap in start_gaps.items():
        cells = [f"{gaps[k + (lr,)]['final_gap']:.3%}" if k + (lr,) in gaps else "-" for lr in learners]
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {start_gap:.3%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 random plants, seed 0, default start")
    ap.add_argument("--plants", nargs="*", help="plant keys (catalog names or random-n-m-seed)")
    ap.add_argument("--learners", nargs="*", default=list(LEARNERS))
    ap.add_argument("--seeds", nargs="*", type=int)
    ap.add_argument("--starts", nargs="*", default=None)
    ap.add_argument("--cap", type=int, default=CAP, help="env-step budget per run (default 1 M)")
    ap.add_argument("--sample", type=int, help="only this many (plant, start, seed) keys, drawn by sample_keys()")
    ap.add_argument("--out", default="figures/bench_plants.jsonl")
    ap.add_argument("--also", nargs="*", default=[], help="more results files to read (--out wins on a clash)")
    ap.add_argument("--json", help="also write the rows of this invocation's table to this JSON file")
    ap.add_argument("--table", action="store_true", help="only print the table of what --out holds")
    ap.add_argument("--per-key", action="store_true", help="also print each key's start gap and final gaps")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    keys = args.plants or plant_keys(args.quick)
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    starts = args.starts or (["default"] if args.quick else ["default", "far"])
    sample = None
    if args.sample is not None:
        try:
            sample = sample_keys(args.sample, keys, starts, seeds)
        except ValueError as exc:
            ap.error(str(exc))  # one line, exit 2, before anything is written
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    for path in [Path(f) for f in args.also] + [out]:
        if path.exists():
            for line in path.read_text().splitlines():
                r = json.loads(line)
                done[(r["plant"], r["start"], r["learner"], r["seed"], r["cap"])] = r
    if sample is not None:
        wanted = [(k, s, lr, sd) for k, s, sd in sample for lr in args.learners]
    else:
        wanted = [(k, s, lr, sd) for k in keys for s in starts for lr in args.learners for sd in seeds]
    rows = []
    for i, (k, s, lr, sd) in enumerate(wanted):
        key = (k, s, lr, sd, args.cap)
        if key not in done and not args.table:
            r = run_one(k, s, lr, sd, args.cap)
            with out.open("a") as f:
                f.write(json.dumps(r) + "\n")
            done[key] = r
            print(f"[{i + 1}/{len(wanted)}] {k} {s} {lr} seed {sd}: gap {r['start_gap']:.4g} -> "
                  f"{r['final_gap']:.4g} in {r['steps']} steps ({r.get('stop_reason')}, {r['seconds']} s)", flush=True)
        if key in done:
            rows.append(done[key])
    print(table(rows))
    for start in sorted({r["start"] for r in rows}):
        print(f"\nstart: {start}\n" + table([r for r in rows if r["start"] == start]))
    if args.per_key:
        print("\n" + per_key_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
