# Over 450 lines: the ES+RL trainer loop and its merge step, kept readable top to bottom.
"""ESRLHybrid: evolution strategies and actor-critic RL merged into one policy update."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from os import PathLike
from typing import Any

import gymnasium
import numpy as np
import torch
from torch.nn.utils import parameters_to_vector

from derl_bench.inner.es_rl.actor_critic import ReplayEpisode, actor_critic_update
from derl_bench.inner.es_rl.checkpoint import load_checkpoint, save_checkpoint
from derl_bench.inner.es_rl.config import ESRLConfig
from derl_bench.inner.es_rl.es import es_gradient, sample_population
from derl_bench.inner.es_rl.networks import Policy, ValueNetwork
from derl_bench.inner.es_rl.results import EvaluationResult, IterationStats
from derl_bench.inner.es_rl.rollout import EpisodeRecord, Rollout, run_episodes

__all__ = ["ESRLHybrid"]

logger = logging.getLogger(__name__)


class ESRLHybrid:
    """ES over the policy parameters combined with gradient-based actor-critic RL.

    Each iteration starts both steps from the same policy parameters theta:

    * **ES step** (Salimans et al. 2017): ``population_size`` greedy policies
      ``theta +- sigma * eps`` (antithetic pairs, only the policy body is perturbed, not the
      Gaussian ``log_std``) each play ``es_episodes_per_candidate`` episodes from shared reset
      seeds; fitness is shaped by centred ranks and the gradient estimate drives one Adam step
      (``lr_es``), giving ``delta_es``.
    * **RL step**: the current policy samples ``num_episodes_per_iter`` episodes into a replay
      of the last ``replay_episodes`` episodes; ``rl_updates_per_iter`` actor-critic minibatch
      steps (Adam, ``lr_policy``; value baseline with GAE, see
      :mod:`~derl_bench.inner.es_rl.actor_critic`) give ``delta_rl``. The value network is
      trained here only (``lr_value``) and is not merged.
    * **Merge**: ``theta <- theta + es_weight * delta_es + rl_weight * delta_rl``. A weight of
      0 skips that step and its episodes.

    Actions: ``Discrete`` spaces get a categorical policy, ``Box`` spaces a Gaussian with a
    learned state-independent log-std, actions clipped to the bounds.

    **Meta-reward training.** With ``episode_reward_fn`` the native reward is hidden from
    learning: the ES fitness of an episode is ``episode_reward_fn(record)`` and the RL step sees
    a reward of 0 at every step except ``episode_reward_fn(record)`` on the last step, without
    bootstrapping after it (the episode's value is complete). Native returns are still
    reported by :meth:`evaluate` and :class:`IterationStats`.

    Determinism: with the same ``seed`` (and the same ``train`` arguments), parameters after
    any number of iterations are bitwise equal, on the same machine and torch build.

    Args:
        env_name: Gymnasium id for ``gymnasium.make``; give this or ``env_fn``.
        state_dim: Observation size; ``None``: taken from the env. Checked against the env.
        action_dim: Number of discrete actions or ``Box`` action size; ``None``: taken from the
            env. Checked against the env.
        env_fn: Zero-argument callable returning a new Gymnasium env (called once per parallel
            episode slot, e.g. ``population_size`` times).
        episode_reward_fn: Optional ``EpisodeRecord -> float`` that replaces the native reward
            (see above), e.g. a meta-reward over primitives.
        population_size: See :class:`ESRLConfig` (also for every argument below).
        sigma: ES perturbation std.
        lr_es: Adam step size of the ES step.
        lr_policy: Adam learning rate of the actor.
        lr_value: Adam learning rate of the critic.
        gamma: Discount factor.
        rl_weight: Weight of the RL update in the merge.
        es_weight: Weight of the ES update in the merge.
        seed: Seed of everything random.
        tensorboard_dir: Folder for TensorBoard scalars (needs ``pip install tensorboard``).
        **config: Any other :class:`ESRLConfig` field, e.g. ``hidden_sizes=(32, 32)``.

    Raises:
        ValueError: If neither or both of ``env_name``/``env_fn`` are given, if ``state_dim``
            or ``action_dim`` do not match the env, or on an invalid config value.
        TypeError: On an unsupported space (only ``Box`` observations of shape (state_dim,) and
            ``Discrete`` or 1-d ``Box`` actions are supported) or an unknown config field.
        ImportError: If ``tensorboard_dir`` is set and tensorboard is not installed.
    """

    def __init__(
        self,
        env_name: str | None = None,
        state_dim: int | None = None,
        action_dim: int | None = None,
        *,
        env_fn: Callable[[], gymnasium.Env] | None = None,
        episode_reward_fn: Callable[[EpisodeRecord], float] | None = None,
        population_size: int = 50,
        sigma: float = 0.1,
        lr_es: float = 0.01,
        lr_policy: float = 3e-4,
        lr_value: float = 3e-4,
        gamma: float = 0.99,
        rl_weight: float = 0.5,
        es_weight: float = 0.5,
        seed: int = 0,
        tensorboard_dir: str | None = None,
        **config: Any,
    ) -> None:
        if (env_name is None) == (env_fn is None):
            raise ValueError(
                f"give exactly one of env_name and env_fn (env_name={env_name!r}, "
                f"env_fn={env_fn!r})"
            )
        self._env_fn: Callable[[], gymnasium.Env] = (
            env_fn if env_fn is not None else lambda: gymnasium.make(env_name)
        )
        probe = self._env_fn()
        env_state_dim, env_action_dim, continuous = _space_dims(probe)
        _check_dim("state_dim", state_dim, env_state_dim, probe.observation_space)
        _check_dim("action_dim", action_dim, env_action_dim, probe.action_space)
        try:
            cfg = ESRLConfig(
                env_name=env_name,
                state_dim=env_state_dim,
                action_dim=env_action_dim,
                population_size=population_size,
                sigma=sigma,
                lr_es=lr_es,
                lr_policy=lr_policy,
                lr_value=lr_value,
                gamma=gamma,
                rl_weight=rl_weight,
                es_weight=es_weight,
                seed=seed,
                tensorboard_dir=tensorboard_dir,
                **config,
            )
        except TypeError as err:
            raise TypeError(f"ESRLHybrid got an unknown config field: {err}") from err
        self.config = cfg
        self.episode_reward_fn = episode_reward_fn
        self.continuous = continuous
        self._envs: list[gymnasium.Env] = [probe]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            space = probe.action_space
            self.policy = Policy(
                cfg.state_dim,
                cfg.action_dim,
                cfg.hidden_sizes,
                continuous=continuous,
                action_low=space.low if continuous else None,
                action_high=space.high if continuous else None,
                init_log_std=cfg.init_log_std,
            )
            self.value = ValueNetwork(cfg.state_dim, cfg.hidden_sizes)
        self.policy_optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr_policy)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=cfg.lr_value)
        self.es_optimizer = torch.optim.Adam(self.policy.body.parameters(), lr=cfg.lr_es)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.np_rng = np.random.default_rng(cfg.seed)
        self.replay: deque[ReplayEpisode] = deque(maxlen=cfg.replay_episodes)
        self.iteration = 0
        self._writer = _make_writer(cfg.tensorboard_dir) if cfg.tensorboard_dir else None

    @classmethod
    def from_config(
        cls,
        config: ESRLConfig,
        *,
        env_fn: Callable[[], gymnasium.Env] | None = None,
        episode_reward_fn: Callable[[EpisodeRecord], float] | None = None,
    ) -> ESRLHybrid:
        """Build an agent from a config (``config.env_name`` or ``env_fn`` gives the env).

        Args:
            config: The settings.
            env_fn: Env factory when ``config.env_name`` is ``None``.
            episode_reward_fn: See the class docstring.

        Returns:
            A fresh agent.
        """
        kwargs = config.as_dict()
        return cls(env_fn=env_fn, episode_reward_fn=episode_reward_fn, **kwargs)

    # ------------------------------------------------------------------ training

    def train(
        self,
        num_iterations: int,
        num_episodes_per_iter: int = 10,
        batch_size: int = 256,
        log_interval: int = 10,
    ) -> list[IterationStats]:
        """Run ``num_iterations`` ES+RL iterations (continuing from the current state).

        Args:
            num_iterations: Iterations to run, >= 0.
            num_episodes_per_iter: Episodes the current policy samples per iteration for the
                RL replay, >= 1 (unused when ``rl_weight == 0``).
            batch_size: Env steps per RL minibatch, >= 1.
            log_interval: Log (``logging`` INFO) and write TensorBoard scalars every this many
                iterations; 0 turns both off.

        Returns:
            One :class:`IterationStats` per iteration run.

        Raises:
            ValueError: On a negative count or a non-positive episode count or batch size.
        """
        if num_iterations < 0 or num_episodes_per_iter < 1 or batch_size < 1 or log_interval < 0:
            raise ValueError(
                f"need num_iterations >= 0, num_episodes_per_iter >= 1, batch_size >= 1, "
                f"log_interval >= 0; got {num_iterations}, {num_episodes_per_iter}, "
                f"{batch_size}, {log_interval}"
            )
        history = []
        for _ in range(num_iterations):
            stats = self._iterate(num_episodes_per_iter, batch_size)
            history.append(stats)
            if log_interval and stats.iteration % log_interval == 0:
                self._log(stats)
        return history

    def _iterate(self, num_episodes: int, batch_size: int) -> IterationStats:
        cfg = self.config
        start = time.perf_counter()
        body = self.policy.body
        theta0 = parameters_to_vector(self.policy.parameters()).detach().clone()
        n_body = sum(p.numel() for p in body.parameters())  # the body comes first in theta
        delta = torch.zeros_like(theta0)
        nan = float("nan")
        es_mean = es_max = rl_score = rl_native = nan
        steps = 0
        if cfg.es_weight > 0:
            noise, candidates = sample_population(
                theta0[:n_body], cfg.population_size, cfg.sigma, self.generator
            )
            seeds = self._draw_seeds(cfg.es_episodes_per_candidate)
            fitness = np.zeros(cfg.population_size)
            for seed in seeds:
                rollouts = self._run(
                    [seed] * cfg.population_size,
                    lambda rows, obs: self.policy.sample(
                        body.forward_batched(candidates[rows], obs), greedy=True
                    ),
                )
                fitness += [self._score(r.record) for r in rollouts]
                steps += sum(r.record.length for r in rollouts)
            fitness /= len(seeds)
            es_mean, es_max = float(fitness.mean()), float(fitness.max())
            grad = es_gradient(fitness, noise, cfg.sigma)
            self.es_optimizer.zero_grad()
            offset = 0
            for p in body.parameters():
                p.grad = -grad[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
            self.es_optimizer.step()
            moved = parameters_to_vector(body.parameters()).detach()
            delta[:n_body] += cfg.es_weight * (moved - theta0[:n_body])
            _copy_into(theta0, self.policy.parameters())
        rl = None
        if cfg.rl_weight > 0:
            rollouts = self._run(
                self._draw_seeds(num_episodes),
                lambda rows, obs: self.policy.sample(
                    body(obs), greedy=False, generator=self.generator
                ),
            )
            scores = [self._score(r.record) for r in rollouts]
            self.replay.extend(self._to_replay(r, x) for r, x in zip(rollouts, scores, strict=True))
            rl_score = float(np.mean(scores))
            rl_native = float(np.mean([r.record.native_return for r in rollouts]))
            steps += sum(r.record.length for r in rollouts)
            rl = actor_critic_update(
                self.policy,
                self.value,
                self.policy_optimizer,
                self.value_optimizer,
                list(self.replay),
                gamma=cfg.gamma,
                lam=cfg.gae_lambda,
                batch_size=batch_size,
                num_updates=cfg.rl_updates_per_iter,
                entropy_coef=cfg.entropy_coef,
                max_grad_norm=cfg.max_grad_norm,
                generator=self.generator,
            )
            moved = parameters_to_vector(self.policy.parameters()).detach()
            delta += cfg.rl_weight * (moved - theta0)
        _copy_into(theta0 + delta, self.policy.parameters())
        self.iteration += 1
        return IterationStats(
            iteration=self.iteration,
            es_fitness_mean=es_mean,
            es_fitness_max=es_max,
            rl_score_mean=rl_score,
            rl_native_return_mean=rl_native,
            actor_loss=rl.actor_loss if rl else nan,
            value_loss=rl.value_loss if rl else nan,
            entropy=rl.entropy if rl else nan,
            env_steps=steps,
            wall_seconds=time.perf_counter() - start,
        )

    def _draw_seeds(self, n: int) -> list[int]:
        return [int(s) for s in self.np_rng.integers(0, 2**31 - 1, size=n)]

    def _run(self, seeds: list[int], act: Any) -> list[Rollout]:
        while len(self._envs) < len(seeds):
            self._envs.append(self._env_fn())
        return run_episodes(
            self._envs,
            seeds,
            act,
            continuous=self.continuous,
            max_steps=self.config.max_episode_steps,
        )

    def _score(self, record: EpisodeRecord) -> float:
        if self.episode_reward_fn is None:
            return record.native_return
        return float(self.episode_reward_fn(record))

    def _to_replay(self, rollout: Rollout, score: float) -> ReplayEpisode:
        record = rollout.record
        if self.episode_reward_fn is None:
            rewards = torch.from_numpy(record.native_rewards.copy())
            bootstrap = record.truncated and not record.terminated
        else:
            rewards = torch.zeros(record.length)
            rewards[-1] = score
            bootstrap = False
        return ReplayEpisode(
            observations=torch.from_numpy(record.observations),
            raw_actions=rollout.raw_actions,
            log_probs=rollout.log_probs,
            rewards=rewards,
            bootstrap=bootstrap,
        )

    def _log(self, stats: IterationStats) -> None:
        logger.info(
            "iter %d | ES fitness mean %.2f max %.2f | RL score %.2f native %.2f | "
            "actor %.4f value %.4f entropy %.3f | %d steps %.2fs",
            stats.iteration,
            stats.es_fitness_mean,
            stats.es_fitness_max,
            stats.rl_score_mean,
            stats.rl_native_return_mean,
            stats.actor_loss,
            stats.value_loss,
            stats.entropy,
            stats.env_steps,
            stats.wall_seconds,
        )
        if self._writer is not None:
            for name, value in vars(stats).items():
                if name != "iteration" and not (isinstance(value, float) and math.isnan(value)):
                    self._writer.add_scalar(f"es_rl/{name}", value, stats.iteration)
            self._writer.flush()

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self, num_episodes: int = 20, seed: int = 1_000_000, greedy: bool = True
    ) -> EvaluationResult:
        """Play ``num_episodes`` episodes with the current policy (training state untouched).

        Args:
            num_episodes: Episodes, >= 1; episode ``i`` resets with seed ``seed + i``.
            seed: First reset seed (also seeds action sampling when ``greedy`` is ``False``).
            greedy: Argmax / mean actions; sample from the policy otherwise.

        Returns:
            The :class:`EvaluationResult` dict.

        Raises:
            ValueError: If ``num_episodes < 1``.
        """
        if num_episodes < 1:
            raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
        generator = torch.Generator().manual_seed(seed)
        rollouts = self._run(
            [seed + i for i in range(num_episodes)],
            lambda rows, obs: self.policy.sample(
                self.policy.body(obs), greedy=greedy, generator=generator
            ),
        )
        returns = np.array([r.record.native_return for r in rollouts])
        result = EvaluationResult(
            mean_return=float(returns.mean()),
            std_return=float(returns.std()),
            num_episodes=num_episodes,
        )
        if self.episode_reward_fn is not None:
            result["mean_episode_reward"] = float(
                np.mean([self._score(r.record) for r in rollouts])
            )
        return result

    # ------------------------------------------------------------------ checkpoints

    def save(self, path: str | PathLike[str]) -> None:
        """Write networks, optimizer states, config, iteration, RNG states and replay.

        See :func:`~derl_bench.inner.es_rl.checkpoint.save_checkpoint`.

        Args:
            path: File to write (``torch.save`` format; conventionally ``.pth``).
        """
        save_checkpoint(self, path)

    def load(self, path: str | PathLike[str], *, strict: bool = True) -> None:
        """Restore a checkpoint written by :meth:`save`; training then continues exactly.

        See :func:`~derl_bench.inner.es_rl.checkpoint.load_checkpoint`.

        Args:
            path: The checkpoint file.
            strict: Require every config field except ``seed`` and ``tensorboard_dir`` to
                match; ``False``: only the network shapes (this agent keeps its own
                hyperparameters).

        Raises:
            ValueError: If the checkpoint does not match this agent (every differing field is
                named with both values).
        """
        load_checkpoint(self, path, strict=strict)

    def close(self) -> None:
        """Close the envs and the TensorBoard writer."""
        for env in self._envs:
            env.close()
        if self._writer is not None:
            self._writer.close()


@torch.no_grad()
def _copy_into(vector: torch.Tensor, params: Any) -> None:
    """Copy a flat vector into parameters in place (no storage sharing, optimizer-safe)."""
    offset = 0
    for p in params:
        p.copy_(vector[offset : offset + p.numel()].view_as(p))
        offset += p.numel()


def _space_dims(env: gymnasium.Env) -> tuple[int, int, bool]:
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gymnasium.spaces.Box) or len(obs_space.shape) != 1:
        raise TypeError(f"need a 1-d Box observation space, got {obs_space}")
    if isinstance(act_space, gymnasium.spaces.Discrete):
        return obs_space.shape[0], int(act_space.n), False
    if isinstance(act_space, gymnasium.spaces.Box) and len(act_space.shape) == 1:
        return obs_space.shape[0], act_space.shape[0], True
    raise TypeError(f"need a Discrete or 1-d Box action space, got {act_space}")


def _check_dim(name: str, given: int | None, expected: int, space: gymnasium.Space) -> None:
    if given is not None and given != expected:
        raise ValueError(f"{name}={given!r} does not match the env's {space} (needs {expected})")


def _make_writer(log_dir: str) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError(
            f"TensorBoard logging was requested (tensorboard_dir={log_dir!r}) but the "
            "tensorboard package is not installed: pip install tensorboard"
        ) from err
    return SummaryWriter(log_dir=log_dir)
