"""The text agents' behaviour-cloning cold start (derl_bench/inner/cold_start.py) and env v1.

Unit tests use a fake text env and a fake encoder (labelled ``Fake``); the last tests play the
real TextWorld engine on one ALFWorld game.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch

from derl_bench.envs.episode import EpisodeTask
from derl_bench.inner.cold_start import (
    ColdStartSpec,
    behaviour_clone,
    cold_start_path,
    cold_start_tasks,
    expert_steps,
    load_cold_start,
)
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig
from derl_bench.inner.episode_presets import LATEST_TEXT_VERSION, episode_preset
from derl_bench.inner.policies.action_scoring import ActionScoringConfig, ActionScoringPolicy

ACTIONS = ("go north", "go south", "take key", "open door")
"""The fake env's candidates; the expert's route is take key, open door."""


class FakeEncoder:
    """Fake frozen encoder (unit tests only): a fixed random vector per string."""

    dim = 16

    def encode(self, texts):  # noqa: ANN001, ANN201
        rows = []
        for text in texts:
            seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
            rows.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(seed)))
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


class FakeDoorEnv:
    """Fake text env (unit tests only): take the key, then open the door to win."""

    made = 0

    def __init__(self) -> None:
        FakeDoorEnv.made += 1
        self.closed = False

    def reset(self, *, seed=None, options=None):  # noqa: ANN001, ANN201
        self.has_key = False
        return "You see a key and a door.", {"valid_actions": list(ACTIONS), "success": False}

    def step(self, action):  # noqa: ANN001, ANN201
        won = self.has_key and action == "open door"
        self.has_key = self.has_key or action == "take key"
        obs = "You hold the key." if self.has_key else "Nothing happens."
        info = {"valid_actions": list(ACTIONS), "success": won, "step_score": 1.0}
        return obs, 0.0, won, False, info

    def close(self) -> None:
        self.closed = True


def door_expert(env, task, info):  # noqa: ANN001, ANN201
    """Fake expert: say something that is not a candidate first, then the winning route."""
    return "open door" if env.has_key else "take key"


def _tasks(n: int, types: str = "ab") -> tuple[EpisodeTask, ...]:
    return tuple(
        EpisodeTask(domain="fake", task_id=f"{types[i % len(types)]}{i}", task_type=types[i % 2])
        for i in range(n)
    )


def _policy() -> ActionScoringPolicy:
    return ActionScoringPolicy(ActionScoringConfig(hidden_size=8), encoder=FakeEncoder())


def test_cold_start_tasks_are_round_robin_over_task_types() -> None:
    d_in = tuple(
        EpisodeTask(domain="fake", task_id=f"{t}{i}", task_type=t) for t in "xyz" for i in range(3)
    )
    picked = cold_start_tasks(d_in, 5)
    assert [t.task_id for t in picked] == ["x0", "y0", "z0", "x1", "y1"]
    assert len(cold_start_tasks(d_in, 100)) == 9


def test_expert_steps_records_imitable_steps_and_resumes_from_its_cache(tmp_path) -> None:  # noqa: ANN001
    FakeDoorEnv.made = 0
    steps, stats = expert_steps(
        FakeDoorEnv, _tasks(3), door_expert, max_episode_steps=5, cache=tmp_path, cache_key="k"
    )
    assert stats == {"episodes": 3.0, "successes": 3.0, "steps": 6.0, "recorded": 6.0}
    assert [ACTIONS[s.index] for s in steps[:2]] == ["take key", "open door"]
    assert steps[1].state == "You hold the key."
    assert FakeDoorEnv.made == 1
    again, _ = expert_steps(
        FakeDoorEnv, _tasks(3), door_expert, max_episode_steps=5, cache=tmp_path, cache_key="k"
    )
    assert again == steps and FakeDoorEnv.made == 1  # all cached: no env made


def test_expert_steps_skips_actions_outside_the_candidates(tmp_path) -> None:  # noqa: ANN001
    def sloppy(env, task, info):  # noqa: ANN001, ANN202
        return (
            "dance"
            if not env.has_key and not getattr(env, "danced", False)
            else (door_expert(env, task, info))
        )

    class Env(FakeDoorEnv):
        def step(self, action):  # noqa: ANN001, ANN202
            self.danced = True
            return super().step(action)

    steps, stats = expert_steps(Env, _tasks(1), sloppy, max_episode_steps=5)
    assert stats["steps"] == 3 and stats["recorded"] == 2


def test_behaviour_cloning_makes_the_expert_action_the_greedy_choice() -> None:
    steps, _ = expert_steps(FakeDoorEnv, _tasks(2), door_expert, max_episode_steps=5)
    policy = _policy()
    losses = behaviour_clone(policy, steps, epochs=100)
    assert losses[-1] < 0.5 * losses[0]
    env = FakeDoorEnv()
    obs, info = env.reset()
    for _ in range(2):
        (index,), _ = policy.act([obs], [info], generator=torch.Generator(), greedy=True)
        obs, _, terminated, _, info = env.step(ACTIONS[index])
    assert terminated and info["success"]


def _spec(tasks: tuple[EpisodeTask, ...], epochs: int = 3) -> ColdStartSpec:
    return ColdStartSpec(domain="fake", level="L0", tasks=tasks, epochs=epochs, max_episode_steps=5)


def test_cold_start_is_built_once_rebuilt_bit_identically_and_hash_checked(
    tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    kwargs = dict(env_factory=FakeDoorEnv, expert=door_expert, make_policy=_policy)
    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "a"))
    folder = cold_start_path(_spec(_tasks(2)), **kwargs)
    meta = json.loads((folder / "cold_start.json").read_text())
    assert meta["expert"]["recorded"] == 4 and len(meta["bc_loss"]) == 3
    FakeDoorEnv.made = 0
    assert cold_start_path(_spec(_tasks(2)), **kwargs) == folder and FakeDoorEnv.made == 0
    assert cold_start_path(_spec(_tasks(2), epochs=4), **kwargs) != folder  # epochs in the key
    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "b"))
    rebuilt = cold_start_path(_spec(_tasks(2)), **kwargs)
    assert (rebuilt / "policy.pt").read_bytes() == (folder / "policy.pt").read_bytes()
    policy = load_cold_start(_policy(), folder)
    assert not torch.equal(policy.out.weight, _policy().out.weight)
    (folder / "policy.pt").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="damaged"):
        load_cold_start(_policy(), folder)
    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "a"))
    repaired = cold_start_path(_spec(_tasks(2)), **kwargs)  # a damaged cache is rebuilt
    assert (repaired / "policy.pt").read_bytes() == (rebuilt / "policy.pt").read_bytes()


def test_cold_start_settings_are_checked() -> None:
    base = episode_preset("alfworld", "smoke")
    with pytest.raises(ValueError, match="cold_start_epochs"):
        base.with_overrides(cold_start_games=4)
    with pytest.raises(ValueError, match="recent_actions"):
        EpisodeGRPOConfig(
            max_steps=1,
            tasks_per_step=1,
            group_size=2,
            max_episode_steps=1,
            learning_rate=1e-3,
            recent_actions=-1,
        )
    with pytest.raises(ValueError, match="at least one"):
        _spec(())


def test_text_presets_v0_are_unchanged_and_v1_cold_start_and_validate_on_all_of_v() -> None:
    for domain in ("alfworld", "scienceworld"):
        v0 = episode_preset(domain, "cpu")
        assert (v0.cold_start_games, v0.recent_actions, v0.n_val) == (0, 0, 8)
        v1 = episode_preset(domain, "cpu", version=LATEST_TEXT_VERSION)
        assert v1.cold_start_games > 0 and v1.recent_actions == 3 and v1.n_val is None
        assert episode_preset(domain, "paper", version=1) == episode_preset(domain, "paper")
    with pytest.raises(ValueError, match="known: \\[0, 1\\]"):
        episode_preset("alfworld", "cpu", version=7)
    with pytest.raises(ValueError, match="known: \\[0, 1\\]"):
        episode_preset("alfworld", "cpu", version=2)  # ScienceWorld only
    for preset in ("smoke", "cpu", "paper"):  # v2 changes the env and the cpu pool only
        v2 = episode_preset("scienceworld", preset, version=2)
        assert v2 == episode_preset("scienceworld", preset, version=1)
    # v3 changes only cpu's inner GRPO: 8 tasks per step, one PPO epoch, lr 1e-3
    for preset in ("smoke", "paper"):
        assert episode_preset("scienceworld", preset, version=3) == episode_preset(
            "scienceworld", preset, version=2
        )
    v2, v3 = (episode_preset("scienceworld", "cpu", version=v) for v in (2, 3))
    assert (v3.tasks_per_step, v3.num_iterations, v3.learning_rate) == (8, 1, 1e-3)
    assert (v2.tasks_per_step, v2.num_iterations, v2.learning_rate) == (2, 4, 3e-3)
    assert v3 == dataclasses.replace(v2, tasks_per_step=8, num_iterations=1, learning_rate=1e-3)
    # v4 changes only cpu: a 10-epoch cold start and 2 PPO epochs per GRPO step
    for preset in ("smoke", "paper"):
        assert episode_preset("scienceworld", preset, version=4) == episode_preset(
            "scienceworld", preset, version=3
        )
    v4 = episode_preset("scienceworld", "cpu", version=4)
    assert (v4.cold_start_epochs, v4.num_iterations, v3.cold_start_epochs) == (10, 2, 40)
    assert v4 == dataclasses.replace(v3, cold_start_epochs=10, num_iterations=2)
    # v5 changes only cpu: 2 rollout threads and 2 restarts (the mean of two trainings)
    for preset in ("smoke", "paper"):
        assert episode_preset("scienceworld", preset, version=5) == episode_preset(
            "scienceworld", preset, version=4
        )
    v5 = episode_preset("scienceworld", "cpu", version=5)
    assert (v5.rollout_threads, v5.restarts, v4.rollout_threads, v4.restarts) == (2, 2, 0, 1)
    assert v5 == dataclasses.replace(v4, rollout_threads=2, restarts=2)
    # v6 (registered for L0 and L1) changes only cpu: 3 restarts
    for preset in ("smoke", "paper"):
        assert episode_preset("scienceworld", preset, version=6) == episode_preset(
            "scienceworld", preset, version=5
        )
    assert episode_preset("scienceworld", "cpu", version=6) == dataclasses.replace(v5, restarts=3)
    with pytest.raises(ValueError, match="known: \\[0, 1, 2, 3, 4, 5, 6\\]"):
        episode_preset("scienceworld", "cpu", version=7)
    with pytest.raises(ValueError, match="only env version 0"):
        episode_preset("pendulum", "cpu", version=1)
    # CartPole v1 trains 40 GRPO iterations at cpu; smoke and paper as v0
    cartpole = {v: episode_preset("cartpole", "cpu", version=v) for v in (0, 1)}
    assert cartpole[1] == dataclasses.replace(cartpole[0], max_steps=40)
    assert cartpole[0].max_steps == 20
    for preset in ("smoke", "paper"):
        assert episode_preset("cartpole", preset, version=1) == episode_preset("cartpole", preset)
    with pytest.raises(ValueError, match="known: \\[0, 1\\]"):
        episode_preset("cartpole", "cpu", version=2)


@pytest.mark.slow
@pytest.mark.data
def test_alfworld_recent_actions_put_task_and_last_commands_first() -> None:
    from derl_bench.envs.alfworld import ALFWorldInnerEnv, alfworld_splits

    task = alfworld_splits("L2", max_games={"d_in": 1, "val": 1, "test": 1}).d_in[0]
    env = ALFWorldInnerEnv(recent_actions=2, expert="planner")
    try:
        obs, info = env.reset(options={"task": task})
        lines = obs.split("\n")
        assert lines[0].startswith("Your task is to: ") and lines[1] == "Recent actions: none"
        plan = info["expert_plan"]
        for command in plan[:3]:
            obs, *_ = env.step(command)
        assert obs.split("\n")[1] == f"Recent actions: {plan[1]}; {plan[2]}"
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.data
def test_v1_smoke_policy_starts_from_a_cold_start_on_d_in_only() -> None:
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)

    env = gymnasium.make("DERL-ALFWorld-L2-v1", preset="smoke", budget=1)
    try:
        trainer = env.unwrapped.trainer
        spec = trainer.policy_factory.cold_start_spec
        d_in = {t.key for t in trainer.splits.d_in}
        assert spec.tasks and {t.key for t in spec.tasks} <= d_in
        assert len({t.task_type for t in spec.tasks}) == len(spec.tasks)  # round-robin types
        first, second = trainer.policy_factory(0), trainer.policy_factory(1)
        for (name, a), (_, b) in zip(
            first.state_dict().items(), second.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), name  # the seed drives sampling only
        random_head = ActionScoringPolicy(ActionScoringConfig(context_lines=2))
        assert not torch.equal(first.out.weight, random_head.out.weight)
    finally:
        env.close()
