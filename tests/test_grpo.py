"""The compact episode GRPO (inner/episode_grpo_trainer.py) and its primitives, on CartPole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from derl_bench.envs.classic import ClassicControlInnerEnv, classic_splits
from derl_bench.envs.episode import EpisodeSplits, EpisodeTask, Trajectory
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig
from derl_bench.inner.episode_grpo_trainer import EpisodeGRPOTrainer, group_advantages, run_episodes
from derl_bench.inner.policies.mlp import MLPPolicy
from derl_bench.meta_reward import parse
from derl_bench.primitives import EPSILON, get_primitive_set
from derl_bench.primitives.episode import EPISODE_PRIMITIVES, thirds

AGENT = get_primitive_set("episode")


def _traj(scores, success=False):  # noqa: ANN001, ANN202
    return Trajectory(
        task=EpisodeTask(domain="t", task_id="x"),
        step_scores=np.asarray(scores, dtype=float),
        success=success,
        n_steps=len(scores),
    )


def test_agent_primitives_follow_the_papers_worked_example() -> None:
    values = EPISODE_PRIMITIVES.compute([_traj([1, 0, 1, 1, 0, 0], success=True)], [None])
    np.testing.assert_allclose(values[0], [1 + EPSILON, 0.5 + EPSILON, 1 + EPSILON, EPSILON])


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([], (0.0, 0.0, 0.0)), ([1.0], (1.0, 0.0, 0.0)), ([1, 0, 1, 1, 0, 0, 1], (2 / 3, 0.5, 0.5))],
)
def test_thirds_of_short_and_uneven_trajectories(scores, expected) -> None:  # noqa: ANN001
    assert thirds(np.asarray(scores, dtype=float)) == pytest.approx(expected)


def test_trajectory_rejects_step_scores_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _traj([0.5, 1.5])


def test_agent_set_is_in_the_registry() -> None:
    assert AGENT.names == ("g1", "g2", "g3", "g4")


def test_group_advantages_normalise_within_groups() -> None:
    rewards = np.array([1.0, 0.0, 1.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    adv = group_advantages(rewards, 4, 1e-4)
    assert adv[:4].mean() == pytest.approx(0.0)
    assert adv[0] > 0 > adv[1]
    np.testing.assert_array_equal(adv[4:], 0.0)  # equal rewards: no signal


def test_splits_must_be_disjoint() -> None:
    task = EpisodeTask(domain="d", task_id="a")
    with pytest.raises(ValueError, match="both d_in and test"):
        EpisodeSplits(level="", d_in=(task,), val=(), test=(task,))


def test_config_rejects_bad_values_with_the_value_quoted() -> None:
    with pytest.raises(ValueError, match="group_size must be >= 2.*got 1"):
        EpisodeGRPOConfig(
            max_steps=1, tasks_per_step=1, group_size=1, max_episode_steps=5, learning_rate=1e-3
        )
    with pytest.raises(ValueError, match="epsilon"):
        EpisodeGRPOConfig(
            max_steps=1,
            tasks_per_step=1,
            group_size=2,
            max_episode_steps=5,
            learning_rate=1e-3,
            epsilon=1.5,
        )


def _policy(seed: int = 0) -> MLPPolicy:
    env = ClassicControlInnerEnv("cartpole")
    return MLPPolicy(env.observation_space, env.action_space, seed=seed)


def test_run_episodes_returns_one_trajectory_per_task_in_order_with_padding() -> None:
    envs = [ClassicControlInnerEnv("cartpole") for _ in range(3)]
    tasks = [EpisodeTask(domain="cartpole", task_id="CartPole-v1", seed=s) for s in range(5)]
    episodes = run_episodes(
        envs,
        _policy(),
        tasks,
        max_episode_steps=500,
        generator=torch.Generator().manual_seed(0),
        greedy=False,
    )
    assert [e.trajectory.task.seed for e in episodes] == list(range(5))
    for e in episodes:
        t = e.trajectory
        assert len(e.step_records) == t.n_steps == len(t.actions)
        # a random policy drops the pole early; the failure is padded to the 500-step horizon
        assert not t.success and t.n_steps < 500
        assert t.step_scores.shape == (500,)
        assert np.all(t.step_scores[t.n_steps :] == 0)
        assert t.score == pytest.approx(float(t.n_steps))  # hidden native return, logs only


def test_policy_log_prob_matches_sampling_distribution() -> None:
    policy = _policy()
    obs = [np.array([0.01, 0.0, 0.02, 0.0], dtype=np.float32)] * 2
    _, records = policy.act(obs, [{}, {}], generator=torch.Generator().manual_seed(0))
    logits = policy.net(torch.as_tensor(np.stack(obs)))
    expected = torch.log_softmax(logits, -1)[range(2), [r.action for r in records]]
    torch.testing.assert_close(policy.log_prob(records), expected)


def _trainer(**overrides) -> EpisodeGRPOTrainer:  # noqa: ANN003
    settings = dict(
        max_steps=10,
        tasks_per_step=4,
        group_size=8,
        max_episode_steps=500,
        learning_rate=1e-2,
        num_iterations=4,
        n_val=8,
        n_envs=32,
    )
    settings.update(overrides)
    probe = ClassicControlInnerEnv("cartpole")
    return EpisodeGRPOTrainer(
        splits=classic_splits("cartpole", n_test=8),
        env_factory=lambda: ClassicControlInnerEnv("cartpole"),
        policy_factory=lambda seed: MLPPolicy(
            probe.observation_space, probe.action_space, seed=seed
        ),
        primitive_set=AGENT,
        config=EpisodeGRPOConfig(**settings),
    )


@pytest.mark.slow
def test_grpo_with_shaped_meta_reward_learns_to_balance_cartpole() -> None:
    trainer = _trainer()
    before, _ = trainer.evaluate_initial(seed=0)
    result = trainer.train(parse("(g1 + g2 + g3 + g4) / 4", primitive_names=AGENT.names), seed=0)
    lengths = [row["episode_length_mean"] for row in result.training_curve]
    assert lengths[-1] > 3 * lengths[0]
    assert result.validation.success > before.success
    assert result.extra["validation_score_mean"] > 200
    assert result.cost.inner_steps == 40 and result.cost.rollouts == 10 * 32 + 8


def test_success_only_meta_reward_gives_no_signal_from_a_random_start() -> None:
    # Every episode of a random policy fails, so g1 is equal within each group: all
    # advantages are 0 and the policy must not change (GRPO's known cold-start problem).
    trainer = _trainer(max_steps=2, tasks_per_step=2, n_val=2)
    result = trainer.train(parse("g1", primitive_names=AGENT.names), seed=0, init=None)
    assert all(row["loss"] == 0.0 for row in result.training_curve)
    assert result.validation.success == 0.0


def test_same_seed_same_result_and_checkpoint_round_trip(tmp_path) -> None:  # noqa: ANN001
    trainer = _trainer(max_steps=2, tasks_per_step=2, n_val=4)
    trainer.keep_checkpoints = str(tmp_path)
    reward = parse("g2 + g3", primitive_names=AGENT.names)
    first = trainer.train(reward, seed=3)
    second = trainer.train(reward, seed=3)
    assert first.training_curve == second.training_curve
    assert first.validation == second.validation
    assert first.checkpoint == second.checkpoint
    state = torch.load(f"{first.checkpoint}/policy.pt", weights_only=True)
    initial = _policy(3).state_dict()
    assert any(not torch.equal(state[k], initial[k]) for k in state)  # training changed it
    warm = trainer.train(reward, seed=3, init=first.checkpoint)
    assert warm.checkpoint != first.checkpoint


@pytest.mark.parametrize("domain", ["cartpole", "pendulum"])
def test_stacked_records_train_the_same_parameters_as_record_lists(
    domain, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    """MLPPolicy.stack_records is only a faster path: without it (the trainer's generic path,
    records stacked per minibatch) the trained parameters are the same bits."""
    probe = ClassicControlInnerEnv(domain)
    settings = dict(max_steps=2, tasks_per_step=2, group_size=4, max_episode_steps=60, n_val=2)
    settings.update(minibatches=4, beta=0.05, num_iterations=2, n_envs=8, learning_rate=1e-2)
    if domain == "pendulum":
        settings.update(credit="reward_to_go", credit_gamma=0.97)
    trainer = EpisodeGRPOTrainer(
        splits=classic_splits(domain, n_test=2),
        env_factory=lambda: ClassicControlInnerEnv(domain),
        policy_factory=lambda seed: MLPPolicy(
            probe.observation_space, probe.action_space, seed=seed
        ),
        primitive_set=AGENT,
        config=EpisodeGRPOConfig(**settings),
    )
    reward = parse("g2 + 0.5 * g3", primitive_names=AGENT.names)
    states = []
    for path in ("stacked", "lists"):
        if path == "lists":
            monkeypatch.delattr(MLPPolicy, "stack_records")
        trainer.keep_checkpoints = str(tmp_path / path)
        result = trainer.train(reward, seed=1)
        assert any(row["loss"] != 0.0 for row in result.training_curve)
        states.append(torch.load(f"{result.checkpoint}/policy.pt", weights_only=True))
    assert states[0].keys() == states[1].keys()
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name
