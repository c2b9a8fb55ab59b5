"""A population of reward-search agents as a PettingZoo ``ParallelEnv`` (DERL-pop, multi-agent).

Each agent (``"member_0"`` ... ``"member_{n-1}"``) is one population member. Every step, each
member proposes a meta-reward; the trainings run through an executor
(:mod:`derl_bench.meta_env.executors`, concurrently with ``"process"`` or ``"ray"``) and each
member's reward is its meta-step's validation success (``invalid_reward`` for an invalid
meta-reward, as in :class:`~derl_bench.meta_env.meta_reward_env.MetaRewardEnv`). With
``keep_checkpoints=FOLDER`` every trained policy is saved, and the next step's trainings start
from the population's best checkpoint so far (DERL-pop, PAPER_FACTS.md §1: each outer iteration
warm-starts from the best-validation policy of the previous ones); the observation names it, so
members can see what they build on.

Observation of each member (a ``gymnasium.spaces.Dict``): the env's ``instruction`` and
``primitives``, the member's own history (``history_meta_rewards``, ``history_rewards``,
``history_length``, as in MetaRewardEnv), and the population's ``best_meta_reward``,
``best_validation_success`` (in [0, 1]; 0 before any valid step) and ``best_checkpoint`` (a
folder, or "" when none was kept). Episodes end by truncation after ``budget`` steps.

Usage::

    from derl_bench.meta_env.population import parallel_env

    env = parallel_env(env_id="DERL-CartPole-v0", num_agents=4, budget=8, preset="smoke")
    observations, infos = env.reset(seed=0)
    actions = {agent: "g1 + g2" for agent in env.agents}
    observations, rewards, terminations, truncations, infos = env.step(actions)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from derl_bench.meta_env.executors import Executor, MetaStepTask, make_executor, shared_env
from derl_bench.meta_env.meta_reward_env import TEXT_CHARSET
from derl_bench.meta_reward import MAX_LENGTH

try:
    from pettingzoo import ParallelEnv
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError(
        "derl_bench.meta_env.population needs PettingZoo: pip install 'derl-bench[population]'."
    ) from exc

__all__ = ["PopulationEnv", "parallel_env"]

_PATH_LENGTH = 4096


def parallel_env(
    env_id: str = "DERL-CartPole-v0",
    num_agents: int = 4,
    budget: int = 8,
    *,
    executor: str | Executor | None = "sync",
    **env_kwargs: Any,
) -> PopulationEnv:
    """Build a :class:`PopulationEnv` (the PettingZoo ``parallel_env`` convention).

    Args:
        env_id: A registered derl_bench id.
        num_agents: Population members, >= 1.
        budget: Steps per episode, >= 1 (each step is ``num_agents`` meta-steps).
        executor: ``"sync"``, ``"process"``, ``"ray"``, an executor object, or None for
            :func:`~derl_bench.meta_env.executors.default_executor_name`.
        **env_kwargs: ``gymnasium.make`` arguments of the member envs (``preset``,
            ``keep_checkpoints`` for warm starts, ``inner_overrides``, ...).

    Returns:
        The env.

    Raises:
        ValueError: If ``num_agents`` or ``budget`` is < 1, or on bad env arguments.
    """
    return PopulationEnv(env_id, num_agents, budget, executor=executor, **env_kwargs)


class PopulationEnv(ParallelEnv):
    """See the module docstring."""

    metadata = {"name": "derl_population_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        env_id: str,
        num_agents: int,
        budget: int,
        *,
        executor: str | Executor | None = "sync",
        **env_kwargs: Any,
    ) -> None:
        if num_agents < 1:
            raise ValueError(f"num_agents={num_agents} must be >= 1")
        if budget < 1:
            raise ValueError(f"budget={budget} must be >= 1 (steps per episode)")
        self.env_id = env_id
        self.budget = int(budget)
        self.env_kwargs = dict(env_kwargs)
        self.possible_agents = [f"member_{i}" for i in range(num_agents)]
        self.agents: list[str] = []
        self._executor = (
            executor
            if executor is not None and not isinstance(executor, str)
            else make_executor(executor)
        )
        member = shared_env(env_id, self.env_kwargs).unwrapped
        self.invalid_reward = float(member.invalid_reward)
        self._instruction = member.instruction
        self._primitives = member.primitive_set.describe()
        base = member.observation_space.spaces
        self._observation_space = spaces.Dict(
            {
                "instruction": base["instruction"],
                "primitives": base["primitives"],
                "history_meta_rewards": base["history_meta_rewards"],
                "history_rewards": spaces.Box(
                    low=min(self.invalid_reward, 0.0), high=1.0, shape=(budget,), dtype=np.float32
                ),
                "history_length": spaces.Discrete(budget + 1),
                "best_meta_reward": spaces.Text(
                    max_length=MAX_LENGTH, min_length=0, charset=TEXT_CHARSET
                ),
                "best_validation_success": spaces.Box(0.0, 1.0, shape=(), dtype=np.float32),
                "best_checkpoint": spaces.Text(
                    max_length=_PATH_LENGTH, min_length=0, charset=TEXT_CHARSET
                ),
            }
        )
        self._action_space = member.action_space
        self._seed = 0
        self._step = 0
        self._history: dict[str, list[tuple[str, float]]] = {}
        self._best: tuple[str, float, str] = ("", 0.0, "")

    def observation_space(self, agent: str) -> spaces.Space:
        """The observation space of ``agent`` (the same object on every call)."""
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Space:
        """The action space of ``agent``: meta-reward text, as in MetaRewardEnv."""
        return self._action_space

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode: empty histories, no best checkpoint; ``seed`` is the inner seed."""
        if seed is not None:
            self._seed = int(seed)
        self.agents = list(self.possible_agents)
        self._step = 0
        self._history = {agent: [] for agent in self.agents}
        self._best = ("", 0.0, "")
        return {a: self._observe(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(
        self, actions: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        """Train every member's meta-reward (through the executor) and score it.

        Args:
            actions: Meta-reward text per live agent (a missing agent proposes ``""``, which
                is invalid).

        Returns:
            PettingZoo's ``(observations, rewards, terminations, truncations, infos)``; each
            info is the member's MetaRewardEnv ``info`` (``error`` set if its meta-step failed
            twice; then its reward is ``invalid_reward``).
        """
        live = list(self.agents)
        warm = self._best[2] or None
        tasks = [
            MetaStepTask(meta_reward=str(actions.get(a, "")), seed=self._seed, warm_start=warm)
            for a in live
        ]
        outcomes = self._executor.run(self.env_id, self.env_kwargs, tasks)
        rewards: dict[str, float] = {}
        infos: dict[str, Any] = {}
        for agent, outcome in zip(live, outcomes, strict=True):
            info = dict(outcome.info)
            if outcome.failed:
                info["error"] = outcome.error
                reward = self.invalid_reward
            else:
                reward = float(outcome.reward)
            rewards[agent] = reward
            infos[agent] = info
            shown = info.get("canonical") or ""
            self._history[agent].append((shown, reward))
            if info.get("valid") and not outcome.failed and reward > self._best[1]:
                self._best = (shown, reward, info.get("checkpoint_id") or "")
        self._step += 1
        done = self._step >= self.budget
        observations = {a: self._observe(a) for a in live}
        terminations = {a: False for a in live}
        truncations = {a: done for a in live}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def close(self) -> None:
        """Release the executor's workers."""
        self._executor.close()

    def _observe(self, agent: str) -> dict[str, Any]:
        history = self._history.get(agent, [])
        rewards = np.zeros(self.budget, dtype=np.float32)
        for i, (_, r) in enumerate(history):
            rewards[i] = r
        return {
            "instruction": self._instruction,
            "primitives": self._primitives,
            "history_meta_rewards": tuple(m for m, _ in history),
            "history_rewards": rewards,
            "history_length": len(history),
            "best_meta_reward": self._best[0],
            "best_validation_success": np.float32(self._best[1]),
            "best_checkpoint": self._best[2],
        }
