"""A table step and a surrogate step (shipped tables) against a live ``smoke`` step.

Run: ``.venv/bin/pytest benchmarks/test_bench_fidelity.py --benchmark-only -s``. Each step is
``reset(seed=i)`` + ``step(meta_reward)`` with a new seed every call (so the env's cache never
answers), on DERL-CartPole-v0's shipped ``smoke`` table (24 keys) and ``cpu`` table (hundreds of
keys: a bigger surrogate to fit and query), and on DERL-Pendulum-v0's ``cpu`` table (its surrogate
uses the ``correlation`` features, one Spearman rho per primitive over the probe bank, where
CartPole's uses the ``bank`` features). The live step is the ``smoke`` table's cheapest entry,
trained for real once. The module prints the ratios live / table and live / surrogate side by
side and stores them in the benchmarks' ``extra_info``; nothing is asserted about time (speed is
measured, not tested). Targets of issue 15: a table step <= 1 ms, a surrogate step <= 5 ms.
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


TABLES = [(ENV_ID, "smoke"), (ENV_ID, "cpu"), ("DERL-Pendulum-v0", "cpu")]


def _cheapest(preset: str, env_id: str = ENV_ID) -> str:
    table = FidelityTable.load(env_id, preset)
    entries = [e for k in table.keys for e in table.entries(k)]
    return min(entries, key=lambda e: e.cost["wall_seconds"]).canonical


def _stepper(env: gymnasium.Env, text: str):  # noqa: ANN202
    seeds = itertools.count(100)

    def step() -> float:
        env.reset(seed=next(seeds))
        return env.step(text)[1]

    return step


@pytest.mark.parametrize(("env_id", "preset"), TABLES, ids=[f"{e}-{p}" for e, p in TABLES])
@pytest.mark.parametrize("fidelity", ["table", "surrogate"])
def test_bench_recorded_step(benchmark, fidelity: str, env_id: str, preset: str) -> None:  # noqa: ANN001
    env = gymnasium.make(env_id, preset=preset, fidelity=fidelity, budget=1)
    step = _stepper(env, _cheapest(preset, env_id))
    step()  # load the table / fit the surrogate outside the timing
    benchmark(step)
    name = f"{fidelity} {env_id.removeprefix('DERL-')} {preset}"
    TIMES[name] = benchmark.stats.stats.median
    benchmark.extra_info["median_seconds"] = TIMES[name]


def test_bench_live_smoke_step(benchmark) -> None:  # noqa: ANN001
    env = gymnasium.make(ENV_ID, preset="smoke", budget=1)
    step = _stepper(env, _cheapest("smoke"))
    start = time.perf_counter()
    benchmark.pedantic(step, rounds=1, iterations=1)
    TIMES["live"] = time.perf_counter() - start
    parts = [f"live smoke step {TIMES['live']:.2f} s"]
    for name, seconds in TIMES.items():
        if name != "live":
            ratio = TIMES["live"] / seconds
            benchmark.extra_info[f"live_over_{name.replace(' ', '_')}"] = ratio
            parts.append(f"{name} {seconds:.2e} s (x{ratio:.0f})")
    print("\n" + " | ".join(parts))
