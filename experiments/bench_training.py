"""Training throughput of NPG and PPO on double-integrator against the bare simulator loop.

Three numbers at the same number of parallel environments N, all in
environment steps per second, measured side by side in one run:

* ``bare`` — :func:`pgcontrol.sim.rollout_linear`: the batched simulator
  alone, ``u = -Kx + σε`` with the plant's dynamics, noise and cost (no
  Gymnasium, no log-densities, no learning): the ceiling;
* ``npg`` — :func:`pgcontrol.train.train` with NPG (whole episodes of
  T = 150 steps; the exact Fisher of :func:`pgcontrol.lqr.fisher`, and, as
  a second line, the conjugate-gradient Fisher–vector products), everything
  included: the vector env, the collector, advantages, the update, the
  exact LQ metrics;
* ``ppo`` — the same with PPO (n_steps 16, 4 epochs, 4 minibatches).

It prints each rate and its ratio to ``bare``; the targets are
NPG ≥ 50 % of the bare loop on CPU (N = 4096) and ≥ 40 % on a GPU
(N = 65 536). ``--threads`` compares torch intra-op thread counts for NPG.

Usage::

    python experiments/bench_training.py [--device cpu|cuda] [--num-envs 4096] [--iterations 3] [--repeats 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from pgcontrol import lqr, plants
from pgcontrol.algos.npg import NPGConfig
from pgcontrol.algos.ppo import PPOConfig
from pgcontrol.policies import default_initial_gain
from pgcontrol.sim import rollout_linear
from pgcontrol.train import train

PLANT = "double-integrator"


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bare(n: int, device, repeats: int) -> float:
    """Steps/s of the simulator alone (N episodes of T steps per call)."""
    p = plants.make(PLANT)
    K = default_initial_gain(p)
    rollout_linear(p, K, 0.5, n, seed=0, device=device)  # warm-up
    _sync(device)
    t = time.perf_counter()
    for r in range(repeats):
        rollout_linear(p, K, 0.5, n, seed=r, device=device)
    _sync(device)
    return repeats * n * p.horizon / (time.perf_counter() - t)


def training(algo: str, n: int, device, iterations: int, threads: int, fisher: str = "exact") -> float:
    """Steps/s of ``train`` end to end (after one warm-up iteration)."""
    if algo == "npg":
        cfg = lambda it: NPGConfig(num_envs=n, iterations=it, kl_bound=0.01, fisher=fisher)  # noqa: E731
    else:
        cfg = lambda it: PPOConfig(num_envs=n, iterations=it, n_steps=16, update_epochs=4, num_minibatches=4, critic="quadratic",  # noqa: E731
                                   critic_optimizer="lstsq", lam=0.0, lr=0.005)
    train(algo, PLANT, config=cfg(1), device=device, progress=False, threads=threads)  # warm-up
    _sync(device)
    t = time.perf_counter()
    hist = train(algo, PLANT, config=cfg(iterations), device=device, progress=False, threads=threads)
    _sync(device)
    return hist[-1]["steps"] / (time.perf_counter() - t)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--num-envs", type=int, default=None, help="N (default 4096 on CPU, 65536 on CUDA)")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best of each is printed")
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="torch intra-op threads to compare")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    n = args.num_envs or (65536 if dev.type == "cuda" else 4096)
    print(f"double-integrator, device {dev}, N = {n}, T = {plants.make(PLANT).horizon}, "
          f"J* = {lqr.policy_cost(plants.make(PLANT), lqr.optimal_gain(plants.make(PLANT))[0]):.4g}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        # best of --repeats rounds, interleaved, so that a load spike on a shared machine hits all three alike
        b = npg = npg_cg = ppo = 0.0
        for _ in range(args.repeats):
            b = max(b, bare(n, dev, repeats=args.iterations))
            npg = max(npg, training("npg", n, dev, args.iterations, threads))
            npg_cg = max(npg_cg, training("npg", n, dev, args.iterations, threads, fisher="cg"))
            ppo = max(ppo, training("ppo", n, dev, max(1, args.iterations * 150 // 16 // 4), threads))
        print(f"threads {threads}: bare loop {b:.3g} steps/s | NPG (exact Fisher) {npg:.3g} steps/s "
              f"(ratio {npg / b:.2f}) | NPG (CG) {npg_cg:.3g} (ratio {npg_cg / b:.2f}) | "
              f"PPO {ppo:.3g} steps/s (ratio {ppo / b:.2f})", flush=True)


if __name__ == "__main__":
    main()
