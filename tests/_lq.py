"""Shared helpers of the learner tests: aligned LQ episodes and their per-episode score terms."""

import torch

from pgcontrol import plants
from pgcontrol.envs import make_vec_env
from pgcontrol.policies import LinearGaussianPolicy
from pgcontrol.rollout import Collector


def episodes(name, K, std, n, seed=0):
    p = plants.make(name)
    envs = make_vec_env(name, n)
    pol = LinearGaussianPolicy(p.n, p.m, K0=K, std0=std)
    return p, pol, Collector(envs, pol, "cpu", seed=seed).collect(episodes=True)


def per_episode_cost_gradients(pol, batch, psi):
    """Σ_t ∇log π(u_t|x_t) Ψ_t per episode, with the analytic score of u ~ N(-Kx, σ²),
    negated: an estimate of ∇J for the *cost* J, comparable to lqr.policy_gradient."""
    x, u = batch.obs, batch.actions
    K = torch.as_tensor(pol.K)
    s = torch.as_tensor(pol.std)
    eps = u + x @ K.T  # u - mean
    score_K = -(eps / s**2)[..., :, None] * x[..., None, :]  # ∂/∂K_ij = -ε_i x_j / σ_i²
    score_s = eps**2 / s**3 - 1 / s
    gK = (score_K * psi[..., None, None]).sum(0)  # (N, m, n)
    gs = (score_s * psi[..., None]).sum(0)
    return -torch.cat([gK.flatten(1), gs], dim=1).numpy()
