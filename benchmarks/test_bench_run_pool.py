"""Runs one by one against runs side by side (`compare --jobs 2`) for an LLM agent.

Run: ``.venv/bin/pytest benchmarks/test_bench_run_pool.py --benchmark-only -s`` on an otherwise
idle machine. Two runs of the ``random`` agent (the frozen Meta-Optimizer: SmolLM2-135M after
its cold-start SFT, cached after the first call) over 6 rounds of 8 proposals each, at the
surrogate fidelity of the shipped CartPole ``cpu`` table, so the runs cost only the agent's own
sampling (the headline experiment's LLM agents' cost). Once with ``jobs=1``
(:func:`~derl_bench.runner.run_many`), once with ``jobs=2``
(``run_many(..., jobs=2)``: two ``spawn`` workers, each loading the model). The
module prints the ratio one-by-one / side-by-side and stores it in ``extra_info``; nothing is
asserted about time. On 2 cores the ideal is 2x; worker start-up and the model load per worker
take from it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from derl_bench.runner import run_many

ENV_ID = "DERL-CartPole-v0"
TIMES: dict[int, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _warm_sft_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One run beforehand, so the cold-start SFT (cached on disk) is in neither timing."""
    _compare(tmp_path_factory.mktemp("warm"), jobs=1, seeds=[0], budget=8)


def _compare(out: Path, *, jobs: int, seeds: list[int], budget: int = 48) -> None:
    run_many(
        ENV_ID,
        ["random"],
        seeds,
        jobs=jobs,
        budget=budget,
        preset="cpu",
        proposals_per_step=8,
        out_dir=out,
        progress=False,
        env_kwargs={"fidelity": "surrogate"},
    )


@pytest.mark.parametrize("jobs", [1, 2])
def test_bench_two_llm_runs(benchmark, tmp_path: Path, jobs: int) -> None:  # noqa: ANN001
    def setup() -> tuple[tuple[Path], dict]:
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)  # every round starts afresh
        return (tmp_path / "runs",), {}

    def two_runs(out: Path) -> None:
        _compare(out, jobs=jobs, seeds=[0, 1])

    started = time.perf_counter()
    benchmark.pedantic(two_runs, setup=setup, rounds=1, iterations=1)
    TIMES[jobs] = time.perf_counter() - started
    benchmark.extra_info["wall_seconds"] = TIMES[jobs]
    if len(TIMES) == 2:
        ratio = TIMES[1] / TIMES[2]
        benchmark.extra_info["one_by_one_over_side_by_side"] = ratio
        print(
            f"\ntwo `random` runs (6 x 8 proposals, surrogate): one by one {TIMES[1]:.1f} s, "
            f"side by side (--jobs 2) {TIMES[2]:.1f} s, ratio {ratio:.2f}x"
        )
