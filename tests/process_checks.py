"""Test helper (not a test module): does a pool's worker end when its parent is killed?

Used by the run pool's and the meta-step executor's tests: a parent script starts one worker
that writes its pid to ``marker`` and keeps busy; the parent is killed with SIGKILL and the
worker must be gone within ``grace`` seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux ``/proc``)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited


def assert_worker_exits_with_parent(
    script: str,
    marker: Path,
    *,
    settle: float = 0.5,
    grace: float = 15.0,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ``python -c script``, wait for its worker's pid in ``marker``, SIGKILL the parent.

    Raises:
        AssertionError: If the worker never wrote its pid (120 s), was not running ``settle``
            seconds later, or outlived its killed parent by ``grace`` seconds.
    """

    def worker_pid() -> int | None:
        text = marker.read_text() if marker.exists() else ""
        return int(text) if text.strip() else None

    parent = subprocess.Popen([sys.executable, "-c", script], env=None if env is None else env)
    try:
        deadline = time.monotonic() + 120
        while worker_pid() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = worker_pid()
        assert worker is not None, "the worker never started"
        time.sleep(settle)
        assert alive(worker) and parent.poll() is None
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + grace
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(worker), "the pool worker outlived its killed parent"
    finally:
        parent.kill()
        pid = worker_pid()
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)  # a failed check leaves none behind
