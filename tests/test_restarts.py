"""Several inner trainings per meta-step (``restarts``): the mean of single trainings.

Real CartPole (episode GRPO) and the real tiny Arith LM (TRL GRPO) at ``smoke``.
"""

from __future__ import annotations

import gymnasium
import pytest

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.inner.base import restart_seeds
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig
from derl_bench.inner.lm_grpo_config import LMGRPOConfig
from derl_bench.meta_env.math_domains import build_arith
from derl_bench.meta_reward import parse


def test_restart_seeds_are_disjoint_across_env_seeds_and_one_restart_is_the_seed() -> None:
    assert restart_seeds(5, 1) == [5]
    assert restart_seeds(0, 3) == [0, 1, 2] and restart_seeds(1, 3) == [3, 4, 5]
    with pytest.raises(ValueError, match="restarts must be an int >= 1"):
        restart_seeds(0, 0)


def test_restarts_must_be_a_positive_int() -> None:
    base = dict(max_steps=1, tasks_per_step=1, group_size=2, max_episode_steps=5)
    with pytest.raises(ValueError, match="restarts must be an int >= 1"):
        EpisodeGRPOConfig(**base, learning_rate=0.1, restarts=0)
    with pytest.raises(ValueError, match="restarts=0 must be an int >= 1"):
        LMGRPOConfig(
            model="tiny",
            prompt_style="plain",
            max_steps=1,
            tasks_per_step=1,
            group_size=2,
            max_completion_length=4,
            learning_rate=1e-4,
            beta=0.0,
            temperature=1.0,
            restarts=0,
        )


def _cartpole(restarts: int, **overrides: int):  # noqa: ANN202
    return gymnasium.make(
        "DERL-CartPole-v0",
        preset="smoke",
        budget=1,
        inner_overrides={"restarts": restarts, "n_val": 4, **overrides},
    )


def _step(env, seed: int, meta_reward: str) -> dict:  # noqa: ANN001
    env.reset(seed=seed)
    _, reward, _, _, info = env.step(meta_reward)
    assert reward == info["validation_success"]
    return info


@pytest.mark.slow
def test_cartpole_meta_step_with_two_restarts_is_the_mean_of_two_single_trainings() -> None:
    meta_reward = "g1 + 0.5 * g2"
    pair = _step(_cartpole(2), 1, meta_reward)  # restarts at inner seeds 2 and 3
    single = _cartpole(1)
    first, second = _step(single, 2, meta_reward), _step(single, 3, meta_reward)
    assert pair["validation_success"] == pytest.approx(
        (first["validation_success"] + second["validation_success"]) / 2, abs=1e-12
    )
    for name, value in pair["primitive_means"].items():
        expected = (first["primitive_means"][name] + second["primitive_means"][name]) / 2
        assert value == pytest.approx(expected, abs=1e-9)
    assert pair["cost"]["inner_steps"] == first["cost"]["inner_steps"] * 2
    assert pair["cost"]["rollouts"] == first["cost"]["rollouts"] + second["cost"]["rollouts"]
    assert len(pair["training_curve"]) == len(first["training_curve"])
    # The test score is averaged the same way.
    both = _cartpole(2)
    both.reset(seed=1)
    single.reset(seed=2)
    test_first = single.unwrapped.evaluate_test(meta_reward)["test_success"]
    single.reset(seed=3)
    test_second = single.unwrapped.evaluate_test(meta_reward)["test_success"]
    assert both.unwrapped.evaluate_test(meta_reward)["test_success"] == pytest.approx(
        (test_first + test_second) / 2, abs=1e-12
    )


@pytest.mark.slow
def test_arith_meta_step_with_two_restarts_is_the_mean_of_two_single_trainings() -> None:
    overrides = {"n_val": 16, "max_steps": 2}
    pair = build_arith(preset="smoke", inner_overrides={**overrides, "restarts": 2}).trainer
    single = build_arith(preset="smoke", inner_overrides=overrides).trainer
    meta_reward = parse("g1 + g2", primitive_names=single.primitive_set.names)
    both = pair.train(meta_reward, seed=0)
    first, second = single.train(meta_reward, seed=0), single.train(meta_reward, seed=1)
    assert both.validation.success == pytest.approx(
        (first.validation.success + second.validation.success) / 2, abs=1e-12
    )
    assert both.extra["restart_validation_success"] == [
        first.validation.success,
        second.validation.success,
    ]
    assert both.cost.inner_steps == 4


@pytest.mark.slow
def test_test_training_counts_its_inner_steps_as_a_meta_step_does() -> None:
    # evaluate_test trains as a meta-step does (same budget, restarts, PPO epochs, minibatches),
    # so its cost names the same number of Adam steps
    env = _cartpole(2, minibatches=2, num_iterations=2)
    info = _step(env, 0, "g1")
    test = env.unwrapped.evaluate_test("g1")
    config = env.unwrapped.trainer.config
    assert test["cost"]["inner_steps"] == info["cost"]["inner_steps"]
    assert info["cost"]["inner_steps"] == config.max_steps * 2 * 2 * 2
