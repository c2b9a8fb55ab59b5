"""Speed of the ScienceWorld inner env vs. the raw simulator (pytest-benchmark; no assertions
on time).

Run with ``.venv/bin/pytest benchmarks/test_bench_scienceworld.py -p no:cacheprovider``. One
round plays the same six commands from the start of ``find-non-living-thing`` variation 0;
divide the round time by 6 for seconds per step. Each simulator step already computes the
full valid-action list (100-1,600 strings), which dominates both raw and wrapped steps. The
raw package fetches that list one py4j call per string; the wrapper in chunks of 100
(``java_strings``): ``-k valid_actions`` times the two transfers of the same list side by side.
"""

from __future__ import annotations

import pytest

pytest.importorskip("scienceworld")

from derl_bench.envs.episode import EpisodeTask  # noqa: E402
from derl_bench.envs.scienceworld import (  # noqa: E402
    SIMPLIFICATIONS,
    ScienceWorldInnerEnv,
    java_strings,
)

pytestmark = pytest.mark.slow

TASK = EpisodeTask(
    domain="scienceworld", task_id="find-non-living-thing", task_type="find-non-living-thing"
)
COMMANDS = (
    "look around", "teleport to kitchen", "look around", "pick up thermometer",
    "teleport to hallway", "inventory",
)  # fmt: skip
ROUNDS = 3


@pytest.fixture(scope="module")
def wrapped():
    env = ScienceWorldInnerEnv(max_steps=100)
    yield env
    env.close()


@pytest.fixture(scope="module")
def raw():
    from scienceworld import ScienceWorldEnv

    env = ScienceWorldEnv("", envStepLimit=1_000_000)
    env.load(TASK.task_id, TASK.variation, SIMPLIFICATIONS)
    yield env
    env.close()


def test_bench_raw_steps(benchmark, raw):
    def play():
        for command in COMMANDS:
            raw.step(command)

    def setup():
        raw.reset()

    benchmark.pedantic(play, setup=setup, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["steps_per_round"] = len(COMMANDS)


def test_bench_wrapper_steps(benchmark, wrapped):
    def play():
        for command in COMMANDS:
            wrapped.step(command)

    def setup():
        wrapped.reset(options={"task": TASK})

    benchmark.pedantic(play, setup=setup, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["steps_per_round"] = len(COMMANDS)


def test_bench_wrapper_reset_same_task(benchmark, wrapped):
    wrapped.reset(options={"task": TASK})
    benchmark.pedantic(wrapped.reset, kwargs={"options": {"task": TASK}}, rounds=ROUNDS)


def test_bench_wrapper_reset_new_task(benchmark, wrapped):
    other = EpisodeTask(domain="scienceworld", task_id="find-plant", task_type="find-plant")
    tasks = iter([TASK, other] * ROUNDS)
    benchmark.pedantic(
        lambda: wrapped.reset(options={"task": next(tasks)}), rounds=ROUNDS, iterations=1
    )


@pytest.fixture(scope="module")
def kitchen_actions(raw):
    """The raw simulator in the kitchen: its valid-action list as a py4j proxy."""
    raw.reset()
    raw.step("teleport to kitchen")
    return raw.server.getValidActionObjectCombinations()


def test_bench_valid_actions_one_per_call(benchmark, kitchen_actions):
    actions = benchmark.pedantic(list, args=(kitchen_actions,), rounds=10, iterations=1)
    benchmark.extra_info["n_actions"] = len(actions)


def test_bench_valid_actions_in_chunks(benchmark, raw, kitchen_actions):
    actions = benchmark.pedantic(
        java_strings, args=(raw._gateway, kitchen_actions), rounds=10, iterations=1
    )
    assert actions == list(kitchen_actions)
    benchmark.extra_info["n_actions"] = len(actions)
