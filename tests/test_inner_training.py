"""Real inner training on real GSM8K/MATH data with the tiny ``smoke`` policy (slow)."""

from __future__ import annotations

import gymnasium
import pytest
import torch

import derl_bench  # noqa: F401
from derl_bench.envs.math_tasks import math_task_splits
from derl_bench.inner.lm_grpo_trainer import LMGRPOTrainer
from derl_bench.inner.lm_policy import load_policy
from derl_bench.inner.lm_presets import lm_preset
from derl_bench.meta_reward import parse
from derl_bench.primitives import get_primitive_set

pytestmark = [pytest.mark.slow, pytest.mark.data]


@pytest.fixture(scope="module")
def gsm8k_trainer() -> LMGRPOTrainer:
    splits = math_task_splits("gsm8k")
    return LMGRPOTrainer(
        d_in=splits.d_in,
        val=splits.val,
        train_pool=splits.train_pool,
        test=splits.test,
        primitive_set=get_primitive_set("math"),
        config=lm_preset("gsm8k", "smoke"),
    )


def test_format_only_meta_reward_raises_validation_boxed_rate(gsm8k_trainer) -> None:  # noqa: ANN001
    trainer = gsm8k_trainer
    before = trainer.evaluate_initial()
    initial_policy, _ = load_policy(trainer.config)
    policy, tokenizer, reward_fn, _ = trainer.train_policy(
        parse("g2"), trainer.d_in, seed=0, init=None
    )
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(initial_policy.parameters(), policy.parameters(), strict=True)
    )
    assert changed, "GRPO did not change any parameter"
    after = trainer._evaluate(policy, tokenizer, trainer.val)
    # The warm-up ends half its targets with \boxed{}: room to move; g2 pays only for \boxed{}.
    assert 0.1 < before.primitive_means["g2"] < 0.9
    assert after.primitive_means["g2"] > before.primitive_means["g2"] + 0.2
    assert len(reward_fn.calls) == trainer.config.max_steps
    assert reward_fn.calls[-1]["g2"] > reward_fn.calls[0]["g2"]


def test_same_seed_and_meta_reward_give_identical_reward_and_info() -> None:
    results = []
    for _ in range(2):
        env = gymnasium.make(
            "DERL-GSM8K-v0", preset="smoke", inner_overrides={"max_steps": 3, "n_val": 16}
        )
        env.reset(seed=3)
        _, reward, _, _, info = env.step("g1 + 0.5 * g2")
        info["cost"].pop("wall_seconds")
        info["cost"].pop("simulated_seconds")  # live: the wall seconds
        results.append((reward, info))
        env.close()
    assert results[0] == results[1]
    reward, info = results[0]
    assert 0.0 <= reward <= 1.0
    assert info["validation_success"] == reward
    assert info["cost"]["inner_steps"] == 3 and info["cost"]["tokens"] > 0
    assert len(info["training_curve"]) == 3
    assert set(info["primitive_means"]) == {"g1", "g2", "g3", "g4"}


def test_math_env_trains_validates_and_tests_on_real_math() -> None:
    env = gymnasium.make(
        "DERL-MATH-v0",
        preset="smoke",
        inner_overrides={"max_steps": 2, "n_val": 8, "n_test": 8},
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step("g1 + g2")
    assert 0.0 <= reward <= 1.0 and info["valid"]
    assert all(r.source == "math" for r in env.unwrapped.trainer.val)
    test = env.unwrapped.evaluate_test("g1 + g2")
    assert 0.0 <= test["test_success"] <= 1.0 and test["n_test"] == 8
    env.close()


def test_heuristic_run_on_real_gsm8k_writes_a_schema_valid_result(tmp_path) -> None:  # noqa: ANN001
    from derl_bench.results import load_result
    from derl_bench.runner import run

    result = run(
        "DERL-GSM8K-v0",
        "heuristic",
        budget=3,
        seed=0,
        preset="smoke",
        proposals_per_step=3,
        out_dir=tmp_path,
        env_kwargs={"inner_overrides": {"max_steps": 2, "n_val": 8, "n_test": 8}},
        progress=False,
    )
    record = load_result(result.path)  # validates against the schema
    assert record["status"] == "finished"
    assert [s["canonical"] for s in record["meta_steps"]] == [
        "g1",
        "g1 + g2",
        "(g1 + g2 + g3 + g4) / 4",
    ]
    assert all(0.0 <= s["validation_success"] <= 1.0 for s in record["meta_steps"])
    assert 0.0 <= record["test_success"] <= 1.0 and record["n_test"] == 8
    assert record["env_spec"]["kwargs"]["preset"] == "smoke"
    assert "gsm8k/train.jsonl" in record["data_hashes"]
