"""Worker processes that end with their parent (the process pools of runs and meta-steps).

A ``ProcessPoolExecutor``'s workers are not stopped when their parent is killed without
Ctrl-C (``kill PID``, ``kill -9``, a job scheduler ending the job): they go on training unseen,
using the cores (and, for runs, holding their stores' locks). Both pools of derl_bench start
their workers with :func:`exit_with_parent`.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["exit_with_parent"]


def exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Worker initializer: end this worker within ``poll_seconds`` of its parent's end.

    A daemon thread compares ``os.getppid()`` with ``parent_pid`` every ``poll_seconds`` and
    calls ``os._exit(1)`` once they differ (the parent is gone and the worker was re-parented).
    What the worker was computing is lost; the pools' callers keep finished work in their own
    stores (run stores, table shards), so the same command resumes.

    Args:
        parent_pid: ``os.getpid()`` of the parent, passed through the pool's ``initargs``.
        poll_seconds: Seconds between checks, > 0.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
