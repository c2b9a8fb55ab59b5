"""Two processes that need the same cached model at once build it once (the file lock)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path


def _need(target: str, log: str) -> None:
    from derl_bench.inner.tiny_lm import _one_builder

    path = Path(target)
    if (path / "done").exists():  # the other process had already finished
        with open(log, "a") as f:
            f.write("found\n")
        return
    with _one_builder(path):
        if (path / "done").exists():  # the other process built it while we waited
            with open(log, "a") as f:
                f.write("found\n")
            return
        time.sleep(1.0)  # a slow build, so the two processes overlap
        path.mkdir(parents=True)
        (path / "done").write_text("1")
        with open(log, "a") as f:
            f.write("built\n")


def test_two_processes_build_a_model_folder_once(tmp_path):
    target, log = tmp_path / "cache" / "model", tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_need, args=(str(target), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(log.read_text().split()) == ["built", "found"]
