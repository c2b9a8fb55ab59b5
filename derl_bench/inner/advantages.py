"""Credit assignment of the compact GRPO: which advantage each action of an episode gets.

- :func:`group_advantages`: GRPO with outcome supervision (Shao et al. 2024, DeepSeekMath,
  Eq. 3): the episode's reward normalised within its group; every action gets it.
- :func:`reward_to_go_advantages` with :func:`prefix_meta_rewards`: the action at step t gets
  the meta-reward minus the meta-reward of the trajectory *before* t (a history-only baseline,
  so the objective is unchanged and the variance lower, as with REINFORCE's reward-to-go),
  optionally discounted.

Used by :class:`derl_bench.inner.episode_grpo_trainer.EpisodeGRPOTrainer`
(``EpisodeGRPOConfig.credit``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from derl_bench.envs.episode import Trajectory
from derl_bench.meta_reward import MetaReward, safe_rewards
from derl_bench.primitives import EPSILON, PrimitiveSet
from derl_bench.primitives.episode import EPISODE_PRIMITIVES

__all__ = ["group_advantages", "prefix_meta_rewards", "reward_to_go_advantages"]


def group_advantages(rewards: np.ndarray, group_size: int, eps: float) -> np.ndarray:
    """GRPO advantages: rewards normalised within consecutive groups.

    Args:
        rewards: float64, shape (n_groups * group_size,), groups consecutive.
        group_size: Episodes per group, >= 2.
        eps: Added to the group's sample std (ddof 1, as TRL computes it).

    Returns:
        float64, shape like ``rewards``: ``(r - group mean) / (group std + eps)``; 0 for a
        group whose rewards are all equal.
    """
    grouped = rewards.reshape(-1, group_size)
    mean = grouped.mean(axis=1, keepdims=True)
    std = grouped.std(axis=1, ddof=1, keepdims=True)
    return ((grouped - mean) / (std + eps)).reshape(-1)


def prefix_meta_rewards(
    trajectories: Sequence[Trajectory],
    meta_reward: MetaReward,
    primitive_set: PrimitiveSet,
    *,
    horizon: int,
    stride: int = 1,
) -> list[np.ndarray]:
    """The meta-reward of every trajectory *so far*, every ``stride`` steps.

    ``P(t)`` scores a trajectory whose first t step scores are the episode's and whose other
    ``horizon - t`` are 0, with success false: it depends only on the steps before t (never on
    the episode's length or outcome), so it is a valid baseline for the action at step t.

    Args:
        trajectories: Finished episodes; ``n_steps <= horizon``.
        meta_reward: The meta-reward the episodes are trained on.
        primitive_set: Its primitive set (reads ``step_scores`` and ``success``).
        horizon: Fixed length the prefixes are padded to (the episode step limit, or the env's
            ``score_horizon`` if longer).
        stride: Evaluate P at t = 0, stride, 2 * stride, ... < n_steps.

    Returns:
        Per trajectory, float64 (ceil(n_steps / stride),) (at least one value): ``P`` at those
        t; non-finite values are 0.

    Raises:
        ValueError: If a trajectory is longer than ``horizon`` or ``stride < 1``.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if primitive_set is EPISODE_PRIMITIVES:
        return _agent_prefix_meta_rewards(trajectories, meta_reward, horizon, stride)
    rows: list[Trajectory] = []
    counts: list[int] = []
    for trajectory in trajectories:
        n = trajectory.n_steps
        if n > horizon:
            raise ValueError(f"trajectory has {n} steps, more than the horizon {horizon}")
        scores = trajectory.step_scores[:n]
        points = range(0, max(n, 1), stride)
        for t in points:
            padded = np.zeros(horizon, dtype=np.float64)
            padded[:t] = scores[:t]
            rows.append(
                Trajectory(task=trajectory.task, step_scores=padded, success=False, n_steps=t)
            )
        counts.append(len(points))
    values = primitive_set.compute(rows, [None] * len(rows))
    flat, _ = safe_rewards(meta_reward, values)
    return np.split(flat, np.cumsum(counts)[:-1])


def _agent_prefix_meta_rewards(
    trajectories: Sequence[Trajectory], meta_reward: MetaReward, horizon: int, stride: int
) -> list[np.ndarray]:
    """:func:`prefix_meta_rewards` for the agent set g1..g4, vectorised with cumulative sums.

    Same values as scoring each padded prefix with the primitives (tested): g1 = ε (success
    false), g2..g4 = the mean over each of the three ``numpy.array_split`` parts of the padded
    prefix, + ε.
    """
    sizes = [len(part) for part in np.array_split(np.arange(horizon), 3)]
    bounds = np.cumsum([0, *sizes])
    out: list[np.ndarray] = []
    for trajectory in trajectories:
        n = trajectory.n_steps
        if n > horizon:
            raise ValueError(f"trajectory has {n} steps, more than the horizon {horizon}")
        cumulative = np.concatenate(([0.0], np.cumsum(trajectory.step_scores[:n])))
        points = np.arange(0, max(n, 1), stride)
        values = np.full((len(points), 4), EPSILON, dtype=np.float64)
        for k in range(3):
            start, stop = int(bounds[k]), int(bounds[k + 1])
            if stop == start or n <= start:
                continue
            upto = np.clip(points, start, min(stop, n))
            values[:, k + 1] += (cumulative[upto] - cumulative[start]) / (stop - start)
        rewards, _ = safe_rewards(meta_reward, values)
        out.append(rewards)
    return out


def reward_to_go_advantages(
    rewards: np.ndarray,
    prefixes: Sequence[np.ndarray],
    lengths: Sequence[int],
    group_size: int,
    eps: float,
    *,
    stride: int = 1,
    gamma: float = 1.0,
) -> np.ndarray:
    """Per-action GRPO advantages with reward-to-go credit.

    For episode i of a group and step t: ``G[i, t] = r[i] - P_i(t)`` (``P_i`` from
    :func:`prefix_meta_rewards`, at the last multiple of ``stride`` <= t); the advantage is
    ``(G[i, t] - mean_j G[j, t]) / (std_j r[j] + eps)`` over the group (an episode that ended
    before t contributes its last ``G``). A group whose rewards are all equal gets 0, as in
    :func:`group_advantages`, which this equals at t = 0.

    Args:
        rewards: float64 (n_groups * group_size,), groups consecutive.
        prefixes: Per episode, the ``P`` values of :func:`prefix_meta_rewards`.
        lengths: Per episode, its number of actions (>= 1).
        group_size: Episodes per group, >= 2.
        eps: Added to the group's reward std (ddof 1).
        stride: The stride ``prefixes`` were computed with.
        gamma: Discount in (0, 1] of the increments ``P(t + 1) - P(t)`` per step (1: the
            undiscounted reward-to-go ``r - P(t)``).

    Returns:
        float64 (sum(lengths),): the advantages of every action, episode by episode in order.
    """
    out: list[np.ndarray] = []
    for start in range(0, len(rewards), group_size):
        members = range(start, start + group_size)
        group_rewards = rewards[start : start + group_size]
        std = float(group_rewards.std(ddof=1))
        if std == 0.0:
            out.extend(np.zeros(lengths[i]) for i in members)
            continue
        horizon = max(int(lengths[i]) for i in members)
        steps = np.arange(horizon)
        to_go = np.empty((group_size, horizon), dtype=np.float64)
        for row, i in enumerate(members):
            index = np.minimum(np.minimum(steps, lengths[i] - 1) // stride, len(prefixes[i]) - 1)
            if gamma == 1.0:
                to_go[row] = rewards[i] - prefixes[i][index]
            else:
                values = np.append(prefixes[i], rewards[i])
                increments = np.diff(values)
                blocks = np.empty_like(increments)
                running = 0.0
                for k in range(len(increments) - 1, -1, -1):
                    running = increments[k] + gamma**stride * running
                    blocks[k] = running
                to_go[row] = blocks[index]
        baseline = to_go.mean(axis=0)
        for row, i in enumerate(members):
            n = int(lengths[i])
            out.append((to_go[row, :n] - baseline[:n]) / (std + eps))
    return np.concatenate(out) if out else np.zeros(0)
