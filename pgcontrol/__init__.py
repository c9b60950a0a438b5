"""pgcontrol: policy-gradient control with exact LQ baselines.

Importing ``pgcontrol`` registers its Gymnasium ids (``pgcontrol/LinearGaussian-v0``,
``pgcontrol/ScalarLQG-v0``; :mod:`pgcontrol.registration`) and does nothing else.
Modules (imported on demand):
``plants`` (linear-Gaussian plants, catalog), ``lqr`` (Riccati, exact cost,
gradient, Fisher, natural gradient, Kalman/LQG), ``sim`` and ``envs``
(batched simulation, Gymnasium environments), ``policies``, ``rollout``
(returns and advantages), ``algos`` (VPG, NPG/TRPO, actor-critic, PPO),
``train`` (the shared training loop), ``reproduce`` (the figures) and ``cli``.
Convention everywhere: a linear policy is u = -K x + eps.
"""

__version__ = "0.1.0"

from .registration import register_envs as _register_envs

_register_envs()


def __getattr__(name):  # PEP 562: pgcontrol.evaluate_policy without importing torch on `import pgcontrol`
    if name == "evaluate_policy":
        from .evaluate import evaluate_policy

        return evaluate_policy
    raise AttributeError(f"module 'pgcontrol' has no attribute {name!r}")
