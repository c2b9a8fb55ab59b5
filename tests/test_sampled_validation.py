"""Sampled validation of the episode GRPO (``validation_samples``), on real CartPole."""

from __future__ import annotations

import gymnasium
import pytest

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig


def _env(samples: int):  # noqa: ANN202
    return gymnasium.make(
        "DERL-CartPole-v0",
        preset="smoke",
        budget=1,
        inner_overrides={"validation_samples": samples, "n_val": 4},
    )


def test_validation_samples_must_be_a_non_negative_int() -> None:
    base = dict(max_steps=1, tasks_per_step=1, group_size=2, max_episode_steps=5)
    with pytest.raises(ValueError, match="validation_samples must be an int >= 0"):
        EpisodeGRPOConfig(**base, learning_rate=0.1, validation_samples=-1)


@pytest.mark.slow
def test_sampled_validation_scores_k_episodes_per_task_on_a_fixed_stream() -> None:
    env = _env(3)
    trainer = env.unwrapped.trainer
    # Sampled success is reproducible (a fixed stream, not the global torch state) and is a
    # fraction of the 4 * 3 episodes.
    first, _ = trainer.evaluate_initial(seed=0)
    trainer._initial_results.clear()  # play again rather than read the remembered result
    again, _ = trainer.evaluate_initial(seed=0)
    assert first.n == 4 and first == again
    assert round(first.success * 12) == pytest.approx(first.success * 12)
    env.reset(seed=0)
    _, reward, _, _, info = env.step("g1 + g2")
    env2 = _env(3)
    env2.reset(seed=0)
    _, reward2, _, _, info2 = env2.step("g1 + g2")
    assert reward == reward2 and 0.0 <= reward <= 1.0
    assert round(reward * 12) == pytest.approx(reward * 12)
    # The cost counts the validation episodes played: 4 tasks x 3 samples.
    greedy = _env(0)
    greedy.reset(seed=0)
    _, _, _, _, info_greedy = greedy.step("g1 + g2")
    assert info["cost"]["rollouts"] - info_greedy["cost"]["rollouts"] == 4 * 3 - 4
