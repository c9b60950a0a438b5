"""Figure 5: learning curves of VPG, NPG, actor-critic and PPO on InvertedPendulum-v5 and HalfCheetah-v5.

    python experiments/mujoco.py            # full: both tasks, 3 seeds, short budgets (~30 min on 2 cores)
    python experiments/mujoco.py --quick    # InvertedPendulum only, 1 seed, 6 000 steps per learner

Same as ``pgcontrol reproduce mujoco [--quick]``; writes figures/mujoco.png and
figures/mujoco.json. The experiment is :mod:`pgcontrol.reproduce.mujoco`.
"""

from pgcontrol.reproduce import script

if __name__ == "__main__":
    script("mujoco")
