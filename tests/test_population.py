"""The population env: PettingZoo's own API test, real trainings, warm starts from the best."""

from __future__ import annotations

import pytest
from pettingzoo.test import parallel_api_test

from derl_bench.meta_env.population import parallel_env

pytestmark = pytest.mark.slow

KWARGS = {"preset": "smoke", "inner_overrides": {"max_steps": 2, "n_val": 4}}


def test_pettingzoo_parallel_api_test_passes():
    env = parallel_env(env_id="DERL-CartPole-v0", num_agents=3, budget=4, **KWARGS)
    try:
        parallel_api_test(env, num_cycles=6)  # random text actions: invalid, nothing trains
        assert env.observation_space("member_0") is env.observation_space("member_0")
    finally:
        env.close()


def test_members_train_and_then_warm_start_from_the_population_best(tmp_path):
    env = parallel_env(
        env_id="DERL-CartPole-v0",
        num_agents=2,
        budget=2,
        keep_checkpoints=str(tmp_path / "checkpoints"),
        **KWARGS,
    )
    try:
        observations, _ = env.reset(seed=0)
        assert observations["member_0"]["best_checkpoint"] == ""
        actions = {"member_0": "(g1 + g2 + g3 + g4) / 4", "member_1": "g1 +"}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        assert 0.0 <= rewards["member_0"] <= 1.0 and rewards["member_1"] == -1.0
        assert infos["member_1"]["invalid_reason"] == "syntax"
        assert infos["member_0"]["warm_start"] is None
        assert not any(truncations.values()) and env.agents == ["member_0", "member_1"]
        best = observations["member_1"]["best_checkpoint"]
        assert rewards["member_0"] > 0  # 0.5 with this seed and budget
        assert best and best == infos["member_0"]["checkpoint_id"]
        assert observations["member_1"]["best_validation_success"] == rewards["member_0"]
        observations, rewards, terminations, truncations, infos = env.step(
            {"member_0": "g1 + g2", "member_1": "g2 * g4"}
        )
        for agent in ("member_0", "member_1"):
            assert infos[agent]["warm_start"] == best  # both started from the population's best
            assert observations[agent]["history_length"] == 2
        assert all(truncations.values()) and env.agents == []
    finally:
        env.close()
