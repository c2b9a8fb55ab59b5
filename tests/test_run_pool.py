"""Runs side by side (`derl-bench compare --jobs N`): the same result files as one by one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from process_checks import assert_worker_exits_with_parent

from derl_bench.run_pool import PoolCallFailedError, map_in_pool
from derl_bench.runner import run, run_many
from derl_bench.store import StoreMismatchError

ENV_ID = "DERL-CartPole-v0"
SURROGATE = {"fidelity": "surrogate"}  # the shipped CartPole `cpu` table: no training, seconds

_MEASURED = {"wall_seconds", "started_at", "finished_at"}
_CLOCK_MEASURED = {"wall_seconds", "agent_seconds", "update_seconds", "simulated_seconds"}


def _comparable(record):
    """A result without what is measured on the wall clock (it differs between any two runs)."""
    kept = {k: v for k, v in record.items() if k not in _MEASURED | {"clock"}}
    kept["clock"] = {k: v for k, v in record["clock"].items() if k not in _CLOCK_MEASURED}
    for name in ("total_cost", "test_cost"):
        if isinstance(record.get(name), dict):
            kept[name] = {k: v for k, v in record[name].items() if k != "wall_seconds"}
    kept["meta_steps"] = [
        {**s, "cost": {k: v for k, v in s["cost"].items() if k != "wall_seconds"}}
        for s in record["meta_steps"]
    ]
    return kept


def test_runs_in_a_pool_write_the_same_results_as_one_by_one(tmp_path):
    common = {"budget": 16, "preset": "cpu", "proposals_per_step": 8, "env_kwargs": SURROGATE}
    agents, seeds = ["cma", "random_tree"], [0, 1]
    one_by_one = run_many(ENV_ID, agents, seeds, out_dir=tmp_path / "seq", progress=False, **common)
    ended = []
    pooled = run_many(
        ENV_ID, agents, seeds, jobs=2, out_dir=tmp_path / "pool", on_run_end=ended.append, **common
    )
    assert [(r.record["agent"]["name"], r.record["seed"]) for r in pooled] == [
        ("cma", 0),
        ("cma", 1),
        ("random_tree", 0),
        ("random_tree", 1),
    ]
    assert sorted(str(r.path) for r in ended) == sorted(str(r.path) for r in pooled)
    for seq, pool in zip(one_by_one, pooled, strict=True):
        assert pool.path == tmp_path / "pool" / seq.path.relative_to(tmp_path / "seq")
        assert _comparable(pool.record) == _comparable(seq.record)
        on_disk = json.loads(pool.path.read_text())
        assert on_disk["status"] == "finished" and len(on_disk["meta_steps"]) == 16
    # CartPole reads no data file: a fresh worker's result lists none
    assert all(r.record["data_hashes"] == {} for r in pooled)
    # the four runs are not all alike: the comparison above compares real searches
    assert len({r.best_meta_reward for r in pooled}) > 1


def test_a_failed_run_in_the_pool_raises_its_own_error_after_the_others_finish(tmp_path):
    common = {"preset": "cpu", "proposals_per_step": 8, "env_kwargs": SURROGATE}
    out = tmp_path / "runs"
    run(ENV_ID, "cma", seed=1, budget=8, out_dir=out, progress=False, **common)
    started = []
    with pytest.raises(StoreMismatchError, match="--no-resume") as caught:
        run_many(
            ENV_ID,
            ["cma"],
            [0, 1],
            jobs=2,
            budget=16,  # seed 1's store holds a budget-8 run: that run cannot resume
            out_dir=out,
            on_run_start=lambda agent, seed: started.append((agent, seed)),
            **common,
        )
    assert caught.value.field == "budget" and caught.value.stored == 8
    assert any("seed 1" in note for note in caught.value.__notes__)
    assert started[-1] == ("cma", 1)  # the last call names the failing run
    finished = json.loads((out / ENV_ID / "cma" / "seed0.json").read_text())
    assert finished["status"] == "finished" and len(finished["meta_steps"]) == 16
    kept = json.loads((out / ENV_ID / "cma" / "seed1.json").read_text())
    assert len(kept["meta_steps"]) == 8  # the stored run is left as it was


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5])
def test_jobs_must_be_a_positive_int(jobs, tmp_path):
    with pytest.raises(ValueError, match="jobs=.* must be an int >= 1"):
        run_many(
            ENV_ID,
            ["cma"],
            [0],
            jobs=jobs,
            budget=1,
            preset="cpu",
            proposals_per_step=1,
            out_dir=tmp_path,
        )
    assert not any(tmp_path.iterdir())


def test_compare_with_jobs_writes_every_run_and_the_table(tmp_path):
    """The command a user types, as a process: the console script spawns the pool's workers."""
    command = [
        str(Path(sys.executable).parent / "derl-bench"),
        "compare",
        "--env",
        ENV_ID,
        "--preset",
        "cpu",
        "--fidelity",
        "surrogate",
        "--agents",
        "heuristic,random_tree",
        "--budget",
        "8",
        "--proposals",
        "8",
        "--seeds",
        "0,1",
        "--jobs",
        "2",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / ENV_ID
    for agent in ("heuristic", "random_tree"):
        for seed in (0, 1):
            record = json.loads((folder / agent / f"seed{seed}.json").read_text())
            assert record["status"] == "finished" and len(record["meta_steps"]) == 8
    rows = [
        line for line in (folder / "table.md").read_text().splitlines() if line.startswith("| ")
    ]
    assert sum("| heuristic |" in row for row in rows) == 1
    assert sum("| random_tree |" in row for row in rows) == 1


# --- the pool itself (module-level functions: spawn workers import them by name) ----------------


class _HoldsALock(RuntimeError):
    """An error that cannot be pickled (a lock among its attributes)."""

    def __init__(self) -> None:
        super().__init__("cannot travel")
        self.lock = threading.Lock()


def _double_or_fail(x: int) -> int:
    if x < 0:
        raise _HoldsALock()
    return 2 * x


def test_map_in_pool_keeps_the_order_and_sends_back_what_cannot_be_pickled_as_text():
    ended = []
    calls = [(i, {"x": i}) for i in (3, 1, 2)]
    assert map_in_pool(_double_or_fail, calls, jobs=2, on_end=ended.append) == [6, 2, 4]
    assert sorted(ended) == [2, 4, 6]
    with pytest.raises(ValueError, match="call 1 is asked for twice"):
        map_in_pool(_double_or_fail, [(1, {"x": 1})] * 2, jobs=2, describe=lambda i: f"call {i}")
    with pytest.raises(PoolCallFailedError, match=r"call -1 \(a pool worker\) failed: _HoldsALock"):
        map_in_pool(_double_or_fail, [(-1, {"x": -1})], jobs=1, describe=lambda i: f"call {i}")


def _note_pid_and_sleep(path: str, seconds: float) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    """`kill -9` of a compare must not leave its workers running (and holding store locks)."""
    marker = tmp_path / "worker.pid"
    script = (
        "from test_run_pool import _note_pid_and_sleep\n"
        "from derl_bench.run_pool import map_in_pool\n"
        "if __name__ == '__main__':\n"
        f"    map_in_pool(_note_pid_and_sleep, [(0, {{'path': {str(marker)!r}, 'seconds': 600}})],"
        " jobs=1)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    assert_worker_exits_with_parent(script, marker, env=env)
