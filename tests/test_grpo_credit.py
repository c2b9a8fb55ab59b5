"""Reward-to-go credit and minibatches of the compact GRPO (inner/episode_grpo_trainer.py)."""

from __future__ import annotations

import numpy as np
import pytest
from test_grpo import _traj

from derl_bench.inner.advantages import (
    group_advantages,
    prefix_meta_rewards,
    reward_to_go_advantages,
)
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig
from derl_bench.meta_reward import parse
from derl_bench.primitives import EPSILON, PrimitiveSet, get_primitive_set

AGENT = get_primitive_set("episode")
# The same four primitives in a new set object: prefix_meta_rewards takes its generic path
# (score every padded prefix with the primitives) instead of the vectorised one for g1..g4.
GENERIC = PrimitiveSet(name="agent-copy", primitives=AGENT.primitives)


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("text", ["g1 + g2 + g3 + g4", "g2 * g4 - g3 / 2", "g1 + g2"])
def test_vectorised_prefixes_equal_scoring_every_padded_prefix(stride, text) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    trajectories = [_traj(rng.random(n), success=bool(n % 2)) for n in (1, 2, 7, 20, 31)]
    meta_reward = parse(text, AGENT.names)
    fast = prefix_meta_rewards(trajectories, meta_reward, AGENT, horizon=31, stride=stride)
    slow = prefix_meta_rewards(trajectories, meta_reward, GENERIC, horizon=31, stride=stride)
    for a, b, t in zip(fast, slow, trajectories, strict=True):
        assert a.shape == (len(range(0, t.n_steps, stride)),)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_prefix_value_depends_only_on_steps_before_t() -> None:
    meta_reward = parse("g2 + g3 + g4", AGENT.names)
    base = np.full(12, 0.5)
    changed = base.copy()
    changed[6:] = 1.0  # a different future from step 6 on
    before, after = prefix_meta_rewards(
        [_traj(base), _traj(changed, success=True)], meta_reward, AGENT, horizon=12
    )
    np.testing.assert_array_equal(before[:7], after[:7])  # P(0..6) read steps 0..5 only
    assert after[7] > before[7]
    # P(0): nothing seen yet, everything padded with 0 -> only the epsilons.
    assert before[0] == pytest.approx(3 * EPSILON)


def test_prefix_longer_than_horizon_is_an_error() -> None:
    with pytest.raises(ValueError, match="horizon"):
        prefix_meta_rewards([_traj(np.ones(5))], parse("g2", AGENT.names), AGENT, horizon=4)


def test_reward_to_go_equals_grpo_at_the_first_step_and_credits_later_steps() -> None:
    meta_reward = parse("g2 + g3 + g4", AGENT.names)
    # A group of two from the same start: identical first half, different second half.
    good = _traj([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    bad = _traj([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    rewards = meta_reward(AGENT.compute([good, bad], [None, None]))
    prefixes = prefix_meta_rewards([good, bad], meta_reward, AGENT, horizon=6)
    adv = reward_to_go_advantages(rewards, prefixes, [6, 6], 2, 1e-4)
    assert adv.shape == (12,)
    episode = group_advantages(rewards, 2, 1e-4)
    assert adv[0] == pytest.approx(episode[0]) and adv[6] == pytest.approx(episode[1])
    # The good episode's later actions are credited only with what came after them: the
    # difference between the two episodes shrinks as its reward is collected.
    assert adv[0] > adv[4] > adv[5] > 0
    np.testing.assert_allclose(adv[:6], -adv[6:])  # group of two: mirror images


def test_reward_to_go_gives_no_signal_when_a_groups_rewards_are_equal() -> None:
    meta_reward = parse("g2 + g4", AGENT.names)
    a, b = _traj([1.0, 0.0, 0.0]), _traj([0.0, 0.0, 1.0])  # different paths, same reward
    rewards = meta_reward(AGENT.compute([a, b], [None, None]))
    assert rewards[0] == pytest.approx(rewards[1])
    prefixes = prefix_meta_rewards([a, b], meta_reward, AGENT, horizon=3)
    np.testing.assert_array_equal(reward_to_go_advantages(rewards, prefixes, [3, 3], 2, 1e-4), 0.0)


def test_discount_shortens_the_credit_of_late_rewards() -> None:
    meta_reward = parse("g2 + g3 + g4", AGENT.names)
    late = _traj([0.0] * 9 + [1.0])
    none = _traj([0.0] * 10)
    rewards = meta_reward(AGENT.compute([late, none], [None, None]))
    prefixes = prefix_meta_rewards([late, none], meta_reward, AGENT, horizon=10)
    flat = reward_to_go_advantages(rewards, prefixes, [10, 10], 2, 1e-4)
    discounted = reward_to_go_advantages(rewards, prefixes, [10, 10], 2, 1e-4, gamma=0.5)
    np.testing.assert_allclose(flat[:10], flat[0])  # gamma 1: every step gets the whole reward
    assert discounted[9] == pytest.approx(flat[9])  # the rewarded step itself: undiscounted
    assert discounted[0] == pytest.approx(flat[0] * 0.5**9)


def test_episodes_of_different_lengths_in_one_group() -> None:
    meta_reward = parse("g1 + g2", AGENT.names)
    short = _traj([1.0, 1.0], success=True)
    long = _traj([0.0, 0.5, 0.5, 0.5])
    rewards = meta_reward(AGENT.compute([short, long], [None, None]))
    prefixes = prefix_meta_rewards([short, long], meta_reward, AGENT, horizon=4, stride=2)
    adv = reward_to_go_advantages(rewards, prefixes, [2, 4], 2, 1e-4, stride=2)
    assert adv.shape == (6,) and np.all(np.isfinite(adv))
    assert adv[0] > 0 > adv[2]


def test_config_rejects_unknown_credit_and_bad_minibatches() -> None:
    base = dict(
        max_steps=1, tasks_per_step=1, group_size=2, max_episode_steps=5, learning_rate=1e-3
    )
    with pytest.raises(ValueError, match="credit must be"):
        EpisodeGRPOConfig(**base, credit="per_token")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="minibatches"):
        EpisodeGRPOConfig(**base, minibatches=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="credit_gamma"):
        EpisodeGRPOConfig(**base, credit_gamma=1.5)  # type: ignore[arg-type]
