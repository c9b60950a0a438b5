"""The learners' adaptive rules: signal-fraction trust region, norm-test batch, stopping rule, step guard.

Each test fails when its rule is removed (docs/learners.md lists them).
"""

import math

import numpy as np
import pytest
import torch

from pgcontrol import lqr, plants
from pgcontrol.algos.base import SampleSize, StepGuard, gradient_noise
from pgcontrol.algos.npg import NPGConfig
from pgcontrol.algos.vpg import VPGConfig
from pgcontrol.policies import build_policy, far_initial_gain
from pgcontrol.train import train


def test_sample_size_grows_the_batch_by_the_norm_test_and_stops_at_the_largest():
    size = SampleSize(NPGConfig(num_envs=4, max_rounds=4, norm_test=0.5, stop_patience=2))
    assert size.update(total=2.0, noise=1.0, what="x") == pytest.approx(0.5)  # signal 1 of 2
    assert size.rounds == 2  # wants 1·1/(0.25·1) = 4 rounds, at most doubles
    assert size.update(total=2.0, noise=1.0, what="x") == pytest.approx(0.5) and size.rounds == 4
    assert size.update(total=10.0, noise=0.1, what="x") > 0.98 and size.rounds == 4  # never shrinks
    assert size.stop_reason is None
    size.update(total=1.0, noise=1.0, what="x")
    assert size.stop_reason is None and size.quiet == 1
    assert size.update(total=0.5, noise=1.0, what="x") == 0.0  # pure noise: no step
    assert "not significant" in size.stop_reason


def test_gradient_noise_is_the_covariance_of_the_mean_in_the_metric():
    G = torch.tensor([[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]], dtype=torch.float64)
    g, C, total, noise = gradient_noise(G)
    np.testing.assert_allclose(g, G.mean(0))
    np.testing.assert_allclose(C, np.cov(G.T.numpy()) / 3)
    assert total == pytest.approx(float(g @ g)) and noise == pytest.approx(float(np.trace(np.cov(G.T.numpy())) / 3))
    F = torch.diag(torch.tensor([2.0, 4.0], dtype=torch.float64))
    _, _, total_f, noise_f = gradient_noise(G, F)
    assert total_f == pytest.approx(float(g[0] ** 2 / 2 + g[1] ** 2 / 4))
    assert noise_f == pytest.approx(float(C[0, 0] / 2 + C[1, 1] / 4))


def _one_update(algo, plant, seed=0, **cfg):
    from pgcontrol.algos import get_algorithm
    from pgcontrol.rollout import Collector
    from pgcontrol.envs import make_vec_env

    Algo, _ = get_algorithm(algo)
    config = Algo.Config(**cfg)
    pol = build_policy("linear", plant.n, plant.m, plant=plant)
    torch.manual_seed(seed)
    learner = Algo(pol, config, gamma=plant.gamma, obs_dim=plant.n, device="cpu", plant=plant)
    vec = make_vec_env(plant, config.num_envs, device="cpu", gamma=plant.gamma)
    batch = Collector(vec, pol, "cpu", seed=seed).collect(episodes=True)
    return pol, learner, learner.update(batch, 0)


@pytest.mark.parametrize("algo", ["npg", "trpo"])
def test_the_natural_step_has_the_kl_of_epsilon_times_the_signal_fraction(algo):
    p = plants.random(3, 1, 1)
    _, learner, out = _one_update(algo, p, num_envs=8, kl_bound=1e-3)  # small: the KL is quadratic
    assert 0 < out["signal_fraction"] < 0.9
    assert out["kl_target"] == pytest.approx(1e-3 * out["signal_fraction"])
    if algo == "npg":
        assert out["kl"] == pytest.approx(out["kl_target"], rel=0.1)
    else:  # TRPO's line search: never above ε'
        assert 0 < out["kl"] <= out["kl_target"]
    assert out["next_batch_episodes"] >= 8  # the norm test never shrinks the batch


def test_noisy_gradients_grow_the_batch():
    p = plants.random(4, 2, 3)
    _, learner, out = _one_update("npg", p, num_envs=4)
    assert learner.collect_spec()["rounds"] > 1 and out["next_batch_episodes"] > 4


def test_the_vpg_default_step_does_not_depend_on_the_cost_scale():
    """The trust-region step in the vanilla direction: Q, R × 1000 give the same update."""
    p = plants.random(3, 2, 7)
    big = p.replace(Q=1000 * p.Q, R=1000 * p.R)
    K1 = _one_update("vpg", p, num_envs=32)[0].K
    K2 = _one_update("vpg", big, num_envs=32)[0].K
    K0 = build_policy("linear", 3, 2, plant=p).K
    assert np.abs(K1 - K0).max() > 1e-4
    np.testing.assert_allclose(K1, K2, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_the_first_vpg_step_from_a_stabilising_start_stays_stabilising(seed):
    p = plants.random(5, 2, 40 + seed)
    pol, _, _ = _one_update("vpg", p, seed=seed)
    assert lqr.spectral_radius(np.sqrt(p.gamma) * (p.A - p.B @ pol.K)) < 1


def test_the_guard_takes_a_blown_up_step_back_and_halves_the_next():
    p = plants.make("double-integrator")
    pol = build_policy("linear", 2, 1, plant=p)
    guard = StepGuard()

    class B:  # a batch: rewards (T, N), valid, diverged
        def __init__(self, cost):
            self.rewards = -torch.full((10, 4), cost, dtype=torch.float64)
            self.valid = torch.ones(10, 4, dtype=torch.bool)
            self.diverged = False

    assert guard.accept(B(1.0), pol.parameters())
    guard.remember(pol.parameters())
    K0 = pol.K.copy()
    with torch.no_grad():
        pol.gain.add_(5.0)
    assert guard.accept(B(2.5), pol.parameters())  # within 3× the last batch: kept
    guard.remember(pol.parameters())
    with torch.no_grad():
        pol.gain.add_(5.0)
    assert not guard.accept(B(100.0), pol.parameters())  # blew up: θ back, step halved
    np.testing.assert_allclose(pol.K, K0 + 5.0)
    assert guard.shrink == 0.5


def test_a_destabilising_step_is_shortened_not_the_end_of_training():
    """VPG with a huge plain step and the guard (adaptive on): rejected rows, no TrainingDiverged."""
    cfg = VPGConfig(num_envs=4, iterations=12, lr=0.05, estimator="rtg", baseline="mean")
    hist = train("vpg", "double-integrator", config=cfg, seed=3, progress=False)
    assert any("rejected" in r for r in hist)
    assert math.isfinite([r["gap"] for r in hist if "gap" in r][-1])  # a taken-back last update has no gap row


def test_the_stopping_rule_ends_a_run_at_the_optimum_and_says_why():
    p = plants.make("double-integrator")
    K = lqr.optimal_gain(p)[0]
    pol = build_policy("linear", 2, 1, plant=p, K0=K, std0=0.5)
    cfg = NPGConfig(num_envs=16, max_rounds=1, stop_patience=2)
    hist = train("npg", p, policy=pol, config=cfg, seed=0, progress=False, max_steps=2_000_000)
    assert "not significant" in hist[-1]["stop_reason"] and hist[-1]["steps"] < 2_000_000


def test_the_default_budget_follows_the_plant():
    from pgcontrol.config import default_budget

    small, big = plants.random(2, 1, 0), plants.random(8, 4, 0)
    assert 100_000 <= default_budget(small) < default_budget(big) <= 2_000_000
    hist = train("npg", plants.make("scalar-lqg"), seed=0, progress=False)
    assert hist[-1]["stop_reason"] and hist[-1]["steps"] <= default_budget(plants.make("scalar-lqg")) + 50 * 16 * 32


@pytest.mark.parametrize("name", ["double-integrator", "laplacian-3", "cartpole-linearized", "random-7-1-107"])
def test_the_far_start_is_stabilising_and_far(name):
    p = plants.random(7, 1, 107) if name.startswith("random") else plants.make(name)
    K = far_initial_gain(p)
    gap = lqr.cost_gap(lqr.policy_cost(p, K, 0.0), lqr.policy_cost(p, lqr.optimal_gain(p)[0], 0.0))
    assert 0.4 <= gap <= 10, gap


def test_the_episodic_batch_may_fall_to_half_when_the_noise_allows_and_never_below_the_first():
    size = SampleSize(NPGConfig(num_envs=4, max_rounds=16, norm_test=0.5), shrink=True)
    size.update(total=2.0, noise=1.0, what="x")
    size.update(total=2.0, noise=1.0, what="x")
    assert size.rounds == 4
    size.update(total=10.0, noise=0.01, what="x")  # wants 4·0.01/(0.25·9.99) < 1 round: at most halves
    assert size.rounds == 2
    size.update(total=10.0, noise=0.01, what="x")
    size.update(total=10.0, noise=0.01, what="x")
    assert size.rounds == 1
    kept = SampleSize(NPGConfig(num_envs=4, max_rounds=16), shrink=False)  # AC, PPO: only grows
    kept.update(total=2.0, noise=1.0, what="x")
    kept.update(total=10.0, noise=0.01, what="x")
    assert kept.rounds == 2


def test_the_step_agreement_cuts_after_a_significant_overshoot_and_grows_after_a_short_step():
    from pgcontrol.algos.base import StepAgreement

    a = StepAgreement(grow=1.5, cut=0.5, most=2.0)
    cov = 0.01 * torch.eye(2, dtype=torch.float64)
    assert a.update(torch.tensor([1.0, 0.0], dtype=torch.float64), cov) == 1.0  # no step yet
    a.taken(torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert a.update(torch.tensor([-1.0, 0.0], dtype=torch.float64), cov) == 0.5  # slope −1, se 0.1: went past
    assert a.slope == pytest.approx(-1.0)
    assert a.update(torch.tensor([0.05, 3.0], dtype=torch.float64), cov) == 0.5  # slope 0.05 < se 0.1: kept
    assert a.update(torch.tensor([1.0, 0.0], dtype=torch.float64), cov) == 0.75  # stopped short: grows
    for _ in range(5):
        a.update(torch.tensor([1.0, 0.0], dtype=torch.float64), cov)
    assert a.radius == 2.0  # at most ``most``
    a.taken(torch.zeros(2, dtype=torch.float64))  # a zero step is not remembered
    assert torch.equal(a.last, torch.tensor([1.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("algo", ["vpg", "npg", "trpo"])
def test_the_reinforce_family_holds_sigma_under_the_adaptive_rules(algo):
    p = plants.make("double-integrator")
    pol, learner, out = _one_update(algo, p, num_envs=8)
    np.testing.assert_allclose(pol.std, 0.5)
    assert out["kl"] > 0 if "kl" in out else np.abs(pol.K - build_policy("linear", 2, 1, plant=p).K).max() > 0
    pol2, _, _ = _one_update(algo, p, num_envs=8, adaptive=False, **({"lr": None} if algo == "vpg" else {}))
    assert not np.allclose(pol2.std, 0.5)  # without the adaptive rules σ is learned


@pytest.mark.parametrize("seed", [pytest.param(0, marks=pytest.mark.slow), 1])
def test_the_natural_step_converges_near_the_optimum_instead_of_jumping_across_it(seed):
    """cartpole-linearized from the default start, 600 k steps: with the radius held at 1 the fixed-KL
    step keeps jumping across K* (final gaps 0.6 % and 1.8 % on these seeds); with it, below 0.2 %."""
    p = plants.make("cartpole-linearized")
    hist = train("npg", p, seed=seed, progress=False, max_steps=600_000)
    gaps = [r["gap"] for r in hist if "gap" in r]
    assert gaps[-1] < 0.002, gaps[-1]
    assert min(r.get("step_radius", 1.0) for r in hist) < 1.0


@pytest.mark.parametrize("algo", ["npg", "vpg", "ac", "ppo"])
def test_a_batch_cut_short_by_the_budget_takes_no_step(algo):
    """The last batch of a run is cut to the step budget: smaller than the norm test asked, it is not stepped on.
    The stopping rule's sentence names the batch asked for, not the one cut short."""
    from pgcontrol.algos import get_algorithm
    from pgcontrol.envs import make_vec_env
    from pgcontrol.rollout import Collector

    p = plants.random(3, 1, 1)
    Algo, _ = get_algorithm(algo)
    config = Algo.Config(num_envs=8)
    pol = build_policy("linear", p.n, p.m, plant=p)
    learner = Algo(pol, config, gamma=p.gamma, obs_dim=p.n, device="cpu", plant=p)
    vec = make_vec_env(p, config.num_envs, device="cpu", gamma=p.gamma)
    col = Collector(vec, pol, "cpu", seed=0)
    spec = {k: v for k, v in learner.collect_spec().items() if k != "rounds"}  # one round: num_envs episodes
    batch = col.collect(**spec)
    learner.size.rounds = 2  # the norm test asked for twice this batch
    named = []
    update = learner.size.update
    learner.size.update = lambda total, noise, what: named.append(what) or update(total, noise, what)
    K0 = pol.K.copy()
    out = learner.update(batch, 0)
    assert out["kl_target"] == 0.0
    unit = "episodes" if algo in ("npg", "vpg") else "steps"
    per_round = config.num_envs * (1 if unit == "episodes" else config.n_steps)
    assert named == [f"{2 * per_round} {unit}"]
    if algo == "ppo":
        assert not learner.opt.state  # no step to take: no epochs (Adam has taken no step)
    np.testing.assert_allclose(pol.K, K0)
    learner.size.rounds = 1
    for it in range(1, 4):  # full batches step (where their gradient is not pure noise)
        learner.update(col.collect(**spec), it)
        learner.size.rounds = 1
    assert np.abs(pol.K - K0).max() > 0


def test_the_ac_default_step_is_natural_with_the_kl_of_its_target():
    """AC's default actor step under the adaptive rules: δθ ∝ F⁻¹ĝ with ĝ, F the batch's per-environment
    estimate of (4.22) and its sample Fisher, of second-order KL ε' (the mean KL of a mean shift of a
    Gaussian with σ held is ½ δθᵀF_exact δθ; the sample F differs from it by noise)."""
    from pgcontrol.algos.base import per_environment_gradients
    from pgcontrol.algos.ac import td_targets
    from pgcontrol.envs import make_vec_env
    from pgcontrol.rollout import Collector
    from pgcontrol.algos.ac import ACConfig, ActorCritic

    p = plants.random(3, 2, 5)
    pol = build_policy("linear", p.n, p.m, plant=p)
    learner = ActorCritic(pol, ACConfig(kl_bound=1e-3), gamma=p.gamma, obs_dim=p.n, device="cpu", plant=p)
    assert learner.natural and learner.opt is None
    learner.critic_ready = True  # the step alone: no first fit of the critic on this batch
    vec = make_vec_env(p, 64, device="cpu", gamma=p.gamma)
    batch = Collector(vec, pol, "cpu", seed=0).collect(n_steps=16)
    _, adv, _ = td_targets(learner.critic, batch, p.gamma)
    G, F, params = per_environment_gradients(pol, batch, adv)
    theta0 = torch.nn.utils.parameters_to_vector(params).detach().clone()
    out = learner.update(batch, 0)
    step = torch.nn.utils.parameters_to_vector(params).detach() - theta0
    direction = torch.linalg.solve(F, G.mean(0))
    cos = float(step @ direction / (step.norm() * direction.norm()))
    assert cos == pytest.approx(1.0, abs=1e-6)
    assert out["step_fraction"] == 1.0 and out["kl_target"] > 0
    assert out["kl"] == pytest.approx(out["kl_target"], rel=0.3)


def test_ac_with_adam_keeps_adam_and_natural_needs_the_adaptive_rules():
    from pgcontrol.algos.ac import ACConfig, ActorCritic
    from pgcontrol.errors import ConfigError

    p = plants.make("double-integrator")
    pol = build_policy("linear", p.n, p.m, plant=p)
    learner = ActorCritic(pol, ACConfig(optimizer="adam"), gamma=p.gamma, obs_dim=p.n, device="cpu", plant=p)
    assert not learner.natural and isinstance(learner.opt, torch.optim.Adam)
    assert not ActorCritic(pol, ACConfig(adaptive=False), gamma=p.gamma, obs_dim=p.n, device="cpu").natural
    with pytest.raises(ConfigError, match="optimizer='natural'.*adaptive"):
        ActorCritic(pol, ACConfig(optimizer="natural", adaptive=False), gamma=p.gamma, obs_dim=p.n, device="cpu")
    with pytest.raises(ConfigError, match="ent_coef must be 0 with the natural step"):
        ActorCritic(pol, ACConfig(ent_coef=0.1), gamma=p.gamma, obs_dim=p.n, device="cpu")


@pytest.mark.parametrize("algo,optimizer,plant,steps", [("ac", None, (3, 1, 4), 60_000), ("ac", "adam", (3, 1, 4), 60_000),
                                                        ("ppo", None, (3, 2, 5), 60_000)])
def test_the_ac_and_ppo_step_radius_scales_the_kl_target(algo, optimizer, plant, steps):
    """AC's and PPO's KL target is ε × signal fraction × step radius (× the guard's shrink ≤ 1), the radius
    read from the slope along the last step: after a step that went past the best point on its line, it halves."""
    from pgcontrol.algos.ac import ACConfig

    config = ACConfig(optimizer=optimizer) if algo == "ac" else None
    hist = train(algo, plants.random(*plant), seed=0, progress=False, max_steps=steps, config=config)
    rows = [r for r in hist if "step_radius" in r]
    assert len({r["step_radius"] for r in rows}) > 1  # the radius moved
    for r in rows:
        assert r["kl_target"] <= 0.02 * r["signal_fraction"] * r["step_radius"] * (1 + 1e-12)
    pairs = [(a, b) for a, b in zip(rows, rows[1:]) if b.get("slope", 0.0) < 0]
    assert pairs
    for a, b in pairs:
        assert b["step_radius"] == pytest.approx(0.5 * a["step_radius"])


def test_ac_fits_its_critic_on_the_first_batch_before_the_advantages():
    """With V_φ = 0 the TD advantage (4.21) of the first batch would be the bare reward: under the adaptive
    rules the critic is fitted on that batch first, so the values it gives explain the TD targets."""
    from pgcontrol.algos.ac import ACConfig

    p = plants.random(3, 1, 4)
    hist = train("ac", p, seed=0, progress=False, config=ACConfig(iterations=1))
    assert hist[0]["explained_variance"] > 0.5
    plain = train("ac", p, seed=0, progress=False, config=ACConfig(iterations=1, adaptive=False))
    assert abs(plain[0]["explained_variance"]) < 1e-6  # the zero critic explains nothing


def test_every_learner_stops_after_ten_insignificant_iterations_at_the_largest_batch():
    """One stopping patience for all (10): with 3, NPG and TRPO ended runs that had wandered from a start near
    K* before they came back (docs/benchmarks-plants.md)."""
    from pgcontrol.algos import get_algorithm

    for name in ("vpg", "npg", "trpo", "ac", "ppo"):
        cfg = get_algorithm(name)[0].Config(max_rounds=1, stop_rounds=1)
        assert cfg.stop_patience == 10, name
        size = SampleSize(cfg)
        for _ in range(9):
            size.update(total=1.0, noise=1.0, what="x")
        assert size.stop_reason is None, name
        size.update(total=1.0, noise=1.0, what="x")
        assert "for 10 iterations" in size.stop_reason, name



def test_the_largest_batch_doubles_where_the_gradient_is_not_significant_before_the_stopping_rule_counts():
    """``stop_rounds``: an insignificant gradient at the largest batch doubles that batch (up to ``stop_rounds``)
    instead of counting toward the stop; PPO's default raises 32 rounds to 128, the others keep ``max_rounds``."""
    from pgcontrol.algos.ppo import PPOConfig

    size = SampleSize(PPOConfig(max_rounds=2, stop_rounds=8, stop_patience=2))
    size.rounds = 2
    for largest in (4, 8):
        size.update(total=1.0, noise=1.0, what="x")
        assert (size.max_rounds, size.rounds, size.quiet) == (largest, largest, 0)
    size.update(total=1.0, noise=1.0, what="x")
    assert size.quiet == 1 and size.stop_reason is None
    size.update(total=1.0, noise=1.0, what="x")
    assert "for 2 iterations" in size.stop_reason
    again = SampleSize(PPOConfig(max_rounds=2, stop_rounds=8))
    again.load_state_dict({**size.state_dict(), "max_rounds": 10**12})  # a tampered checkpoint: bounded
    assert again.max_rounds == 8
    assert SampleSize(PPOConfig()).stop_rounds == 128 and SampleSize(NPGConfig()).stop_rounds == 32
    # PPO's default follows a larger max_rounds; an explicit stop_rounds is kept
    assert SampleSize(PPOConfig(max_rounds=256)).stop_rounds == 256
    assert SampleSize(PPOConfig(stop_rounds=32)).stop_rounds == 32
    assert SampleSize(NPGConfig(max_rounds=64)).stop_rounds == 64
    with pytest.raises(ValueError, match="stop_rounds"):
        NPGConfig(max_rounds=8, stop_rounds=4)


def test_ppos_batch_may_fall_and_acs_only_grows():
    """PPO's n_steps falls to half where the norm test allows (as the REINFORCE family's batch); AC's never falls."""
    from pgcontrol.algos import get_algorithm

    p = plants.make("double-integrator")
    for name, falls in (("ppo", True), ("ac", False), ("npg", True)):
        Learner = get_algorithm(name)[0]
        pol = build_policy("linear", p.n, p.m, plant=p, K0=[[0.3, 0.9]], std0=0.5)
        learner = Learner(pol, Learner.Config(), gamma=p.gamma, obs_dim=p.n, device="cpu", plant=p)
        size = learner.size
        for _ in range(3):
            size.update(total=2.0, noise=1.5, what="x")  # noisy: the batch grows to 8 rounds
        assert size.rounds == 8, name
        size.update(total=10.0, noise=0.01, what="x")  # the norm test asks for less than one round
        assert size.rounds == (4 if falls else 8), name


def test_the_kl_rule_moves_the_step_size_and_grows_it_only_when_allowed():
    """KLControl: the multiplier ÷1.5 above 2ε', ×1.5 below ε'/2 (unless ``grow=False``: PPO's clip held the KL)."""
    from pgcontrol.algos.base import KLControl

    pol = build_policy("linear", 2, 1, K0=np.array([[1.0, 0.5]]), std0=0.5)
    params = list(pol.parameters())
    obs = torch.randn(64, 2, dtype=torch.float64)
    with torch.no_grad():
        old = pol(obs)
    theta_old = torch.nn.utils.parameters_to_vector(params).detach().clone()

    def limit(delta, target, **kw):
        torch.nn.utils.vector_to_parameters(theta_old + delta, params)
        return kl.limit(pol, params, theta_old, obs, old, target, **kw)

    tiny = torch.zeros_like(theta_old)
    tiny[0] = 1e-4
    kl = KLControl()
    limit(tiny, 0.01)
    assert kl.scale == 1.5
    limit(tiny, 0.01, grow=False)
    assert kl.scale == 1.5
    out = limit(100 * torch.ones_like(theta_old), 0.01, grow=False)  # far above: shortened, and the multiplier falls
    assert kl.scale == 1.0 and out["kl"] <= 0.01 and out["step_fraction"] < 1


@pytest.mark.parametrize("bound, grows", [(-1.0, False), (1.1, True)])
def test_ppo_does_not_grow_its_step_size_while_the_clip_holds_the_kl(monkeypatch, bound, grows):
    """PPO passes ``grow=False`` to the KL rule when more than ``CLIP_BOUND`` of its samples were clipped."""
    from pgcontrol.algos import ppo as ppo_module
    from pgcontrol.envs import make_vec_env
    from pgcontrol.rollout import Collector

    p = plants.random(3, 1, 1)
    config = ppo_module.PPOConfig()
    pol = build_policy("linear", p.n, p.m, plant=p)
    learner = ppo_module.PPO(pol, config, gamma=p.gamma, obs_dim=p.n, device="cpu", plant=p)
    col = Collector(make_vec_env(p, config.num_envs, device="cpu", gamma=p.gamma), pol, "cpu", seed=0)
    monkeypatch.setattr(ppo_module, "CLIP_BOUND", bound)
    seen = []
    limit = learner.kl.limit
    learner.kl.limit = lambda *a, grow=True: seen.append(grow) or limit(*a, grow=grow)
    for it in range(3):
        learner.update(col.collect(**learner.collect_spec()), it)
    assert seen == [grows] * 3
