"""Rollout threads of the episode GRPO (``rollout_threads``): same numbers on 1 and 2 threads."""

from __future__ import annotations

import gymnasium
import pytest
import torch

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.inner.episode_grpo_trainer import episode_generators


def test_episode_streams_are_fixed_by_key_and_index_and_differ_between_them() -> None:
    a = [torch.rand(3, generator=g) for g in episode_generators((0, 1), 3)]
    b = [torch.rand(3, generator=g) for g in episode_generators((0, 1), 3)]
    c = [torch.rand(3, generator=g) for g in episode_generators((0, 2), 3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[0], c[0])


def _meta_step(threads: int) -> tuple[float, dict]:
    env = gymnasium.make(
        "DERL-ScienceWorld-L2-v4",
        preset="smoke",
        budget=1,
        inner_overrides={"rollout_threads": threads},
    )
    try:
        env.reset(seed=3)
        _, reward, _, _, info = env.step("g1 + g2")
    finally:
        env.close()
    return reward, info


@pytest.mark.slow
def test_a_real_scienceworld_meta_step_gives_the_same_numbers_on_one_and_two_threads() -> None:
    one, info_one = _meta_step(1)
    two, info_two = _meta_step(2)
    assert one == two
    assert info_one["training_curve"] == info_two["training_curve"]
    assert info_one["validation_primitive_means"] == info_two["validation_primitive_means"]
    assert info_one["primitive_means"] == info_two["primitive_means"]
    # Episodes were really played (not an empty batch that trivially agrees).
    assert info_one["cost"]["rollouts"] > 0 and info_one["training_curve"][-1]["g2"] > 0.01
