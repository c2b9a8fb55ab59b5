# Over 450 lines: one algorithm read top to bottom (CleanRL style): rollout, reward, update.
"""Compact GRPO over whole episodes, for episode domains (classic control, ScienceWorld, ALFWorld).

Readable top to bottom (CleanRL style). One inner training = ``config.max_steps`` iterations:

1. **Rollout.** Draw ``tasks_per_step`` tasks from D_in; play ``group_size`` episodes from each
   (same :class:`~derl_bench.envs.episode.EpisodeTask` -> same initial state), sampling actions
   from the policy; ``n_envs`` inner envs advance in lockstep with one batched policy call.
2. **Reward.** Each episode becomes a :class:`~derl_bench.envs.episode.Trajectory`; the primitive
   set gives float64 (n_episodes, K); the compiled meta-reward gives the episode rewards
   (non-finite -> 0, counted).
3. **Advantage.** Within each group, ``A = (r - mean) / (std + advantage_eps)`` (GRPO, Shao et
   al. 2024, Eq. 3 with outcome supervision): every action of an episode gets its episode's A.
   With ``credit="reward_to_go"`` the action at step t gets ``R - P(t)`` instead, ``P(t)`` the
   meta-reward of the trajectory before t
   (:func:`derl_bench.inner.advantages.reward_to_go_advantages`).
4. **Update.** ``num_iterations`` passes (PPO epochs, each ``minibatches`` Adam steps over a
   random split of the batch's actions) on the PPO-clipped surrogate
   ``-min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)``, averaged over the actions of an
   episode and then over episodes, plus ``beta`` times the k3 KL estimate to the initial policy
   ``exp(ref - new) - (ref - new) - 1`` on the visited states.

Validation and test are greedy by default: success rate over the tasks (each task once). With
``config.validation_samples = k`` each task is played k times sampling actions, on a fixed
random stream (:data:`VALIDATION_SAMPLING_SEED`), and success is the mean over the episodes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from derl_bench.envs.episode import EpisodeSplits, EpisodeTask, Trajectory
from derl_bench.inner.advantages import (
    group_advantages,
    prefix_meta_rewards,
    reward_to_go_advantages,
)
from derl_bench.inner.base import (
    Cost,
    EvalResult,
    InnerResult,
    mean_evaluation,
    mean_inner_result,
    restart_seeds,
)
from derl_bench.inner.checkpoints import checkpoint_path, save_checkpoint
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig
from derl_bench.meta_reward import MetaReward, safe_rewards
from derl_bench.primitives import PrimitiveSet

__all__ = [
    "VALIDATION_SAMPLING_SEED",
    "EpisodeGRPOTrainer",
    "Episode",
    "episode_generators",
    "group_advantages",
    "run_episodes",
    "run_episodes_threaded",
]

VALIDATION_SAMPLING_SEED = 20_251_215
"""Seed of the action-sampling stream of sampled validation and test
(``EpisodeGRPOConfig.validation_samples >= 1``). Fixed, not the meta-step's seed: every
meta-reward and seed is scored on the same stream (common random numbers)."""


@dataclass(frozen=True, kw_only=True)
class Episode:
    """One played episode: the policy's step records and the trajectory the primitives read."""

    trajectory: Trajectory
    step_records: tuple[Any, ...]
    """Opaque per-action records from ``policy.act`` (length ``trajectory.n_steps``)."""


def run_episodes(
    envs: Sequence[Any],
    policy: Any,
    tasks: Sequence[EpisodeTask],
    *,
    max_episode_steps: int,
    generator: torch.Generator,
    greedy: bool,
    timings: dict[str, float] | None = None,
) -> list[Episode]:
    """Play one episode per task, ``len(envs)`` at a time in lockstep.

    Args:
        envs: Inner envs following the contract of :mod:`derl_bench.envs.episode`. An env may
            define ``score_horizon`` (int): a trajectory that *terminated without success*
            is then padded with step score 0 up to that many steps (classic control: dying
            early must score lower than surviving).
        policy: An :class:`~derl_bench.inner.policies.base.EpisodePolicy`.
        tasks: The tasks to play, in order.
        max_episode_steps: Step limit (the episode is cut there even if the env would go on).
        generator: Randomness for sampling actions.
        greedy: Take the policy's most likely action (evaluation).
        timings: If given, seconds are added to its ``"engine"`` (env resets and steps) and
            ``"policy"`` (``policy.act``) entries.

    Returns:
        One :class:`Episode` per task, in the order of ``tasks``.
    """
    clock = timings if timings is not None else {}
    clock.setdefault("engine", 0.0)
    clock.setdefault("policy", 0.0)
    results: list[Episode | None] = [None] * len(tasks)
    queue = list(range(len(tasks)))
    slots: list[dict[str, Any] | None] = [None] * len(envs)

    def start(slot: int) -> None:
        index = queue.pop(0)
        task = tasks[index]
        tic = time.perf_counter()
        obs, info = envs[slot].reset(seed=task.seed, options={"task": task})
        clock["engine"] += time.perf_counter() - tic
        slots[slot] = {
            "index": index,
            "obs": obs,
            "info": info,
            "scores": [],
            "records": [],
            "actions": [],
            "native": 0.0,
            "success": bool(info.get("success", False)),
            "terminated": False,
        }

    for slot in range(len(envs)):
        if queue:
            start(slot)
    while any(s is not None for s in slots):
        active = [i for i, s in enumerate(slots) if s is not None]
        tic = time.perf_counter()
        actions, records = policy.act(
            [slots[i]["obs"] for i in active],  # type: ignore[index]
            [slots[i]["info"] for i in active],  # type: ignore[index]
            generator=generator,
            greedy=greedy,
        )
        clock["policy"] += time.perf_counter() - tic
        for i, action, record in zip(active, actions, records, strict=True):
            state = slots[i]
            assert state is not None
            tic = time.perf_counter()
            obs, reward, terminated, truncated, info = envs[i].step(action)
            clock["engine"] += time.perf_counter() - tic
            state["obs"], state["info"] = obs, info
            state["scores"].append(float(info["step_score"]))
            state["records"].append(record)
            state["actions"].append(_jsonable(action))
            state["native"] += float(reward)
            state["success"] = bool(info.get("success", False))
            state["terminated"] = bool(terminated)
            if terminated or truncated or len(state["records"]) >= max_episode_steps:
                results[state["index"]] = _finish(envs[i], tasks[state["index"]], state)
                slots[i] = None
                if queue:
                    start(i)
    return results  # type: ignore[return-value]


def episode_generators(key: Sequence[int], n: int) -> list[torch.Generator]:
    """One CPU random stream per episode, for ``rollout_threads >= 1``.

    Episode j's stream is seeded with the upper 63 bits of the first 64-bit word that
    ``numpy.random.SeedSequence([*key, j])`` generates (well-mixed seeds for distinct keys, the
    same on every platform).

    Args:
        key: Non-negative ints naming the batch, e.g. ``(seed, grpo_step)``.
        n: Number of episodes.

    Returns:
        ``n`` generators.
    """
    generators = []
    for j in range(n):
        state = np.random.SeedSequence([*key, j]).generate_state(1, dtype=np.uint64)[0]
        generators.append(torch.Generator().manual_seed(int(state) >> 1))
    return generators


def run_episodes_threaded(
    envs: Sequence[Any],
    policy: Any,
    tasks: Sequence[EpisodeTask],
    *,
    max_episode_steps: int,
    generators: Sequence[torch.Generator],
    greedy: bool,
    timings: dict[str, float] | None = None,
) -> list[Episode]:
    """Play one episode per task, each on its own stream, one thread per engine.

    Each thread owns one env of ``envs`` and takes the next unplayed task until none is left;
    an episode is played by :func:`run_episodes` on that env alone with ``generators[j]``, so
    it depends only on its task, its stream and the policy, not on the thread or the order.
    The policy must be safe to call from several threads (``act`` under ``no_grad``; the
    sentence encoder locks its cache).

    Args:
        envs: One inner env per thread (one thread when there is one env).
        policy: An :class:`~derl_bench.inner.policies.base.EpisodePolicy`.
        tasks: The tasks to play, in order.
        max_episode_steps: Step limit per episode.
        generators: One stream per task (:func:`episode_generators`).
        greedy: Take the policy's most likely action (evaluation).
        timings: If given, seconds are added to ``"engine"`` and ``"policy"`` as in
            :func:`run_episodes`, summed over threads (so with two threads they can add up
            to twice the wall time).

    Returns:
        One :class:`Episode` per task, in the order of ``tasks``.

    Raises:
        ValueError: If ``generators`` does not have one stream per task.
        Exception: The first error raised in a thread (the other threads stop after their
            current episode).
    """
    if len(generators) != len(tasks):
        raise ValueError(f"{len(generators)} generators for {len(tasks)} tasks: give one per task")
    clock = timings if timings is not None else {}
    clock.setdefault("engine", 0.0)
    clock.setdefault("policy", 0.0)
    results: list[Episode | None] = [None] * len(tasks)
    pending = iter(range(len(tasks)))
    lock = threading.Lock()
    failed = threading.Event()

    def work(env: Any) -> None:
        local: dict[str, float] = {}
        try:
            while not failed.is_set():
                with lock:
                    j = next(pending, None)
                if j is None:
                    break
                (results[j],) = run_episodes(
                    [env],
                    policy,
                    [tasks[j]],
                    max_episode_steps=max_episode_steps,
                    generator=generators[j],
                    greedy=greedy,
                    timings=local,
                )
        except BaseException:
            failed.set()
            raise
        finally:
            with lock:
                for name, seconds in local.items():
                    clock[name] = clock.get(name, 0.0) + seconds

    if len(envs) == 1:
        work(envs[0])
    else:
        with ThreadPoolExecutor(max_workers=len(envs), thread_name_prefix="rollout") as pool:
            futures = [pool.submit(work, env) for env in envs]
        for future in futures:
            future.result()
    return results  # type: ignore[return-value]


def _jsonable(action: Any) -> Any:
    if isinstance(action, np.ndarray):
        return action.tolist()
    if isinstance(action, np.generic):
        return action.item()
    return action


def _finish(env: Any, task: EpisodeTask, state: dict[str, Any]) -> Episode:
    scores = list(state["scores"])
    horizon = getattr(env, "score_horizon", None)
    if horizon is not None and state["terminated"] and not state["success"]:
        scores += [0.0] * max(0, int(horizon) - len(scores))
    info = state["info"]
    score = float(info["score"]) if "score" in info else state["native"]
    trajectory = Trajectory(
        task=task,
        step_scores=np.asarray(scores, dtype=np.float64),
        success=state["success"],
        n_steps=len(state["records"]),
        score=score,
        actions=tuple(state["actions"]),
    )
    return Episode(trajectory=trajectory, step_records=tuple(state["records"]))


_EVALUATION_STEP = 2**31
"""The "GRPO step" in the stream key of evaluation episodes under ``rollout_threads``: beyond
any real step, so validation never replays a training episode's stream."""

_DIGEST_MAX_PARAMETERS = 10_000_000
"""Policies up to this many parameters are hashed to remember their greedy evaluation."""


def _weights_digest(policy: Any) -> str | None:
    """SHA-256 of a small policy's ``state_dict`` (names and bytes), or None."""
    import hashlib

    state = policy.state_dict() if hasattr(policy, "state_dict") else None
    if not state or sum(v.numel() for v in state.values()) > _DIGEST_MAX_PARAMETERS:
        return None
    digest = hashlib.sha256(type(policy).__qualname__.encode())
    for name, value in sorted(state.items()):
        digest.update(name.encode() + b"\0")
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class EpisodeGRPOTrainer:
    """The compact GRPO as an :class:`~derl_bench.inner.base.InnerTrainer` for episode domains.

    Args:
        splits: The domain's task splits (D_in, V, test).
        env_factory: ``env_factory() -> gymnasium.Env`` making one inner env (contract of
            :mod:`derl_bench.envs.episode`); ``config.n_envs`` are made per training and closed
            after it.
        policy_factory: ``policy_factory(seed) -> EpisodePolicy`` making the preset's initial
            policy (trainable parts initialised from ``seed``).
        primitive_set: The episode primitive set (g1..g4).
        config: The GRPO settings.
        keep_checkpoints: Folder to save trained policies in (``<id>/policy.pt`` +
            ``lineage.json``), or ``None``.
    """

    def __init__(
        self,
        *,
        splits: EpisodeSplits,
        env_factory: Callable[[], Any],
        policy_factory: Callable[[int], Any],
        primitive_set: PrimitiveSet,
        config: EpisodeGRPOConfig,
        keep_checkpoints: str | None = None,
    ) -> None:
        if not splits.d_in:
            raise ValueError("splits.d_in is empty: the inner GRPO has no training tasks")
        self.splits = splits
        self.env_factory = env_factory
        self.policy_factory = policy_factory
        self.primitive_set = primitive_set
        self.config = config
        self.keep_checkpoints = keep_checkpoints
        self.val = splits.val[: config.n_val] if config.n_val else splits.val
        self.test = splits.test[: config.n_test] if config.n_test else splits.test
        self._initial_results: dict[Any, tuple[EvalResult, float]] = {}
        self.last_seconds: dict[str, float] = {}
        """The time split of the last :meth:`train` (``InnerResult.extra["seconds"]``)."""

    # -- InnerTrainer ---------------------------------------------------------------------------

    def train(self, meta_reward: MetaReward, *, seed: int, init: Any = None) -> InnerResult:
        """Train a policy from ``init`` (or the initial policy) on D_in; evaluate on V.

        Args:
            meta_reward: A valid meta-reward over ``primitive_set``.
            seed: Seed of task order, action sampling and the policy's initialisation.
            init: A checkpoint folder (from ``keep_checkpoints``) to warm-start from, or None.

        Returns:
            The :class:`InnerResult`; ``extra`` holds ``env_steps``, the mean domain score and
            ``seconds``: wall seconds of the training's ``engine`` (env resets and steps),
            ``policy`` (``act``: encoder and head), ``encoder`` (the part of ``policy`` and
            ``update`` spent embedding new strings), ``update`` (the GRPO updates) and
            ``setup`` (making the initial policy: loading or building a cold start), and of
            ``validation`` (all of it; ``validation_encoder`` its embedding part). With
            ``config.restarts`` = r > 1 the policy is trained r times from ``init`` with the
            inner seeds :func:`~derl_bench.inner.base.restart_seeds` and the result is their
            mean (:func:`~derl_bench.inner.base.mean_inner_result`; ``seconds`` then sums the
            restarts' splits, each restart's own is in ``restart_extra``).
        """
        start = time.perf_counter()
        seeds = restart_seeds(seed, self.config.restarts)
        with self._engines() as envs:  # one set of engines for every restart
            results = [
                self._train_once(meta_reward, s, init, envs, keep=k == 0)
                for k, s in enumerate(seeds)
            ]
        combined = mean_inner_result(results)
        if len(results) > 1:
            splits = [r.extra["seconds"] for r in results]
            self.last_seconds = {k: round(sum(x[k] for x in splits), 3) for k in splits[0]}
            combined.extra.update(
                seconds=self.last_seconds,
                env_steps=sum(r.extra["env_steps"] for r in results),
                train_score_mean=float(np.mean([r.extra["train_score_mean"] for r in results])),
                validation_score_mean=float(
                    np.mean([r.extra["validation_score_mean"] for r in results])
                ),
            )
        return replace(
            combined, cost=replace(combined.cost, wall_seconds=time.perf_counter() - start)
        )

    @property
    def inner_steps_per_training(self) -> int:
        """Adam steps of one training (the ``Cost.inner_steps`` of one restart).

        ``max_steps * num_iterations * minibatches``.
        """
        return self.config.max_steps * self.config.num_iterations * self.config.minibatches

    def _train_once(
        self, meta_reward: MetaReward, seed: int, init: Any, envs: list[Any], *, keep: bool
    ) -> InnerResult:
        """One training and its validation on ``envs``; ``keep``: save its checkpoint."""
        start = time.perf_counter()
        timings: dict[str, float] = {}
        policy, curve, stats = self._train(meta_reward, seed, init, self.splits.d_in, envs, timings)
        encoder = getattr(policy, "encoder", None)
        encoder_before = getattr(encoder, "seconds", 0.0)
        tic = time.perf_counter()
        validation, validation_score = self._evaluate(policy, self.val, seed, envs)
        timings["validation"] = time.perf_counter() - tic
        timings["validation_encoder"] = getattr(encoder, "seconds", 0.0) - encoder_before
        self.last_seconds = {k: round(v, 3) for k, v in sorted(timings.items())}
        checkpoint = None
        if keep and self.keep_checkpoints is not None:
            checkpoint = self._save(policy, meta_reward, seed, init)
        cost = Cost(
            wall_seconds=time.perf_counter() - start,
            inner_steps=self.inner_steps_per_training,
            rollouts=stats["episodes"] + validation.n * max(1, self.config.validation_samples),
            tokens=0,
        )
        return InnerResult(
            validation=validation,
            primitive_means=stats["primitive_means"],
            training_curve=curve,
            n_nonfinite_rewards=stats["nonfinite"],
            cost=cost,
            checkpoint=checkpoint,
            extra={
                "env_steps": stats["env_steps"],
                "train_score_mean": stats["score_mean"],
                "validation_score_mean": validation_score,
                "seconds": self.last_seconds,
            },
        )

    @contextlib.contextmanager
    def _engines(self) -> Iterator[list[Any]]:
        """Fresh engine envs, closed on exit: one per rollout thread, else ``n_envs``."""
        count = self.config.rollout_threads or self.config.n_envs
        envs = [self.env_factory() for _ in range(count)]
        try:
            yield envs
        finally:
            for env in envs:
                env.close()

    def evaluate_test(self, meta_reward: MetaReward, *, seed: int) -> EvalResult:
        """Train a fresh policy on D_in ∪ V under ``meta_reward``; success on test.

        With ``config.restarts`` > 1: the mean over that many trainings (as in :meth:`train`).
        """
        results = []
        with self._engines() as envs:
            for s in restart_seeds(seed, self.config.restarts):
                policy, _, _ = self._train(meta_reward, s, None, self.splits.train_pool, envs)
                results.append(self._evaluate(policy, self.test, s, envs)[0])
        return mean_evaluation(results)

    def evaluate_checkpoint(self, checkpoint: str, *, seed: int) -> EvalResult:
        """Greedy success on test of a policy saved by :meth:`train` (DERL-pop's chained policy).

        Raises:
            FileNotFoundError: If ``checkpoint/policy.pt`` does not exist.
        """
        path = checkpoint_path(checkpoint, "policy.pt")
        policy = self.policy_factory(seed)
        policy.load_state_dict(torch.load(path, weights_only=True))
        with self._engines() as envs:
            return self._evaluate(policy, self.test, seed, envs)[0]

    def evaluate_initial(
        self, tasks: Sequence[EpisodeTask] | None = None, *, seed: int = 0
    ) -> tuple[EvalResult, float]:
        """Greedy evaluation of the untrained policy (on V by default).

        Greedy play depends only on the policy's weights and the tasks (the engines are
        deterministic), so a result is remembered per (weights digest, tasks) for small
        policies: a cold-started policy, the same for every seed, is evaluated once.

        Returns:
            ``(result, mean domain score)``.
        """
        policy = self.policy_factory(seed)
        chosen = tuple(tasks or self.val)
        key = _weights_digest(policy)
        if key is not None:
            key = (key, tuple(t.key for t in chosen))
            if key in self._initial_results:
                return self._initial_results[key]
        with self._engines() as envs:
            outcome = self._evaluate(policy, chosen, seed, envs)
        if key is not None:
            self._initial_results[key] = outcome
        return outcome

    # -- internals ------------------------------------------------------------------------------

    def _train(
        self,
        meta_reward: MetaReward,
        seed: int,
        init: Any,
        pool: Sequence[EpisodeTask],
        envs: Sequence[Any],
        timings: dict[str, float] | None = None,
    ) -> tuple[Any, list[dict[str, float]], dict[str, Any]]:
        if set(meta_reward.primitives_used) - set(self.primitive_set.names):
            raise ValueError(
                f"meta-reward {meta_reward.canonical!r} uses primitives outside "
                f"{self.primitive_set.names}"
            )
        cfg = self.config
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        clock = timings if timings is not None else {}
        tic = time.perf_counter()
        policy = self.policy_factory(seed)
        clock["setup"] = time.perf_counter() - tic
        clock["update"] = 0.0
        encoder = getattr(policy, "encoder", None)
        encoder_before = getattr(encoder, "seconds", 0.0)
        if init is not None:
            policy.load_state_dict(torch.load(Path(init) / "policy.pt", weights_only=True))
        reference = copy.deepcopy(policy).eval() if cfg.beta > 0 else None
        params = [p for p in policy.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=cfg.learning_rate)
        curve: list[dict[str, float]] = []
        all_primitives: list[np.ndarray] = []
        scores: list[float] = []
        nonfinite = 0
        env_steps = 0
        for step in range(cfg.max_steps):
            picks = rng.choice(
                len(pool), size=cfg.tasks_per_step, replace=len(pool) < cfg.tasks_per_step
            )
            tasks = [pool[int(i)] for i in picks for _ in range(cfg.group_size)]
            policy.eval()
            episodes = self._play(
                envs,
                policy,
                tasks,
                stream_key=(seed, step),
                generator=generator,
                greedy=False,
                timings=clock,
            )
            trajectories = [e.trajectory for e in episodes]
            values = self.primitive_set.compute(trajectories, [None] * len(trajectories))
            rewards, bad = safe_rewards(meta_reward, values)
            nonfinite += int(bad)
            advantages = self._advantages(meta_reward, trajectories, rewards, envs[0])
            all_primitives.append(values)
            scores.extend(t.score for t in trajectories)
            env_steps += sum(t.n_steps for t in trajectories)
            tic = time.perf_counter()
            loss_value = self._update(
                policy, reference, optimizer, params, episodes, advantages, generator
            )
            clock["update"] += time.perf_counter() - tic
            row = {
                "inner_step": float(step + 1),
                "reward_mean": float(rewards.mean()),
                "reward_std": float(rewards.std()),
                "success_mean": float(np.mean([t.success for t in trajectories])),
                "episode_length_mean": float(np.mean([t.n_steps for t in trajectories])),
                "loss": loss_value,
            }
            for k, name in enumerate(self.primitive_set.names):
                row[name] = float(values[:, k].mean())
            curve.append(row)
        clock["encoder"] = getattr(encoder, "seconds", 0.0) - encoder_before
        stacked = np.concatenate(all_primitives) if all_primitives else np.zeros((0, 0))
        stats = {
            "primitive_means": {
                name: float(stacked[:, k].mean()) for k, name in enumerate(self.primitive_set.names)
            },
            "nonfinite": nonfinite,
            "episodes": len(scores),
            "env_steps": env_steps,
            "score_mean": float(np.mean(scores)) if scores else 0.0,
        }
        return policy, curve, stats

    def _play(
        self,
        envs: Sequence[Any],
        policy: Any,
        tasks: Sequence[EpisodeTask],
        *,
        stream_key: tuple[int, int],
        generator: torch.Generator,
        greedy: bool,
        timings: dict[str, float] | None = None,
    ) -> list[Episode]:
        """Play ``tasks`` as ``config.rollout_threads`` says.

        On that many threads each episode samples from its own stream
        (:func:`episode_generators` of ``stream_key``); with 0 the episodes run in lockstep on
        ``generator`` (:func:`run_episodes`).
        """
        cfg = self.config
        if cfg.rollout_threads:
            return run_episodes_threaded(
                envs,
                policy,
                tasks,
                max_episode_steps=cfg.max_episode_steps,
                generators=episode_generators(stream_key, len(tasks)),
                greedy=greedy,
                timings=timings,
            )
        return run_episodes(
            envs,
            policy,
            tasks,
            max_episode_steps=cfg.max_episode_steps,
            generator=generator,
            greedy=greedy,
            timings=timings,
        )

    def _advantages(
        self,
        meta_reward: MetaReward,
        trajectories: Sequence[Trajectory],
        rewards: np.ndarray,
        env: Any,
    ) -> np.ndarray:
        """Per episode (``credit="episode"``) or per action (``"reward_to_go"``)."""
        cfg = self.config
        if cfg.credit == "episode":
            return group_advantages(rewards, cfg.group_size, cfg.advantage_eps)
        horizon = max(cfg.max_episode_steps, int(getattr(env, "score_horizon", 0) or 0))
        prefixes = prefix_meta_rewards(
            trajectories, meta_reward, self.primitive_set, horizon=horizon, stride=cfg.credit_stride
        )
        return reward_to_go_advantages(
            rewards,
            prefixes,
            [t.n_steps for t in trajectories],
            cfg.group_size,
            cfg.advantage_eps,
            stride=cfg.credit_stride,
            gamma=cfg.credit_gamma,
        )

    def _update(
        self,
        policy: Any,
        reference: Any,
        optimizer: torch.optim.Optimizer,
        params: list[torch.nn.Parameter],
        episodes: Sequence[Episode],
        advantages: np.ndarray,
        generator: torch.Generator,
    ) -> float:
        cfg = self.config
        records = [r for e in episodes for r in e.step_records]
        if not records or not np.any(advantages):
            return 0.0
        lengths = torch.tensor([len(e.step_records) for e in episodes])
        owner = torch.repeat_interleave(torch.arange(len(episodes)), lengths)
        adv = torch.as_tensor(advantages, dtype=torch.float32)
        if cfg.credit == "episode":
            adv = adv[owner]  # one advantage per episode -> one per action
        weight = (1.0 / lengths.clamp(min=1).float())[owner] / len(episodes)
        # A policy with ``stack_records`` (policies.base) is re-scored from one stacked batch.
        stack = getattr(policy, "stack_records", None)
        stacked = stack(records) if stack is not None else None
        everything = stacked if stacked is not None else records
        with torch.no_grad():
            old = policy.log_prob(everything).detach()
            ref = reference.log_prob(everything).detach() if reference is not None else None
        policy.train()
        loss_value = 0.0
        n = len(records)
        for _ in range(cfg.num_iterations):
            if cfg.minibatches == 1:
                batches = [torch.arange(n)]
            else:
                order = torch.randperm(n, generator=generator)
                batches = list(torch.tensor_split(order, cfg.minibatches))
            for batch in batches:
                if batch.numel() == 0:
                    continue
                new = policy.log_prob(
                    stacked.take(batch)
                    if stacked is not None
                    else [records[i] for i in batch.tolist()]
                )
                ratio = torch.exp(new - old[batch])
                clipped = torch.clamp(ratio, 1 - cfg.epsilon, 1 + cfg.epsilon)
                per_step = -torch.minimum(ratio * adv[batch], clipped * adv[batch])
                if ref is not None:
                    diff = ref[batch] - new
                    per_step = per_step + cfg.beta * (torch.exp(diff) - diff - 1)
                w = weight[batch]
                # The full batch's weights sum to 1; a minibatch's are renormalised.
                loss = (
                    (per_step * w).sum() if cfg.minibatches == 1 else (per_step * w).sum() / w.sum()
                )
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                loss_value = float(loss.detach())
        policy.eval()
        return loss_value

    def _evaluate(
        self, policy: Any, tasks: Sequence[EpisodeTask], seed: int, envs: Sequence[Any]
    ) -> tuple[EvalResult, float]:
        """Success on ``tasks``: greedy (each task once) or sampled (each ``k`` times).

        Returns:
            ``(result, mean domain score)``; ``result.n`` is ``len(tasks)``, ``success`` and the
            primitive means are over all ``n * k`` episodes (``k = 1`` when greedy).
        """
        samples = self.config.validation_samples
        stream = VALIDATION_SAMPLING_SEED if samples else seed
        played = [task for task in tasks for _ in range(samples)] if samples else list(tasks)
        policy.eval()
        episodes = self._play(
            envs,
            policy,
            played,
            stream_key=(stream, _EVALUATION_STEP),
            generator=torch.Generator().manual_seed(stream),
            greedy=not samples,
        )
        trajectories = [e.trajectory for e in episodes]
        values = self.primitive_set.compute(trajectories, [None] * len(trajectories))
        names = self.primitive_set.names
        means = {name: float(values[:, k].mean()) for k, name in enumerate(names)}
        success = float(np.mean([t.success for t in trajectories])) if trajectories else 0.0
        examples = tuple(
            json.dumps(
                {
                    "task": t.task.key,
                    "success": t.success,
                    "score": t.score,
                    "actions": list(t.actions[:12]),
                }
            )
            for t in trajectories[:3]
        )
        result = EvalResult(
            success=success, n=len(tasks), primitive_means=means, tokens=0, examples=examples
        )
        score = float(np.mean([t.score for t in trajectories])) if trajectories else 0.0
        return result, score

    def _save(self, policy: Any, meta_reward: MetaReward, seed: int, init: Any) -> str:
        lineage = {
            "parent": None if init is None else str(init),
            "meta_reward": meta_reward.canonical,
            "seed": seed,
        }
        return save_checkpoint(
            self.keep_checkpoints,  # type: ignore[arg-type]
            lineage,
            lambda path: torch.save(policy.state_dict(), path / "policy.pt"),
        )
