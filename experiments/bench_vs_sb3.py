"""pgcontrol PPO against Stable-Baselines3 PPO on MuJoCo tasks, identical settings, side by side in one run.

Both sides get: the same env ids (Gymnasium v5), ``--num-envs`` environments,
n_steps 2048 per environment, minibatches of 64, 10 epochs, lr 3e-4 (no
annealing: SB3's default; pgcontrol's ``anneal_lr`` is switched off), γ 0.99,
λ 0.95, clip 0.2, no value clipping, value coefficient 0.5, no entropy bonus,
gradient clipping 0.5, advantages normalised per minibatch, tanh 64-64
policy and critic, observation and reward normalisation (pgcontrol:
Gymnasium's wrappers; SB3: ``VecNormalize``), one torch thread each, the same
seeds; the runs alternate (pgcontrol, SB3, pgcontrol, ...). It prints the
end-to-end steps/s of each and their ratio, the mean return at the end
(SB3: the last 10 episodes; pgcontrol: the episodes of its last iteration),
and a line ``ratio: X`` (pgcontrol / SB3 steps/s, PPO, the first env) for
scripts. The hyperparameters are printed with the results and written to
the JSON (``--out``).

Needs the bench extra: ``pip install -e ".[bench]"`` (after torch; it does not change it).

Usage::

    python experiments/bench_vs_sb3.py --quick                 # InvertedPendulum-v5, 1 seed, 20 000 steps
    python experiments/bench_vs_sb3.py [--envs HalfCheetah-v5 Hopper-v5] [--steps 1000000] [--seeds 3]
                                       [--num-envs 1] [--out figures/bench_vs_sb3.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# this folder holds mujoco.py, which must not shadow the mujoco package when run as a script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

HYPER = dict(n_steps=2048, batch_size=64, n_epochs=10, lr=3e-4, gamma=0.99, gae_lambda=0.95, clip=0.2,
             vf_coef=0.5, ent_coef=0.0, max_grad_norm=0.5, net="tanh 64-64", normalize="obs and reward")


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="InvertedPendulum-v5, 1 seed, 20 000 steps")
    ap.add_argument("--envs", nargs="+", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--num-envs", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON of every run (default: none)")
    args = ap.parse_args(argv)
    args.envs = args.envs or (["InvertedPendulum-v5"] if args.quick else ["HalfCheetah-v5", "Hopper-v5"])
    args.steps = args.steps or (20_000 if args.quick else 1_000_000)
    args.seeds = args.seeds or (1 if args.quick else 3)
    return args


def run_pgcontrol(env_id: str, steps: int, seed: int, num_envs: int) -> dict:
    from pgcontrol.algos.ppo import PPOConfig
    from pgcontrol.train import train

    per = HYPER["n_steps"] * num_envs
    cfg = PPOConfig(num_envs=num_envs, n_steps=HYPER["n_steps"], iterations=max(1, -(-steps // per)),
                    lr=HYPER["lr"], anneal_lr=False, update_epochs=HYPER["n_epochs"],
                    num_minibatches=max(1, per // HYPER["batch_size"]), gamma=HYPER["gamma"],
                    lam=HYPER["gae_lambda"], clip_coef=HYPER["clip"], clip_vloss=False, vf_coef=HYPER["vf_coef"],
                    ent_coef=HYPER["ent_coef"], max_grad_norm=HYPER["max_grad_norm"], norm_adv=True,
                    normalize_obs=True, normalize_reward=True)
    t = time.perf_counter()
    hist = train("ppo", env_id, config=cfg, seed=seed, policy_kind="mlp", progress=False, threads=1, max_steps=steps)
    seconds = time.perf_counter() - t
    last = next((r for r in reversed(hist) if "return_mean" in r), {})
    return {"steps": hist[-1]["steps"], "seconds": seconds, "return": last.get("return_mean"),
            "curve": [[r["steps"], r["return_mean"]] for r in hist if "return_mean" in r]}


def run_sb3(env_id: str, steps: int, seed: int, num_envs: int) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env(env_id, n_envs=num_envs, seed=seed), gamma=HYPER["gamma"])
    model = PPO("MlpPolicy", env, n_steps=HYPER["n_steps"], batch_size=HYPER["batch_size"], n_epochs=HYPER["n_epochs"],
                learning_rate=HYPER["lr"], gamma=HYPER["gamma"], gae_lambda=HYPER["gae_lambda"],
                clip_range=HYPER["clip"], vf_coef=HYPER["vf_coef"], ent_coef=HYPER["ent_coef"],
                max_grad_norm=HYPER["max_grad_norm"], seed=seed, device="cpu", verbose=0)
    t = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - t
    eps = [e["r"] for e in model.ep_info_buffer][-10:]
    return {"steps": int(model.num_timesteps), "seconds": seconds, "return": float(sum(eps) / len(eps)) if eps else None}


def report(results: dict) -> list[str]:
    """The printed lines: per env, steps/s and returns of both sides, their ratio; last, ``ratio: X``."""
    lines, first_ratio = [], None
    for env_id, sides in results.items():
        rate = {k: sum(r["steps"] for r in v) / sum(r["seconds"] for r in v) for k, v in sides.items() if v}
        ret = {k: [r["return"] for r in v] for k, v in sides.items()}
        ratio = rate["pgcontrol"] / rate["sb3"] if {"pgcontrol", "sb3"} <= set(rate) else float("nan")
        first_ratio = ratio if first_ratio is None else first_ratio
        lines.append(f"{env_id}: pgcontrol {rate.get('pgcontrol', float('nan')):.0f} steps/s, "
                     f"SB3 {rate.get('sb3', float('nan')):.0f} steps/s (ratio {ratio:.2f}); final return "
                     f"pgcontrol {_fmt(ret.get('pgcontrol'))}, SB3 {_fmt(ret.get('sb3'))}")
    lines.append(f"ratio: {first_ratio:.3f}")
    return lines


def _fmt(values) -> str:
    v = [x for x in (values or []) if x is not None]
    if not v:
        return "—"
    mean = sum(v) / len(v)
    std = (sum((x - mean) ** 2 for x in v) / max(len(v) - 1, 1)) ** 0.5
    return f"{mean:.1f} ± {std:.1f} (n = {len(v)})"


def main(argv=None) -> dict:
    args = parse(argv)
    print(f"settings: {json.dumps(HYPER)}, num_envs {args.num_envs}, {args.steps} steps, {args.seeds} seed(s)",
          flush=True)
    results = {e: {"pgcontrol": [], "sb3": []} for e in args.envs}
    for env_id in args.envs:
        for seed in range(args.seeds):
            for side, fn in (("pgcontrol", run_pgcontrol), ("sb3", run_sb3)):  # alternate
                r = fn(env_id, args.steps, seed, args.num_envs)
                results[env_id][side].append(r)
                print(f"  {env_id} seed {seed} {side}: {r['steps'] / r['seconds']:.0f} steps/s, return {r['return']}",
                      flush=True)
    for line in report(results):
        print(line)
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": HYPER, "num_envs": args.num_envs, "steps": args.steps,
                                              "results": results}, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
