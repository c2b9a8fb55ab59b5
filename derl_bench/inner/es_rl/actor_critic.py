"""The RL step: advantage actor-critic with a value baseline, on a replay of recent episodes.

Policy gradient with a learned state-value baseline (Sutton & Barto 2018, Sec. 13.5,
"Actor-Critic Methods"); advantages by GAE (Schulman et al. 2016, "High-Dimensional Continuous
Control Using Generalized Advantage Estimation", Eq. 16), normalised over the replay. Because
the replay holds episodes of earlier policies, each step's policy-gradient term is weighted by
the truncated importance ratio ``min(1, pi(a|s) / mu(a|s))`` (mu: the acting policy), as in
V-trace (Espeholt et al. 2018, "IMPALA", Sec. 4.1, rho-bar = 1); the advantages themselves are
not corrected (an approximation that is exact for the newest episodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from derl_bench.inner.es_rl.networks import Policy, ValueNetwork

__all__ = ["RLStats", "ReplayEpisode", "actor_critic_update", "gae"]


@dataclass(frozen=True)
class ReplayEpisode:
    """One episode as the RL step learns from it. ``T`` is the episode length."""

    observations: torch.Tensor
    """float32, shape (T + 1, state_dim)."""
    raw_actions: torch.Tensor
    """int64, shape (T,) or float32, shape (T, action_dim): the policy's unclipped actions."""
    log_probs: torch.Tensor
    """float32, shape (T,): log-probabilities under the acting policy."""
    rewards: torch.Tensor
    """float32, shape (T,): the rewards learned from (native, or the sparse episode reward)."""
    bootstrap: bool
    """Bootstrap from V(s_T) after the last step (a time-limit cut of the native reward)."""

    def to_state(self) -> dict[str, Any]:
        """Return the episode as a dict of tensors and a bool (for checkpoints)."""
        return {
            "observations": self.observations,
            "raw_actions": self.raw_actions,
            "log_probs": self.log_probs,
            "rewards": self.rewards,
            "bootstrap": self.bootstrap,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ReplayEpisode:
        """Rebuild an episode from :meth:`to_state` output."""
        return cls(**state)


@dataclass(frozen=True)
class RLStats:
    """Means over the RL step's minibatches (``nan`` when no step was taken)."""

    actor_loss: float
    """Actor loss (negative importance-weighted advantage log-likelihood minus entropy bonus)."""
    value_loss: float
    """Half mean squared error of V against the GAE return targets (reward units squared)."""
    entropy: float
    """Mean policy entropy in nats."""


def gae(
    rewards: torch.Tensor, values: torch.Tensor, *, bootstrap: bool, gamma: float, lam: float
) -> torch.Tensor:
    """Generalized advantage estimates of one episode.

    Args:
        rewards: float32, shape (T,).
        values: float32, shape (T + 1,): V of every observation including the last.
        bootstrap: Use ``values[T]`` after the last step; otherwise the episode's value ends at 0.
        gamma: Discount factor.
        lam: GAE lambda.

    Returns:
        float32, shape (T,).
    """
    r = rewards.tolist()
    v = values.tolist()
    t_len = len(r)
    adv = [0.0] * t_len
    next_value = v[t_len] if bootstrap else 0.0
    running = 0.0
    for t in range(t_len - 1, -1, -1):
        running = r[t] + gamma * next_value - v[t] + gamma * lam * running
        adv[t] = running
        next_value = v[t]
    return torch.tensor(adv, dtype=torch.float32)


def actor_critic_update(
    policy: Policy,
    value: ValueNetwork,
    policy_optimizer: torch.optim.Optimizer,
    value_optimizer: torch.optim.Optimizer,
    replay: list[ReplayEpisode],
    *,
    gamma: float,
    lam: float,
    batch_size: int,
    num_updates: int,
    entropy_coef: float,
    max_grad_norm: float,
    generator: torch.Generator,
) -> RLStats:
    """Take ``num_updates`` minibatch steps of actor and critic on the whole replay.

    Advantages and value targets are computed once, with the critic as it is at the start.

    Args:
        policy: The actor, updated in place by ``policy_optimizer``.
        value: The critic, updated in place by ``value_optimizer``.
        policy_optimizer: Optimizer over ``policy.parameters()``.
        value_optimizer: Optimizer over ``value.parameters()``.
        replay: The episodes to learn from (at least one).
        gamma: Discount factor.
        lam: GAE lambda.
        batch_size: Steps per minibatch, drawn uniformly with replacement from the replay.
        num_updates: Number of minibatch steps.
        entropy_coef: Weight of the entropy bonus.
        max_grad_norm: Gradient-norm clip per optimizer step.
        generator: Torch generator of the minibatch indices.

    Returns:
        The :class:`RLStats` of the step.
    """
    if num_updates == 0 or not replay:
        return RLStats(float("nan"), float("nan"), float("nan"))
    with torch.no_grad():
        advs, targets = [], []
        for ep in replay:
            v = value(ep.observations)
            adv = gae(ep.rewards, v, bootstrap=ep.bootstrap, gamma=gamma, lam=lam)
            advs.append(adv)
            targets.append(adv + v[:-1])
        adv_all = torch.cat(advs)
        target_all = torch.cat(targets)
        adv_all = (adv_all - adv_all.mean()) / (adv_all.std(unbiased=False) + 1e-8)
    obs_all = torch.cat([ep.observations[:-1] for ep in replay])
    act_all = torch.cat([ep.raw_actions for ep in replay])
    mu_logp_all = torch.cat([ep.log_probs for ep in replay])
    n = obs_all.shape[0]
    sums = torch.zeros(3)
    for _ in range(num_updates):
        idx = torch.randint(n, (min(batch_size, n),), generator=generator)
        obs, adv = obs_all[idx], adv_all[idx]
        logp, entropy = policy.log_prob_entropy(obs, act_all[idx])
        rho = torch.exp(logp.detach() - mu_logp_all[idx]).clamp(max=1.0)
        actor_loss = -(rho * adv * logp).mean() - entropy_coef * entropy.mean()
        value_loss = 0.5 * (value(obs) - target_all[idx]).pow(2).mean()
        policy_optimizer.zero_grad()
        actor_loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
        policy_optimizer.step()
        value_optimizer.zero_grad()
        value_loss.backward()
        nn.utils.clip_grad_norm_(value.parameters(), max_grad_norm)
        value_optimizer.step()
        sums += torch.tensor([actor_loss.item(), value_loss.item(), entropy.mean().item()])
    a, v, e = (sums / num_updates).tolist()
    return RLStats(actor_loss=a, value_loss=v, entropy=e)
