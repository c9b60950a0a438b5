"""PPO's minibatch step with the gradients written out, in NumPy: the same numbers as :mod:`.ppo`, faster.

A PPO minibatch of 64 samples through two 64-64 MLPs is a few hundred
thousand floating-point operations, far less than the overhead of the ~150
tensor operations (forward, autograd's backward, the gradient clip, Adam)
that torch dispatches for it, each costing microseconds on the CPU. This
module takes the same step with ~60 NumPy operations on views of the same
memory: the parameters, their ``.grad`` and Adam's ``exp_avg`` and
``exp_avg_sq`` stay torch tensors (checkpoints, resumption and the torch
path see one state), and NumPy writes into them in place. On HalfCheetah's
17 → 64 → 64 → 6 networks a minibatch step takes about a fifth of the time
of autograd's (``experiments/bench_ppo_step.py``); on 256-unit layers the
matrix products dominate and the gain is smaller.

The gradients, for one minibatch of B samples (``tests/test_ppo_numpy.py``
checks each against autograd):

* the log-density of the diagonal Gaussian (4.26), with z = u − μ_θ(x) and
  σ = e^{log σ}: ∂ log π/∂μ = z/σ², ∂ log π/∂ log σ = z²/σ² − 1 (zero below
  the floor ``min_std``);
* the clipped surrogate (6.37): ∂(−mean L^clip)/∂ log π_i = −Â_i r_i / B
  where the sample still pulls, 0 where the ratio has left [1−ε, 1+ε] in the
  direction Â favours (r > 1+ε with Â > 0, r < 1−ε with Â < 0);
* the entropy Σ_j log σ_j + const of each sample: ∂/∂ log σ_j = 1;
* the critic loss ½ mean (V − Ĝ)² (4.20): ∂/∂V_i = (V_i − Ĝ_i)/B (the clipped
  variant: 0 where the clipped error is the larger and V has left V_old ± ε);
* back through each Linear layer y = x Wᵀ + b: ∂W = δᵀ x, ∂b = Σ δ,
  ∂x = δ W, and through tanh (1 − h²) or ReLU (h > 0);
* the global-norm clip and Adam as torch computes them.

It covers :class:`~pgcontrol.policies.MLPGaussianPolicy` with
:class:`~pgcontrol.critics.MLPValue` (Adam-trained) on the CPU, which is
what PPO's ``backend="auto"`` hands it; anything else takes the torch path.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..critics import MLPValue
from ..policies import MLPGaussianPolicy


def supports(policy, critic, device) -> bool:
    """Whether :class:`NumpyStep` covers this policy, critic and device (MLP policy and MLP critic on the CPU)."""
    return (type(policy) is MLPGaussianPolicy and type(critic) is MLPValue and torch.device(device).type == "cpu"
            and policy.dtype in (torch.float32, torch.float64) and critic.dtype == policy.dtype)


class _MLP:
    """NumPy views of an ``nn.Sequential`` of ``Linear`` layers with tanh or ReLU between them."""

    def __init__(self, net: torch.nn.Sequential, activation: str):
        layers = [m for m in net if isinstance(m, torch.nn.Linear)]
        self.W = [lin.weight.detach().numpy() for lin in layers]
        self.b = [lin.bias.detach().numpy() for lin in layers]
        self.gW = [lin.weight.grad.numpy() for lin in layers]
        self.gb = [lin.bias.grad.numpy() for lin in layers]
        self.tanh = activation == "tanh"

    def forward(self, x):
        """``(output, inputs of each layer)``."""
        inputs = [x]
        for W, b in zip(self.W[:-1], self.b[:-1]):
            h = x @ W.T + b
            x = np.tanh(h) if self.tanh else np.maximum(h, 0)
            inputs.append(x)
        return x @ self.W[-1].T + self.b[-1], inputs

    def backward(self, delta, inputs):
        """Write ∂loss/∂W and ∂loss/∂b of every layer into the ``.grad`` views, from δ = ∂loss/∂output."""
        for k in range(len(self.W) - 1, -1, -1):
            np.matmul(delta.T, inputs[k], out=self.gW[k])  # ∂W = δᵀ x
            np.sum(delta, axis=0, out=self.gb[k])  # ∂b = Σ δ
            if k:
                h = inputs[k]
                delta = (delta @ self.W[k]) * ((1 - h * h) if self.tanh else (h > 0))  # back through the activation


class NumpyStep:
    """One PPO update's minibatch steps in NumPy, on views of the learner's tensors.

    Built at the start of each :meth:`PPO.update <pgcontrol.algos.ppo.PPO.update>`
    (views are cheap, and a loaded checkpoint may have replaced Adam's state).

    Parameters
    ----------
    policy, critic : MLPGaussianPolicy, MLPValue
        The learner's networks.
    optimiser : torch.optim.Adam
        PPO's Adam over the two flat parameters (:func:`~pgcontrol.algos.base.flat_parameters`).
    config : PPOConfig
    obs, actions, logp_old, adv, returns, values_old : tensor
        The update's valid transitions (CPU).
    """

    def __init__(self, policy, critic, optimiser, config, obs, actions, logp_old, adv, returns, values_old):
        cfg, pol = config, policy
        self.cfg, self.act_dim = cfg, pol.act_dim
        dtype = {torch.float32: np.float32, torch.float64: np.float64}[pol.dtype]
        self.actor = _MLP(pol.mean_net, pol.activation)
        self.critic = _MLP(critic.net, critic.activation)
        self.log_std, self.g_log_std = pol.raw_std.detach().numpy(), pol.raw_std.grad.numpy()
        self.log_min_std = math.log(pol.min_std)
        arrays = (obs, actions, logp_old, adv, returns, values_old)
        self.obs, self.actions, self.logp_old, self.adv, self.returns, self.values_old = (
            t.detach().numpy().astype(dtype, copy=False) for t in arrays)
        self.groups = []  # (parameter, gradient, exp_avg, exp_avg_sq, step, param group) of Adam's two flat tensors
        for group in optimiser.param_groups:
            for p in group["params"]:
                state = optimiser.state[p]
                if not state:  # what torch's Adam creates at its first step
                    state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                self.groups.append((p.detach().numpy(), p.grad.numpy(), state["exp_avg"].numpy(),
                                    state["exp_avg_sq"].numpy(), state["step"].numpy(), group))

    def step(self, idx: np.ndarray) -> tuple[float, float, float, float, float]:
        """One minibatch step; ``(−mean L^clip, value loss, entropy, approx KL, clip fraction)``."""
        cfg, n = self.cfg, len(idx)
        a = self.adv[idx]
        if cfg.norm_adv and n > 1:
            a = (a - a.mean()) / (a.std(ddof=1) + 1e-8)
        x, u = self.obs[idx], self.actions[idx]

        # policy: log π (4.26), ratio (6.35), clipped surrogate (6.37)
        above = self.log_std > self.log_min_std  # σ = max(e^{log σ}, σ_min): no gradient on the floor
        log_sigma = np.where(above, self.log_std, self.log_min_std)
        inv_var = np.exp(-2 * log_sigma)
        mu, hidden = self.actor.forward(x)
        z = u - mu
        z2 = z * z * inv_var
        logp = -0.5 * z2.sum(1) - (log_sigma.sum() + 0.5 * self.act_dim * math.log(2 * math.pi))
        logratio = logp - self.logp_old[idx]  # eq. (6.39)
        ratio = np.exp(logratio)  # eq. (6.35)
        eps = cfg.clip_coef
        loss_pi = -np.minimum(ratio * a, np.clip(ratio, 1 - eps, 1 + eps) * a).mean()  # eq. (6.37)
        stopped = ((a > 0) & (ratio > 1 + eps)) | ((a < 0) & (ratio < 1 - eps))
        d_logp = np.where(stopped, 0, -a * ratio / n)  # ∂(−mean L^clip)/∂ log π
        self.actor.backward(d_logp[:, None] * z * inv_var, hidden)  # ∂ log π/∂μ = z/σ²
        entropy = log_sigma.sum() + 0.5 * self.act_dim * (1 + math.log(2 * math.pi))
        g = d_logp @ (z2 - 1) - cfg.ent_coef  # ∂ log π/∂ log σ = z²/σ² − 1; ∂ entropy/∂ log σ = 1
        self.g_log_std[...] = np.where(above, g, 0)

        # critic: ½ mean (V − Ĝ)² (4.20), optionally clipped around V_old
        v, hidden = self.critic.forward(x)
        v = v[:, 0]
        ret = self.returns[idx]
        err = v - ret
        sq = err * err
        pull = True
        if cfg.clip_vloss:
            v_old = self.values_old[idx]
            v_clip = v_old + np.clip(v - v_old, -eps, eps)
            sq_clip = (v_clip - ret) ** 2
            pull = (np.abs(v - v_old) <= eps) | (sq >= sq_clip)
            sq = np.maximum(sq, sq_clip)
        loss_v = 0.5 * sq.mean()  # eq. (4.20)
        self.critic.backward(((cfg.vf_coef / n) * np.where(pull, err, 0))[:, None], hidden)

        self._clip_and_adam()
        approx_kl = ((ratio - 1) - logratio).mean()  # k3 estimator of KL(π_old ‖ π_θ)
        clip_fraction = (np.abs(ratio - 1) > eps).mean()
        return float(loss_pi), float(loss_v), float(entropy), float(approx_kl), float(clip_fraction)

    def _clip_and_adam(self):
        """``clip_grad_norm_`` over both flat gradients, then torch's Adam step on each (``torch.optim.Adam``, foreach off)."""
        max_norm = self.cfg.max_grad_norm
        if max_norm is not None:
            norm = math.sqrt(sum(float(g @ g) for _, g, *_ in self.groups))
            coef = max_norm / (norm + 1e-6)
            if coef < 1:
                for _, g, *_ in self.groups:
                    g *= coef
        for p, g, m, v, step, group in self.groups:
            beta1, beta2 = group["betas"]
            step += 1
            t = float(step)
            m += (1 - beta1) * (g - m)  # exp_avg.lerp_(grad, 1 − β1)
            v *= beta2
            v += (1 - beta2) * (g * g)
            denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + group["eps"]
            p -= (group["lr"] / (1 - beta1 ** t)) * (m / denom)
