"""Shared by the meta-step benchmarks: time one ``env.step`` and record its split.

Not a test module (no ``test_`` prefix); the benchmark files import it from their folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def time_meta_step(
    benchmark: Any,
    env: Any,
    meta_reward: str,
    counters: Callable[[], dict[str, int]] = dict,
) -> dict[str, Any]:
    """Time one ``env.reset(seed=0); env.step(meta_reward)`` (one round), then close ``env``.

    ``benchmark.extra_info`` gets ``validation_success``, ``losses`` (one per GRPO step),
    ``wall_seconds`` (the step's ``info["cost"]``), ``cpu_seconds`` (this process),
    ``seconds`` (the trainer's split, ``EpisodeGRPOTrainer.last_seconds``), ``fractions``
    (each part over the wall time) and, for every counter ``counters()`` returns, how much
    it grew during the step.

    Returns:
        ``{"reward", "info", "cpu"}`` of the timed step.
    """
    results: dict[str, Any] = {}

    def meta_step() -> None:
        env.reset(seed=0)
        before = counters()
        cpu = time.process_time()
        _, reward, *_, info = env.step(meta_reward)
        results["cpu"] = time.process_time() - cpu
        results["counted"] = {k: v - before[k] for k, v in counters().items()}
        results["reward"] = reward
        results["info"] = info

    try:
        benchmark.pedantic(meta_step, rounds=1, iterations=1)
    finally:
        env.close()
    info = results["info"]
    total = float(info["cost"]["wall_seconds"])
    split = env.unwrapped.trainer.last_seconds
    benchmark.extra_info.update(
        validation_success=results["reward"],
        losses=[row["loss"] for row in info["training_curve"]],
        wall_seconds=total,
        cpu_seconds=results["cpu"],
        seconds=split,
        fractions={k: round(v / total, 3) for k, v in split.items()},
        **results["counted"],
    )
    return results
