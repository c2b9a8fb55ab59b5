"""Episode records and lockstep rollouts of many envs with one batched policy call per tick."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import torch

__all__ = ["ActFn", "EpisodeRecord", "Rollout", "run_episodes"]


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode, as handed to an ``episode_reward_fn``.

    ``T`` is the number of env steps of the episode.
    """

    observations: np.ndarray
    """float32, shape (T + 1, state_dim): the reset observation and the one after each step."""
    actions: np.ndarray
    """The actions the env received: int64, shape (T,) (discrete) or float32, shape
    (T, action_dim) (continuous, already clipped to the action bounds)."""
    native_rewards: np.ndarray
    """float32, shape (T,): the env's own rewards (hidden from learning when an
    ``episode_reward_fn`` is set, but available to it)."""
    terminated: bool
    """The episode ended in a terminal state of the env (e.g. the pole fell)."""
    truncated: bool
    """The episode was cut by a time limit (the env's or ``max_episode_steps``)."""
    infos: tuple[Mapping[str, Any], ...] = ()
    """The ``info`` dict of each step, length T (e.g. ``step_score`` of the classic-control
    inner envs of :mod:`derl_bench.envs.classic`)."""

    @property
    def length(self) -> int:
        """Number of env steps T."""
        return int(self.native_rewards.shape[0])

    @property
    def native_return(self) -> float:
        """Undiscounted sum of the native rewards."""
        return float(self.native_rewards.sum(dtype=np.float64))


@dataclass(frozen=True)
class Rollout:
    """An episode plus what the RL step needs from the acting policy."""

    record: EpisodeRecord
    """The episode."""
    raw_actions: torch.Tensor
    """int64, shape (T,) or float32, shape (T, action_dim): the policy's unclipped actions."""
    log_probs: torch.Tensor
    """float32, shape (T,): log-probability of ``raw_actions`` under the acting policy (zeros
    for greedy rollouts)."""


ActFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""``act(rows, obs) -> (raw, env_action, log_prob)``: ``rows`` int64 (n,) are the indices of
the still-running envs, ``obs`` float32 (n, state_dim) their observations (see
:meth:`~derl_bench.inner.es_rl.networks.Policy.sample` for the outputs)."""


@torch.no_grad()
def run_episodes(
    envs: Sequence[gymnasium.Env],
    seeds: Sequence[int],
    act: ActFn,
    *,
    continuous: bool,
    max_steps: int | None = None,
) -> list[Rollout]:
    """Run one episode in each of ``envs[:len(seeds)]`` in lockstep.

    Args:
        envs: At least ``len(seeds)`` envs.
        seeds: Reset seed of each episode.
        act: Chooses the actions of all running envs at once (see :data:`ActFn`).
        continuous: ``True`` for ``Box`` actions (the env gets a float32 array).
        max_steps: Truncate episodes after this many steps; ``None``: the env's own limit.

    Returns:
        One :class:`Rollout` per seed, in order.
    """
    n = len(seeds)
    obs: list[list[np.ndarray]] = []
    for env, seed in zip(envs[:n], seeds, strict=True):
        o, _ = env.reset(seed=int(seed))
        obs.append([np.asarray(o, dtype=np.float32).ravel()])
    actions: list[list[np.ndarray]] = [[] for _ in range(n)]
    raws: list[list[torch.Tensor]] = [[] for _ in range(n)]
    logps: list[list[torch.Tensor]] = [[] for _ in range(n)]
    rewards: list[list[float]] = [[] for _ in range(n)]
    infos: list[list[Mapping[str, Any]]] = [[] for _ in range(n)]
    ends = [(False, False)] * n
    alive = list(range(n))
    while alive:
        rows = torch.tensor(alive, dtype=torch.int64)
        batch = torch.from_numpy(np.stack([obs[i][-1] for i in alive]))
        raw, env_action, logp = act(rows, batch)
        env_np = env_action.numpy()
        still = []
        for k, i in enumerate(alive):
            a = env_np[k].astype(np.float32) if continuous else int(env_np[k])
            o, r, terminated, truncated, info = envs[i].step(a)
            obs[i].append(np.asarray(o, dtype=np.float32).ravel())
            actions[i].append(a)
            raws[i].append(raw[k])
            logps[i].append(logp[k])
            rewards[i].append(float(r))
            infos[i].append(info)
            if max_steps is not None and len(rewards[i]) >= max_steps and not terminated:
                truncated = True
            if terminated or truncated:
                ends[i] = (bool(terminated), bool(truncated))
            else:
                still.append(i)
        alive = still
    out = []
    for i in range(n):
        act_arr = (
            np.stack(actions[i]).astype(np.float32)
            if continuous
            else np.asarray(actions[i], dtype=np.int64)
        )
        record = EpisodeRecord(
            observations=np.stack(obs[i]),
            actions=act_arr,
            native_rewards=np.asarray(rewards[i], dtype=np.float32),
            terminated=ends[i][0],
            truncated=ends[i][1],
            infos=tuple(infos[i]),
        )
        out.append(Rollout(record, torch.stack(raws[i]), torch.stack(logps[i]).float()))
    return out
