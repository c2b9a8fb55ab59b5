"""Executors: the same numbers from sync, a process pool and Ray; a killed worker is survived."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from process_checks import assert_worker_exits_with_parent

from derl_bench.meta_env.executors import (
    MetaStepTask,
    ProcessExecutor,
    SyncExecutor,
    default_executor_name,
    make_executor,
)

pytestmark = pytest.mark.slow

ENV_ID = "DERL-CartPole-v0"
# A cut smoke budget: real CartPole and the real compact GRPO, a few seconds per meta-step.
ENV_KWARGS = {"preset": "smoke", "inner_overrides": {"max_steps": 3}}
TASKS = [
    MetaStepTask(meta_reward="(g1 + g2 + g3 + g4) / 4", seed=0),
    MetaStepTask(meta_reward="g1 + g2", seed=0),
    MetaStepTask(meta_reward="g2 * g4", seed=1),
    MetaStepTask(meta_reward="g1 +", seed=1),  # invalid: no training, invalid_reward
]


_WALL = ("wall_seconds", "simulated_seconds")
"""Cost fields that are wall times (live: simulated_seconds is the wall seconds)."""


def _numbers(outcomes):
    rows = []
    for outcome in outcomes:
        info = {k: v for k, v in outcome.info.items() if k != "cost"}
        cost = {k: v for k, v in outcome.info.get("cost", {}).items() if k not in _WALL}
        rows.append((outcome.reward, info, cost, outcome.error))
    return rows


@pytest.fixture(scope="module")
def sync_outcomes():
    executor = SyncExecutor()
    try:
        return executor.run(ENV_ID, ENV_KWARGS, TASKS)
    finally:
        executor.close()


def test_sync_runs_every_task_in_order(sync_outcomes):
    assert [o.task for o in sync_outcomes] == TASKS
    assert all(not o.failed for o in sync_outcomes)
    assert all(0.0 <= o.reward <= 1.0 for o in sync_outcomes[:3])
    assert sync_outcomes[3].reward == -1.0 and sync_outcomes[3].info["invalid_reason"] == "syntax"
    assert sync_outcomes[0].info["cost"]["inner_steps"] > 0


def test_process_pool_gives_the_same_numbers_as_sync(sync_outcomes):
    executor = ProcessExecutor(max_workers=2)
    try:
        outcomes = executor.run(ENV_ID, ENV_KWARGS, TASKS)
        assert _numbers(outcomes) == _numbers(sync_outcomes)
        assert all(o.attempts == 1 for o in outcomes)
        pids = executor.worker_pids()
        assert 1 <= len(pids) <= 2
        again = executor.run(ENV_ID, ENV_KWARGS, TASKS[:2])  # the workers (and envs) are reused
        assert _numbers(again) == _numbers(sync_outcomes[:2])
        assert set(executor.worker_pids()) == set(pids)
    finally:
        executor.close()
    assert executor.worker_pids() == []


def test_killed_worker_fails_only_its_meta_step_which_is_retried(sync_outcomes):
    executor = ProcessExecutor(max_workers=2)
    killed: list[int] = []

    def kill_one_worker_mid_step() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not executor.worker_pids():
            time.sleep(0.05)
        time.sleep(1.5)  # the workers are importing or training by now
        pids = executor.worker_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    killer = threading.Thread(target=kill_one_worker_mid_step)
    try:
        killer.start()
        outcomes = executor.run(ENV_ID, ENV_KWARGS, TASKS[:2])
        killer.join()
    finally:
        executor.close()
    assert killed, "no worker was there to kill"
    assert _numbers(outcomes) == _numbers(sync_outcomes[:2])  # nothing lost, nothing changed
    assert max(o.attempts for o in outcomes) == 2  # the killed worker's meta-step was retried


def test_workers_exit_when_the_parent_is_killed_mid_meta_step(tmp_path):
    """`kill -9` of a `fidelity build` must not leave its workers training unseen."""
    marker = tmp_path / "workers.txt"
    long = {**ENV_KWARGS, "inner_overrides": {"max_steps": 100_000}}  # hours of training
    script = (
        "import threading, time\n"
        "from derl_bench.meta_env.executors import MetaStepTask, ProcessExecutor\n"
        "if __name__ == '__main__':\n"
        "    executor = ProcessExecutor(max_workers=1)\n"
        "    def note():\n"
        "        while not executor.worker_pids():\n"
        "            time.sleep(0.1)\n"
        f"        open({str(marker)!r}, 'w').write(str(executor.worker_pids()[0]))\n"
        "    threading.Thread(target=note, daemon=True).start()\n"
        f"    executor.run({ENV_ID!r}, {long!r}, [MetaStepTask(meta_reward='g1', seed=0)])\n"
    )
    # importing, building the env or training by the time the parent is killed
    assert_worker_exits_with_parent(script, marker, settle=3.0)


def test_a_meta_step_failing_twice_is_reported_not_raised():
    executor = SyncExecutor()
    try:
        outcomes = executor.run("DERL-CartPole-v0", {"preset": "no-such-preset"}, TASKS[:1])
    finally:
        executor.close()
    assert outcomes[0].failed and outcomes[0].reward is None and outcomes[0].attempts == 2
    assert "no-such-preset" in outcomes[0].error


def test_make_executor_names_and_errors():
    assert default_executor_name() in {"sync", "process"}
    assert make_executor("sync").name == "sync"
    with pytest.raises(ValueError, match="sync, process, ray"):
        make_executor("threads")
    with pytest.raises(ValueError, match="max_workers=0"):
        ProcessExecutor(max_workers=0)


def test_ray_local_cluster_gives_the_same_numbers_as_sync(sync_outcomes):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    executor = make_executor(
        "ray", num_cpus=1, init_kwargs={"num_cpus": 2, "include_dashboard": False}
    )
    try:
        assert ray.is_initialized()
        outcomes = executor.run(ENV_ID, ENV_KWARGS, TASKS)
    finally:
        executor.close()
    assert not ray.is_initialized()
    assert _numbers(outcomes) == _numbers(sync_outcomes)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gymnasium_make_vec_steps_a_batch_of_meta_rewards(mode, sync_outcomes):
    import gymnasium

    vector_kwargs = {"shared_memory": False} if mode == "async" else {}
    envs = gymnasium.make_vec(
        ENV_ID, num_envs=2, vectorization_mode=mode, vector_kwargs=vector_kwargs, **ENV_KWARGS
    )
    try:
        envs.reset(seed=0)  # env i gets seed i
        actions = (TASKS[0].meta_reward, TASKS[2].meta_reward)
        _, rewards, terminated, truncated, info = envs.step(actions)
    finally:
        envs.close()
    # The same numbers as the executors: env 0 ran TASKS[0] at seed 0, env 1 TASKS[2] at seed 1.
    assert list(rewards) == [sync_outcomes[0].reward, sync_outcomes[2].reward]
    assert not terminated.any() and not truncated.any()
    assert list(info["canonical"]) == [sync_outcomes[0].info["canonical"], "g2 * g4"]


@pytest.mark.data
def test_crashed_jvm_fails_only_its_meta_step_and_leaves_no_java_behind():
    import psutil

    env_id = "DERL-ScienceWorld-L0-v0"
    kwargs = {"preset": "smoke", "inner_overrides": {"max_steps": 1, "n_val": 2}}
    tasks = [MetaStepTask(meta_reward="g1 + g2", seed=0)]
    executor = ProcessExecutor(max_workers=1)
    crashed: list[int] = []
    seen_jvms: set[int] = set()  # every JVM the workers started (other tests may run JVMs too)

    def crash_the_jvm() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not crashed:
            for pid in executor.worker_pids():
                try:
                    for child in psutil.Process(pid).children(recursive=True):
                        if child.name() != "java":
                            continue
                        seen_jvms.add(child.pid)
                        # A JVM that has been running for 2 s is serving the meta-step.
                        if time.time() - child.create_time() > 2.0:
                            child.kill()
                            crashed.append(child.pid)
                            return
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)

    killer = threading.Thread(target=crash_the_jvm)
    try:
        killer.start()
        outcomes = executor.run(env_id, kwargs, tasks)
        killer.join()
        for pid in executor.worker_pids():  # the retry's JVMs too
            seen_jvms |= {
                c.pid for c in psutil.Process(pid).children(recursive=True) if c.name() == "java"
            }
    finally:
        executor.close()
    assert crashed, "no JVM was started"
    assert not outcomes[0].failed, outcomes[0].error
    assert outcomes[0].attempts == 2  # the crash failed the first attempt; the retry finished
    assert 0.0 <= outcomes[0].reward <= 1.0
    time.sleep(1.0)
    alive = {pid for pid in seen_jvms if psutil.pid_exists(pid)}
    alive = {p for p in alive if psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
    assert alive == set(), f"JVMs outlived their worker: {alive}"  # none outlives its worker


def test_env_prefetch_answers_steps_exactly_as_training_in_process(sync_outcomes):
    import gymnasium

    import derl_bench  # noqa: F401

    batch = [t.meta_reward for t in TASKS[:2]]
    env = gymnasium.make(ENV_ID, budget=3, **ENV_KWARGS)
    executor = ProcessExecutor(max_workers=2)
    try:
        env.reset(seed=0)
        assert env.unwrapped.prefetch(batch + ["g1 +"], executor) == 2  # the invalid one skipped
        assert env.unwrapped.prefetch(batch, executor) == 0  # already there
        steps = [env.step(m) for m in batch]
    finally:
        executor.close()
        env.close()
    for (_, reward, _, _, info), expected in zip(steps, sync_outcomes[:2], strict=True):
        assert info["cache_hit"] is False  # answered as trained, not as a cache hit
        assert (reward, info["training_curve"]) == (
            expected.reward,
            expected.info["training_curve"],
        )
        assert info["cost"]["inner_steps"] == expected.info["cost"]["inner_steps"] > 0


def test_env_reports_a_meta_step_that_failed_on_workers_and_goes_on():
    import gymnasium

    import derl_bench  # noqa: F401
    from derl_bench.meta_env.executors import MetaStepOutcome

    class DeadWorkers:  # a labelled fake executor: every worker dies (tested for real above)
        def run(self, env_id, env_kwargs, tasks):
            return [
                MetaStepOutcome(task=t, reward=None, attempts=2, error="WorkerDied: killed")
                for t in tasks
            ]

    env = gymnasium.make(ENV_ID, budget=2, **ENV_KWARGS)
    try:
        env.reset(seed=0)
        env.unwrapped.prefetch(["g1 + g2"], DeadWorkers())
        _, reward, _, truncated, info = env.step("g1 + g2")
    finally:
        env.close()
    assert reward == -1.0 and not truncated
    assert info["valid"] is False and info["invalid_reason"] == "failed"
    assert "WorkerDied: killed" in info["invalid_message"]
    # The result file keeps it apart from an invalid meta-reward, with the worker's error.
    import jsonschema

    from derl_bench.results import meta_step_record, result_schema

    record = meta_step_record(0, "g1 + g2", reward, info)
    assert record["invalid_reason"] == "failed" and "WorkerDied: killed" in record["error"]
    step_schema = {"$ref": "#/$defs/meta_step", "$defs": result_schema()["$defs"]}
    jsonschema.Draft202012Validator(step_schema).validate(record)


def test_runner_with_a_process_pool_writes_the_same_result_as_sync(tmp_path):
    from derl_bench.runner import resolve_executor, run

    def strip(record):
        steps = [
            {**s, "cost": {k: v for k, v in s["cost"].items() if k not in _WALL}}
            for s in record["meta_steps"]
        ]
        return steps, record["best"], record["test_success"]

    records = {}
    for name in ("sync", "process"):
        result = run(
            ENV_ID,
            "heuristic",
            budget=3,
            seed=0,
            preset="smoke",
            proposals_per_step=3,
            out_dir=tmp_path / name,
            env_kwargs={"inner_overrides": {"max_steps": 3}},
            progress=False,
            executor=name,
        )
        records[name] = result.record
    assert strip(records["process"]) == strip(records["sync"])
    assert [s["valid"] for s in records["sync"]["meta_steps"]] == [True, True, True]
    assert resolve_executor(ENV_ID, "auto") in {"sync", "process"}
    assert resolve_executor("Some-Other-v0", "auto") == "sync"  # workers could not rebuild it
    with pytest.raises(ValueError, match="Unknown executor 'threads'"):
        resolve_executor(ENV_ID, "threads")
