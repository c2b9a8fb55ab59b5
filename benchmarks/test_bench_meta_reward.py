"""Speed of the meta-reward language (pytest-benchmark; no timing assertions).

Run with ``.venv/bin/pytest benchmarks/test_bench_meta_reward.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from derl_bench.meta_reward import parse, safe_rewards

PAPER_EXPRESSION = "-(g1+0.5*(g2+0.3*(g3-0.2*(g4+0.1*1)))+0.1*1)/1.2"
BATCH = (4096, 4)


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.choice([1e-6, 1 + 1e-6], size=BATCH)


def test_bench_parse_and_compile(benchmark):
    mr = benchmark(parse, PAPER_EXPRESSION)
    assert mr.canonical == "-(g1 + 0.5 * (g2 + 0.3 * (g3 - 0.2 * (g4 + 0.1))) + 0.1) / 1.2"


def test_bench_parse_rejection(benchmark):
    def reject():
        try:
            parse("g1 + g2 * (g3 - g4) / (g2 - g2)")
        except ValueError as error:
            return error
        return None

    assert benchmark(reject).reason == "non_finite"


def test_bench_evaluate_4096x4(benchmark, values):
    mr = parse(PAPER_EXPRESSION)
    rewards = benchmark(mr, values)
    assert rewards.shape == (BATCH[0],)


def test_bench_safe_rewards_4096x4(benchmark, values):
    mr = parse("g1 / g2 + g3")
    with_zeros = values.copy()
    with_zeros[::7, 1] = 0.0  # g2 == 0 in every 7th rollout: inf rewards to clean up
    rewards, n_nonfinite = benchmark(safe_rewards, mr, with_zeros)
    assert np.all(np.isfinite(rewards)) and n_nonfinite > 0
