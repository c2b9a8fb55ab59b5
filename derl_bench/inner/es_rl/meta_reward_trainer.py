"""The ES+RL hybrid as an inner trainer of the classic-control MetaRewardEnvs (``inner="es_rl"``).

The hybrid (:mod:`derl_bench.inner.es_rl`) trains on the meta-reward instead of the native
reward: its ``episode_reward_fn`` turns each episode into a
:class:`~derl_bench.envs.episode.Trajectory` (step scores and success from the inner env's
``info``, failures padded to ``score_horizon`` exactly as the compact GRPO does), evaluates the
episode primitives and the meta-reward (non-finite -> 0, counted). The ES fitness is that value;
the RL step sees it as the reward of the episode's last step.

Budget mapping from the domain's :class:`~derl_bench.inner.episode_grpo_config.EpisodeGRPOConfig`:
``max_steps`` ES+RL iterations, ``tasks_per_step * group_size`` RL episodes per iteration,
``ES_POPULATION`` antithetic ES candidates; ``gamma = gae_lambda = 1`` (the meta-reward pays
once per episode, so it is not discounted: with gamma 0.99 the hybrid did not learn CartPole
under ``(g1 + g2 + g3 + g4) / 4`` in 10 iterations, with 1.0 it reached 0.75 validation
success). The hybrid draws its own training reset seeds from
its seeded generator (not from D_in); validation and test are greedy on the domain's V and test
tasks, as for the compact GRPO.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from derl_bench.envs.episode import EpisodeSplits, EpisodeTask, Trajectory
from derl_bench.inner.base import Cost, EvalResult, InnerResult
from derl_bench.inner.checkpoints import LINEAGE_KEY, checkpoint_path, save_checkpoint
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig
from derl_bench.inner.episode_grpo_trainer import run_episodes
from derl_bench.meta_reward import MetaReward, safe_rewards
from derl_bench.primitives import PrimitiveSet

__all__ = ["ES_POPULATION", "ESRLInnerTrainer"]

ES_POPULATION = 16
"""Antithetic ES candidates per iteration (8 pairs) when used as an inner trainer."""


class _GreedyAdapter:
    """Presents an ES+RL ``Policy`` through the EpisodePolicy ``act`` used by ``run_episodes``."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    @torch.no_grad()
    def act(self, observations, infos, *, generator, greedy=True):  # noqa: ANN001, ANN201
        actions = [self.policy.act(o, greedy=True) for o in observations]
        return actions, [None] * len(actions)


class ESRLInnerTrainer:
    """Trains the ES+RL hybrid under a meta-reward; evaluates greedily on V (InnerTrainer).

    Args:
        domain: ``"cartpole"`` or ``"pendulum"``.
        splits: The domain's task splits.
        primitive_set: The episode primitive set.
        config: The domain preset (budget fields reused, see the module docstring).
        keep_checkpoints: Folder to save trained agents in (``<id>/es_rl.pth``), or None.

    Raises:
        ValueError: If ``config.restarts`` is not 1 (the hybrid trains once per meta-step; a
            meta-step's restarts are a feature of the compact GRPO, ``inner="grpo"``).
    """

    def __init__(
        self,
        *,
        domain: str,
        splits: EpisodeSplits,
        primitive_set: PrimitiveSet,
        config: EpisodeGRPOConfig,
        keep_checkpoints: str | None = None,
    ) -> None:
        if config.restarts != 1:
            raise ValueError(
                f"inner='es_rl' trains once per meta-step, but restarts={config.restarts!r} was "
                "asked for; use inner='grpo' for restarts, or inner_overrides={'restarts': 1}"
            )
        self.domain = domain
        self.splits = splits
        self.primitive_set = primitive_set
        self.config = config
        self.keep_checkpoints = keep_checkpoints
        self.val = splits.val[: config.n_val] if config.n_val else splits.val
        self.test = splits.test[: config.n_test] if config.n_test else splits.test

    def _env(self) -> Any:
        from derl_bench.envs.classic import ClassicControlInnerEnv

        return ClassicControlInnerEnv(self.domain)

    def _hybrid(self, meta_reward: MetaReward | None, seed: int, counters: dict[str, Any]) -> Any:
        from derl_bench.inner.es_rl import ESRLHybrid

        horizon = self._env().score_horizon

        def episode_reward(record: Any) -> float:
            infos = list(record.infos)
            scores = [float(i["step_score"]) for i in infos]
            success = bool(infos[-1].get("success", False)) if infos else False
            if record.terminated and not success:
                scores += [0.0] * max(0, horizon - len(scores))
            trajectory = Trajectory(
                task=EpisodeTask(domain=self.domain, task_id=""),
                step_scores=np.asarray(scores),
                success=success,
                n_steps=len(infos),
            )
            values = self.primitive_set.compute([trajectory], [None])
            if meta_reward is None:  # an agent loaded only to be evaluated never trains
                raise RuntimeError("this ES+RL agent was made for evaluation only")
            rewards, bad = safe_rewards(meta_reward, values)
            counters["nonfinite"] += int(bad)
            counters["values"].append(values[0])
            return float(rewards[0])

        return ESRLHybrid(
            env_fn=self._env,
            episode_reward_fn=episode_reward,
            seed=seed,
            population_size=ES_POPULATION,
            max_episode_steps=self.config.max_episode_steps,
            lr_policy=1e-3,
            gamma=1.0,
            gae_lambda=1.0,
            rl_weight=1.0,
            es_weight=1.0,
        )

    def train(self, meta_reward: MetaReward, *, seed: int, init: Any = None) -> InnerResult:
        """Train under ``meta_reward`` from ``init`` (a checkpoint folder) or afresh; score on V."""
        start = time.perf_counter()
        counters: dict[str, Any] = {"nonfinite": 0, "values": []}
        hybrid = self._hybrid(meta_reward, seed, counters)
        try:
            if init is not None:
                hybrid.load(Path(init) / "es_rl.pth", strict=False)
            history = hybrid.train(
                self.config.max_steps,
                num_episodes_per_iter=self.config.tasks_per_step * self.config.group_size,
                log_interval=0,
            )
            validation = self._evaluate(hybrid, self.val, seed)
            checkpoint = self._save(hybrid, meta_reward, seed, init)
        finally:
            hybrid.close()
        values = np.asarray(counters["values"]) if counters["values"] else np.zeros((0, 4))
        means = {n: float(values[:, k].mean()) for k, n in enumerate(self.primitive_set.names)}
        curve = [
            {
                "inner_step": float(stats.iteration),
                "reward_mean": float(stats.rl_score_mean),
                "es_fitness_mean": float(stats.es_fitness_mean),
                "native_return_mean": float(stats.rl_native_return_mean),
                "env_steps": float(stats.env_steps),
            }
            for stats in history
        ]
        return InnerResult(
            validation=validation,
            primitive_means=means,
            training_curve=curve,
            n_nonfinite_rewards=counters["nonfinite"],
            cost=Cost(
                wall_seconds=time.perf_counter() - start,
                inner_steps=self.inner_steps_per_training,
                rollouts=len(counters["values"]) + validation.n,
                tokens=0,
            ),
            checkpoint=checkpoint,
            extra={"trainer": "es_rl", "env_steps": int(sum(s.env_steps for s in history))},
        )

    @property
    def inner_steps_per_training(self) -> int:
        """ES+RL iterations of one training: ``max_steps`` (its ``Cost.inner_steps``)."""
        return self.config.max_steps

    def evaluate_test(self, meta_reward: MetaReward, *, seed: int) -> EvalResult:
        """Train afresh under ``meta_reward``; greedy success on the test tasks."""
        hybrid = self._hybrid(meta_reward, seed, {"nonfinite": 0, "values": []})
        try:
            hybrid.train(
                self.config.max_steps,
                num_episodes_per_iter=self.config.tasks_per_step * self.config.group_size,
                log_interval=0,
            )
            return self._evaluate(hybrid, self.test, seed)
        finally:
            hybrid.close()

    def evaluate_checkpoint(self, checkpoint: str, *, seed: int) -> EvalResult:
        """Greedy success on test of an agent saved by :meth:`train` (DERL-pop's chained policy).

        Raises:
            FileNotFoundError: If ``checkpoint/es_rl.pth`` does not exist.
        """
        path = checkpoint_path(checkpoint, "es_rl.pth")
        hybrid = self._hybrid(None, seed, {"nonfinite": 0, "values": []})
        try:
            hybrid.load(path, strict=False)
            return self._evaluate(hybrid, self.test, seed)
        finally:
            hybrid.close()

    def _evaluate(self, hybrid: Any, tasks: Any, seed: int) -> EvalResult:
        envs = [self._env() for _ in range(min(len(tasks), self.config.n_envs))]
        try:
            episodes = run_episodes(
                envs,
                _GreedyAdapter(hybrid.policy),
                list(tasks),
                max_episode_steps=self.config.max_episode_steps,
                generator=torch.Generator().manual_seed(seed),
                greedy=True,
            )
        finally:
            for env in envs:
                env.close()
        trajectories = [e.trajectory for e in episodes]
        values = self.primitive_set.compute(trajectories, [None] * len(trajectories))
        names = self.primitive_set.names
        return EvalResult(
            success=float(np.mean([t.success for t in trajectories])),
            n=len(trajectories),
            primitive_means={n: float(values[:, k].mean()) for k, n in enumerate(names)},
            tokens=0,
        )

    def _save(self, hybrid: Any, meta_reward: MetaReward, seed: int, init: Any) -> str | None:
        if self.keep_checkpoints is None:
            return None
        lineage = {
            "parent": None if init is None else str(init),
            "meta_reward": meta_reward.canonical,
            "seed": seed,
            "trainer": "es_rl",
        }
        return save_checkpoint(
            self.keep_checkpoints,
            lineage,
            lambda path: hybrid.save(path / "es_rl.pth"),
            key=(*LINEAGE_KEY, "trainer"),
        )
