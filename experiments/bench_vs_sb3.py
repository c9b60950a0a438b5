"""pgcontrol PPO and TRPO against Stable-Baselines3 PPO and sb3-contrib TRPO on MuJoCo, side by side in one run.

PPO, both sides: the same env ids (Gymnasium v5), ``--num-envs``
environments, n_steps 2048 per environment, minibatches of 64, 10 epochs,
lr 3e-4 (no annealing: SB3's default; pgcontrol's ``anneal_lr`` is switched
off), γ 0.99, λ 0.95, clip 0.2, no value clipping, value coefficient 0.5 on
SB3's value loss, the mean squared error (pgcontrol's value loss is half of
it, (4.20) as CleanRL writes it, so its ``vf_coef`` is 1.0), no
entropy bonus, gradient clipping 0.5, advantages normalised per minibatch,
tanh 64-64 policy and critic, observation and reward normalisation with
the normalised values clipped to ±10 (SB3: ``VecNormalize``, which clips by
default; pgcontrol: Gymnasium's wrappers, which do not, and
``normalize_clip=10``; two differences remain: Gymnasium's
``NormalizeReward`` carries its running discounted return across a
truncation, where ``VecNormalize`` restarts it at every episode end; and
Gymnasium's next-step autoreset costs pgcontrol's collector one masked step,
not counted in the budget, per episode end), and actions
clipped to the action space before the env sees them (SB3 does this by
default; pgcontrol's ``clip_actions``, off by default, is switched on here:
HalfCheetah charges its control cost on the action it receives).

TRPO (``--algos trpo``), sb3-contrib's defaults on both sides: KL bound
0.01 and conjugate-gradient damping 0.1, both per action dimension
(sb3-contrib averages its KL over the action dimensions as well as the
states, so pgcontrol, whose KL is that of the joint action distribution,
takes 0.01 · act_dim and 0.1 · act_dim: see :func:`pgcontrol_config`), 15
conjugate-gradient iterations, backtracking by 0.8
up to 10 times, GAE λ 0.95, γ 0.99, 2048 steps of each env per update
(pgcontrol's ``n_steps``; its default is whole episodes), a tanh 64-64 critic
trained by Adam (lr 1e-3) for 10 epochs of minibatches of 128, observation
and reward normalisation clipped to ±10 as for PPO, and states weighted equally in the gradient, the
KL and the Fisher (sb3-contrib's sample means; pgcontrol's
``discount_weighting``, on by default for the discounted objective of the LQ
plants, is switched off here), the critic fitted to the λ-returns and the
advantages standardised over the batch (sb3-contrib's; pgcontrol's
``value_target="lambda"`` and ``normalize_advantage``, off by default).

Both sides use one torch thread and the same seeds, and the runs alternate
(pgcontrol, SB3, pgcontrol, ...). It prints the end-to-end steps/s of each
and their ratio, the mean return of the last 10 episodes of each run (mean
± std over seeds, and Welch's t-test when there are ≥ 2 seeds a side), and
a line ``ratio: X`` (pgcontrol / SB3 steps/s, the first algorithm on the
first env) for scripts. ``--out FILE.json`` writes every run with its
learning curve (every episode's return), and the figure next to it
(``FILE.png``: mean and min–max over seeds of both sides).

Needs the bench extra: ``pip install -e ".[bench]"`` (after torch; it does not change it).

Usage::

    python experiments/bench_vs_sb3.py --quick                 # InvertedPendulum-v5, PPO and TRPO, 1 seed, 20 000 steps
    python experiments/bench_vs_sb3.py [--algos ppo trpo] [--envs HalfCheetah-v5 Hopper-v5] [--steps 1000000]
                                       [--seeds 3] [--num-envs 1] [--out figures/bench_vs_sb3.json]
    python experiments/bench_vs_sb3.py --plot figures/bench_vs_sb3.json     # redraw the figure from a JSON
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

# this folder holds mujoco.py, which must not shadow the mujoco package when run as a script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

HYPER = {
    "ppo": dict(n_steps=2048, batch_size=64, n_epochs=10, lr=3e-4, gamma=0.99, gae_lambda=0.95, clip=0.2,
                vf_coef=0.5, ent_coef=0.0, max_grad_norm=0.5, net="tanh 64-64",
                normalize="obs and reward, clipped to ±10"),
    "trpo": dict(n_steps=2048, target_kl=0.01, cg_iters=15, cg_damping=0.1,
                 kl="mean over states and action dims (pgcontrol: joint KL, so target_kl and cg_damping × act_dim)",
                 backtrack=0.8, max_backtracks=10, gamma=0.99, gae_lambda=0.95, critic_lr=1e-3, critic_epochs=10,
                 critic_batch=128, critic_target="λ-returns", normalize_advantage=True, net="tanh 64-64",
                 normalize="obs and reward, clipped to ±10"),
}
NORMALIZE_CLIP = 10.0  # both sides: VecNormalize's clip_obs and clip_reward, pgcontrol's normalize_clip
from pgcontrol.reproduce.mujoco import LAST, last_episodes_mean, rolling_return  # noqa: E402  (the one home of both)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="InvertedPendulum-v5, PPO and TRPO, 1 seed, 20 000 steps")
    ap.add_argument("--algos", nargs="+", choices=sorted(HYPER), default=None)
    ap.add_argument("--envs", nargs="+", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--num-envs", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON of every run (and FILE.png, the figure); default: none")
    ap.add_argument("--plot", metavar="JSON", default=None, help="only redraw the figure of an earlier --out")
    ap.add_argument("--sides", nargs="+", choices=["pgcontrol", "sb3"], default=["pgcontrol", "sb3"],
                    help="run only one library (to redo one side after a change; then --merge)")
    ap.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                    help="only merge earlier --out files into --out (a later file's runs of a side replace an "
                         "earlier file's), print the report and draw the figure")
    args = ap.parse_args(argv)
    args.algos = args.algos or (["ppo", "trpo"] if args.quick else ["ppo"])
    args.envs = args.envs or (["InvertedPendulum-v5"] if args.quick else ["HalfCheetah-v5", "Hopper-v5"])
    args.steps = args.steps or (20_000 if args.quick else 1_000_000)
    args.seeds = args.seeds or (1 if args.quick else 3)
    return args


# ------------------------------------------------------------------ the two sides


def pgcontrol_config(algo: str, steps: int, num_envs: int, act_dim: int):
    """pgcontrol's config of ``algo`` with the settings of :data:`HYPER` (``act_dim``: the env's action dimension).

    PPO's value coefficient is ``2 · vf_coef``: SB3's value loss is the mean
    squared error, pgcontrol's ``½ mean (V − Ĝ)²`` (4.20), and the
    coefficient matters beyond Adam's scale invariance because the gradient
    norm that is clipped includes the critic's gradient. With it, pgcontrol's
    update is SB3's on the same weights and batch (``tests/test_bench_vs_sb3.py``).

    TRPO's KL bound is ``target_kl · act_dim`` and its damping ``cg_damping ·
    act_dim``: sb3-contrib's KL is a mean over the batch *and the action
    dimensions* (its ``kl_divergence`` of two diagonal Gaussians is taken per
    dimension, of ``torch.distributions.Normal``, before ``.mean()``). Its
    Fisher is therefore F / act_dim, the damping is added to that, and its
    ``target_kl`` 0.01 bounds the KL of the joint action distribution at
    0.01 · act_dim. pgcontrol's KL is the joint one (6.34), so this side is the
    one changed: solving (F + λ·m I) x = m ĝ is solving (F/m + λ I) x = ĝ, and
    with both scaled the two libraries take the same step (checked on one
    update from the same weights and batch: the same direction and length to
    float precision, ``tests/test_bench_vs_sb3.py``). One difference is left:
    sb3-contrib's line search tests KL(π_θ ‖ π_old), pgcontrol's KL(π_old ‖ π_θ)
    (6.34), the same to second order in the step.
    """
    if algo == "ppo":
        from pgcontrol.algos.ppo import PPOConfig

        h = HYPER["ppo"]
        per = h["n_steps"] * num_envs
        return PPOConfig(num_envs=num_envs, n_steps=h["n_steps"], iterations=max(1, -(-steps // per)), lr=h["lr"],
                         anneal_lr=False, update_epochs=h["n_epochs"], num_minibatches=max(1, per // h["batch_size"]),
                         gamma=h["gamma"], lam=h["gae_lambda"], clip_coef=h["clip"], clip_vloss=False,
                         vf_coef=2 * h["vf_coef"], ent_coef=h["ent_coef"], max_grad_norm=h["max_grad_norm"], norm_adv=True,
                         normalize_obs=True, normalize_reward=True, normalize_clip=NORMALIZE_CLIP,
                         clip_actions=True)
    from pgcontrol.algos.npg import NPGConfig

    h = HYPER["trpo"]
    return NPGConfig(num_envs=num_envs, n_steps=h["n_steps"], iterations=10**9, kl_bound=h["target_kl"] * act_dim,
                     fisher="cg", cg_iters=h["cg_iters"], damping=h["cg_damping"] * act_dim, line_search=True,
                     backtrack_coef=h["backtrack"], max_backtracks=h["max_backtracks"], gamma=h["gamma"],
                     estimator="gae", lam=h["gae_lambda"], discount_weighting=False, baseline="value", critic="mlp",
                     critic_lr=h["critic_lr"],
                     critic_epochs=h["critic_epochs"], critic_minibatch=h["critic_batch"], value_target="lambda",
                     normalize_advantage=h["normalize_advantage"], normalize_obs=True, normalize_reward=True,
                     normalize_clip=NORMALIZE_CLIP, clip_actions=True)


def run_pgcontrol(algo: str, env_id: str, steps: int, seed: int, num_envs: int) -> dict:
    import gymnasium as gym

    from pgcontrol.train import train

    with gym.make(env_id) as env:  # only for its action dimension (TRPO's per-dimension KL and damping)
        act_dim = int(env.action_space.shape[0])
    t = time.perf_counter()
    hist = train(algo, env_id, config=pgcontrol_config(algo, steps, num_envs, act_dim), seed=seed, policy_kind="mlp",
                 progress=False, threads=1, max_steps=steps)
    seconds = time.perf_counter() - t
    rows = [r for r in hist if "return_mean" in r]
    # the curve: (steps at the end of the iteration, mean return of its episodes, how many ended)
    curve = [[r["steps"], r["return_mean"], r["episodes"]] for r in rows]
    return {"steps": hist[-1]["steps"], "seconds": seconds, "return": last_episodes_mean(curve), "curve": curve}


def run_sb3(algo: str, env_id: str, steps: int, seed: int, num_envs: int) -> dict:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    class Episodes(BaseCallback):
        """Every finished episode's (timestep, return), from the Monitor wrapper's infos."""

        def __init__(self):
            super().__init__()
            self.curve = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.curve.append([int(self.num_timesteps), float(info["episode"]["r"]), 1])
            return True

    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env(env_id, n_envs=num_envs, seed=seed), gamma=HYPER[algo]["gamma"],
                       clip_obs=NORMALIZE_CLIP, clip_reward=NORMALIZE_CLIP)
    if algo == "ppo":
        from stable_baselines3 import PPO

        h = HYPER["ppo"]
        model = PPO("MlpPolicy", env, n_steps=h["n_steps"], batch_size=h["batch_size"], n_epochs=h["n_epochs"],
                    learning_rate=h["lr"], gamma=h["gamma"], gae_lambda=h["gae_lambda"], clip_range=h["clip"],
                    vf_coef=h["vf_coef"], ent_coef=h["ent_coef"], max_grad_norm=h["max_grad_norm"], seed=seed,
                    device="cpu", verbose=0)
    else:
        from sb3_contrib import TRPO

        h = HYPER["trpo"]
        model = TRPO("MlpPolicy", env, n_steps=h["n_steps"], batch_size=h["critic_batch"],
                     learning_rate=h["critic_lr"], n_critic_updates=h["critic_epochs"], cg_max_steps=h["cg_iters"],
                     cg_damping=h["cg_damping"], line_search_shrinking_factor=h["backtrack"],
                     line_search_max_iter=h["max_backtracks"], gamma=h["gamma"], gae_lambda=h["gae_lambda"],
                     target_kl=h["target_kl"], normalize_advantage=h["normalize_advantage"], seed=seed, device="cpu",
                     verbose=0)
    cb = Episodes()
    t = time.perf_counter()
    model.learn(total_timesteps=steps, callback=cb)
    seconds = time.perf_counter() - t
    eps = [r for _, r, _ in cb.curve][-LAST:]
    return {"steps": int(model.num_timesteps), "seconds": seconds, "return": sum(eps) / len(eps) if eps else None,
            "curve": cb.curve}


# ------------------------------------------------------------------ report and figure


def welch(a, b) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances), or None with fewer than 2 values a side."""
    a, b = [x for x in a if x is not None], [x for x in b if x is not None]
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import ttest_ind

    p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def report(results: dict) -> list[str]:
    """The printed lines: per (algorithm, env), steps/s and final returns of both sides; last, ``ratio: X``."""
    lines, first_ratio = [], None
    for key, sides in results.items():
        rate = {k: sum(r["steps"] for r in v) / sum(r["seconds"] for r in v) for k, v in sides.items() if v}
        ret = {k: [r["return"] for r in v] for k, v in sides.items()}
        ratio = rate["pgcontrol"] / rate["sb3"] if {"pgcontrol", "sb3"} <= set(rate) else float("nan")
        first_ratio = ratio if first_ratio is None else first_ratio
        p = welch(ret.get("pgcontrol", []), ret.get("sb3", []))
        lines.append(f"{key}: pgcontrol {rate.get('pgcontrol', float('nan')):.0f} steps/s, "
                     f"SB3 {rate.get('sb3', float('nan')):.0f} steps/s (ratio {ratio:.2f}); final return "
                     f"(last {LAST} episodes) pgcontrol {_fmt(ret.get('pgcontrol'))}, SB3 {_fmt(ret.get('sb3'))}"
                     + (f"; Welch t-test p = {p:.3g}" if p is not None else ""))
    lines.append(f"ratio: {first_ratio:.3f}")
    return lines


def _fmt(values) -> str:
    v = [x for x in (values or []) if x is not None]
    if not v:
        return "—"
    mean = sum(v) / len(v)
    std = (sum((x - mean) ** 2 for x in v) / max(len(v) - 1, 1)) ** 0.5
    return f"{mean:.1f} ± {std:.1f} (n = {len(v)})"


def figure(data: dict, path) -> None:
    """Learning curves of both sides per (algorithm, env): mean over seeds, and the min–max band."""
    import numpy as np
    from matplotlib.figure import Figure

    keys = list(data["results"])
    cols = min(2, len(keys))
    rows = -(-len(keys) // cols)
    fig = Figure(figsize=(5.5 * cols, 4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes, keys):
        grid = np.linspace(0, data["steps"], 101)[1:]
        for side, color in (("pgcontrol", "tab:blue"), ("sb3", "tab:red")):
            runs = data["results"][key][side]
            if not runs:
                continue
            ys = np.array([rolling_return(r["curve"], grid) for r in runs])
            with warnings.catch_warnings():  # steps before a run's first episode are NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                ax.plot(grid, np.nanmean(ys, 0), color=color, lw=2,
                        label=f"{'pgcontrol' if side == 'pgcontrol' else 'SB3 / sb3-contrib'} (n = {len(runs)})")
                ax.fill_between(grid, np.nanmin(ys, 0), np.nanmax(ys, 0), color=color, alpha=0.2)
        ax.set_title(key)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"return (mean of the last {LAST} episodes)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.suptitle(f"same settings, {data['num_envs']} env(s), one torch thread each; band: min–max over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def merge(datas: list[dict]) -> dict:
    """One benchmark JSON from several: per (algorithm, env) and side, the last file that ran it wins."""
    out = {"settings": {}, "num_envs": datas[0]["num_envs"], "steps": datas[0]["steps"], "results": {}}
    for data in datas:
        if (data["num_envs"], data["steps"]) != (out["num_envs"], out["steps"]):
            raise SystemExit(f"--merge: files with different settings (num_envs, steps): "
                             f"{(out['num_envs'], out['steps'])} and {(data['num_envs'], data['steps'])}")
        out["settings"].update(data["settings"])
        for key, sides in data["results"].items():
            slot = out["results"].setdefault(key, {"pgcontrol": [], "sb3": []})
            slot.update({side: runs for side, runs in sides.items() if runs})
    return out


def main(argv=None) -> dict:
    args = parse(argv)
    if args.merge:
        if not args.out:
            raise SystemExit("--merge needs --out FILE.json")
        from pgcontrol.files import atomic_write

        data = merge([json.loads(Path(f).read_text()) for f in args.merge])
        atomic_write(args.out, json.dumps(data, indent=1) + "\n")
        figure(data, Path(args.out).with_suffix(".png"))
        for line in report(data["results"]):
            print(line)
        return data["results"]
    if args.plot:
        data = json.loads(Path(args.plot).read_text())
        figure(data, Path(args.plot).with_suffix(".png"))
        for line in report(data["results"]):
            print(line)
        return data["results"]
    print(f"settings: {json.dumps({a: HYPER[a] for a in args.algos})}, num_envs {args.num_envs}, {args.steps} steps, "
          f"{args.seeds} seed(s)", flush=True)
    results = {f"{a} {e}": {"pgcontrol": [], "sb3": []} for a in args.algos for e in args.envs}
    for algo in args.algos:
        for env_id in args.envs:
            for seed in range(args.seeds):
                for side, fn in (("pgcontrol", run_pgcontrol), ("sb3", run_sb3)):  # alternate
                    if side not in args.sides:
                        continue
                    r = fn(algo, env_id, args.steps, seed, args.num_envs)
                    results[f"{algo} {env_id}"][side].append(r)
                    print(f"  {algo} {env_id} seed {seed} {side}: {r['steps'] / r['seconds']:.0f} steps/s, "
                          f"return {r['return']}", flush=True)
    for line in report(results):
        print(line)
    if args.out:
        data = {"settings": {a: HYPER[a] for a in args.algos}, "num_envs": args.num_envs, "steps": args.steps,
                "results": results}
        from pgcontrol.files import atomic_write

        atomic_write(args.out, json.dumps(data, indent=1) + "\n")
        figure(data, Path(args.out).with_suffix(".png"))
    return results


if __name__ == "__main__":
    main()
