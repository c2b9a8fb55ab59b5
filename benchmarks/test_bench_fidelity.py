"""A table step and a surrogate step against a live ``smoke`` step, on DERL-CartPole-v0.

Run: ``.venv/bin/pytest benchmarks/test_bench_fidelity.py --benchmark-only -s``. Each step is
``reset(seed=i)`` + ``step(meta_reward)`` with a new seed every call (so the env's cache never
answers). The live step is the shipped table's cheapest entry, trained for real once. The module
prints the ratios live / table and live / surrogate side by side and stores them in the
benchmarks' ``extra_info``; nothing is asserted about time (speed is measured, not tested).
Targets of issue 15: a table step <= 1 ms, a surrogate step <= 5 ms.
"""

from __future__ import annotations

import itertools
import time

import gymnasium
import pytest

import derl_bench  # noqa: F401
from derl_bench.fidelity.table import FidelityTable

ENV_ID = "DERL-CartPole-v0"
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def cheapest() -> str:
    table = FidelityTable.load(ENV_ID, "smoke")
    entries = [e for k in table.keys for e in table.entries(k)]
    return min(entries, key=lambda e: e.cost["wall_seconds"]).canonical


def _stepper(env: gymnasium.Env, text: str):  # noqa: ANN202
    seeds = itertools.count(100)

    def step() -> float:
        env.reset(seed=next(seeds))
        return env.step(text)[1]

    return step


@pytest.mark.parametrize("fidelity", ["table", "surrogate"])
def test_bench_recorded_step(benchmark, cheapest: str, fidelity: str) -> None:  # noqa: ANN001
    env = gymnasium.make(ENV_ID, preset="smoke", fidelity=fidelity, budget=1)
    step = _stepper(env, cheapest)
    step()  # load the table / fit the surrogate outside the timing
    benchmark(step)
    TIMES[fidelity] = benchmark.stats.stats.median
    benchmark.extra_info["median_seconds"] = TIMES[fidelity]


def test_bench_live_smoke_step(benchmark, cheapest: str) -> None:  # noqa: ANN001
    env = gymnasium.make(ENV_ID, preset="smoke", budget=1)
    step = _stepper(env, cheapest)
    start = time.perf_counter()
    benchmark.pedantic(step, rounds=1, iterations=1)
    TIMES["live"] = time.perf_counter() - start
    for fidelity in ("table", "surrogate"):
        if fidelity in TIMES:
            ratio = TIMES["live"] / TIMES[fidelity]
            benchmark.extra_info[f"live_over_{fidelity}"] = ratio
    print(
        f"\nlive smoke step {TIMES['live']:.2f} s | table {TIMES.get('table', float('nan')):.2e} s "
        f"(x{benchmark.extra_info.get('live_over_table', float('nan')):.0f}) | surrogate "
        f"{TIMES.get('surrogate', float('nan')):.2e} s "
        f"(x{benchmark.extra_info.get('live_over_surrogate', float('nan')):.0f})"
    )
