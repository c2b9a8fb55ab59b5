"""Classic-control domains: DERL-CartPole-v0 and DERL-Pendulum-v0 on real Gymnasium envs."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.envs.classic import TEST_SEED_START, ClassicControlInnerEnv, classic_splits
from derl_bench.envs.episode import EpisodeTask, Trajectory
from derl_bench.primitives import EPSILON
from derl_bench.primitives.episode import EPISODE_PRIMITIVES

IDS = ["DERL-CartPole-v0", "DERL-Pendulum-v0"]


def _play(domain: str, controller, seed: int):  # noqa: ANN001, ANN202
    env = ClassicControlInnerEnv(domain)
    obs, info = env.reset(options={"task": EpisodeTask(domain=domain, task_id="", seed=seed)})
    scores, terminated, truncated = [], False, False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(controller(obs))
        scores.append(info["step_score"])
    env.close()
    return Trajectory(
        task=EpisodeTask(domain=domain, task_id="", seed=seed),
        step_scores=np.array(scores),
        success=info["success"],
        n_steps=len(scores),
    ), terminated


def _cartpole_pd(obs):  # noqa: ANN001, ANN202
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


def test_cartpole_balanced_for_500_steps_is_success_with_g1_one() -> None:
    trajectory, terminated = _play("cartpole", _cartpole_pd, seed=0)
    assert trajectory.n_steps == 500 and not terminated and trajectory.success
    values = EPISODE_PRIMITIVES.compute([trajectory], [None])[0]
    assert values[0] == 1 + EPSILON
    assert values[1:].min() > 0.5  # upright and centred most of the time


def test_cartpole_falling_pole_is_failure() -> None:
    trajectory, terminated = _play("cartpole", lambda obs: 0, seed=0)
    assert terminated and not trajectory.success and trajectory.n_steps < 50


def test_cartpole_step_checks_on_real_states() -> None:
    env = ClassicControlInnerEnv("cartpole")
    assert env._checks(np.array([0.1, 0, 0.01, 0], dtype=np.float32)) == {
        "upright": True,
        "centred": True,
    }
    assert env._checks(np.array([0.7, 0, 0.1, 0], dtype=np.float32)) == {
        "upright": False,
        "centred": False,
    }


def _pendulum_pd(obs):  # noqa: ANN001, ANN202
    cos, sin, theta_dot = obs
    theta = np.arctan2(sin, cos)
    return np.array([np.clip(-10.0 * theta - 2.0 * theta_dot, -2.0, 2.0)], dtype=np.float32)


def _near_upright_seed() -> int:
    for seed in range(200):
        env = ClassicControlInnerEnv("pendulum")
        obs, _ = env.reset(seed=seed)
        if abs(np.arctan2(obs[1], obs[0])) < 0.3 and abs(obs[2]) < 0.5:
            return seed
    raise AssertionError("no near-upright start in 200 seeds")


def test_pendulum_held_upright_in_the_last_quarter_is_success() -> None:
    trajectory, _ = _play("pendulum", _pendulum_pd, seed=_near_upright_seed())
    assert trajectory.n_steps == 200 and trajectory.success
    hanging, _ = _play("pendulum", lambda obs: np.zeros(1, dtype=np.float32), seed=1)
    assert not hanging.success


def test_splits_are_disjoint_reset_seeds() -> None:
    splits = classic_splits("cartpole", n_train=100, n_test=10)
    d_in = {t.seed for t in splits.d_in}
    val = {t.seed for t in splits.val}
    assert len(d_in) == 80 and len(val) == 20 and not d_in & val
    assert {t.seed for t in splits.test} == set(range(TEST_SEED_START, TEST_SEED_START + 10))
    assert classic_splits("cartpole", n_train=100, n_test=10) == splits  # deterministic


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes(env_id: str) -> None:
    env = gymnasium.make(env_id, preset="smoke", budget=2)
    check_env(env.unwrapped, skip_render_check=True)


def test_cartpole_as_users_quote_it_is_v1_with_twice_the_cpu_training() -> None:
    latest = gymnasium.make("DERL-CartPole", preset="cpu")
    v0 = gymnasium.make("DERL-CartPole-v0", preset="cpu")
    try:
        assert latest.spec.id == "DERL-CartPole-v1"
        new, old = latest.unwrapped.trainer.config, v0.unwrapped.trainer.config
        assert (new.max_steps, old.max_steps) == (40, 20)
        assert latest.unwrapped.trainer.splits == v0.unwrapped.trainer.splits
    finally:
        latest.close()
        v0.close()


def test_unknown_inner_trainer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown inner trainer 'nope'"):
        gymnasium.make("DERL-CartPole-v0", preset="smoke", inner="nope")


@pytest.mark.slow
@pytest.mark.parametrize("env_id", IDS)
def test_smoke_step_is_in_unit_interval_and_reproducible(env_id: str) -> None:
    rewards = []
    for _ in range(2):
        env = gymnasium.make(env_id, preset="smoke", budget=1)
        env.reset(seed=0)
        _, reward, _, truncated, info = env.step("(g1 + g2 + g3 + g4) / 4")
        rewards.append((reward, info["training_curve"], info["validation_primitive_means"]))
        assert 0.0 <= reward <= 1.0 and truncated
        assert info["valid"] and info["cost"]["rollouts"] > 0
    assert rewards[0] == rewards[1]


@pytest.mark.slow
def test_cartpole_meta_rewards_are_distinguishable_at_smoke() -> None:
    env = gymnasium.make("DERL-CartPole-v0", preset="smoke", budget=2)
    env.reset(seed=1)
    _, shaped, *_ = env.step("(g1 + g2 + g3 + g4) / 4")
    _, bad, *_ = env.step("-g1")
    assert shaped >= 0.5 and bad == 0.0


@pytest.mark.slow
def test_pendulum_cpu_preset_learns_to_hold_the_pole_upright() -> None:
    # The cpu preset as published (reward-to-go credit, minibatches), fewer validation episodes.
    env = gymnasium.make("DERL-Pendulum-v0", preset="cpu", budget=1, inner_overrides={"n_val": 8})
    env.reset(seed=0)
    _, reward, *_, info = env.step("(g1 + g2 + g3 + g4) / 4")
    assert reward >= 0.75, info["training_curve"][-1]
    # Success in the last quarter came from training: the first iteration's episodes never had it.
    assert info["training_curve"][0]["success_mean"] == 0.0
    env.close()
