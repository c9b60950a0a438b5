"""Training settings at the boundary: configs from dicts, step budgets, devices and threads.

Everything a user types (a ``--config`` file, ``--steps``, ``--device``,
``--threads``) is checked here, before any training starts, and a bad value
raises :class:`~pgcontrol.errors.ConfigError` naming the setting, the
expected form and the value.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

import numpy as np
import torch

from .algos import get_algorithm
from .envs import episode_length, is_plant
from .errors import ConfigError
from .plants import LinearGaussianPlant
from .plants import make as make_plant

__all__ = ["config_from_dict", "steps_per_iteration", "resolve_device", "set_threads", "check_run_settings",
           "DEFAULT_THREADS", "PRESETS", "preset", "resolve_config", "default_budget", "RunPlan", "plan_run"]

DEFAULT_THREADS = 1
"""Torch intra-op threads used by ``train`` and the CLI unless asked otherwise.

The learners' tensors are tiny ((N, n) with n ≤ 10): on many cores torch's
intra-op thread pool spins more than it computes. Measured with
``experiments/bench_training.py --threads`` (see README, "Threads")."""


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (CUDA when available) as a :class:`torch.device`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'auto'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu', 'cuda[:i]' or 'auto'; got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but CUDA is not available; use --device cpu or auto")
    return dev


MAX_THREADS = 512
"""Most torch threads ``threads`` (``--threads``) may ask for."""


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``threads``, or :data:`DEFAULT_THREADS` when None; returns the number set."""
    n = DEFAULT_THREADS if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ConfigError(f"threads must be an integer from 1 to {MAX_THREADS} (MAX_THREADS); got {threads!r}")
    torch.set_num_threads(n)
    return n


def check_run_settings(*, seed, checkpoint_every: int = 1, max_steps: int | None = None) -> None:
    """``train``'s own settings: ``seed`` an integer >= 0, ``checkpoint_every`` >= 1, ``max_steps`` None or >= 1.

    Booleans, floats (1.5) and strings ('0') are refused, never truncated or parsed.
    """
    for name, value, least in (("seed", seed, 0), ("checkpoint_every", checkpoint_every, 1),
                               ("max_steps", max_steps, 1)):
        if value is None and name == "max_steps":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            what = " (an environment-step budget)" if name == "max_steps" else ""
            raise ConfigError(f"{name} must be an integer >= {least}{what}; got {value!r}")


def config_from_dict(algo, values: dict, *, base=None, source: str = "config"):
    """The algorithm's ``Config`` from a dict of field values (a ``--config`` file).

    ``base`` (a dict of field values, e.g. a checkpoint's ``config``) is
    applied first, then ``values``. Each value is checked against the field's
    type (``int``, ``float`` — an int is accepted —, ``bool``, ``str``, a
    list of integers for a tuple, optionally ``None``) before the Config's own validation runs.

    Raises
    ------
    ConfigError
        For a non-dict, an unknown key (the message lists the valid keys) or a
        bad value (the message names the key); ``source`` prefixes the message.
    """
    Algo, algo_name = get_algorithm(algo)
    Config = Algo.Config
    hints = typing.get_type_hints(Config)
    fields = [f.name for f in dataclasses.fields(Config) if f.init]
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a table of {Config.__name__} fields (key: value), "
                          f"got {type(values).__name__}")
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r} for {algo_name} ({Config.__name__}); "
                          f"valid keys: {', '.join(fields)}")
    merged = {k: v for k, v in (base or {}).items() if k in fields}
    merged.update(values)
    for key, value in merged.items():
        merged[key] = _check_field(source, Config.__name__, key, value, hints.get(key))
    try:
        return Config(**merged)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _check_field(source, cls, key, value, hint):
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    optional = type(None) in args
    words = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}
    names = [words.get(a, getattr(a, "__name__", str(a))) for a in args if a is not type(None)]
    names += ["null"] if optional else []
    if value is None:
        if optional:
            return None
    elif bool in args:
        if isinstance(value, bool):
            return value
    elif int in args:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif float in args:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**1000:
            return float(value)
        if isinstance(value, float) and math.isfinite(value):
            return value
    elif str in args:
        if isinstance(value, str):
            return value
    elif typing.get_origin(hint) is tuple:  # hidden = [256, 256]
        names = ["a list of integers such as [64, 64]"]
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    else:  # a type this checker does not know: leave it to the Config
        return value
    raise ConfigError(f"{source}: {cls}.{key} must be {' or '.join(names)}; got {value!r}")


def steps_per_iteration(algo, config, env) -> int:
    """Environment steps one iteration of ``train`` takes (at most), for converting a step budget.

    * episodic learners (``vpg``, ``npg``, ``trpo``): ``num_envs`` whole
      episodes, ``num_envs × episode length`` (the plant's horizon, or the
      Gymnasium time limit ``max_episode_steps``; episodes that terminate
      earlier take fewer steps);
    * ``ac``, ``ppo`` and episodic learners given ``n_steps``: ``num_envs × n_steps`` (``n_steps = 1`` for
      ``ACConfig(online=True)``).
    """
    _, name = get_algorithm(algo)
    if getattr(config, "n_steps", None) is not None:
        return int(config.num_envs) * int(config.n_steps)
    T = episode_length(env)
    if T is None:
        raise ConfigError(f"environment {env!r} has no time limit (max_episode_steps), so a step budget cannot "
                          f"be converted to iterations of the episodic learner {name!r}; set 'iterations' instead")
    return int(config.num_envs) * T


# ---------------------------------------------------------------------- presets

PRESETS: dict[tuple[str, str], dict] = {
    # No LQ plant has a preset: on plants every learner's default config is the one config (its adaptive rules,
    # docs/learners.md). The reproductions keep the settings they reproduce in their own modules
    # (pgcontrol.reproduce.plateau, pgcontrol.reproduce.gains).
    # MuJoCo: InvertedPendulum-v5 balanced (return 1000) within 20 000 steps on seeds 0-2, and held to 150 000
    ("ppo", "InvertedPendulum-v5"): dict(num_envs=4, n_steps=256, iterations=147, update_epochs=10, num_minibatches=8,
                                         normalize_obs=True, normalize_reward=True, gamma=0.99),
    # PPO on HalfCheetah-v5, 1 M steps: rl-zoo's tuned PPO (1 env x 512 steps, ReLU 256-256 with torch's
    # initialisation, log σ0 = -2, constant lr). Last-10-episode return 5493, 5679, 3852 on seeds 0-2
    # (experiments/mujoco_presets.py; with autograd's minibatch step instead of PPO's NumPy one, which differs at
    # round-off and so makes each seed another run: 4378, 4042, 6149)
    ("ppo", "HalfCheetah-v5"): dict(num_envs=1, n_steps=512, iterations=1954, lr=2.0633e-5, anneal_lr=False,
                                    update_epochs=20, num_minibatches=8, gamma=0.98, lam=0.92, clip_coef=0.1,
                                    vf_coef=0.58096, ent_coef=0.000401762, max_grad_norm=0.8, normalize_obs=True,
                                    normalize_reward=True, clip_actions=True, hidden=(256, 256), activation="relu",
                                    ortho_init=False, log_std0=-2.0),
    # PPO on Hopper-v5, 1 M steps: SB3's PPO defaults as experiments/bench_vs_sb3.py runs them (VecNormalize's clip
    # at ±10; SB3's value coefficient 0.5 on its mean squared error is 1.0 on pgcontrol's half of it), with γ 0.995
    # in place of 0.99: a fall costs more of the discounted return, and the runs that learn to hop hold their gait.
    # Last-10-episode return on seeds 0-7: 2705, 3391, 3561, 2296, 3166, 2665, 1111, 2159 (2632 ± 791); seed 6
    # never leaves the ≈ 1100 of standing still, seeds 0, 3, 7 leave it late (figures/mujoco_presets_hopper.json).
    # With γ 0.99 (the benchmark's config): 2883, 2651, 2007, 1622, 2900, 2831, 2857, 1973 (2466 ± 514); with
    # autograd's minibatch step (backend="torch", which differs at round-off and so makes each seed another run)
    # 2473, 2368, 2134, 2841, 3505, 3003, 2928, 3185. Tried, worse or no better (README): vf_coef 0.5 and 2.0, no
    # clip, lr annealing, log σ0 -0.5, γ 0.999 with λ 0.99, γ 0.995 with ent_coef 0.005 (2300 ± 863), 256-256
    # hidden layers, rl-zoo's tuned Hopper PPO (980, 290, 15 here)
    ("ppo", "Hopper-v5"): dict(num_envs=1, n_steps=2048, iterations=489, lr=3e-4, anneal_lr=False, update_epochs=10,
                               num_minibatches=32, gamma=0.995, lam=0.95, clip_coef=0.2, clip_vloss=False,
                               vf_coef=1.0, ent_coef=0.0, max_grad_norm=0.5, norm_adv=True, normalize_obs=True,
                               normalize_reward=True, normalize_clip=10.0, clip_actions=True),
    # HalfCheetah-v5, 1 M steps (489 updates of 2048 steps, sb3-contrib's TRPO settings: states weighed equally,
    # λ-return critic targets, standardised advantages, VecNormalize's clip at ±10, and its KL bound 0.01 and CG
    # damping 0.1 per action dimension, 0.06 and 0.6 for the 6 of HalfCheetah, because sb3-contrib's KL is a mean
    # over the action dimensions; experiments/bench_vs_sb3.py --algos trpo runs exactly this config, and takes
    # sb3-contrib's step on the same batch): the mean return of the last 10 episodes is 4033, 1673 and 1799 on
    # seeds 0-2. With KL 0.01 and damping 0.1 on the joint KL: 3612, 4153, 1764 (the clip alone: 1556, 1630,
    # 1714; neither: 2732, 1964, 1600). Whole episodes (2 an update) with the γ^τ weights gave 1505, 1503, 2220
    ("trpo", "HalfCheetah-v5"): dict(num_envs=1, n_steps=2048, iterations=489, kl_bound=0.01 * 6, fisher="cg", cg_iters=15,
                                     damping=0.1 * 6, line_search=True, backtrack_coef=0.8, max_backtracks=10, gamma=0.99,
                                     estimator="gae", lam=0.95, discount_weighting=False, baseline="value",
                                     critic="mlp", critic_lr=1e-3, critic_epochs=10, critic_minibatch=128,
                                     value_target="lambda", normalize_advantage=True, normalize_obs=True,
                                     normalize_reward=True, normalize_clip=10.0, clip_actions=True),
}
"""Per-(algorithm, environment) configurations for the MuJoCo tasks, as rl-zoo keeps hyperparameter files: what
``train`` and the CLI use when no config is given. The LQ plants have none: there the learners' defaults adapt
their step, batch and stopping to the plant (``docs/learners.md``, ``experiments/bench_plants.py``).
PPO on InvertedPendulum-v5 reaches the maximal return 1000 within 20 000 of its 150 000 steps on seeds 0-2
(``tests/test_presets.py``); TRPO on HalfCheetah-v5 ends its 1 M steps above 1500 on seeds 0-2 (slow test,
``experiments/bench_vs_sb3.py --algos trpo``);
PPO on HalfCheetah-v5 ends its 1 M steps above 3800 on seeds 0-2, PPO on Hopper-v5 at 2632 ± 791 over seeds
0-7 (``experiments/mujoco_presets.py``).
Other (algorithm, environment) pairs use the learner's defaults."""


def default_budget(plant) -> int:
    """The environment-step budget ``train`` gives a run on a plant when ``max_steps`` is None.

    250 episodes' worth of steps per policy parameter, ``250 · T · (n·m + m)``
    (the gain's n·m entries and σ's m), clipped to [100 000, 2 000 000]: the
    adaptive learners' stopping rule usually ends a run before it.
    """
    return int(min(max(250 * plant.horizon * (plant.n * plant.m + plant.m), 100_000), 2_000_000))


def preset(algo, env) -> dict | None:
    """The preset field values for ``(algo, env)`` (a plant or Gymnasium id name), or None."""
    _, name = get_algorithm(algo)
    key = env if isinstance(env, str) else getattr(env, "name", None)
    found = PRESETS.get((name, key))
    return None if found is None else dict(found)


def resolve_config(algo, env, values: dict | None = None, *, base: dict | None = None, source: str = "config"):
    """The config of a run and where each field came from: ``(config, {field: "user" | "run" | "preset" | "default"})``.

    ``base`` (a resumed run's own config) replaces the preset; ``values`` (a
    ``--config`` file) override either.
    """
    Algo, _ = get_algorithm(algo)
    values = values or {}
    start, origin = (base, "run") if base is not None else (preset(algo, env) or {}, "preset")
    config = config_from_dict(algo, values, base=start, source=source)
    sources = {}
    for f in dataclasses.fields(Algo.Config):
        if f.name in values:
            sources[f.name] = "user"
        elif f.name in start:
            sources[f.name] = origin
        else:
            sources[f.name] = "default"
    return config, sources


# ---------------------------------------------------------------------- one run's plan


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run is decided by before anything is built (:func:`plan_run`).

    Attributes
    ----------
    config : frozen dataclass
        The learner's ``Config``, its ``iterations`` set by the budget.
    sources : dict
        Where each field of ``config`` came from: ``"user"``, ``"run"`` (a resumed run's own), ``"preset"``,
        ``"default"``, ``"--steps"`` or ``"budget"``.
    seed : int
    policy_kind : str or None
        ``"linear"`` or ``"mlp"``; None when ``plan_run`` was given neither a kind nor a checkpoint
        and the environment is not a plant name.
    max_steps : int or None
        The environment-step budget; None: ``config.iterations`` alone ends the run.
    budget : str
        One sentence saying how the budget became iterations (printed by ``pgcontrol train``).
    overrides : dict or None
        On a resume, ``{field: {"from": old, "to": new}}`` for the fields changed.
    """

    config: typing.Any
    sources: dict
    seed: int
    policy_kind: str | None
    max_steps: int | None
    budget: str
    overrides: dict | None = None


def _env_name(env) -> str | None:
    if isinstance(env, str):
        return env
    return env.name if isinstance(env, LinearGaussianPlant) else None


def _check_resume(checkpoint: dict, algo_name: str, env, seed, policy_kind) -> tuple[int, str | None]:
    """The resumed run's (seed, policy kind), after checking that the run asked for is the one in ``checkpoint``."""
    from .checkpoint import policy_kind as kind_of  # the same floor: files

    if checkpoint.get("algo") != algo_name:
        raise ConfigError(f"the checkpoint is a {checkpoint.get('algo')!r} run, not {algo_name!r}")
    ck_env = checkpoint.get("env")
    ck_env = ck_env.get("name") if isinstance(ck_env, dict) else ck_env
    name = _env_name(env)
    if name is not None and ck_env != name:
        raise ConfigError(f"the checkpoint was trained on {ck_env!r}, not {name!r}")
    if seed is not None and seed != checkpoint.get("seed"):
        raise ConfigError(f"the checkpoint was trained with seed {checkpoint.get('seed')}, not {seed}")
    kind = kind_of(checkpoint)
    if policy_kind is not None and policy_kind != kind:
        raise ConfigError(f"the checkpoint holds a {kind!r} policy, not {policy_kind!r}")
    return checkpoint.get("seed", 0), kind


def plan_run(algo, env, *, config=None, values: dict | None = None, source: str = "config",
             steps: int | None = None, seed: int | None = None, policy_kind: str | None = None,
             checkpoint: dict | None = None, override=None) -> RunPlan:
    """Decide a run before anything is built: its config, seed, policy kind and step budget.

    The one place where :func:`pgcontrol.train.train` and ``pgcontrol train`` check a resume and turn a
    step budget into iterations.

    Parameters
    ----------
    algo, env : str
        The learner and the environment (a plant name or object, a Gymnasium id, or a vector env).
    config : frozen dataclass, optional
        A ready ``Config``: used as it is, and ``steps`` only bounds it (the first of
        ``config.iterations`` and ``steps`` ends the run).
    values : dict, optional
        Without ``config``: ``Config`` fields (a ``--config`` file) over the preset, or over a resumed
        run's own config (:func:`resolve_config`). A budget then sets ``iterations``:
        ``ceil(steps / steps_per_iteration)``; whole episodes that may end early (Gymnasium tasks)
        take ``ceil(steps / num_envs)`` iterations and stop when ``steps`` are spent. With neither
        ``steps`` nor ``iterations`` given, on a plant, the budget is :func:`default_budget`.
    steps : int, optional
        The environment-step budget.
    seed : int, optional
        Default 0, or a resumed run's own seed.
    policy_kind : {"linear", "mlp"}, optional
        Default ``"linear"`` on a plant, ``"mlp"`` on a Gymnasium id, or a resumed run's own kind.
    checkpoint : dict, optional
        The loaded checkpoint of the run to resume. Its algorithm, environment, seed and policy kind must
        be the ones asked for (or not given), and its config is the base of ``values``.
    override : list of str, optional
        On a resume with ``values``: the keys ``values`` changes, exactly (recorded in the history). A
        resume with ``values`` and no ``override`` is refused: the run continues with its own config.

    Raises
    ------
    ConfigError
        A resume that does not match its checkpoint, an ``override`` that does not list exactly the keys
        of ``values``, or a bad config value or budget.
    """
    Algo, algo_name = get_algorithm(algo)
    check_run_settings(seed=0 if seed is None else seed, max_steps=steps)
    on_plant, named = is_plant(env), isinstance(env, (str, LinearGaussianPlant))
    base = None
    if checkpoint is not None:
        seed, policy_kind = _check_resume(checkpoint, algo_name, env, seed, policy_kind)
        base = checkpoint.get("config")
    if override and not (checkpoint is not None and values):
        raise ConfigError("override names the config keys that change a resumed run; it needs a checkpoint "
                          "and the new values (--resume and --config)")
    overrides = None
    if checkpoint is not None and values and config is None:
        if not override:
            raise ConfigError("a new config for a resumed run would replace the run's own configuration; the "
                              "run continues with the config it was started with. To change some keys, name "
                              "them: --override KEY [KEY ...] (they are recorded in the history)")
        unlisted, missing = sorted(set(values) - set(override)), sorted(set(override) - set(values))
        if unlisted or missing:
            raise ConfigError(f"--override {' '.join(override)} must list exactly the keys of {source!r}; "
                              + (f"not listed: {', '.join(unlisted)}" if unlisted
                                 else f"not in the file: {', '.join(missing)}"))
        overrides = {k: {"from": base.get(k), "to": v} for k, v in values.items()}
    seed = 0 if seed is None else seed
    if policy_kind is None and named:
        policy_kind = "linear" if on_plant else "mlp"

    if config is not None or not named:  # a ready config, or a vector env: the budget only bounds the run
        if config is None:
            config, sources = resolve_config(algo, env, values, base=base, source=source)
        elif not isinstance(config, Algo.Config):
            raise ConfigError(f"config for {algo_name!r} must be a {Algo.Config.__name__}, "
                              f"got {type(config).__name__}")
        else:
            sources = {f.name: "user" for f in dataclasses.fields(config)}
        budget = f"{config.iterations} iterations (config)" + (f", at most {steps} steps" if steps else "")
        return RunPlan(config, sources, seed, policy_kind, steps, budget, overrides)

    config, sources = resolve_config(algo, env, values, base=base, source=source)
    if steps is None and on_plant and checkpoint is None and "iterations" not in (values or {}):
        steps, why = default_budget(make_plant(env)), "the plant's default budget"
    else:
        why = f"--steps {steps}"
    if steps is None:
        return RunPlan(config, sources, seed, policy_kind, None, f"{config.iterations} iterations (config)", overrides)
    per = steps_per_iteration(algo, config, env)
    if getattr(config, "n_steps", None) is None and not on_plant:
        # whole episodes that may end early: iterate until the budget is spent (train's max_steps)
        config = dataclasses.replace(config, iterations=max(1, math.ceil(steps / config.num_envs)))
        budget = (f"{why}: iterations of {config.num_envs} whole episodes (at most {per} steps each) "
                  "until the budget is spent")
    else:
        config = dataclasses.replace(config, iterations=max(1, math.ceil(steps / per)))
        budget = f"{why}: {config.iterations} iterations x {per} steps per iteration"
        if config.iterations * per != steps:
            budget += (f" = {config.iterations * per} steps (rounded up to whole iterations; a batch is "
                       "never cut short)")
    sources["iterations"] = "--steps" if why.startswith("--steps") else "budget"
    return RunPlan(config, sources, seed, policy_kind, steps, budget, overrides)
