"""Figure 5: learning curves of VPG, NPG, actor-critic and PPO on InvertedPendulum-v5 and HalfCheetah-v5.

    python experiments/mujoco.py            # full: both tasks, 3 seeds, short budgets (~30 min on 2 cores)
    python experiments/mujoco.py --quick    # InvertedPendulum only, 1 seed, 6 000 steps per learner

Same as ``pgcontrol reproduce mujoco [--quick]``; writes figures/mujoco.png and
figures/mujoco.json. The experiment is :mod:`pgcontrol.reproduce.mujoco`.
"""

import argparse

from pgcontrol.reproduce import headline, run

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="InvertedPendulum only, one seed, tiny budget")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; quick 1)")
    ap.add_argument("--out", default="figures", help="output folder (default figures/)")
    args = ap.parse_args()
    print(headline(run("mujoco", quick=args.quick, seeds=args.seeds, out=args.out)))
