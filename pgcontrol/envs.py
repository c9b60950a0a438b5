"""Gymnasium environments for the linear-Gaussian plants of :mod:`pgcontrol.plants`.

Two environments simulate the same plant, ``x' = A x + B u + w``, with stage
cost ``c = x'Qx + u'Ru`` charged on the state *before* the step and reward
``r = -c``:

* :class:`LinearGaussianEnv` — a single :class:`gymnasium.Env` (NumPy,
  seeded through ``reset(seed=...)`` / ``self.np_random``);
* :class:`LinearGaussianVectorEnv` — a native batched
  :class:`gymnasium.vector.VectorEnv` that steps ``num_envs`` copies with a few
  torch tensor operations (CPU or GPU), seeded through a :class:`torch.Generator`.

Registered ids (``import pgcontrol`` registers them, through the light
:mod:`pgcontrol.registration`; idempotent)::

    gymnasium.make("pgcontrol/LinearGaussian-v0", plant="laplacian-3")   # default plant "double-integrator"
    gymnasium.make("pgcontrol/ScalarLQG-v0")                             # plant "scalar-lqg"
    gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=4096,
                       vectorization_mode="vector_entry_point", plant="cartpole-linearized")

``plant`` is a catalog name or a :class:`~pgcontrol.plants.LinearGaussianPlant`;
any other keyword that is a plant field (``gamma=``, ``horizon=``, ...)
overrides that field.

Spaces
------
Observation: the state ``x`` (``n``), or for an output plant the measurement
``y = C x + v`` (``p``; the true state is then in ``info["state"]``), float64
(or the vector env's dtype). The observation :class:`~gymnasium.spaces.Box` is
*finite*: ``[-state_bound, state_bound]`` for the state, and
``±(|C| 1 · state_bound + 10 sqrt(diag V))`` for a measurement; observations are
clipped into it, which only ever bites at divergence (or a > 10-sigma
measurement noise draw).

Action: ``Box(-action_bound, action_bound, (m,))`` with ``action_bound``
defaulting to ``plant.state_bound``. These finite bounds are *nominal* (they
exist because :func:`gymnasium.utils.env_checker.check_env` warns about
infinite ones): the LQ problem is unconstrained, actions are **never clipped**
(except to compute a finite cost on a diverging step, below). Sampling the
action space is meaningless for control; explore with the Gaussian policy.
``check_env`` still emits its generic "we recommend a normalized action space"
hint, which does not apply here.

Time limit
----------
An episode is truncated (``truncated=True``) after ``plant.horizon`` steps,
by the environment itself, so the limit follows the plant (with
``plant="laplacian-3"`` it is 500, with ``"scalar-lqg"`` 50). Hence
``pgcontrol/LinearGaussian-v0`` is registered with ``max_episode_steps=None``
(no :class:`~gymnasium.wrappers.TimeLimit`); read the limit from
``env.unwrapped.horizon``. ``pgcontrol/ScalarLQG-v0`` is registered with
``max_episode_steps=50`` (= its horizon), so it also gets the usual TimeLimit
wrapper and ``spec.max_episode_steps``. Whenever a ``max_episode_steps`` is
given (to the constructors, or by ``gymnasium.make``'s TimeLimit) the episode
ends at the earlier of the two.

Divergence
----------
When a step takes the state out of ``|x_i| <= plant.state_bound`` (or makes
it non-finite, e.g. a NaN action), the step returns ``terminated=True``,
``info["diverged"]=True``, the state clipped to the bound (``±inf`` to
``±bound``, NaN to ``+bound``) as a finite observation, and a finite reward
computed on the (in-bound) pre-step state and the action clipped to
``±action_bound`` (NaN to 0). So NaN never enters training; learners should
treat ``info["diverged"]`` as divergence (note that the episode's return is
cut short, so a learner must penalise it rather than read the truncated return
as a good outcome). ``terminated`` is True *only* on divergence: the LQ task
has no goal state.

Vector env autoreset
--------------------
:class:`LinearGaussianVectorEnv` uses Gymnasium's ``NEXT_STEP`` autoreset:
after a sub-env returns ``terminated`` or ``truncated``, the next ``step``
ignores its action, resets it and returns the reset observation with reward
0, ``terminated=False``, ``truncated=False`` (``info["cost"]`` 0).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers import vector as vw

from .errors import ConfigError, InvalidPlantError
from .registration import ENV_IDS, register_envs
from .plants import LinearGaussianPlant, make
from .plants import names as plant_names
from .sim import (clip_state, diverged_rows, linear_step, make_generator, plant_tensors, sqrt_psd, stage_cost,
                  within_bound)

__all__ = ["LinearGaussianEnv", "LinearGaussianVectorEnv", "register_envs", "ENV_IDS", "is_plant", "make_vec_env",
           "check_env_id", "check_env_name",
           "find_plant", "find_wrapper", "episode_length"]



def _setup(plant, max_episode_steps, action_bound, overrides, env_kwargs):
    """Shared constructor logic: ``(plant, horizon, obs_bound (p,), action_bound (m,))``."""
    fields = [f.name for f in dataclasses.fields(LinearGaussianPlant)]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise InvalidPlantError(
            f"unknown keyword argument(s) {unknown}; valid ones are the environment's own {env_kwargs} "
            f"and the plant fields to override {fields}"
        )
    plant = make(plant, **overrides)
    horizon = plant.horizon
    if max_episode_steps is not None:
        if isinstance(max_episode_steps, bool) or int(max_episode_steps) != max_episode_steps or max_episode_steps < 1:
            raise InvalidPlantError(f"max_episode_steps must be None or an integer >= 1; got {max_episode_steps!r}")
        horizon = min(horizon, int(max_episode_steps))
    b = plant.state_bound
    if plant.has_output:
        obs_bound = np.abs(plant.C).sum(1) * b + 10.0 * np.sqrt(np.diag(plant.V))
    else:
        obs_bound = np.full(plant.n, b)
    a = b if action_bound is None else float(action_bound)
    if not (np.isfinite(a) and a > 0):
        raise InvalidPlantError(f"action_bound must be a positive finite number; got {action_bound!r}")
    return plant, horizon, obs_bound, np.full(plant.m, a)


class LinearGaussianEnv(gymnasium.Env):
    """One linear-Gaussian plant as a Gymnasium environment.

    See the module docstring for the spaces, the time limit and divergence.

    Parameters
    ----------
    plant : str or LinearGaussianPlant
        Catalog name or plant object. Default ``"double-integrator"``.
    max_episode_steps : int, optional
        Truncate at ``min(plant.horizon, max_episode_steps)`` steps.
    action_bound : float, optional
        Nominal action-space bound (not enforced); default ``plant.state_bound``.
    render_mode : None or "rgb_array"
        ``"rgb_array"``: :meth:`render` draws the state (phase plane for two
        states, bars otherwise), for videos and Stable-Baselines3.
    dtype : "float64" or "float32"
        The dtype of the spaces and observations (the plant is simulated in
        float64 either way). float64 is the default because the exact-gradient
        comparisons of pgcontrol are made in float64; ``"float32"`` suits
        libraries that expect it (Stable-Baselines3's ``check_env``).
    **overrides
        Plant fields to override, e.g. ``gamma=0.99, horizon=200``.

    Attributes
    ----------
    plant : LinearGaussianPlant
    horizon : int
        Steps after which the episode is truncated.
    state : (n,) ndarray
        The current true state (a copy).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, plant: str | LinearGaussianPlant = "double-integrator", *,
                 max_episode_steps: int | None = None, action_bound: float | None = None,
                 render_mode: str | None = None, dtype: str = "float64", **overrides):
        if render_mode not in (None, "rgb_array"):
            raise InvalidPlantError(f"render_mode must be None or 'rgb_array' (a plant has no window to draw in); "
                                    f"got {render_mode!r}")
        if dtype not in ("float64", "float32"):
            raise InvalidPlantError(f"dtype must be 'float64' or 'float32' (the spaces' dtype); got {dtype!r}")
        self.render_mode = render_mode
        self.plant, self.horizon, self._obs_bound, a = _setup(
            plant, max_episode_steps, action_bound, overrides,
            ["plant", "max_episode_steps", "action_bound", "render_mode", "dtype"])
        p = self.plant
        self._dtype = np.dtype(dtype)  # the state is simulated in float64 either way
        ob, a = self._obs_bound.astype(self._dtype), a.astype(self._dtype)
        self.observation_space = spaces.Box(-ob, ob, dtype=self._dtype)
        self.action_space = spaces.Box(-a, a, dtype=self._dtype)
        self._trace: list[np.ndarray] = []  # states of the episode so far, for render()
        self._last_cost = 0.0
        self._W_sqrt, self._x0_sqrt = sqrt_psd(p.W), sqrt_psd(p.x0_cov)
        self._V_sqrt = sqrt_psd(p.V) if p.has_output else None
        self._x = np.array(p.x0_mean)
        self._t = 0
        self._ended = False

    @property
    def state(self) -> np.ndarray:
        return self._x.copy()

    def _observe(self, x: np.ndarray) -> np.ndarray:
        p = self.plant
        if not p.has_output:
            return x.astype(self._dtype, copy=True)
        y = p.C @ x + self._V_sqrt @ self.np_random.standard_normal(p.p)
        return np.clip(y, -self._obs_bound, self._obs_bound).astype(self._dtype, copy=False)

    def _info(self, **info) -> dict[str, Any]:
        if self.plant.has_output:
            info["state"] = self._x.copy()
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draw ``x_0 ~ N(x0_mean, x0_cov)``; return ``(observation, info)``."""
        super().reset(seed=seed)
        p = self.plant
        x = p.x0_mean + self._x0_sqrt @ self.np_random.standard_normal(p.n)
        self._x = np.clip(x, -p.state_bound, p.state_bound)
        self._t = 0
        self._ended = False
        self._trace, self._last_cost = [self._x.copy()], 0.0
        return self._observe(self._x), self._info()

    def step(self, action):
        """Apply ``u``; return ``(obs, -cost, terminated, truncated, info)``, ``info["cost"]``, ``["diverged"]``."""
        p = self.plant
        if self._ended:
            raise InvalidPlantError("the episode has ended (terminated or truncated): call reset() before stepping "
                                    "again (a diverged state is clipped, not a valid state to continue from)")
        u = np.asarray(action, dtype=np.float64)
        if u.size != p.m:
            raise InvalidPlantError(f"action must have {p.m} entries (shape ({p.m},)) for plant {p.name!r}; got shape {u.shape}")
        u = u.reshape(p.m)
        x = self._x
        x_new = p.A @ x + p.B @ u + self._W_sqrt @ self.np_random.standard_normal(p.n)
        diverged = not bool(np.all(np.abs(x_new) <= p.state_bound))  # NaN compares False
        if diverged:
            b = p.state_bound
            x_new = np.clip(np.nan_to_num(x_new, nan=b, posinf=b, neginf=-b), -b, b)
            u = np.clip(np.nan_to_num(u, nan=0.0), self.action_space.low, self.action_space.high)
        cost = float(x @ p.Q @ x + u @ p.R @ u)
        self._x = x_new
        self._t += 1
        info = self._info(cost=cost, diverged=diverged)
        self._trace.append(x_new.copy())
        self._last_cost = cost
        truncated = self._t >= self.horizon
        self._ended = diverged or truncated
        return self._observe(x_new), -cost, diverged, truncated, info


    def render(self) -> np.ndarray | None:
        """A frame of the state (``render_mode="rgb_array"``): ``(320, 320, 3)`` uint8.

        Two states: the phase plane, the episode's path and the current state;
        otherwise a bar per state component. The title gives the time step and
        the last stage cost. Drawn with matplotlib's Agg canvas (no display).
        """
        if self.render_mode is None:
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # local: matplotlib only when rendering
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.2, 3.2), dpi=100)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        path = np.array(self._trace if self._trace else [self._x])
        if self.plant.n == 2:
            ax.plot(path[:, 0], path[:, 1], color="0.6", lw=1)
            ax.plot(path[-1, 0], path[-1, 1], "o", color="C3")
            lim = 1.1 * max(np.abs(path).max(), 1e-3)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="x₁", ylabel="x₂")
            ax.axhline(0, color="0.85", lw=0.8)
            ax.axvline(0, color="0.85", lw=0.8)
        else:
            x = path[-1]
            ax.bar(range(self.plant.n), x, color=["C0" if v >= 0 else "C3" for v in x])
            lim = 1.1 * max(np.abs(path).max(), 1e-3)
            ax.set(ylim=(-lim, lim), xticks=range(self.plant.n), xlabel="state component", ylabel="x")
        ax.set_title(f"{self.plant.name}  t = {self._t}  cost {self._last_cost:.3g}", fontsize=8)
        fig.tight_layout()
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class LinearGaussianVectorEnv(VectorEnv):
    """``num_envs`` copies of a linear-Gaussian plant, stepped as one batch of torch ops.

    Parameters
    ----------
    num_envs : int
        Number of sub-environments N.
    plant : str or LinearGaussianPlant
        Catalog name or plant object. Default ``"double-integrator"``.
    device : str or torch.device
        Where the state lives (``"cpu"``, ``"cuda"``...).
    dtype : torch.dtype or str
        ``torch.float64`` (default) or ``torch.float32``; the spaces use the
        matching NumPy dtype.
    return_torch : bool
        Return observations, rewards, flags and infos as torch tensors on
        ``device`` instead of NumPy arrays (keeps GPU rollouts on the GPU).
        Actions may be NumPy arrays or tensors either way.
    max_episode_steps : int, optional
        Truncate at ``min(plant.horizon, max_episode_steps)`` steps (passed by
        ``gymnasium.make_vec`` when the id has a registered limit).
    action_bound : float, optional
        Nominal action-space bound (not enforced); default ``plant.state_bound``.
    render_mode : None
    **overrides
        Plant fields to override.

    Notes
    -----
    ``step`` returns ``(obs (N, p), reward (N,), terminated (N,), truncated
    (N,), infos)`` with ``infos = {"cost": (N,), "diverged": (N,)}`` (plus
    ``"state": (N, n)`` for an output plant); there are no ``"_key"`` masks,
    every entry is valid for every sub-env. On CPU the NumPy arrays are
    zero-copy views of fresh tensors (never of the internal state), so they
    stay valid and may be modified in place.
    Autoreset is ``NEXT_STEP`` (see the module docstring). ``reset(seed=s)``
    reseeds the torch generator: same seed and actions -> same numbers.
    ``reset(options=...)`` takes no options.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, plant: str | LinearGaussianPlant = "double-integrator", *,
                 device: str | torch.device = "cpu", dtype: torch.dtype | str = torch.float64,
                 return_torch: bool = False, max_episode_steps: int | None = None,
                 action_bound: float | None = None, render_mode: None = None, **overrides):
        if render_mode is not None:
            raise InvalidPlantError(f"render_mode must be None (no rendering is provided); got {render_mode!r}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise InvalidPlantError(f"num_envs must be an integer >= 1; got {num_envs!r}")
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype.removeprefix("torch."), None)
        if dtype not in (torch.float32, torch.float64):
            raise InvalidPlantError(f"dtype must be torch.float32 or torch.float64 (or their names); got {dtype!r}")
        self.plant, self.horizon, obs_bound, a = _setup(plant, max_episode_steps, action_bound, overrides, [
            "num_envs", "plant", "device", "dtype", "return_torch", "max_episode_steps", "action_bound"])
        self.num_envs, self.device, self.dtype, self.return_torch = int(num_envs), torch.device(device), dtype, bool(return_torch)
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        obs_bound, a = obs_bound.astype(np_dtype), a.astype(np_dtype)
        self.single_observation_space = spaces.Box(-obs_bound, obs_bound, dtype=np_dtype)
        self.single_action_space = spaces.Box(-a, a, dtype=np_dtype)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        P = plant_tensors(self.plant, self.device, dtype)
        self._P = P
        self._obs_bound = torch.as_tensor(obs_bound, dtype=dtype, device=self.device)
        self._action_bound = float(a[0])
        self._gen = make_generator(None, self.device)
        N, n = self.num_envs, self.plant.n
        self._x = P.x0_mean.expand(N, n).clone()
        self._t = torch.zeros(N, dtype=torch.int32, device=self.device)
        self._done = torch.zeros(N, dtype=torch.bool, device=self.device)
        self._any_done = False
        # host-side step clock, shared by every sub-env while none has terminated since the last reset():
        # it tells truncation without reading the device (no host synchronisation in the common case)
        self._clock, self._clock_shared = 0, True

    # ------------------------------------------------------------------ helpers
    def _randn(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, dtype=self.dtype, device=self.device, generator=self._gen)

    def _initial_states(self, k: int) -> torch.Tensor:
        P = self._P
        x = P.x0_mean + self._randn(k, self.plant.n) @ P.x0_sqrt.T
        return x.clamp_(-P.state_bound, P.state_bound)

    def _out(self, t: torch.Tensor):
        return t if self.return_torch else t.numpy() if t.device.type == "cpu" else t.cpu().numpy()

    def _observe(self, x: torch.Tensor) -> torch.Tensor:
        P = self._P
        if P.C is None:
            return x.clone()  # never hand out the internal state itself
        y = x @ P.C.T + self._randn(x.shape[0], self.plant.p) @ P.V_sqrt.T
        return torch.clamp(y, -self._obs_bound, self._obs_bound)

    def _infos(self, x: torch.Tensor, **infos) -> dict[str, Any]:
        if self._P.C is not None:
            infos["state"] = x.clone()
        return {k: self._out(v) for k, v in infos.items()}

    # --------------------------------------------------------------------- API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset every sub-env; ``seed`` (int) reseeds the torch generator."""
        if options:
            raise InvalidPlantError(f"reset takes no options; got {options!r}")
        super().reset(seed=seed)
        if seed is not None:
            self._gen = make_generator(seed, self.device)
        self._x = self._initial_states(self.num_envs)
        self._t.zero_()
        self._done.zero_()
        self._any_done = False
        self._clock, self._clock_shared = 0, True
        return self._out(self._observe(self._x)), self._infos(self._x)

    def step(self, actions):
        """Step every sub-env with ``actions`` of shape ``(N, m)`` (NumPy or torch)."""
        P, N = self._P, self.num_envs
        u = torch.as_tensor(actions, dtype=self.dtype, device=self.device)
        if u.shape != (N, self.plant.m):  # never reshaped: an (m, N) array would scramble actions across envs
            raise InvalidPlantError(f"actions must have shape (num_envs, m) = ({N}, {self.plant.m}); "
                                    f"got {tuple(u.shape)}")
        x = self._x
        x_new, cost = linear_step(P, x, u, self._randn(N, self.plant.n) if P.Wt is not None else None)
        self._t += 1
        self._clock += 1
        if self._any_done:  # NEXT_STEP autoreset of the sub-envs that finished last step (their actions are ignored)
            if self._clock_shared:  # every sub-env was truncated together: reset all, no device read
                x_new = self._initial_states(N)
                cost.zero_()
                self._t.zero_()
                self._clock = 0
            else:
                d = self._done
                x_new[d] = self._initial_states(int(d.sum()))
                cost.masked_fill_(d, 0.0)
                self._t.masked_fill_(d, 0)
        terminated = torch.zeros(N, dtype=torch.bool, device=self.device)
        if not within_bound(x_new, P.state_bound):  # divergence (rare): clip the state, charge a finite cost
            b = P.state_bound
            terminated = diverged_rows(x_new, b)
            x_new[terminated] = clip_state(x_new[terminated], b)
            ub = torch.nan_to_num(u[terminated], nan=0.0).clamp_(-self._action_bound, self._action_bound)
            cost[terminated] = stage_cost(x[terminated], ub, P.Q, P.R)
            self._clock_shared = False  # sub-envs now restart at different times
        truncated = self._t >= self.horizon
        self._done = terminated | truncated
        # the one host read per step is within_bound above; the clock answers "any done?" while it is shared
        self._any_done = self._clock >= self.horizon if self._clock_shared else bool(self._done.any())
        self._x = x_new
        return (self._out(self._observe(x_new)), self._out(cost.neg()), self._out(terminated),
                self._out(truncated), self._infos(x_new, cost=cost, diverged=terminated.clone()))

    def state_dict(self) -> dict:
        """The full state (states, step counters, autoreset flags, random generator) as tensors and numbers."""
        return {"x": self._x.clone(), "t": self._t.clone(), "done": self._done.clone(), "any_done": self._any_done,
                "clock": self._clock, "clock_shared": self._clock_shared, "generator": self._gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly from :meth:`state_dict` (same plant, ``num_envs``, device and dtype)."""
        x = state["x"].to(device=self.device, dtype=self.dtype)
        if x.shape != self._x.shape:
            raise InvalidPlantError(f"the saved state has shape {tuple(x.shape)}, this env {tuple(self._x.shape)} "
                                    "(num_envs, n)")
        self._x, self._t, self._done = x, state["t"].to(self.device), state["done"].to(self.device)
        self._any_done, self._clock, self._clock_shared = bool(state["any_done"]), int(state["clock"]), \
            bool(state["clock_shared"])
        self._gen.set_state(state["generator"])

    def __repr__(self) -> str:
        return f"LinearGaussianVectorEnv({self.plant.name!r}, num_envs={self.num_envs}, device={self.device}, dtype={self.dtype})"




# ------------------------------------------------------- the trainer's env factory


def is_plant(env) -> bool:
    """True for a :class:`~pgcontrol.plants.LinearGaussianPlant` or a catalog plant name."""
    return isinstance(env, LinearGaussianPlant) or (isinstance(env, str) and env in plant_names())


def _unknown_env(env, exc) -> ConfigError:
    return ConfigError(f"unknown environment {env!r} ({exc}); give a Gymnasium id such as 'InvertedPendulum-v5' "
                       f"or a plant name: {', '.join(plant_names())}")


def _discrete(env, space) -> ConfigError:
    return ConfigError(f"environment {env!r} has a {type(space).__name__} action space; pgcontrol's Gaussian "
                       "policies need continuous (Box) actions, e.g. 'InvertedPendulum-v5' or a plant")


def _registered(name: str) -> bool:
    """``name`` is in Gymnasium's registry (an unversioned name: some version of it is)."""
    from gymnasium.envs.registration import find_highest_version, parse_env_id, registry

    if name in registry:
        return True
    try:
        ns, base, version = parse_env_id(name)
    except gymnasium.error.Error:
        return False
    return version is None and find_highest_version(ns, base) is not None


def check_env_name(env, *, env_modules=()) -> None:
    """Refuse an environment name that is neither a plant nor a registered Gymnasium id, without importing anything.

    An environment name is data (it is read from checkpoints, sweep files and
    configs that other people wrote): Gymnasium's ``"module:EnvId"`` form
    would import ``module``, that is, run its code, so it is accepted only
    for a module named in ``env_modules`` (on the command line,
    ``--allow-env-module MODULE``) or for ``pgcontrol`` itself. Such a module
    is imported here, then the id must be registered.

    Parameters
    ----------
    env : str or LinearGaussianPlant
        A plant (object or catalog name) or a Gymnasium id.
    env_modules : iterable of str
        Modules that a ``"module:EnvId"`` name may import.

    Raises
    ------
    ConfigError
        For a name of another type, a module that is not allowed (the message
        says how to allow it) or an id that is not registered.
    """
    if isinstance(env, LinearGaussianPlant) or is_plant(env):
        return
    if not isinstance(env, str):
        raise ConfigError(f"env must be a plant name, a LinearGaussianPlant or a Gymnasium id (a string); "
                          f"got {type(env).__name__} {str(env)[:80]!r}")
    if isinstance(env_modules, str):
        env_modules = (env_modules,)
    allowed = {"pgcontrol", *env_modules}
    name = env
    if ":" in env:
        module, _, name = env.partition(":")
        if module not in allowed:
            raise ConfigError(f"environment {env[:200]!r} names a module to import ({module[:100]!r}), which would run "
                              f"its code; a registered Gymnasium id or a plant name is expected. To allow it, pass "
                              f"--allow-env-module {module[:100]} on the command line, or env_modules="
                              f"[{module[:100]!r}] in Python")
        import importlib

        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - an allowed module that fails to import
            raise ConfigError(f"environment {env!r}: the allowed module {module!r} cannot be imported "
                              f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})") from None
    if ":" in name or not _registered(name):
        raise _unknown_env(env[:200], "not registered")


def check_env_id(env, *, env_modules=()) -> None:
    """Fail early, with a :class:`ConfigError`, for an unknown id or one without continuous (Box) actions.

    The name is checked first by :func:`check_env_name` (nothing is imported
    unless ``env_modules`` allows it).
    """
    if is_plant(env):
        return
    check_env_name(env, env_modules=env_modules)
    episode_length(env)  # an unknown id fails here
    e = gymnasium.make(env)
    try:
        if not isinstance(e.action_space, spaces.Box):
            raise _discrete(env, e.action_space)
    finally:
        e.close()


def clip_action_batch(vec) -> vw.TransformAction:
    """``vec`` receiving its actions clipped to its Box action space; the wrapper's action space is unbounded.

    The numbers of ``gymnasium.wrappers.vector.ClipAction`` (``np.clip`` to the
    bounds, then the action space's dtype), computed by one ``np.clip`` on the
    whole ``(num_envs, act_dim)`` batch instead of one per environment
    followed by a deep copy.
    """
    box = vec.single_action_space
    low, high, dtype = box.low, box.high, box.dtype
    unbounded = spaces.Box(-np.inf, np.inf, shape=box.shape, dtype=dtype)
    return vw.TransformAction(vec, lambda actions: np.clip(actions, low, high).astype(dtype, copy=False),
                              single_action_space=unbounded)


def make_vec_env(env, num_envs: int, *, device="cpu", normalize_obs=False, normalize_reward=False, gamma=0.99,
                 clip_actions=False, normalize_clip=None, env_modules=()):
    """A Gymnasium vector env for a plant (name or object) or a Gymnasium id.

    Plants get the native batched :class:`LinearGaussianVectorEnv`
    (stepping on ``device``), which returns tensors on ``device``
    (``return_torch=True``) with no wrapper around it: the collector keeps
    the episode statistics on the device (:meth:`pgcontrol.rollout.Collector.collect`).
    Other ids get a ``SyncVectorEnv`` inside ``RecordEpisodeStatistics``.
    Optional Gymnasium normalisation wrappers are added outermost (then
    plants return NumPy arrays too), after ``RecordEpisodeStatistics`` so
    logged returns stay unnormalised; ``clip_actions`` adds :func:`clip_actions`
    (Gymnasium's ``ClipAction`` on the whole batch at once): the env receives the action clipped to its action space
    (as Stable-Baselines3 and CleanRL do on MuJoCo), the learner keeps the
    unclipped sample its log-probability refers to. ``normalize_clip`` ``c``
    clips the normalised observations and rewards to ``[-c, c]`` (SB3's
    ``VecNormalize`` and CleanRL, with c = 10): :func:`clip_observations`
    and Gymnasium's ``ClipReward``, each just outside its normaliser.
    Strings are checked by :func:`check_env_name` first (``env_modules``:
    the modules a ``"module:EnvId"`` name may import).
    """
    if isinstance(env, str):
        check_env_name(env, env_modules=env_modules)
    if is_plant(env):
        # without normalisation the plant env hands tensors on ``device`` straight to the collector,
        # which keeps the episode statistics itself; Gymnasium's wrappers need NumPy arrays
        on_device = not (normalize_obs or normalize_reward or clip_actions)
        vec = gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=num_envs,
                                 vectorization_mode="vector_entry_point", plant=env, device=device,
                                 return_torch=on_device)
        if on_device:
            return vec
    elif isinstance(env, str):
        try:
            vec = gymnasium.make_vec(env, num_envs=num_envs, vectorization_mode="sync")
        except gymnasium.error.Error as exc:
            raise _unknown_env(env, exc) from None
        if not isinstance(vec.single_action_space, spaces.Box):
            vec.close()
            raise _discrete(env, vec.single_action_space)
    elif isinstance(env, VectorEnv):
        vec = env  # already a vector env
    else:
        raise ConfigError(f"env must be a plant name, a LinearGaussianPlant, a Gymnasium id or a Gymnasium vector env; "
                          f"got {type(env).__name__} {str(env)[:80]!r}")
    vec = vw.RecordEpisodeStatistics(vec)
    if clip_actions:
        vec = clip_action_batch(vec)
    if normalize_obs:
        vec = vw.NormalizeObservation(vec)
        if normalize_clip is not None:
            vec = clip_observations(vec, normalize_clip)
    if normalize_reward:
        vec = vw.NormalizeReward(vec, gamma=gamma)
        if normalize_clip is not None:
            vec = vw.ClipReward(vec, -normalize_clip, normalize_clip)
    return vec


WRAPPER_OPTIONS = {"normalize_obs": False, "normalize_reward": False, "clip_actions": False, "normalize_clip": None}


def wrapper_options(config) -> dict:
    """The :func:`make_vec_env` wrapper keywords a learner's config asks for (a config or its ``asdict``)."""
    get = config.get if isinstance(config, dict) else lambda name, default: getattr(config, name, default)
    return {name: get(name, default) for name, default in WRAPPER_OPTIONS.items()}


def clip_observations(env, bound: float):
    """``env`` (a vector env or a single env) with its observations clipped to ``[-bound, bound]``.

    Put around a ``NormalizeObservation`` wrapper, it is the ``clip_obs`` of
    SB3's ``VecNormalize``; the observation space keeps the wrapped one's
    dtype and shape, its bounds intersected with ``[-bound, bound]``.
    """
    vector = hasattr(env, "single_observation_space")
    space = env.single_observation_space if vector else env.observation_space
    clipped = spaces.Box(np.maximum(space.low, -bound), np.minimum(space.high, bound), space.shape, space.dtype)
    clip = lambda obs: np.clip(obs, -bound, bound)  # noqa: E731  (keeps the dtype: bound is a Python float)
    if vector:
        return vw.TransformObservation(env, clip, single_observation_space=clipped)
    return gymnasium.wrappers.TransformObservation(env, clip, clipped)


def find_plant(vec) -> LinearGaussianPlant | None:
    """The plant simulated inside a (wrapped) env, or None."""
    e = vec
    while e is not None:
        if isinstance(getattr(e, "plant", None), LinearGaussianPlant):
            return e.plant
        e = getattr(e, "env", None)
    return None


def find_wrapper(vec, name: str):
    """The wrapper of class name ``name`` around ``vec`` (e.g. ``"NormalizeObservation"``), or None."""
    e = vec
    while e is not None:
        if type(e).__name__ == name:
            return e
        e = getattr(e, "env", None)
    return None


def episode_length(env) -> int | None:
    """Steps of one episode at most: the plant's horizon, or a Gymnasium id's ``max_episode_steps`` (None if unset)."""
    if is_plant(env):
        return int(make(env).horizon)
    if isinstance(env, str) and ":" in env:  # "module:EnvId": only once check_env_name has imported the module
        import sys

        module, _, env = env.partition(":")
        if module not in sys.modules:
            raise _unknown_env(f"{module}:{env}"[:200], "its module is not imported; see check_env_name")
    try:
        spec = gymnasium.spec(env)
    except gymnasium.error.Error as exc:
        raise _unknown_env(env, exc) from None
    if spec.max_episode_steps is not None:
        return int(spec.max_episode_steps)
    horizon = (spec.kwargs or {}).get("max_episode_steps")
    return None if horizon is None else int(horizon)
