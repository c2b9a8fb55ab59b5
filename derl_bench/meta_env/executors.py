"""Executors: run a proposal batch of meta-steps one after another, in a process pool, or on Ray.

One meta-step is one inner training: independent work. An outer agent proposes
``proposals_per_step`` meta-rewards at once; an executor trains them concurrently:

- ``"sync"``: one after another in this process (:class:`SyncExecutor`);
- ``"process"``: a local pool of worker processes (:class:`ProcessExecutor`; started with
  ``spawn``, so no torch or JVM state is forked); the default when more than one core is free
  (:func:`default_executor_name`);
- ``"ray"``: Ray tasks (:class:`RayExecutor`); ``address=`` joins an existing cluster
  (``ray.init(address=...)``), CPUs/GPUs per task are settings. Needs the ``ray`` extra.

Each worker builds a :class:`~derl_bench.meta_env.meta_reward_env.MetaRewardEnv` once per
``(env id, kwargs)`` and reuses it, so heavy state (JVMs, TextWorld game caches, loaded models,
encoders) is created once per worker. A meta-step is ``reset(seed)``, ``set_warm_start``,
``step(meta_reward)``; inner trainings are seeded and pinned to a fixed torch thread count, so
every executor returns the same numbers as ``"sync"`` for the same seeds (tested).

Faults: a worker that dies (killed, crashed JVM, out of memory) fails only the meta-steps it was
running; each is retried once on a fresh worker, then reported as failed
(:attr:`MetaStepOutcome.error`) while the other meta-steps of the batch keep their results.
A killed parent (``kill PID`` of a ``fidelity build``) takes its ``process`` workers with it
within about a second (:func:`derl_bench._processes.exit_with_parent`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

from derl_bench._processes import exit_with_parent

__all__ = [
    "EXECUTOR_NAMES",
    "Executor",
    "MetaStepOutcome",
    "MetaStepTask",
    "ProcessExecutor",
    "RayExecutor",
    "SyncExecutor",
    "default_executor_name",
    "make_executor",
    "close_shared_envs",
    "run_meta_step",
    "shared_env",
]

EXECUTOR_NAMES = ("sync", "process", "ray")
"""Names accepted by :func:`make_executor`."""


@dataclass(frozen=True, kw_only=True)
class MetaStepTask:
    """One meta-step to run: a meta-reward under a seed, optionally from a warm-start checkpoint."""

    meta_reward: str
    """The meta-reward text (invalid text gives the env's ``invalid_reward``, no training)."""
    seed: int
    """Inner seed (``env.reset(seed=...)``)."""
    warm_start: str | None = None
    """Checkpoint folder to train from (DERL-pop), or None for the initial policy."""
    with_test: bool = False
    """Also run ``evaluate_test`` on the meta-reward (a valid one); its answer is in
    ``info["test"]`` (``derl-bench fidelity build`` records test success per entry)."""


@dataclass(frozen=True, kw_only=True)
class MetaStepOutcome:
    """What running a :class:`MetaStepTask` gave."""

    task: MetaStepTask
    """The task."""
    reward: float | None
    """The env's reward (validation success in [0, 1], or ``invalid_reward``); None if failed."""
    info: dict[str, Any] = field(default_factory=dict)
    """The env's ``info`` of the step (empty if failed)."""
    attempts: int = 1
    """How many times it was started (2 after a retry)."""
    error: str | None = None
    """``"Type: message"`` of the failure after the retry, else None."""

    @property
    def failed(self) -> bool:
        """Whether the meta-step failed on every attempt."""
        return self.error is not None


class Executor(Protocol):
    """Runs a batch of meta-steps of one env id; results in the order of the tasks."""

    name: str

    def run(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[MetaStepTask]
    ) -> list[MetaStepOutcome]:
        """Run ``tasks`` on ``gymnasium.make(env_id, **env_kwargs)`` envs, results in order.

        Never raises for a failed meta-step (see :attr:`MetaStepOutcome.error`).
        """
        ...

    def close(self) -> None:
        """Release workers (idempotent)."""
        ...


# -- the work itself (runs in a worker) ------------------------------------------------------------

_WORKER_ENVS: dict[str, Any] = {}


def _env_key(env_id: str, env_kwargs: dict[str, Any]) -> str:
    return json.dumps([env_id, env_kwargs], sort_keys=True, default=str)


def shared_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """Return this process's env for ``(env_id, env_kwargs)``, building it on first use.

    The ``sync`` executor runs its meta-steps on this env, so a caller that also needs the env
    (e.g. to score the untrained policy) shares its heavy state. ``budget`` is 1: reset it
    before each step. :meth:`SyncExecutor.close` closes it.
    """
    return _worker_env(env_id, env_kwargs)


def _worker_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    key = _env_key(env_id, env_kwargs)
    env = _WORKER_ENVS.get(key)
    if env is None:
        import gymnasium

        import derl_bench  # noqa: F401  (registers the ids in a fresh worker)

        env = gymnasium.make(env_id, **{**env_kwargs, "budget": 1})
        _WORKER_ENVS[key] = env
    return env


def run_meta_step(
    env_id: str, env_kwargs: dict[str, Any], task: MetaStepTask
) -> tuple[float, dict[str, Any]]:
    """Run one meta-step on this process's env for ``(env_id, env_kwargs)`` (built once).

    Args:
        env_id: A registered id, e.g. ``"DERL-CartPole-v0"``.
        env_kwargs: Keyword arguments of ``gymnasium.make`` (``budget`` is set to 1: every task
            starts a new outer episode).
        task: What to run.

    Returns:
        ``(reward, info)`` of ``env.step``; a task this worker already trained is answered from
        its env's cache with the numbers and cost of that training (``cache_hit`` False).
    """
    env = _worker_env(env_id, env_kwargs)
    env.reset(seed=task.seed)
    env.unwrapped.set_warm_start(task.warm_start)
    _, reward, _, _, info = env.step(task.meta_reward)
    if info.get("cache_hit"):
        # this worker trained it for an earlier task: the caller gets what training cost then
        info = {**info, "cache_hit": False, "cost": env.unwrapped.training_cost(task.meta_reward)}
    if task.with_test and info.get("valid"):
        info = {**info, "test": env.unwrapped.evaluate_test(task.meta_reward)}
    return float(reward), info


def close_shared_envs() -> None:
    """Close every env this process built for meta-steps (:func:`shared_env`)."""
    for env in _WORKER_ENVS.values():
        env.close()
    _WORKER_ENVS.clear()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# -- executors ---------------------------------------------------------------------------------


class SyncExecutor:
    """Run meta-steps one after another in this process (the reference for every other)."""

    name = "sync"

    def run(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[MetaStepTask]
    ) -> list[MetaStepOutcome]:
        """See :meth:`Executor.run`; an exception in a meta-step is retried once, then reported."""
        outcomes = []
        for task in tasks:
            error: str | None = None
            for attempt in (1, 2):
                try:
                    reward, info = run_meta_step(env_id, env_kwargs, task)
                except Exception as exc:  # noqa: BLE001  (reported, not swallowed)
                    error = _describe(exc)
                    continue
                outcomes.append(
                    MetaStepOutcome(task=task, reward=reward, info=info, attempts=attempt)
                )
                break
            else:
                outcomes.append(MetaStepOutcome(task=task, reward=None, attempts=2, error=error))
        return outcomes

    def close(self) -> None:
        """Close the envs this process built."""
        close_shared_envs()


def _pool_initializer(threads_env: dict[str, str], parent_pid: int) -> None:
    os.environ.update(threads_env)
    exit_with_parent(parent_pid)  # a killed build must not leave its workers training


class ProcessExecutor:
    """Run meta-steps concurrently in a local pool of ``spawn``-ed worker processes.

    Args:
        max_workers: Worker processes, >= 1; default: the cores free to this process
            (``len(os.sched_getaffinity(0))``).

    Raises:
        ValueError: If ``max_workers`` < 1.
    """

    name = "process"

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = _free_cores()
        if max_workers < 1:
            raise ValueError(f"max_workers={max_workers} must be >= 1")
        self.max_workers = int(max_workers)
        self._pool: ProcessPoolExecutor | None = None

    def _fresh_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        # Each worker trains with the env's pinned torch threads; keep BLAS pools from
        # oversubscribing the cores the other workers use.
        threads_env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self._pool = ProcessPoolExecutor(
            max_workers=self.max_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_pool_initializer,
            initargs=(threads_env, os.getpid()),
        )
        return self._pool

    def run(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[MetaStepTask]
    ) -> list[MetaStepOutcome]:
        """See :meth:`Executor.run`.

        A dead worker breaks the pool: finished meta-steps keep their results, the others are
        retried once on a new pool, then reported as failed.
        """
        results: dict[int, MetaStepOutcome] = {}
        pending = list(range(len(tasks)))
        errors: dict[int, str] = {}
        for attempt in (1, 2):
            if not pending:
                break
            pool = self._pool if self._pool is not None else self._fresh_pool()
            futures: dict[int, Future] = {
                i: pool.submit(run_meta_step, env_id, env_kwargs, tasks[i]) for i in pending
            }
            broken = False
            still: list[int] = []
            for i, future in futures.items():
                try:
                    reward, info = future.result()
                except BrokenProcessPool as exc:
                    broken = True
                    errors[i] = "WorkerDied: " + (str(exc) or "a worker process ended abruptly")
                    still.append(i)
                except Exception as exc:  # noqa: BLE001  (reported, not swallowed)
                    errors[i] = _describe(exc)
                    still.append(i)
                else:
                    results[i] = MetaStepOutcome(
                        task=tasks[i], reward=reward, info=info, attempts=attempt
                    )
            if broken:
                self._fresh_pool()
            pending = still
        for i in pending:
            results[i] = MetaStepOutcome(task=tasks[i], reward=None, attempts=2, error=errors[i])
        return [results[i] for i in range(len(tasks))]

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (empty before the first batch)."""
        if self._pool is None:
            return []
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.is_alive()]

    def close(self) -> None:
        """Shut the workers down (their envs close with them: JVMs end with their process)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Run meta-steps as Ray tasks, on a local Ray instance or an existing cluster.

    Ray's workers are reused between tasks, so each keeps the envs it built.

    Args:
        address: ``ray.init(address=...)``: None starts (or reuses) a local instance, ``"auto"``
            or ``"ray://host:port"`` joins a running cluster.
        num_cpus: CPUs reserved per meta-step task.
        num_gpus: GPUs reserved per meta-step task (``paper`` presets).
        init_kwargs: Further ``ray.init`` keyword arguments (e.g. ``num_cpus`` of a local
            instance, ``include_dashboard``).

    Raises:
        ImportError: If Ray is not installed (fix: ``pip install 'derl-bench[ray]'``).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError(
                "executor='ray' needs Ray: pip install 'derl-bench[ray]' (or pip install ray)."
            ) from exc
        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            ray.init(address=address, **(init_kwargs or {}))
            self._started_here = True
        self._remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(
            run_meta_step
        )

    def run(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[MetaStepTask]
    ) -> list[MetaStepOutcome]:
        """See :meth:`Executor.run`. A task whose worker died is retried once, then reported."""
        ray = self._ray
        results: dict[int, MetaStepOutcome] = {}
        errors: dict[int, str] = {}
        pending = list(range(len(tasks)))
        for attempt in (1, 2):
            if not pending:
                break
            refs = {i: self._remote.remote(env_id, env_kwargs, tasks[i]) for i in pending}
            still = []
            for i, ref in refs.items():
                try:
                    reward, info = ray.get(ref)
                except Exception as exc:  # noqa: BLE001  (WorkerCrashedError, RayTaskError, ...)
                    errors[i] = _describe(exc)
                    still.append(i)
                else:
                    results[i] = MetaStepOutcome(
                        task=tasks[i], reward=reward, info=info, attempts=attempt
                    )
            pending = still
        for i in pending:
            results[i] = MetaStepOutcome(task=tasks[i], reward=None, attempts=2, error=errors[i])
        return [results[i] for i in range(len(tasks))]

    def close(self) -> None:
        """Shut down the Ray instance if this executor started it."""
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
        self._started_here = False


def _free_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_executor_name() -> str:
    """``"process"`` when more than one core is free to this process, else ``"sync"``."""
    return "process" if _free_cores() > 1 else "sync"


def make_executor(name: str | None = None, **kwargs: Any) -> Executor:
    """Build an executor by name.

    Args:
        name: ``"sync"``, ``"process"`` or ``"ray"``; None picks :func:`default_executor_name`.
        **kwargs: The executor's arguments (``max_workers`` for ``"process"``; ``address``,
            ``num_cpus``, ``num_gpus``, ``init_kwargs`` for ``"ray"``).

    Returns:
        The executor (call ``close()`` when done).

    Raises:
        ValueError: On an unknown name (the message lists the known ones).
    """
    name = name or default_executor_name()
    if name == "sync":
        return SyncExecutor(**kwargs)
    if name == "process":
        return ProcessExecutor(**kwargs)
    if name == "ray":
        return RayExecutor(**kwargs)
    raise ValueError(f"Unknown executor {name!r}; choose one of {', '.join(EXECUTOR_NAMES)}.")
