"""A proposal batch under the ``sync`` and ``process`` executors, side by side in one run.

Run: ``.venv/bin/pytest benchmarks/test_bench_executors.py --benchmark-only -s`` (needs the data
for ALFWorld). Each case times one batch with each executor (workers started and warmed up on a
first batch, as in a run, so the ratio is the steady-state one) and stores the speed-up
``sync / process`` in ``extra_info``; identical numbers from both are asserted (not the speed).
The issue's targets on 2 cores: >= 1.7x for 4 ``cpu`` CartPole meta-steps, >= 1.5x for 2 ``cpu``
ALFWorld-L2 meta-steps.
"""

from __future__ import annotations

import time

import pytest

from derl_bench.meta_env.executors import MetaStepTask, ProcessExecutor, SyncExecutor

CASES = {
    "cartpole-cpu-x4": (
        "DERL-CartPole-v0",
        {"preset": "cpu"},
        ["g1 + g2", "(g1 + g2 + g3 + g4) / 4", "g2 + g3 + g4", "g1 + 0.5 * g4"],
    ),
    "alfworld-l2-cpu-x2": (
        "DERL-ALFWorld-L2-v1",
        {"preset": "cpu"},
        ["g1 + g2", "(g1 + g2 + g3 + g4) / 4"],
    ),
}


def _strip(outcomes):
    return [
        (o.reward, o.info.get("primitive_means"), o.info.get("training_curve")) for o in outcomes
    ]


def _best_two_worker_makespan(seconds: list[float]) -> float:
    """Shortest time 2 workers need for these meta-steps (exhaustive split; batches are small)."""
    best = sum(seconds)
    for mask in range(1 << len(seconds)):
        one = sum(s for i, s in enumerate(seconds) if mask >> i & 1)
        best = min(best, max(one, sum(seconds) - one))
    return max(best, 1e-9)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bench_sync_vs_process(benchmark, case):
    env_id, kwargs, rewards = CASES[case]
    # Seed 1 for the warm-up batch, seed 0 for the timed one: nothing is answered from a cache.
    warm = [MetaStepTask(meta_reward=r, seed=1) for r in rewards]
    tasks = [MetaStepTask(meta_reward=r, seed=0) for r in rewards]
    timings = {}
    results = {}
    for name, executor in (("sync", SyncExecutor()), ("process", ProcessExecutor(max_workers=2))):
        try:
            executor.run(env_id, kwargs, warm[: (1 if name == "sync" else 2)])
            start = time.perf_counter()
            results[name] = executor.run(env_id, kwargs, tasks)
            timings[name] = time.perf_counter() - start
        finally:
            executor.close()
    assert _strip(results["process"]) == _strip(results["sync"])
    per_task = {
        name: [round(float(o.info["cost"]["wall_seconds"]), 1) for o in outcomes]
        for name, outcomes in results.items()
    }
    # With 2 workers a batch takes at least its longest meta-step, so unequal meta-steps cap the
    # speed-up below 2 whatever the executor does: the best 2-worker split of the sync times.
    bound = timings["sync"] / _best_two_worker_makespan(per_task["sync"])
    benchmark.extra_info.update(
        {
            "sync_seconds": round(timings["sync"], 1),
            "process_seconds": round(timings["process"], 1),
            "speedup_sync_over_process": round(timings["sync"] / timings["process"], 2),
            "per_task_seconds": per_task,
            "speedup_bound_from_task_lengths": round(bound, 2),
        }
    )
    print(
        f"\n{case}: sync {timings['sync']:.1f} s, process {timings['process']:.1f} s, "
        f"speed-up {timings['sync'] / timings['process']:.2f}x; per meta-step {per_task}; "
        f"bound from unequal meta-step lengths {bound:.2f}x"
    )
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
