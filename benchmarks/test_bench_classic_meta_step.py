"""One ``cpu`` meta-step of ``DERL-Pendulum-v0``: the MLP's step records stacked once per GRPO
update, or once per minibatch.

Run (about 3 minutes, one core): ``OMP_NUM_THREADS=1 .venv/bin/pytest
benchmarks/test_bench_classic_meta_step.py --benchmark-only -s``.

The compact GRPO re-scores a batch's recorded actions in ``minibatches`` x ``num_iterations``
Adam steps per GRPO step (Pendulum ``cpu``: 16 x 10 over 12,800 actions). ``records="stacked"``
is what the trainer does with :class:`~derl_bench.inner.policies.mlp.MLPPolicy`: its
``stack_records`` turns the batch into tensors once, and each minibatch is a tensor slice
(``MLPBatch.take``). ``records="per-minibatch"`` removes ``stack_records`` for the run, so the
trainer takes its generic path (every minibatch's records stacked again, as for policies
without the method). The numbers are the same (``losses`` and ``validation_success`` in
``extra_info`` are equal between the two cases); only the time differs. ``extra_info`` also holds
the trainer's split (``engine``, ``policy``, ``update``, ``validation`` seconds) and the
process's CPU seconds. Nothing is asserted about speed: compare the two cases of one run.
"""

from __future__ import annotations

import pytest
from timed_meta_step import time_meta_step

pytestmark = [pytest.mark.slow]
META_REWARD = "(g1 + g2 + g3 + g4) / 4"


@pytest.mark.parametrize("records", ["per-minibatch", "stacked"])
@pytest.mark.benchmark(group="classic-meta-step")
def test_bench_pendulum_cpu_meta_step(benchmark, monkeypatch, records) -> None:  # noqa: ANN001
    import gymnasium
    import torch

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.inner.policies.mlp import MLPPolicy

    torch.set_num_threads(1)
    if records == "per-minibatch":
        monkeypatch.delattr(MLPPolicy, "stack_records")
    env = gymnasium.make("DERL-Pendulum-v0", preset="cpu", budget=1)
    time_meta_step(benchmark, env, META_REWARD)
    benchmark.extra_info["records"] = records
    print(records, {k: v for k, v in benchmark.extra_info.items() if k != "losses"})
