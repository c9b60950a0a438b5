"""Gymnasium environments (pgcontrol.envs): spaces, transitions, autoreset, divergence, registration."""

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from pgcontrol import lqr, plants, sim
from pgcontrol.envs import ENV_IDS, LinearGaussianEnv, LinearGaussianVectorEnv, register_envs
from pgcontrol.plants import InvalidPlantError, LinearGaussianPlant

# x_{t+1} = 2 x_t: from x0 = 1 the state leaves |x| <= 100 at step 7 (x = 128)
UNSTABLE = LinearGaussianPlant(A=2.0, B=1.0, Q=1.0, R=1.0, x0_mean=[1.0], x0_cov=0.0,
                               state_bound=100.0, horizon=50, name="doubling")


def _episode(env, policy, seed=0):
    obs, info = env.reset(seed=seed)
    steps = 0
    while True:
        obs, r, term, trunc, info = env.step(policy(obs))
        steps += 1
        if term or trunc:
            return steps, term, trunc, obs, r, info


# ----------------------------------------------------------------- single env


@pytest.mark.parametrize("name", ["scalar-lqg", "double-integrator", "double-integrator-output"])
def test_check_env_passes(name):
    env = gymnasium.make("pgcontrol/LinearGaussian-v0", plant=name).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    # the only remaining hint is Gymnasium's generic "use a normalized action space" advice
    assert [str(w.message) for w in caught if "normalized" not in str(w.message)] == []


def test_registration_is_idempotent_and_accepts_plant_objects():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_envs()
        register_envs()
    assert all(i in gymnasium.registry for i in ENV_IDS)
    env = gymnasium.make("pgcontrol/LinearGaussian-v0", plant=UNSTABLE, gamma=0.5)
    assert env.unwrapped.plant.gamma == 0.5 and env.unwrapped.plant.name == "doubling"
    with pytest.raises(InvalidPlantError, match="unknown plant"):
        LinearGaussianEnv("no-such-plant")
    with pytest.raises(InvalidPlantError, match="unknown keyword.*devcie"):
        gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=2, plant=UNSTABLE, devcie="cpu")


@pytest.mark.parametrize("env_id, kwargs, horizon", [
    ("pgcontrol/ScalarLQG-v0", {}, 50),
    ("pgcontrol/LinearGaussian-v0", {"plant": "scalar-lqg"}, 50),
    ("pgcontrol/LinearGaussian-v0", {}, 150),
    ("pgcontrol/LinearGaussian-v0", {"plant": "laplacian-3"}, 500),
    ("pgcontrol/LinearGaussian-v0", {"plant": "laplacian-3", "horizon": 7}, 7),
])
def test_truncation_at_the_plant_horizon(env_id, kwargs, horizon):
    env = gymnasium.make(env_id, **kwargs)
    K, _ = lqr.optimal_gain(env.unwrapped.plant)
    steps, term, trunc, *_ = _episode(env, lambda x: -K @ x)
    assert (steps, term, trunc) == (horizon, False, True)
    assert env.unwrapped.horizon == horizon


def test_scalar_preset_has_a_registered_time_limit():
    assert gymnasium.spec("pgcontrol/ScalarLQG-v0").max_episode_steps == 50
    assert gymnasium.spec("pgcontrol/LinearGaussian-v0").max_episode_steps is None
    env = LinearGaussianEnv("double-integrator", max_episode_steps=3)
    assert _episode(env, lambda x: np.zeros(1))[:3] == (3, False, True)


def test_one_step_cost_by_hand():
    env = LinearGaussianEnv("double-integrator")
    x0, info = env.reset(seed=3)
    assert info == {}
    p = env.plant
    u = np.array([0.7])
    obs, r, term, trunc, info = env.step(u)
    assert info["cost"] == pytest.approx(x0 @ p.Q @ x0 + u @ p.R @ u, rel=1e-12)
    assert r == -info["cost"] and info["diverged"] is False
    # process noise W = 1e-4 I: the transition is A x + B u up to a few noise std
    np.testing.assert_allclose(obs, p.A @ x0 + p.B @ u, atol=0.05)


def test_output_plant_observes_y_and_reports_the_state():
    env = LinearGaussianEnv("double-integrator-output")
    y, info = env.reset(seed=0)
    assert y.shape == (1,) and info["state"].shape == (2,)
    assert abs(y[0] - info["state"][0]) < 1.0  # y = x_1 + v, V = 1e-2
    y, r, *_, info = env.step(np.zeros(1))
    assert info["cost"] == -r and info["state"].shape == (2,)


def test_divergence_terminates_with_finite_values():
    env = LinearGaussianEnv(UNSTABLE)
    steps, term, trunc, obs, r, info = _episode(env, lambda x: np.zeros(1))
    assert (steps, term, trunc, info["diverged"]) == (7, True, False, True)
    np.testing.assert_array_equal(obs, [100.0])  # 128 clipped to the bound
    assert r == -(64.0**2)  # cost of the in-bound pre-step state, zero action
    # a NaN action also diverges, without NaN in the output
    env.reset(seed=0)
    obs, r, term, _, info = env.step(np.array([np.nan]))
    assert term and info["diverged"] and np.all(np.isfinite(obs)) and np.isfinite(r)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must have 1 entries"):
        env.step(np.zeros(2))


# ----------------------------------------------------------------- vector env


def _vec(plant="scalar-lqg", n=4, **kw):
    return gymnasium.make_vec("pgcontrol/LinearGaussian-v0", num_envs=n,
                              vectorization_mode="vector_entry_point", plant=plant, **kw)


def test_vector_spaces_and_metadata():
    env = _vec("double-integrator-output", 5)
    assert isinstance(env.unwrapped, LinearGaussianVectorEnv)
    assert env.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    assert env.single_observation_space.shape == (1,) and env.observation_space.shape == (5, 1)
    assert env.single_action_space.shape == (1,) and env.action_space.shape == (5, 1)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space and info["state"].shape == (5, 2)
    obs, r, term, trunc, info = env.step(np.zeros((5, 1)))
    assert obs.dtype == np.float64 and r.shape == term.shape == trunc.shape == (5,)
    assert set(info) == {"cost", "diverged", "state"}
    np.testing.assert_array_equal(info["cost"], -r)
    # default mode for both ids is the native vector env, the ScalarLQG limit is passed through
    v = gymnasium.make_vec("pgcontrol/ScalarLQG-v0", num_envs=2)
    assert isinstance(v.unwrapped, LinearGaussianVectorEnv) and v.unwrapped.horizon == 50
    t = LinearGaussianVectorEnv(3, "double-integrator", return_torch=True, dtype="float32")
    obs, _ = t.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.dtype == torch.float32
    assert t.single_observation_space.dtype == np.float32
    with pytest.raises(ValueError, match="actions must have shape"):
        t.step(torch.zeros(3, 2))


def test_vector_first_step_matches_the_transition_formula():
    p = plants.make("double-integrator")
    env = LinearGaussianVectorEnv(6, p)
    x0, _ = env.reset(seed=11)
    u = np.linspace(-1, 1, 6)[:, None]
    x1, r, *_ = env.step(u)
    # reproduce the generator: x0 noise, then process noise
    g = torch.Generator().manual_seed(11)
    z0 = torch.randn(6, 2, dtype=torch.float64, generator=g).numpy()
    w = torch.randn(6, 2, dtype=torch.float64, generator=g).numpy() @ sim.sqrt_psd(p.W).T
    np.testing.assert_allclose(x0, p.x0_mean + z0 @ sim.sqrt_psd(p.x0_cov).T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(x1, x0 @ p.A.T + u @ p.B.T + w, rtol=0, atol=1e-14)
    np.testing.assert_allclose(-r, np.einsum("ni,ij,nj->n", x0, p.Q, x0) + p.R[0, 0] * u[:, 0] ** 2, rtol=1e-13)


def test_vector_next_step_autoreset_and_truncation_timing():
    env = _vec("scalar-lqg", 3, horizon=5)
    env.reset(seed=0)
    for k in range(1, 6):
        obs, r, term, trunc, _ = env.step(np.zeros((3, 1)))
        assert not term.any() and trunc.all() == (k == 5) and (r < 0).all()
    # next step: actions ignored, reset observation, reward 0, no flags
    obs, r, term, trunc, info = env.step(np.full((3, 1), 1e3))
    np.testing.assert_allclose(obs, 0.3, atol=0.05)  # x0 ~ N(0.3, 1e-4)
    assert (r == 0).all() and not term.any() and not trunc.any() and (info["cost"] == 0).all()
    for k in range(1, 6):  # a full new episode of 5 steps
        obs, r, term, trunc, _ = env.step(np.zeros((3, 1)))
        assert trunc.all() == (k == 5)


def test_vector_divergence_and_partial_autoreset():
    env = LinearGaussianVectorEnv(2, UNSTABLE)
    obs, _ = env.reset(seed=0)
    for k in range(1, 8):  # env 0 is left alone (diverges at step 7), env 1 is stabilised by u = -1.5x
        obs, r, term, trunc, info = env.step(np.array([[0.0], [-1.5 * obs[1, 0]]]))
        assert term.tolist() == [k == 7, False] and not trunc.any()
    assert info["diverged"].tolist() == [True, False]
    assert obs[0, 0] == 100.0 and r[0] == -(64.0**2) and np.all(np.isfinite(obs))
    obs, r, term, trunc, info = env.step(np.array([[np.nan], [-1.5 * obs[1, 0]]]))
    assert obs[0, 0] == 1.0 and r[0] == 0.0  # env 0 reset (its NaN action ignored)
    assert obs[1, 0] == 0.5**8 and r[1] == pytest.approx(-3.25 * 0.5**14)  # env 1 kept going: x -> x/2
    obs, r, term, *_ = env.step(np.array([[np.nan], [0.0]]))  # a NaN action diverges, finitely
    assert term.tolist() == [True, False] and np.isfinite(obs).all() and np.isfinite(r).all()


def test_vector_same_seed_same_numbers():
    def run(seed):
        env = _vec("double-integrator-output", 8)
        out = [env.reset(seed=seed)[0]]
        for _ in range(4):
            out.append(env.step(np.ones((8, 1)))[0])
        return np.stack(out)

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def _mc_check(costs: np.ndarray, exact: float, n_se: float = 4.0) -> None:
    se = costs.std(ddof=1) / np.sqrt(costs.size)
    assert abs(costs.mean() - exact) < n_se * se, (costs.mean(), exact, se)


@pytest.mark.parametrize("name", ["scalar-lqg", "double-integrator"])
def test_vector_rollout_cost_matches_policy_cost(name):
    p = plants.make(name)
    K, _ = lqr.optimal_gain(p)
    K, std, N = 0.8 * K, 0.3, 8192
    env = LinearGaussianVectorEnv(N, p, return_torch=True)
    g = torch.Generator().manual_seed(1)
    Kt = torch.as_tensor(K.T)
    x, _ = env.reset(seed=2)
    total, disc = torch.zeros(N, dtype=torch.float64), 1.0
    for t in range(p.horizon):
        u = -x @ Kt + std * torch.randn(N, p.m, dtype=torch.float64, generator=g)
        x, r, term, trunc, _ = env.step(u)
        total -= disc * r
        disc *= p.gamma
    assert trunc.all() and not term.any()
    _mc_check(total.numpy(), lqr.policy_cost(p, K, std, horizon=p.horizon))


def test_single_and_vector_env_agree_in_distribution():
    """x_10 under u = 0 from the deterministic x0: mean A^10 x0, covariance sum_k A^k W A^k'."""
    p = plants.make("double-integrator", W=0.01 * np.eye(2))
    n_ep, T = 1000, 10
    single = LinearGaussianEnv(p)
    xs_single = []
    for ep in range(n_ep):
        single.reset(seed=ep)
        for _ in range(T):
            obs = single.step(np.zeros(1))[0]
        xs_single.append(obs)
    vec = LinearGaussianVectorEnv(n_ep, p)
    vec.reset(seed=0)
    for _ in range(T):
        xs_vec = vec.step(np.zeros((n_ep, 1)))[0]
    A = p.A
    mean = np.linalg.matrix_power(A, T) @ p.x0_mean
    cov = sum(np.linalg.matrix_power(A, k) @ p.W @ np.linalg.matrix_power(A, k).T for k in range(T))
    for xs in (np.array(xs_single), xs_vec):
        se = np.sqrt(np.diag(cov) / n_ep)
        assert np.all(np.abs(xs.mean(0) - mean) < 4 * se)
        np.testing.assert_allclose(np.cov(xs.T), cov, rtol=0.2, atol=0.02 * np.abs(cov).max())


def test_stepping_after_the_episode_ended_is_refused():
    env = LinearGaussianEnv(UNSTABLE)
    env.reset(seed=0)
    steps, term, _, _, _, _ = _episode(env, lambda obs: np.zeros(1))
    assert term and steps == 7
    with pytest.raises(InvalidPlantError, match="call reset"):
        env.step(np.zeros(1))
    env.reset(seed=1)
    env.step(np.zeros(1))  # fine again after a reset


def test_import_pgcontrol_registers_the_ids_cheaply():
    """Like Gymnasium plugins: ``import pgcontrol`` registers, without importing torch; the module syntax works."""
    import subprocess
    import sys

    code = ("import sys, gymnasium, pgcontrol; assert 'torch' not in sys.modules; "
            "e = gymnasium.make('pgcontrol/ScalarLQG-v0'); e.reset(seed=0); "
            "v = gymnasium.make_vec('pgcontrol/LinearGaussian-v0', num_envs=3, vectorization_mode='vector_entry_point'); "
            "assert v.num_envs == 3; pgcontrol.registration.register_envs()")  # idempotent
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import gymnasium; e = gymnasium.make('pgcontrol:pgcontrol/LinearGaussian-v0', plant='laplacian-3')"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("plant", ["double-integrator", "laplacian-3"])
def test_rgb_array_rendering_and_float32_spaces(plant):
    env = gymnasium.make("pgcontrol/LinearGaussian-v0", plant=plant, render_mode="rgb_array", dtype="float32")
    assert "rgb_array" in env.metadata["render_modes"]
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.action_space.dtype == np.float32
    env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    frame = env.render()
    assert frame.shape == (320, 320, 3) and frame.dtype == np.uint8 and frame.std() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gymnasium's generic "normalised action space" hint
        check_env(env.unwrapped)
    with pytest.raises(InvalidPlantError, match="render_mode must be None or 'rgb_array'"):
        LinearGaussianEnv(plant, render_mode="human")
    assert LinearGaussianEnv(plant).render() is None


def test_stable_baselines3_takes_the_envs_as_they_are():
    sb3 = pytest.importorskip("stable_baselines3")  # the `bench` extra
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    from stable_baselines3.common.env_util import make_vec_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning a user could avoid; the one kept on purpose is
        # SB3's "normalized Box action space" hint: the LQ problem is unconstrained, and a [-1, 1] box would
        # make SB3 clip every action (README, "Environments")
        warnings.filterwarnings("ignore", message=".*symmetric and normalized Box action space.*")
        sb3_check_env(LinearGaussianEnv("double-integrator", dtype="float32"))
    vec = make_vec_env("pgcontrol/LinearGaussian-v0", n_envs=2)
    model = sb3.PPO("MlpPolicy", "pgcontrol/LinearGaussian-v0", n_steps=64, batch_size=32, n_epochs=1)
    model.learn(64)
    assert vec.num_envs == 2


def test_clip_action_batch_is_gymnasiums_clip_action():
    """One np.clip on the batch gives the actions (values and dtype) of Gymnasium's per-env ClipAction."""
    from gymnasium.wrappers import vector as vw

    from pgcontrol.envs import clip_action_batch

    ours = clip_action_batch(gymnasium.make_vec("Pendulum-v1", num_envs=3, vectorization_mode="sync"))
    theirs = vw.ClipAction(gymnasium.make_vec("Pendulum-v1", num_envs=3, vectorization_mode="sync"))
    assert ours.single_action_space == theirs.single_action_space and ours.action_space == theirs.action_space
    ours.reset(seed=0), theirs.reset(seed=0)
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        u = np.array([[-3.5], [0.7], [2.5]]) * rng.uniform(1, 2, (3, 1)).astype(dtype)
        u = u.astype(dtype)  # the first and last are out of the bounds ±2
        a, b = ours.actions(u), theirs.actions(u)
        assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)
        assert all(np.array_equal(x, y) for x, y in zip(ours.step(u)[:2], theirs.step(u)[:2]))
    ours.close(), theirs.close()


def test_normalize_clip_clips_normalised_observations_and_rewards_as_vecnormalize():
    """``normalize_clip`` is SB3's clip_obs/clip_reward: the normalised values, clipped; nothing else changes."""
    from pgcontrol.envs import make_vec_env

    def run(clip):
        vec = make_vec_env("double-integrator", 4, normalize_obs=True, normalize_reward=True, gamma=0.9,
                           normalize_clip=clip)
        obs, _ = vec.reset(seed=3)
        seen, rewards = [obs], []
        for t in range(30):
            obs, r, *_ = vec.step(np.full((4, 1), 3.0 * (-1) ** t, dtype=np.float32))
            seen.append(obs)
            rewards.append(r)
        return np.array(seen), np.array(rewards), vec

    raw_obs, raw_rew, _ = run(None)
    obs, rew, vec = run(0.5)
    assert np.abs(raw_obs).max() > 1 and np.abs(raw_rew).max() > 1  # the clip bites
    np.testing.assert_array_equal(obs, np.clip(raw_obs, -0.5, 0.5))
    np.testing.assert_array_equal(rew, np.clip(raw_rew, -0.5, 0.5))
    assert obs.dtype == raw_obs.dtype
    assert vec.single_observation_space.contains(obs[-1][0])


def test_normalize_clip_is_checked():
    from pgcontrol.algos.ppo import PPOConfig
    from pgcontrol.errors import ConfigError

    for bad in (0, -10.0, "10", True):
        with pytest.raises(ConfigError, match="normalize_clip must be > 0 or None"):
            PPOConfig(normalize_obs=True, normalize_clip=bad)
    with pytest.raises(ConfigError, match="normalize_clip must be None unless normalize_obs or normalize_reward"):
        PPOConfig(normalize_clip=10.0)
    assert PPOConfig(normalize_reward=True, normalize_clip=10.0).normalize_clip == 10.0
