"""DERL-ScienceWorld-* and DERL-ALFWorld-* MetaRewardEnvs on the real simulators."""

from __future__ import annotations

import gymnasium
import psutil
import pytest
from gymnasium.utils.env_checker import check_env

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.inner.grpo_config import AgentGRPOConfig

SCIENCEWORLD_IDS = [f"DERL-ScienceWorld-L{i}-v0" for i in range(3)]
ALFWORLD_IDS = [f"DERL-ALFWorld-L{i}-v0" for i in range(3)]

pytestmark = [pytest.mark.slow, pytest.mark.data]


def _java_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "java" in p.name()]


@pytest.mark.parametrize("env_id", SCIENCEWORLD_IDS + ALFWORLD_IDS)
def test_check_env_passes_and_splits_follow_the_level(env_id: str) -> None:
    env = gymnasium.make(env_id, preset="smoke", budget=2)
    check_env(env.unwrapped, skip_render_check=True)
    trainer = env.unwrapped.trainer
    splits = trainer.splits
    assert isinstance(trainer.config, AgentGRPOConfig)
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
    assert env.spec.id == "DERL-ALFWorld-L2-v0"
    assert env.unwrapped.preset == "cpu"  # the default preset on every machine
    env.close()


@pytest.mark.parametrize("env_id", ["DERL-ALFWorld-L2-v0", "DERL-ScienceWorld-L2-v0"])
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
