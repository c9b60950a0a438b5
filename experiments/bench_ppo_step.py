"""PPO's minibatch step, side by side: autograd and torch's Adam (``backend="torch"``) against the gradients
written out in NumPy (``backend="numpy"``, :mod:`pgcontrol.algos.ppo_numpy`), on the same random batch.

    python experiments/bench_ppo_step.py                      # HalfCheetah's sizes: 17 -> 64-64 tanh -> 6, batch 64
    python experiments/bench_ppo_step.py --hidden 256 256 --activation relu --minibatches 8 --batch 512

Each round times one update (``--epochs`` passes of ``--minibatches`` steps) of each backend, alternating; it
prints the milliseconds per minibatch step of each (median over rounds) and ``ratio: X`` (torch / numpy).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pgcontrol.algos.ppo import PPO, PPOConfig
from pgcontrol.policies import MLPGaussianPolicy


def learner(backend: str, args) -> PPO:
    torch.manual_seed(0)
    pol = MLPGaussianPolicy(args.obs_dim, args.act_dim, hidden=args.hidden, activation=args.activation)
    cfg = PPOConfig(backend=backend, hidden=tuple(args.hidden), activation=args.activation, update_epochs=args.epochs,
                    num_minibatches=args.minibatches, n_steps=args.batch, num_envs=1, anneal_lr=False)
    return PPO(pol, cfg, gamma=0.99, obs_dim=args.obs_dim, device="cpu")


def batch_for(ppo: PPO, n: int):
    """A random batch: the learner's ``advantages`` is replaced so that only the epochs are timed."""
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(n, ppo.policy.obs_dim, generator=g)
    with torch.no_grad():
        actions = ppo.policy(obs).sample()
        logp = ppo.policy.log_prob(obs, actions)
    adv, returns, values = (torch.randn(n, generator=g) for _ in range(3))
    ppo.advantages = lambda batch: (values, adv, returns)
    return type("Batch", (), dict(valid=torch.ones(n, dtype=torch.bool), obs=obs, actions=actions, logp=logp))


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--obs-dim", type=int, default=17)
    ap.add_argument("--act-dim", type=int, default=6)
    ap.add_argument("--hidden", type=int, nargs="*", default=[64, 64])
    ap.add_argument("--activation", default="tanh", choices=("tanh", "relu"))
    ap.add_argument("--batch", type=int, default=2048, help="samples per update")
    ap.add_argument("--minibatches", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    learners = {b: learner(b, args) for b in ("torch", "numpy")}
    batches = {b: batch_for(p, args.batch) for b, p in learners.items()}
    ms = {b: [] for b in learners}
    steps = args.epochs * args.minibatches
    for _ in range(args.rounds + 1):  # the first round warms up
        for b, ppo in learners.items():
            t = time.perf_counter()
            ppo.update(batches[b], 0)
            ms[b].append((time.perf_counter() - t) / steps * 1e3)
    med = {b: statistics.median(v[1:]) for b, v in ms.items()}
    print(f"obs {args.obs_dim}, act {args.act_dim}, hidden {args.hidden} {args.activation}, "
          f"minibatch {args.batch // args.minibatches}, 1 torch thread")
    for b, v in med.items():
        print(f"  {b}: {v:.3f} ms per minibatch step")
    ratio = med["torch"] / med["numpy"]
    print(f"ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
