"""DERL-ScienceWorld-* and DERL-ALFWorld-* MetaRewardEnvs on the real simulators."""

from __future__ import annotations

import dataclasses

import gymnasium
import psutil
import pytest
from gymnasium.utils.env_checker import check_env
from tiny_text_lm import tiny_text_lm

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig

SCIENCEWORLD_IDS = [f"DERL-ScienceWorld-L{i}-v1" for i in range(3)]
ALFWORLD_IDS = [f"DERL-ALFWorld-L{i}-v1" for i in range(3)]

pytestmark = [pytest.mark.slow, pytest.mark.data]


def _java_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "java" in p.name()]


@pytest.mark.parametrize("env_id", [*SCIENCEWORLD_IDS, "DERL-ScienceWorld-L2-v2", *ALFWORLD_IDS])
def test_check_env_passes_and_splits_follow_the_level(env_id: str) -> None:
    env = gymnasium.make(env_id, preset="smoke", budget=2)
    check_env(env.unwrapped, skip_render_check=True)
    trainer = env.unwrapped.trainer
    splits = trainer.splits
    assert isinstance(trainer.config, EpisodeGRPOConfig)
    assert splits.level == env.spec.kwargs["level"]
    keys = [{t.key for t in part} for part in (splits.d_in, splits.val, splits.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    if splits.level == "L2":
        train_types = {t.task_type for t in splits.train_pool}
        assert {t.task_type for t in splits.test} <= set(splits.held_out_types)
        assert not train_types & set(splits.held_out_types)
    env.close()
    assert not _java_children()


def test_alfworld_l2_as_users_quote_it_resolves_to_the_latest_version() -> None:
    env = gymnasium.make("DERL-ALFWorld-L2")
    assert env.spec.id == "DERL-ALFWorld-L2-v1"
    assert env.unwrapped.preset == "cpu"  # the default preset on every machine
    env.close()


def test_scienceworld_l2_as_users_quote_it_resolves_to_v5_with_v2s_larger_cpu_pool() -> None:
    env = gymnasium.make("DERL-ScienceWorld-L2")
    v1 = gymnasium.make("DERL-ScienceWorld-L2-v1")
    v2 = gymnasium.make("DERL-ScienceWorld-L2-v2")
    v4 = gymnasium.make("DERL-ScienceWorld-L2-v4")
    try:
        assert env.spec.id == "DERL-ScienceWorld-L2-v5" and env.unwrapped.preset == "cpu"
        assert env.unwrapped.trainer.splits == v2.unwrapped.trainer.splits
        config = env.unwrapped.trainer.config
        assert (config.rollout_threads, config.restarts) == (2, 2)  # v5's only changes
        v2_spec = v2.unwrapped.trainer.policy_factory.cold_start_spec
        v5_spec = env.unwrapped.trainer.policy_factory.cold_start_spec
        # v4 imitates v2's expert games for 10 epochs (not 40): its own cached cold start,
        # which v5 shares
        assert v5_spec.key() == v4.unwrapped.trainer.policy_factory.cold_start_spec.key()
        assert v5_spec.tasks == v2_spec.tasks and v5_spec.env_settings == v2_spec.env_settings
        assert (v5_spec.epochs, v2_spec.epochs) == (10, 40) and v5_spec.key() != v2_spec.key()
        new, old = env.unwrapped.trainer.splits, v1.unwrapped.trainer.splits
        assert new.test == old.test  # the test split keeps the preset's cap
        assert (len(new.d_in), len(new.val)) == (128, 32)  # 4 task types x 40 variations
        assert (len(old.d_in), len(old.val)) == (32, 8)
        spec = env.unwrapped.trainer.policy_factory.cold_start_spec
        old_spec = v1.unwrapped.trainer.policy_factory.cold_start_spec
        assert len(spec.tasks) == 108 and dict(spec.env_settings)["candidate_rules"] == 2
        assert dict(old_spec.env_settings) == {"recent_actions": 3}  # v1's cache key as before
    finally:
        env.close()
        v1.close()
        v2.close()
        v4.close()


def test_scienceworld_l0_as_users_quote_it_resolves_to_v6_which_only_adds_a_restart() -> None:
    # v6 is registered for L0 and L1 (they share D_in and V, so L1's signal is L0's); L2 stays
    # at v5
    env = gymnasium.make("DERL-ScienceWorld-L0")
    v5 = gymnasium.make("DERL-ScienceWorld-L0-v5")
    try:
        assert env.spec.id == "DERL-ScienceWorld-L0-v6" and env.unwrapped.preset == "cpu"
        config, old = env.unwrapped.trainer.config, v5.unwrapped.trainer.config
        assert (config.restarts, old.restarts) == (3, 2)
        assert config == dataclasses.replace(old, restarts=3)
        assert env.unwrapped.trainer.splits == v5.unwrapped.trainer.splits
        factory, old_factory = (
            env.unwrapped.trainer.policy_factory,
            v5.unwrapped.trainer.policy_factory,
        )
        assert factory.cold_start_spec.key() == old_factory.cold_start_spec.key()
        l1 = gymnasium.make("DERL-ScienceWorld-L1")
        try:
            assert l1.spec.id == "DERL-ScienceWorld-L1-v6"
            # L1 trains and validates exactly as L0 (same config, D_in and V); only the test
            # split differs (the `test` variations of the training tasks, not `dev`)
            l1_trainer = l1.unwrapped.trainer
            assert l1_trainer.config == config
            assert l1_trainer.splits.d_in == env.unwrapped.trainer.splits.d_in
            assert l1_trainer.splits.val == env.unwrapped.trainer.splits.val
            assert l1_trainer.splits.test != env.unwrapped.trainer.splits.test
        finally:
            l1.close()
        with pytest.raises(gymnasium.error.Error):
            gymnasium.make("DERL-ScienceWorld-L2-v6")
    finally:
        env.close()
        v5.close()


@pytest.mark.parametrize("env_id", ["DERL-ALFWorld-L2-v1", "DERL-ScienceWorld-L2-v1"])
def test_smoke_meta_step_trains_in_the_real_simulator(env_id: str) -> None:
    env = gymnasium.make(env_id, preset="smoke", budget=1)
    env.reset(seed=0)
    _, reward, _, truncated, info = env.step("g1 + g2 + g3 + g4")
    assert 0.0 <= reward <= 1.0 and truncated and info["valid"]
    assert info["cost"]["inner_steps"] > 0 and info["cost"]["rollouts"] > 0
    assert set(info["validation_primitive_means"]) == {"g1", "g2", "g3", "g4"}
    assert any(row["loss"] != 0.0 for row in info["training_curve"])
    env.close()
    assert not _java_children()


def _learning_trainer(domain: str):  # noqa: ANN202
    """A compact-GRPO trainer on ONE training task, validated on the same initial state.

    The validation task is the training task with another ``seed`` field (a distinct key, the
    same game/variation: both simulators are deterministic given the task), so the trainer's
    own greedy validation measures the training task before and after training.
    """
    import dataclasses

    from derl_bench.envs.episode import EpisodeSplits
    from derl_bench.inner.episode_grpo_trainer import EpisodeGRPOTrainer
    from derl_bench.meta_env.episode_domains import make_policy_factory
    from derl_bench.primitives.episode import EPISODE_PRIMITIVES

    if domain == "alfworld":
        from derl_bench.envs.alfworld import ALFWorldInnerEnv, alfworld_splits

        task = alfworld_splits("L0", max_games={"d_in": 1, "val": 1, "test": 1}).d_in[0]
        factory = lambda: ALFWorldInnerEnv(max_steps=8)  # noqa: E731
    else:
        from derl_bench.envs import scienceworld as sw

        task = sw.scienceworld_splits("L0", tasks=["find-non-living-thing"], max_variations=4).d_in[
            0
        ]
        factory = lambda: sw.ScienceWorldInnerEnv(task=task.task_id, max_steps=8)  # noqa: E731
    config = EpisodeGRPOConfig(
        max_steps=8,
        tasks_per_step=1,
        group_size=4,
        max_episode_steps=8,
        learning_rate=1e-2,
        num_iterations=4,
        policy="minilm",
        n_envs=1,
    )
    twin = dataclasses.replace(task, seed=task.seed + 1)
    test_twin = dataclasses.replace(task, seed=task.seed + 2)
    return EpisodeGRPOTrainer(
        splits=EpisodeSplits(level="", d_in=(task,), val=(twin,), test=(test_twin,)),
        env_factory=factory,
        policy_factory=make_policy_factory(config),
        primitive_set=EPISODE_PRIMITIVES,
        config=config,
    )


def _step_score(result) -> float:  # noqa: ANN001
    return sum(result.primitive_means[g] for g in ("g2", "g3", "g4")) / 3


def _before_and_after(domain: str):  # noqa: ANN202
    """The untrained policy's evaluation, then one training under g1 + g2 + g3 + g4."""
    from derl_bench.meta_reward import parse
    from derl_bench.primitives.episode import EPISODE_PRIMITIVES

    trainer = _learning_trainer(domain)
    before, before_score = trainer.evaluate_initial(seed=0)
    after = trainer.train(
        parse("g1 + g2 + g3 + g4", primitive_names=EPISODE_PRIMITIVES.names), seed=0
    )
    return before, before_score, after


def test_grpo_raises_the_mean_step_score_on_an_alfworld_training_game() -> None:
    before, _, after = _before_and_after("alfworld")
    assert _step_score(after.validation) > _step_score(before)


def test_grpo_raises_step_score_and_scienceworld_score_on_a_training_task() -> None:
    before, before_score, after = _before_and_after("scienceworld")
    assert _step_score(after.validation) > _step_score(before)
    assert after.extra["validation_score_mean"] > before_score  # ScienceWorld's 0-100 score


def test_paper_preset_llm_agent_code_path_with_a_tiny_lm(tmp_path) -> None:  # noqa: ANN001
    # The paper preset is an LLM agent scoring admissible actions (GPU scale). Here the same
    # code path runs with a tiny random Qwen2 saved to a local folder, on real ALFWorld games.
    texts = [
        "You are in the middle of a room. Looking quickly around you, you see a cabinet 1.",
        "Your task is to: put a clean mug in coffeemachine. go to cabinet 1, open drawer 2.",
        "Reply with exactly one admissible action. You are an agent in a text environment.",
    ] * 10
    model, tokenizer = tiny_text_lm(texts, max_position_embeddings=16384)
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    overrides = {
        "policy_kwargs": {"model": str(tmp_path / "tiny")},
        "max_steps": 1,
        "tasks_per_step": 1,
        "group_size": 2,
        "max_episode_steps": 3,
        "n_val": 1,
        "n_test": 1,
        "n_envs": 1,
    }
    env = gymnasium.make("DERL-ALFWorld-L2-v0", preset="paper", budget=1, inner_overrides=overrides)
    assert env.unwrapped.trainer.config.policy == "lm"
    env.reset(seed=0)
    _, reward, _, _, info = env.step("g1 + g2 + g3 + g4")
    assert 0.0 <= reward <= 1.0 and info["cost"]["rollouts"] == 3
    assert info["training_curve"][0]["loss"] != 0.0 or info["training_curve"][0]["reward_std"] == 0
    env.close()
