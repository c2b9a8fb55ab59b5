"""What ESRLHybrid reports: per-iteration statistics and evaluation results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

__all__ = ["EvaluationResult", "IterationStats"]


@dataclass(frozen=True, kw_only=True)
class IterationStats:
    """What one training iteration did.

    Episode scores are ``episode_reward_fn`` values when one is set, native returns otherwise;
    ``nan`` marks a step that was switched off (its weight is 0).
    """

    iteration: int
    """1-based iteration count of the agent (continues across ``train`` calls and ``load``)."""
    es_fitness_mean: float
    """Mean episode score of the perturbed (greedy) ES candidates."""
    es_fitness_max: float
    """Best ES candidate's episode score."""
    rl_score_mean: float
    """Mean episode score of this iteration's RL (sampling) episodes."""
    rl_native_return_mean: float
    """Mean native return of this iteration's RL episodes."""
    actor_loss: float
    """Mean actor loss of the RL step."""
    value_loss: float
    """Mean critic loss of the RL step (reward units squared)."""
    entropy: float
    """Mean policy entropy in the RL step (nats)."""
    env_steps: int
    """Env steps taken in this iteration (ES and RL episodes)."""
    wall_seconds: float
    """Wall-clock time of the iteration in seconds."""


class _EvaluationBase(TypedDict):
    mean_return: float
    std_return: float
    num_episodes: int


class EvaluationResult(_EvaluationBase, total=False):
    """Result of :meth:`ESRLHybrid.evaluate` (a dict).

    Keys: ``mean_return`` / ``std_return`` (native return over the episodes, population std),
    ``num_episodes``, and ``mean_episode_reward`` (mean ``episode_reward_fn`` value; present
    only when the agent has one).
    """

    mean_episode_reward: float
