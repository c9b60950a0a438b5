"""One shared home for rollouts, returns and advantages.

Everything here works on time-major tensors of shape ``(T, N)`` (T steps of N
parallel environments) collected from any Gymnasium 1.x vector environment
with the default ``NEXT_STEP`` autoreset: the step *after* an episode ends
only resets that sub-environment (its action is ignored and its reward is 0).
Such reset transitions are recorded with ``valid = False`` and never enter a
loss.

Bootstrapping (Spinning Up's "end of a path", SB3's time-limit handling):

* ``terminated`` — the MDP really ended: nothing follows, ``V(x_{t+1}) = 0``;
* ``truncated`` — a time limit cut the episode: the future still exists, so
  targets bootstrap with ``V(x_{t+1})`` of the final observation;
* the last step of a batch that is not done is cut the same way as a
  truncation.

So every estimator below receives ``next_values`` = V(final observation of
the step), already zeroed where ``terminated``; without a critic they are 0
and the estimators are plain Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "Batch",
    "Collector",
    "batch_from_rollout",
    "reward_to_go",
    "total_return",
    "td_residuals",
    "n_step_advantages",
    "gae",
    "time_baseline",
    "explained_variance",
    "discounts",
    "concat_batches",
    "BatchSource",
]


@dataclass
class Batch:
    """Transitions of one collection, time-major ``(T, N, ...)``.

    ``obs[t]`` is what the policy saw, ``actions[t]`` what it sampled
    (unclipped: that is what its log-probability refers to), ``next_obs[t]``
    the observation that followed (the *final* observation when the episode
    ended at ``t``), ``t_in_episode[t]`` the time index τ within the episode.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    logp: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor
    t_in_episode: torch.Tensor
    episode_returns: list = field(default_factory=list)  # undiscounted returns of episodes that ended
    episode_lengths: list = field(default_factory=list)
    diverged: bool = False
    means: torch.Tensor | None = None  # μ(obs[t]) of the policy that collected the batch (None: not recorded)

    @property
    def dones(self) -> torch.Tensor:
        return self.terminated | self.truncated

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


class Collector:
    """Steps a vector env with a policy and records :class:`Batch` es.

    The collector keeps the current observations between calls, so
    ``collect(n)`` continues where the last call stopped (PPO, A2C). With
    ``episodes=True`` it resets first and collects exactly one episode per
    sub-environment (steps after an environment's first episode end are
    masked), which is what the total-return REINFORCE estimator (3.15)
    needs.

    Parameters
    ----------
    envs : gymnasium.vector.VectorEnv
        NEXT_STEP autoreset (Gymnasium's default).
    policy : torch.nn.Module
        ``policy.sample(obs, generator) -> (actions, means)`` and
        ``policy.log_prob_at_mean(means, actions)`` (the Gaussian policies of :mod:`pgcontrol.policies`).
    device : torch.device
    seed : int
        Seeds the first reset and the action noise generator.
    rng : dict, optional
        Continue the streams of another collector instead (:meth:`rng_state`).
    """

    def __init__(self, envs, policy, device, seed: int = 0, dtype=None, rng: dict | None = None):
        self.envs, self.policy, self.device = envs, policy, torch.device(device)
        self.dtype = dtype or next(policy.parameters()).dtype
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self._seed = int(seed)
        if rng is not None:
            self.load_rng_state(rng)
        self._obs = None
        self._resetting = None  # envs whose next step is an autoreset
        self._tau = None
        self._ep_ret = None

    def rng_state(self) -> dict:
        """The random state: the action-noise generator's and the seed of the next reset (for checkpoints)."""
        return {"collector": self.generator.get_state(), "reset_seed": self._seed}

    def load_rng_state(self, state: dict) -> None:
        """Continue the random streams saved by :meth:`rng_state`."""
        self.generator.set_state(state["collector"])
        self._seed = int(state["reset_seed"])

    def episode_state(self) -> dict | None:
        """The episodes in flight, with the environment's own state, as tensors (for an exact resume).

        ``None`` when nothing is in flight (before the first collection, or
        for episodic collection, which resets every time) or when the
        environment cannot save its state (``state_dict``: the plants'
        vector env can, Gymnasium's MuJoCo tasks cannot; their episodes
        restart on resume).
        """
        if self._obs is None or not hasattr(self.envs, "state_dict"):
            return None
        return {"obs": self._obs.clone(), "resetting": torch.as_tensor(self._resetting).clone(),
                "tau": torch.as_tensor(self._tau).clone(), "ep_ret": torch.as_tensor(self._ep_ret).clone(),
                "env": self.envs.state_dict()}

    def load_episode_state(self, state: dict | None) -> None:
        """Continue the episodes saved by :meth:`episode_state` (nothing to do for ``None``)."""
        if state is None:
            return
        self.envs.load_state_dict(state["env"])
        self._obs = state["obs"].to(self.device)
        keep = (lambda t: t.to(self.device)) if self._on_device else (lambda t: t.cpu().numpy())  # noqa: E731
        self._resetting, self._tau, self._ep_ret = keep(state["resetting"]), keep(state["tau"]), keep(state["ep_ret"])

    def _tensor(self, x, dtype=None):
        return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, device=self.device,
                               dtype=dtype or self.dtype)

    @property
    def _on_device(self) -> bool:
        """The env returns tensors on the collector's device (the plants' vector env), not NumPy arrays."""
        return bool(getattr(self.envs, "return_torch", False))

    def reset(self, seed: int | None = None):
        obs, _ = self.envs.reset(seed=self._seed if seed is None else seed)
        self._seed += 1  # the next explicit reset draws fresh initial states
        n = self.envs.num_envs
        self._obs = self._tensor(obs)
        # the episode bookkeeping lives where the env's outputs do: on the device, or in NumPy on the host
        if self._on_device:
            self._resetting = torch.zeros(n, dtype=torch.bool, device=self.device)
            self._tau = torch.zeros(n, dtype=torch.long, device=self.device)
            self._ep_ret = torch.zeros(n, dtype=torch.float64, device=self.device)
        else:
            self._resetting, self._tau, self._ep_ret = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n)

    @torch.no_grad()
    def collect(self, n_steps: int | None = None, *, episodes: bool = False, max_steps: int = 100_000) -> Batch:
        """Collect ``n_steps`` steps of every env, or one episode each (``episodes=True``).

        With an environment that returns tensors on the collector's device
        (``return_torch``, e.g. the plants' :class:`~pgcontrol.envs.LinearGaussianVectorEnv`),
        nothing is read back to the host until the batch is complete: the
        divergence flag and the episode statistics are kept on the device and
        read once at the end, and whole episodes take exactly the env's
        ``horizon`` steps. Other environments return NumPy arrays: the
        bookkeeping stays in NumPy (tiny arrays: a NumPy operation costs a
        fraction of a torch one) and becomes tensors once, at the end; their
        episode returns come from Gymnasium's ``RecordEpisodeStatistics``
        (inside any reward normalisation, so they stay unnormalised).
        """
        if episodes or self._obs is None:
            self.reset()
        if not episodes and (n_steps is None or n_steps < 1):
            raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}")
        on_device = self._on_device
        xp = torch if on_device else np  # where the bookkeeping is done
        limit = max_steps if episodes else int(n_steps)
        if episodes and on_device and getattr(self.envs, "horizon", None):
            limit = min(limit, int(self.envs.horizon))  # every episode has ended by then
        # per-step records, stacked once at the end; obs[t + 1] is next_obs[t] (self._obs = next_obs below),
        # so the observations are recorded once, as T + 1 rows
        rec = {k: [] for k in ("actions", "means", "rewards", "terminated", "truncated", "valid", "tau", "flagged")}
        observations = [self._obs]
        ended_rec, ret_rec = [], []  # episode ends and returns (device), read once at the end
        n = self.envs.num_envs
        finished = torch.zeros(n, dtype=torch.bool, device=self.device) if on_device else np.zeros(n, bool)
        ep_returns, ep_lengths = [], []
        np_dtype = torch.empty((), dtype=self.dtype).numpy().dtype
        for _ in range(limit):
            actions, means = self.policy.sample(self._obs, self.generator)
            obs, reward, term, trunc, info = self.envs.step(actions if on_device else actions.cpu().numpy())
            next_obs = self._tensor(obs)
            if on_device:
                term, trunc, reward = term.to(torch.bool), trunc.to(torch.bool), reward.to(self.dtype)
                reward64 = reward.double()
            else:  # the reward as the batch will hold it (the policy's dtype), then float64 for the sums
                term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
                reward = np.asarray(reward).astype(np_dtype)
                reward64 = reward.astype(np.float64)
            valid = ~self._resetting & ~finished
            # divergence: the plants say so (and stay finite); other envs are checked for finite numbers at the end
            diverged = info.get("diverged") if isinstance(info, dict) else None
            for k, v in zip(rec, (actions, means, reward, term, trunc, valid, self._tau, diverged)):
                rec[k].append(v)
            observations.append(next_obs)
            # episode bookkeeping (reset steps contribute nothing)
            self._ep_ret = self._ep_ret + xp.where(valid, reward64, 0.0)
            done = (term | trunc) & ~self._resetting
            if on_device:
                ended_rec.append(done & ~finished)
                ret_rec.append(self._ep_ret)
            else:  # the returns of RecordEpisodeStatistics (unnormalised), else our sums
                stats = info.get("episode") if isinstance(info, dict) and "_episode" in info else None
                for i in np.flatnonzero(done & ~finished).tolist():
                    if stats is not None and bool(info["_episode"][i]):
                        ep_returns.append(float(np.asarray(stats["r"])[i]))
                        ep_lengths.append(int(np.asarray(stats["l"])[i]))
                    else:
                        ep_returns.append(float(self._ep_ret[i]))
                        ep_lengths.append(int(self._tau[i]) + 1)
            self._ep_ret = xp.where(done | self._resetting, 0.0, self._ep_ret)
            self._tau = xp.where(done | self._resetting, 0, self._tau + 1)
            if episodes:
                finished = finished | done
            self._resetting = done
            self._obs = next_obs
            if episodes and not on_device and bool(finished.all()):
                break
        flagged = rec.pop("flagged")
        b = {k: torch.stack(v) if on_device or k in ("actions", "means") else
             torch.as_tensor(np.stack(v), device=self.device) for k, v in rec.items()}
        all_obs = torch.stack(observations)
        if flagged[0] is not None:  # a valid step diverged
            bad = bool((self._tensor(np.stack(flagged) if not on_device else torch.stack(flagged), torch.bool)
                        & b["valid"]).any())
        else:  # a valid step turned non-finite
            finite = torch.isfinite(all_obs[1:]).flatten(2).all(-1) & torch.isfinite(b["rewards"])
            bad = bool((b["valid"] & ~finite).any())
        logp = self.policy.log_prob_at_mean(b["means"], b["actions"])  # eq. (4.26), for the whole batch at once
        if ended_rec:  # one read of the device for the whole batch, in the order the episodes ended
            ended = torch.stack(ended_rec)
            ep_returns += torch.stack(ret_rec)[ended].tolist()
            ep_lengths += (b["tau"][ended] + 1).tolist()
        return Batch(all_obs[:-1], b["actions"], logp, b["rewards"], all_obs[1:], b["terminated"],
                     b["truncated"], b["valid"], b["tau"], ep_returns, ep_lengths, bad, means=b["means"])


def concat_batches(batches: list) -> Batch:
    """Whole-episode batches side by side (along N), the shorter ones padded with invalid steps.

    What ``train`` collects for a learner whose ``collect_spec()`` asks for
    ``rounds`` > 1: ``rounds × num_envs`` episodes, the batch an adaptive
    sample size (:mod:`pgcontrol.algos.vpg`) grew to.
    """
    if len(batches) == 1:
        return batches[0]
    T = max(b.obs.shape[0] for b in batches)

    def pad(x, fill=0):
        if x is None or x.shape[0] == T:
            return x
        extra = torch.full((T - x.shape[0], *x.shape[1:]), fill, dtype=x.dtype, device=x.device)
        return torch.cat([x, extra])

    names = ("obs", "actions", "logp", "rewards", "next_obs", "terminated", "truncated", "valid", "t_in_episode")
    fields_ = {k: torch.cat([pad(getattr(b, k)) for b in batches], dim=1) for k in names}
    means = None if any(b.means is None for b in batches) else torch.cat([pad(b.means) for b in batches], dim=1)
    return Batch(**fields_, episode_returns=[r for b in batches for r in b.episode_returns],
                 episode_lengths=[n for b in batches for n in b.episode_lengths],
                 diverged=any(b.diverged for b in batches), means=means)


class BatchSource:
    """The batch a learner asks for (its ``collect_spec()``), kept within a step budget.

    A spec is the keyword arguments of :meth:`Collector.collect`, plus, for
    the adaptive learners, ``rounds`` (a batch of ``rounds × num_envs`` whole
    episodes, :mod:`pgcontrol.algos.vpg`) or an ``n_steps`` grown beyond the
    config's (:mod:`pgcontrol.algos.ppo`). A grown batch never overshoots the
    budget: with ``left`` steps to go it is cut to what fits, and never below
    the config's own batch. On a plant, ``rounds`` whole episodes are one
    pass of a vector env ``rounds`` times wider (``widen(k)``); elsewhere
    they are ``rounds`` passes, side by side (:func:`concat_batches`).

    Parameters
    ----------
    collector : Collector
    num_envs : int
        The config's ``num_envs``.
    n_steps : int, optional
        The config's ``n_steps``.
    horizon : int, optional
        Episode length on a plant.
    widen : callable, optional
        ``widen(k)``: a vector env of ``k × num_envs`` copies of the plant (None elsewhere).
    """

    def __init__(self, collector: Collector, *, num_envs: int, n_steps: int | None = None,
                 horizon: int | None = None, widen=None):
        self.collector, self.num_envs, self.n_steps, self.horizon = collector, num_envs, n_steps, horizon
        self.widen, self._wide = widen, {}

    def __call__(self, spec: dict, left: int | None = None) -> Batch:
        spec = dict(spec)
        rounds = spec.pop("rounds", 1)
        if left is not None and rounds > 1 and self.horizon:
            rounds = max(1, min(rounds, left // (self.num_envs * self.horizon)))
        base = self.n_steps
        if left is not None and spec.get("n_steps") and base and spec["n_steps"] > base:
            spec["n_steps"] = max(base, min(spec["n_steps"], left // (self.num_envs * base) * base))
        if rounds == 1 or not spec.get("episodes") or self.widen is None:
            return concat_batches([self.collector.collect(**spec) for _ in range(rounds)])
        if rounds not in self._wide:
            self._wide[rounds] = self.widen(rounds)
        c = self.collector
        envs = c.envs
        c.envs = self._wide[rounds]
        try:
            return c.collect(**spec)
        finally:  # the next collection resets (whole episodes): nothing in flight to save
            c.envs, c._obs = envs, None


def batch_from_rollout(ro, logp=None) -> Batch:
    """A simulator rollout (:func:`pgcontrol.sim.rollout_linear`) as a :class:`Batch` of whole, aligned episodes.

    The states are the observations (state feedback), rewards are −c, every
    step is valid, the last step is a truncation (the time limit), nothing
    terminates, and ``t_in_episode[t] = t``. ``logp`` (``(T, N)``) defaults
    to zeros: pass ``policy.log_prob(obs, actions)`` where a learner needs it.
    The leading dimensions of the rollout's tensors may be reshaped first
    (e.g. ``(T, N, R)``): everything after the time axis is kept.
    """
    costs = ro.costs
    T, rest = costs.shape[0], costs.shape[1:]
    false = torch.zeros(costs.shape, dtype=torch.bool, device=costs.device)
    truncated = false.clone()
    truncated[-1] = True  # the time limit: truncation, not termination
    tau = torch.arange(T, device=costs.device).view(T, *([1] * len(rest))).expand(costs.shape).clone()
    return Batch(ro.states[:-1], ro.actions, torch.zeros_like(costs) if logp is None else logp, -costs,
                 ro.states[1:], false, truncated, ~false, tau, diverged=bool(ro.diverged.any()))


# ------------------------------------------------------------------ returns


def discounts(gamma: float, t_in_episode: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """γ^τ at every step, ``t_in_episode`` shaped: the table γ^0 … γ^τmax looked up (one power per τ, not per sample)."""
    if t_in_episode.numel() == 0 or dtype != torch.float64:  # float32 powers differ by an ulp between SIMD lanes:
        return gamma ** t_in_episode.to(dtype)                  # keep the elementwise ones there
    table = gamma ** torch.arange(int(t_in_episode.max()) + 1, dtype=dtype, device=t_in_episode.device)
    return table.index_select(0, t_in_episode.reshape(-1)).view(t_in_episode.shape)  # 3× faster than table[t]


def _cont(batch_dones: torch.Tensor) -> torch.Tensor:
    """1 where step t+1 continues the episode of step t inside the batch."""
    cont = (~batch_dones).to(torch.float64)
    cont[-1] = 0.0  # the batch ends: cut (bootstrapped like a truncation)
    return cont


def backward_scan(b: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """The recursion behind (3.15), (3.19) and (6.46): :math:`y_t = b_t + d_t\\,y_{t+1}`, :math:`y_T = 0`.

    ``b`` and ``decay`` are ``(T, N)``; the result is float64. On the CPU the
    loop over t runs on NumPy views (a NumPy operation on a row costs a
    fraction of a torch call: about 10x less for T = 50, N = 5); elsewhere it
    runs on the tensors' device. Both give the same numbers.
    """
    b = b.to(torch.float64)
    decay = decay.to(torch.float64)
    if b.device.type == "cpu":
        bn = b.detach().numpy()
        return torch.from_numpy(_scan(bn, decay.detach().numpy(), np.empty_like(bn), np.zeros_like(bn[0])))
    return _backward_scan_torch(b, decay)


def _backward_scan_torch(b: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """:func:`backward_scan` with torch operations on the tensors' device (GPU)."""
    return _scan(b, decay, torch.empty_like(b), torch.zeros_like(b[0]))


def _scan(b, decay, out, acc):
    """The loop of :func:`backward_scan`, on NumPy arrays or torch tensors alike (``out`` filled and returned)."""
    for t in range(b.shape[0] - 1, -1, -1):
        acc = b[t] + decay[t] * acc
        out[t] = acc
    return out


def reward_to_go(rewards, dones, next_values, gamma: float, valid=None) -> torch.Tensor:
    """Discounted reward-to-go :math:`\\hat G_t = \\sum_{k\\ge t} \\gamma^{k-t} r_k` (3.21).

    The sum stops at the end of the episode; where the episode was cut (time
    limit or end of batch) it is completed by :math:`\\gamma^{k-t+1} V(x_{k+1})`
    through ``next_values`` (0 at termination and without a critic).
    """
    cont = _cont(dones)
    out = backward_scan(rewards + gamma * ((1 - cont) * next_values), gamma * cont)
    return out if valid is None else out * valid


def total_return(rewards, dones, t_in_episode, gamma: float, valid=None) -> torch.Tensor:
    """Whole-trajectory discounted return :math:`\\sum_{t=0}^{T} \\gamma^t r_t` at every step (3.15).

    Needs whole episodes (``Collector.collect(episodes=True)``); ``t_in_episode``
    gives the γ^t weights.
    """
    cont = _cont(dones)
    w = discounts(gamma, t_in_episode) * rewards
    tail = backward_scan(w, cont)
    out = torch.zeros_like(w)
    start = tail[0]
    for t in range(w.shape[0]):
        start = torch.where(t_in_episode[t] == 0, tail[t], start)
        out[t] = start
    return out if valid is None else out * valid


def td_residuals(rewards, values, next_values, gamma: float) -> torch.Tensor:
    """One-step TD advantage :math:`\\delta_t = r_t + \\gamma V(x_{t+1}) - V(x_t)` (4.21), (6.44)."""
    return rewards + gamma * next_values - values


def n_step_advantages(rewards, values, next_values, dones, gamma: float, n: int) -> torch.Tensor:
    """n-step advantage (6.42): :math:`\\sum_{k<n}\\gamma^k r_{t+k} + \\gamma^n V(x_{t+n}) - V(x_t)`.

    Computed as the telescoping sum :math:`\\sum_{k<n} \\gamma^k \\delta_{t+k}`,
    stopped at the end of the episode (or batch), where the last δ carries
    the bootstrap (or 0 at termination).
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1 for an n-step advantage; got {n!r}")
    delta = td_residuals(rewards, values, next_values, gamma)
    cont = _cont(dones)
    T = rewards.shape[0]
    out = torch.zeros_like(delta, dtype=torch.float64)
    for t in range(T):
        alive = torch.ones_like(delta[0], dtype=torch.float64)
        for k in range(min(int(n), T - t)):
            out[t] += alive * gamma**k * delta[t + k]
            alive = alive * cont[t + k]
    return out


def gae(rewards, values, next_values, dones, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimation GAE(γ, λ) (6.46).

    :math:`\\hat A_t = \\sum_{l\\ge0} (\\gamma\\lambda)^l \\delta_{t+l}`, computed
    backwards as :math:`\\hat A_t = \\delta_t + \\gamma\\lambda\\,\\hat A_{t+1}` inside
    an episode. λ = 0 gives the TD residual (4.21), λ = 1 the Monte Carlo
    return minus V (6.41).
    """
    if not (0.0 <= lam <= 1.0):
        raise ValueError(f"GAE lambda must lie in [0, 1]; got {lam!r}")
    delta = td_residuals(rewards, values, next_values, gamma)
    cont = _cont(dones)
    return backward_scan(delta, gamma * lam * cont)


def time_baseline(returns, t_in_episode, valid) -> torch.Tensor:
    """Batch-mean baseline :math:`b_t`, the mean return of the *other* trajectories at the same τ.

    Leave-one-out keeps the estimator unbiased (eq. (4.8): a baseline that
    does not depend on the sample's own action has zero mean); including the
    sample itself would shrink the gradient by (1 - 1/N). Requires aligned
    episodes (``episodes=True``), where row t is time τ = t for every env.
    """
    if bool(valid.all()):  # whole aligned episodes: the same numbers as below (×1 and −0 are exact), less work
        return (returns.sum(1, keepdim=True) - returns) / max(returns.shape[1] - 1, 1) if returns.shape[1] > 1 \
            else torch.zeros_like(returns)
    v = valid.to(returns.dtype)
    s = (returns * v).sum(1, keepdim=True)
    c = v.sum(1, keepdim=True)
    loo = (s - returns * v) / (c - v).clamp_min(1.0)
    return torch.where(c - v > 0, loo, torch.zeros_like(loo)) * v


def explained_variance(pred, target, valid=None) -> float:
    """1 - Var[target - pred] / Var[target] (1 = perfect critic, 0 = no better than a constant)."""
    if valid is not None:
        pred, target = pred[valid], target[valid]
    var = torch.var(target)
    return float("nan") if var == 0 else float(1 - torch.var(target - pred) / var)


def pg_advantages(batch: Batch, *, estimator: str, baseline: str, gamma: float, values=None, next_values=None,
                  lam: float = 0.95, discount_weighting: bool = True):
    """The weights Ψ_t of the REINFORCE family: :math:`\\hat g = \\frac1M\\sum_m\\sum_t \\nabla\\log\\pi(u_t|x_t)\\,\\Psi_t`.

    estimator
        ``"total"`` — the whole discounted return (3.15);
        ``"rtg"`` — reward-to-go (3.19) (with ``discount_weighting``: the γ^t
        factor of (3.19) that keeps the estimate unbiased for the discounted
        objective; without it, the common (3.21));
        ``"gae"`` — GAE(γ, λ) (6.46), needs a critic.
    baseline
        ``"none"``, ``"mean"`` (leave-one-out batch mean at the same τ,
        :func:`time_baseline`) or ``"value"`` (the critic's V(x_t), (4.12)).

    Returns ``(psi, returns)``: the weights (0 on invalid steps) and the
    reward-to-go targets a critic would regress on.
    """
    z = torch.zeros_like(batch.rewards)
    values = z if values is None else values
    next_values = z if next_values is None else next_values
    v = batch.valid.to(batch.rewards.dtype)
    rtg = reward_to_go(batch.rewards, batch.dones, next_values, gamma, batch.valid)
    if estimator == "total":
        if baseline == "value":
            raise ValueError("the total-return estimator (3.15) takes baseline 'none' or 'mean', not 'value'")
        psi = total_return(batch.rewards, batch.dones, batch.t_in_episode, gamma, batch.valid)
    elif estimator == "rtg":
        psi = rtg
    elif estimator == "gae":
        if baseline != "value":
            raise ValueError("the GAE estimator (6.46) needs baseline='value' (a critic)")
        psi = gae(batch.rewards, values, next_values, batch.dones, gamma, lam)
    else:
        raise ValueError(f"unknown estimator {estimator!r}; choose 'total', 'rtg' or 'gae'")
    if baseline == "mean":
        psi = psi - time_baseline(psi, batch.t_in_episode, batch.valid)
    elif baseline == "value" and estimator != "gae":
        psi = psi - values
    elif baseline not in ("none", "value", "mean"):
        raise ValueError(f"unknown baseline {baseline!r}; choose 'none', 'mean' or 'value'")
    if discount_weighting and estimator != "total":
        psi = psi * discounts(gamma, batch.t_in_episode, psi.dtype)
    return psi * v, rtg
