"""Several runs side by side: every (agent, seed) of a comparison in a pool of worker processes.

:func:`derl_bench.runner.run_many` runs a comparison's runs one after another. At the ``table``
and ``surrogate`` fidelities a run costs only its agent's own time (seconds for the search
baselines, minutes for the LLM agents, which sample and update a language model on the CPU), so
a 10-seed comparison of every agent is bound by those runs, which are independent.
:func:`run_in_pool` hands each run to one of ``jobs`` worker processes (``spawn``, so no parent
state leaks in) and gives the same result files as :func:`~derl_bench.runner.run_many`, wall
times aside: a run's numbers depend only on its arguments (inner trainings and the LLM agents
pin torch to their own thread counts), each run keeps its own resumable store, and a pool
worker uses the ``"sync"`` executor for its rounds unless another is asked for, so ``jobs``
workers use about ``jobs`` cores. One difference: the agent's own measured propose/update time,
which the simulated clock charges, grows when the workers share too few cores.
"""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derl_bench.runner import RunResult, run, run_many

__all__ = ["RunFailedError", "run_in_pool"]


class RunFailedError(RuntimeError):
    """A run in a worker failed with an error that cannot be sent back to the parent as is.

    The message names the run (agent and seed), the original error type and text, and the
    worker's traceback.
    """


@dataclass(frozen=True)
class _Failure:
    """What a worker sends back for a failed run: the error, pickled if it can be."""

    pickled: bytes | None
    type_name: str
    message: str
    worker_traceback: str


def _print_line(text: str) -> None:
    print(text, flush=True)


def _run_job(kwargs: dict[str, Any]) -> RunResult | _Failure:
    """Worker side: one :func:`~derl_bench.runner.run`; a failure comes back as data."""
    try:
        return run(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        try:
            # The class, its args and its attributes: rebuilt without calling __init__, so
            # errors with their own __init__ signature (StoreMismatchError, ...) come back too.
            pickled: bytes | None = pickle.dumps((type(exc), exc.args, dict(vars(exc))))
            _rebuild(pickled)
        except Exception:  # noqa: BLE001 - not portable: sent back as text
            pickled = None
        return _Failure(
            pickled=pickled,
            type_name=type(exc).__qualname__,
            message=str(exc),
            worker_traceback=traceback.format_exc(),
        )


def _rebuild(pickled: bytes) -> BaseException:
    cls, args, attributes = pickle.loads(pickled)
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(attributes)
    return exc


def _raise(failure: _Failure, agent_name: str, seed: int) -> None:
    where = f"run of agent {agent_name!r} with seed {seed} (in a pool worker)"
    if failure.pickled is not None:
        exc = _rebuild(failure.pickled)
        exc.add_note(f"In the {where}; the worker's traceback:\n{failure.worker_traceback}")
        raise exc
    raise RunFailedError(
        f"The {where} failed: {failure.type_name}: {failure.message}\n"
        f"The worker's traceback:\n{failure.worker_traceback}"
    )


def run_in_pool(
    env_id: str,
    agent_names: Sequence[str],
    seeds: Sequence[int],
    *,
    jobs: int,
    budget: int,
    preset: str,
    proposals_per_step: int,
    out_dir: str | Path,
    resume: bool = True,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
    on_run_start: Callable[[str, int], None] | None = None,
    on_run_end: Callable[[RunResult], None] | None = None,
    executor: str | None = "auto",
    env_kwargs: Mapping[str, Any] | None = None,
    budget_seconds: float | None = None,
) -> list[RunResult]:
    """Run every agent on ``env_id`` with every seed, up to ``jobs`` runs at a time.

    With ``jobs == 1`` (or a single run) this is :func:`~derl_bench.runner.run_many`.
    Otherwise every (agent, seed) is one :func:`~derl_bench.runner.run` in a ``spawn`` worker
    process, submitted agents outer, seeds inner. Workers show no progress bar and print
    ``notify``'s one-line messages (``"resuming: ..."``) themselves when ``notify`` is given.
    ``executor="auto"`` (or None) becomes ``"sync"`` in the workers: the pool is the
    parallelism.

    When a run fails, the runs not yet started are cancelled, the ones in flight finish (their
    results reach ``on_run_end``; every run keeps its own store, so the same call resumes the
    rest), then the first failure is raised. On Ctrl-C (or any error in this process) the runs
    not yet started are cancelled and the call waits for the workers to stop (a worker that got
    the signal too writes its run's failed result, as :func:`~derl_bench.runner.run` does).

    Args:
        env_id: Gymnasium id.
        agent_names: Agent registry names.
        seeds: Seeds, one run each.
        jobs: Runs at a time, >= 1 (about one core each at the sync executor; an LLM agent's
            worker holds its language model, ~1-2 GB for SmolLM2-135M).
        budget: Outer budget per run.
        preset: Inner-training preset.
        proposals_per_step: Meta-rewards proposed per agent call.
        out_dir: Root folder of result files.
        resume: As for :func:`~derl_bench.runner.run`.
        progress: A progress bar per run, only with ``jobs == 1`` (workers show none).
        notify: As for :func:`~derl_bench.runner.run`; in workers, messages are printed.
        on_run_start: Called with ``(agent_name, seed)`` as each run is handed to the pool,
            and once more for a failed run just before its error is raised (so the last call
            names the failing run).
        on_run_end: Called with each finished run's :class:`RunResult`, in the order they finish.
        executor: As for :func:`~derl_bench.runner.run`; ``"auto"`` means ``"sync"`` in workers.
        env_kwargs: As for :func:`~derl_bench.runner.run`.
        budget_seconds: As for :func:`~derl_bench.runner.run`.

    Returns:
        The finished runs, agents outer and seeds inner (the order of
        :func:`~derl_bench.runner.run_many`).

    Raises:
        ValueError: If ``jobs`` is not an int >= 1.
        RunFailedError: If a run failed with an error that cannot be pickled back (message:
            the run, the error and the worker's traceback).
        Exception: Otherwise the failed run's own error (``StoreMismatchError``,
            ``TableKeyMissing``, ...), with a note naming the run.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an int >= 1 (runs side by side)")
    pairs = [(agent_name, seed) for agent_name in agent_names for seed in seeds]
    if jobs == 1 or len(pairs) <= 1:
        return run_many(
            env_id,
            agent_names,
            seeds,
            budget=budget,
            preset=preset,
            proposals_per_step=proposals_per_step,
            out_dir=out_dir,
            progress=progress,
            resume=resume,
            notify=notify,
            on_run_start=on_run_start,
            on_run_end=on_run_end,
            executor=executor,
            env_kwargs=env_kwargs,
            budget_seconds=budget_seconds,
        )
    common: dict[str, Any] = {
        "budget": budget,
        "preset": preset,
        "proposals_per_step": proposals_per_step,
        "out_dir": out_dir,
        "env_kwargs": dict(env_kwargs) if env_kwargs is not None else None,
        "progress": False,
        "resume": resume,
        "notify": _print_line if notify is not None else None,
        "executor": "sync" if executor in (None, "auto") else executor,
        "budget_seconds": budget_seconds,
    }
    finished: dict[tuple[str, int], RunResult] = {}
    failure: tuple[_Failure, str, int] | None = None
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(pairs)), mp_context=context)
    try:
        pending: dict[Future[RunResult | _Failure], tuple[str, int]] = {}
        for agent_name, seed in pairs:
            if on_run_start is not None:
                on_run_start(agent_name, seed)
            job = dict(common, env_id=env_id, agent_name=agent_name, seed=seed)
            pending[pool.submit(_run_job, job)] = (agent_name, seed)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                agent_name, seed = pending.pop(future)
                if future.cancelled():
                    continue
                try:
                    outcome = future.result()
                except BrokenProcessPool as exc:
                    exc.add_note(
                        f"The worker running agent {agent_name!r} with seed {seed} died (out of "
                        "memory?). Lower --jobs; the same command resumes every unfinished run."
                    )
                    raise
                if isinstance(outcome, _Failure):
                    if failure is None:
                        failure = (outcome, agent_name, seed)
                        for other in pending:
                            other.cancel()  # not started yet: cancelled; running: finishes
                    continue
                finished[(agent_name, seed)] = outcome
                if on_run_end is not None:
                    on_run_end(outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        outcome, agent_name, seed = failure
        if on_run_start is not None:
            on_run_start(agent_name, seed)
        _raise(outcome, agent_name, seed)
    return [finished[pair] for pair in pairs]
