"""Calls side by side in a pool of ``spawn`` worker processes, failures sent back whole.

:func:`derl_bench.runner.run_many` with ``jobs > 1`` hands each (agent, seed) run to
:func:`map_in_pool`. At the ``table`` and ``surrogate`` fidelities a run costs only its agent's
own time (seconds for the search baselines, minutes for the LLM agents, which sample and update
a language model on the CPU), so a 10-seed comparison of every agent is bound by those runs,
which are independent. This module knows nothing of runs: it calls a module-level function
with keyword arguments in ``spawn`` workers (no parent state leaks in), reports each call's
start and end, and on a failure cancels what has not started, lets what runs finish, and
raises the failed call's own error (rebuilt in the parent without calling its ``__init__``, so
errors with their own signature come back too), with a note naming the call.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from derl_bench._processes import exit_with_parent

__all__ = ["PoolCallFailedError", "map_in_pool"]

T = TypeVar("T")
Label = TypeVar("Label", bound=Hashable)


class PoolCallFailedError(RuntimeError):
    """A call in a worker failed with an error that cannot be sent back to the parent as is.

    The message names the call, the original error type and text, and the worker's traceback.
    """


@dataclass(frozen=True)
class _Failure:
    """What a worker sends back for a failed call: the error, pickled if it can be."""

    pickled: bytes | None
    type_name: str
    message: str
    worker_traceback: str


def _call(function: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Worker side: one call; a failure comes back as data (a :class:`_Failure`)."""
    try:
        return function(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        try:
            # The class, its args and its attributes: rebuilt without calling __init__.
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


def _raise(failure: _Failure, where: str) -> None:
    if failure.pickled is not None:
        exc = _rebuild(failure.pickled)
        exc.add_note(f"In {where} (a pool worker); the worker's traceback:\n")
        exc.add_note(failure.worker_traceback)
        raise exc
    raise PoolCallFailedError(
        f"{where} (a pool worker) failed: {failure.type_name}: {failure.message}\n"
        f"The worker's traceback:\n{failure.worker_traceback}"
    )


def map_in_pool(
    function: Callable[..., T],
    calls: Sequence[tuple[Label, Mapping[str, Any]]],
    *,
    jobs: int,
    describe: Callable[[Label], str] = repr,
    on_start: Callable[[Label], None] | None = None,
    on_end: Callable[[T], None] | None = None,
) -> list[T]:
    """Call ``function(**kwargs)`` for every ``(label, kwargs)``, up to ``jobs`` at a time.

    Args:
        function: A module-level function (the workers import it by name); its arguments and
            result must pickle.
        calls: ``(label, kwargs)`` pairs; labels are distinct and name the call in errors.
        jobs: Worker processes, >= 1 (``min(jobs, len(calls))`` are started).
        describe: Turns a label into words for error notes (e.g. ``"the run of agent 'cma'
            with seed 1"``).
        on_start: Called with each label as its call is handed to the pool, and once more
            for a failed call just before its error is raised (the last call names it).
        on_end: Called with each result, in the order the calls finish.

    Returns:
        The results, in the order of ``calls``.

    Raises:
        ValueError: If ``jobs`` is not an int >= 1, or a label repeats.
        PoolCallFailedError: If a call failed with an error that cannot be pickled back.
        concurrent.futures.process.BrokenProcessPool: If a worker died (killed, out of
            memory); its note names the call.
        Exception: Otherwise the first failed call's own error, with notes naming the call
            and holding the worker's traceback; raised after the calls in flight finished
            (those not started are cancelled). On Ctrl-C in this process, calls not started
            are cancelled and the pool waits for its workers. If this process is killed
            outright, each worker exits within about a second
            (:func:`derl_bench._processes.exit_with_parent`).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an int >= 1 (calls side by side)")
    labels = [label for label, _ in calls]
    if len(set(labels)) != len(labels):
        twice = next(label for label in labels if labels.count(label) > 1)
        raise ValueError(f"{describe(twice)} is asked for twice; give each call once")
    results: dict[Label, T] = {}
    failure: tuple[_Failure, Label] | None = None
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(calls))),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        pending: dict[Future[Any], Label] = {}
        for label, kwargs in calls:
            if on_start is not None:
                on_start(label)
            pending[pool.submit(_call, function, dict(kwargs))] = label
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                label = pending.pop(future)
                if future.cancelled():
                    continue
                try:
                    outcome = future.result()
                except BrokenProcessPool as exc:
                    exc.add_note(
                        f"The worker of {describe(label)} died (out of memory?). Use fewer jobs; "
                        "every finished call's result is kept."
                    )
                    raise
                if isinstance(outcome, _Failure):
                    if failure is None:
                        failure = (outcome, label)
                        for other in pending:
                            other.cancel()  # not started yet: cancelled; running: finishes
                    continue
                results[label] = outcome
                if on_end is not None:
                    on_end(outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        outcome, label = failure
        if on_start is not None:
            on_start(label)
        _raise(outcome, describe(label))
    return [results[label] for label, _ in calls]
