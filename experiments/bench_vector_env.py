"""Throughput of the batched LinearGaussianVectorEnv vs SyncVectorEnv vs a bare torch loop.

All three run the same closed loop: the policy ``u = -K x + std * eps`` (LQR
gain ``K``, ``std = 0.1``) is computed by the same torch function in every
case and its time is included. Throughput is counted in *plant-steps per
second* (sub-environment transitions), so the three are comparable even though
the SyncVectorEnv runs at a much smaller N (stepping 65536 Python env objects
one by one would take minutes per step batch; its per-plant-step cost does
not depend on N).

(a) ``LinearGaussianVectorEnv`` at N = ``--num-envs`` (default 65536), both
    with NumPy returns (the default) and with ``return_torch=True``;
(b) ``gymnasium.make_vec(..., vectorization_mode="sync")`` (a
    ``SyncVectorEnv`` of ``LinearGaussianEnv``) at N = ``--sync-envs`` (default 256);
(c) a bare torch loop with the same dynamics, process noise and cost
    (:func:`pgcontrol.sim.stage_cost`), at the same N as (a), without
    autoreset, divergence checks or Gymnasium plumbing.

Threads: by default torch runs single-threaded here (``--threads 1``). Every
op of a step works on ``(N, 2)``-shaped data with a tiny inner dimension and
the normal sampler is serial, so intra-op threads gain little, while on a
machine whose cores are shared with other jobs torch's spinning worker threads
make every op several times slower (measured: ~50 ms/step with 2 threads vs
~10 ms/step with 1 under a load average of 6 on 2 cores). ``--threads 0``
keeps torch's default.

Usage::

    python experiments/bench_vector_env.py [--num-envs 65536] [--steps 300] [--plant double-integrator]
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium
import numpy as np
import torch

import pgcontrol.envs  # noqa: F401  (registers the pgcontrol/ ids)
from pgcontrol.lqr import optimal_gain
from pgcontrol.plants import make
from pgcontrol.sim import plant_tensors, stage_cost


def make_policy(K: np.ndarray, std: float, seed: int = 0):
    """``x (N, n) tensor -> u (N, m) tensor``: ``u = -K x + std * eps``, same code for all three."""
    Kt = torch.as_tensor(-K.T, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)

    def policy(x: torch.Tensor) -> torch.Tensor:
        eps = torch.randn(x.shape[0], Kt.shape[1], dtype=torch.float64, generator=g)
        return torch.addmm(eps.mul_(std), x, Kt)

    return policy


def timed(step, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


def make_vector(plant, N, steps, policy, return_torch):
    env = gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=N, vectorization_mode="vector_entry_point",
                             plant=plant, return_torch=return_torch)
    obs, _ = env.reset(seed=0)
    state = {"obs": obs}
    as_t = (lambda o: o) if return_torch else torch.from_numpy

    def step():
        state["obs"] = env.step(policy(as_t(state["obs"])))[0]

    return step


def make_sync(plant, N, steps, policy):
    env = gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=N, vectorization_mode="sync", plant=plant)
    obs, _ = env.reset(seed=0)
    state = {"obs": obs}

    def step():
        state["obs"] = env.step(policy(torch.from_numpy(state["obs"])).numpy())[0]

    return step


def make_bare(plant, N, steps, policy):
    P = plant_tensors(plant)
    At, Bt, Wt, Q, R = P.A.T.contiguous(), P.B.T.contiguous(), P.W_sqrt.T.contiguous(), P.Q, P.R
    g = torch.Generator().manual_seed(1)
    state = {"x": P.x0_mean.expand(N, plant.n).clone()}

    def step():
        x = state["x"]
        u = policy(x)
        cost = stage_cost(x, u, Q, R)  # the env's own cost function
        w = torch.randn(N, plant.n, dtype=torch.float64, generator=g) @ Wt
        state["x"] = torch.addmm(w, x, At).addmm_(u, Bt)
        state["r"] = cost.neg()

    return step


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-envs", type=int, default=65536, help="N for the VectorEnv and the bare loop")
    ap.add_argument("--sync-envs", type=int, default=256, help="N for the SyncVectorEnv (small: it is slow)")
    ap.add_argument("--steps", type=int, default=300, help="timed steps per repeat (the Sync run uses steps // 3)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="interleaved repeats; the best time of each variant is reported (robust to other load)")
    ap.add_argument("--plant", default="double-integrator")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads; 0 keeps torch's default (one per core). Default 1: see the module docstring")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    plant = make(args.plant)
    K, _ = optimal_gain(plant)
    policy = make_policy(K, 0.1)
    N, T, Ts = args.num_envs, args.steps, max(args.steps // 3, 1)
    variants = [  # (name, N, steps, step function)
        ("VectorEnv (numpy I/O)", N, T, make_vector(plant, N, T, policy, False)),
        ("VectorEnv (return_torch)", N, T, make_vector(plant, N, T, policy, True)),
        ("SyncVectorEnv", args.sync_envs, Ts, make_sync(plant, args.sync_envs, Ts, policy)),
        ("bare torch loop", N, T, make_bare(plant, N, T, policy)),
    ]
    best = {name: float("inf") for name, *_ in variants}
    for _ in range(args.repeats):  # interleaved, so a burst of outside load hits all variants alike
        for name, _, steps, step in variants:
            best[name] = min(best[name], timed(step, steps))
    rows = [(name, n, steps, best[name]) for name, n, steps, _ in variants]
    print(f"plant={plant.name} (n={plant.n}, m={plant.m}, horizon={plant.horizon}), "
          f"torch threads={torch.get_num_threads()}, policy u=-Kx+0.1*eps included, "
          f"best of {args.repeats} interleaved repeats, {os.cpu_count()} cpus, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'':26s} {'N':>7s} {'steps':>6s} {'time [s]':>9s} {'ms/step':>8s} {'plant-steps/s':>14s}")
    rate = {}
    for name, n, steps, sec in rows:
        rate[name] = n * steps / sec
        print(f"{name:26s} {n:7d} {steps:6d} {sec:9.3f} {1e3 * sec / steps:8.3f} {rate[name]:14.4g}")
    for v in ("VectorEnv (numpy I/O)", "VectorEnv (return_torch)"):
        print(f"{v}: {rate[v] / rate['SyncVectorEnv']:.0f}x SyncVectorEnv, "
              f"{100 * rate[v] / rate['bare torch loop']:.0f}% of the bare loop")


if __name__ == "__main__":
    main()
