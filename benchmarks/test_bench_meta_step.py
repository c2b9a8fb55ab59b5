"""One smoke meta-step's wall time against a bare TRL GRPO run of the same configuration.

Run: ``.venv/bin/pytest benchmarks/test_bench_meta_step.py --benchmark-only`` (needs the data).
The ratio ``harness / bare`` (minimum of two runs each) is stored in ``extra_info``; the harness
(primitives, meta-reward, bookkeeping) should add < 10 % to the training part. Sampled completions
differ in length between the two runs, which dominates the noise at this tiny scale.
"""

from __future__ import annotations

import tempfile
import time

import pytest

from derl_bench.envs.math_tasks import math_task_splits
from derl_bench.inner.lm_grpo_trainer import LMGRPOTrainer
from derl_bench.inner.lm_policy import format_prompt, load_policy
from derl_bench.inner.lm_presets import lm_preset
from derl_bench.meta_reward import parse
from derl_bench.primitives import get_primitive_set

CONFIG = lm_preset("gsm8k", "smoke").with_overrides(max_steps=4, n_val=16)


def _bare_trl(trainer: LMGRPOTrainer) -> float:
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    policy, tokenizer = load_policy(CONFIG)
    dataset = Dataset.from_list([{"prompt": format_prompt(r, CONFIG)} for r in trainer.d_in])

    def constant_reward(prompts, completions, **_):  # noqa: ANN001, ANN202
        return [float("\\boxed{" in c) for c in completions]

    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            max_steps=CONFIG.max_steps,
            per_device_train_batch_size=CONFIG.tasks_per_step * CONFIG.group_size,
            num_generations=CONFIG.group_size,
            max_completion_length=CONFIG.max_completion_length,
            learning_rate=CONFIG.learning_rate,
            lr_scheduler_type="constant",
            beta=CONFIG.beta,
            loss_type=CONFIG.loss_type,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            seed=0,
            disable_tqdm=True,
            gradient_checkpointing=False,
        )
        bare = GRPOTrainer(
            model=policy,
            reward_funcs=constant_reward,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        bare.remove_callback(PrinterCallback)
        start = time.perf_counter()
        bare.train()
        return time.perf_counter() - start


@pytest.mark.data
@pytest.mark.slow
def test_meta_step_overhead_vs_bare_trl(benchmark) -> None:  # noqa: ANN001
    splits = math_task_splits("gsm8k")
    trainer = LMGRPOTrainer(
        d_in=splits.d_in,
        val=splits.val,
        train_pool=splits.train_pool,
        test=splits.test,
        primitive_set=get_primitive_set("math"),
        config=CONFIG,
    )
    load_policy(CONFIG)  # build/load the tiny LM outside the timings
    bare_seconds = min(_bare_trl(trainer) for _ in range(2))  # min of 2: first-run effects
    meta_reward = parse("g1 + 0.5 * g2")

    reward_seconds: list[float] = []

    def harness_training() -> None:
        _, _, reward_fn, _ = trainer.train_policy(meta_reward, trainer.d_in, seed=0, init=None)
        reward_seconds.append(reward_fn.seconds)

    benchmark.pedantic(harness_training, rounds=2, iterations=1)
    harness_seconds = benchmark.stats.stats.min
    benchmark.extra_info["bare_trl_seconds"] = bare_seconds
    benchmark.extra_info["harness_seconds"] = harness_seconds
    benchmark.extra_info["ratio"] = harness_seconds / bare_seconds
    # The harness's own work inside training: primitives + meta-reward per batch.
    benchmark.extra_info["reward_function_seconds"] = min(reward_seconds)
    benchmark.extra_info["reward_function_share"] = min(reward_seconds) / harness_seconds
