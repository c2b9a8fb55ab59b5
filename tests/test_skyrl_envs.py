"""skyrl_gym adapters: our real tasks, scored by a real meta-reward over our primitives."""

from __future__ import annotations

import pytest

skyrl_gym = pytest.importorskip("skyrl_gym", reason="the skyrl extra is not installed")

from derl_bench.envs.alfworld import ALFWorldInnerEnv  # noqa: E402
from derl_bench.envs.alfworld_data import list_games, task_type_of  # noqa: E402
from derl_bench.envs.gsm8k import load_gsm8k  # noqa: E402
from derl_bench.meta_env.skyrl_envs import SKYRL_ENV_IDS, register_skyrl_envs  # noqa: E402
from derl_bench.meta_reward import InvalidMetaReward  # noqa: E402
from derl_bench.primitives.base import EPSILON  # noqa: E402

pytestmark = [pytest.mark.data]


@pytest.fixture(scope="module", autouse=True)
def _registered():
    register_skyrl_envs()
    register_skyrl_envs()  # idempotent


def test_every_adapter_is_registered():
    assert set(SKYRL_ENV_IDS) <= set(skyrl_gym.registry)


def test_math_adapter_scores_a_real_gsm8k_answer_with_the_meta_reward():
    record = load_gsm8k("test")[0]
    extras = {
        "meta_reward": "g1 + 0.5 * g2",
        "reward_spec": {"ground_truth": record.answer},
        "source": "gsm8k",
        "question": record.question,
    }
    right = skyrl_gym.make("derl_math", extras=extras)
    prompt = [{"role": "user", "content": record.question}]
    assert right.init(prompt)[0] == prompt
    out = right.step(f"Step 1: work.\nStep 2: more.\nThe answer is \\boxed{{{record.answer}}}.")
    assert out["done"] and out["observations"] == []
    values = out["metadata"]["primitive_values"]
    assert values["g1"] > 1 and values["g2"] > 1
    assert out["reward"] == pytest.approx(values["g1"] + 0.5 * values["g2"])
    wrong = skyrl_gym.make("derl_math", extras=extras).step("The answer is 123456789.")
    assert wrong["reward"] == pytest.approx(1e-6 + 0.5 * 1e-6)
    with pytest.raises(InvalidMetaReward):
        skyrl_gym.make("derl_math", extras={**extras, "meta_reward": "g9"})
    with pytest.raises(ValueError, match="ground_truth"):
        skyrl_gym.make("derl_math", extras={"meta_reward": "g1"})


@pytest.mark.parametrize("source", ["math", "arith"])
def test_math_adapter_scores_real_math_and_arith_answers(source):
    if source == "math":
        from derl_bench.envs.math_data import load_math

        record = load_math("test")[0]  # MATH-500
    else:
        from derl_bench.envs.arith import arith_record

        record = arith_record(0)
    extras = {
        "meta_reward": "g1 + g2",
        "reward_spec": {"ground_truth": record.answer},
        "source": source,
        "question": record.question,
    }
    right = skyrl_gym.make("derl_math", extras=extras)
    right.init([{"role": "user", "content": record.question}])
    out = right.step(f"Step 1: work.\nStep 2: more.\nThe answer is \\boxed{{{record.answer}}}.")
    values = out["metadata"]["primitive_values"]
    assert out["done"] and values["g1"] > 1  # the reference answer is verified correct
    assert out["reward"] == pytest.approx(values["g1"] + values["g2"])
    wrong = skyrl_gym.make("derl_math", extras=extras).step("The answer is \\boxed{-987654}.")
    assert wrong["metadata"]["primitive_values"]["g1"] == pytest.approx(EPSILON)


@pytest.mark.slow
def test_alfworld_adapter_plays_a_real_game_to_success():
    game = next(g for g in list_games("valid_seen") if task_type_of(g) == "look_at_obj_in_light")
    planner = ALFWorldInnerEnv(expert="planner")
    try:
        _, info = planner.reset(options={"task": game})
        plan = []
        for _ in range(40):
            action = info["expert_plan"][0]
            plan.append(action)
            _, _, terminated, truncated, info = planner.step(action)
            if terminated or truncated:
                break
    finally:
        planner.close()
    env = skyrl_gym.make(
        "derl_alfworld", extras={"meta_reward": "g1 + g4", "task": game, "max_turns": 40}
    )
    try:
        conversation, _ = env.init([{"role": "system", "content": "Play the game."}])
        assert "Your task is to" in conversation[-1]["content"]
        assert "Admissible actions:" in conversation[-1]["content"]
        for i, action in enumerate(plan):  # noqa: B007
            out = env.step(action)
            if out["done"]:
                break
            assert out["reward"] == 0.0  # outcome-supervised: the reward comes at the end
    finally:
        env.close()
    assert out["done"] and i == len(plan) - 1
    values = out["metadata"]["primitive_values"]
    assert out["metadata"]["success"] and values["g1"] == pytest.approx(1 + EPSILON)
    assert out["reward"] == pytest.approx(values["g1"] + values["g4"])


@pytest.mark.slow
def test_scienceworld_adapter_runs_real_steps_and_scores_the_episode():
    env = skyrl_gym.make(
        "derl_scienceworld",
        extras={"meta_reward": "g2 + g3 + g4", "task": "find-non-living-thing", "max_turns": 3},
    )
    try:
        conversation, _ = env.init([])
        assert "Admissible actions:" in conversation[-1]["content"]
        for action in ("look around", "open door to kitchen", "look around"):
            out = env.step(action)
    finally:
        env.close()
    assert out["done"]
    values = out["metadata"]["primitive_values"]
    assert out["reward"] == pytest.approx(values["g2"] + values["g3"] + values["g4"])
    assert out["metadata"]["success"] is False and values["g1"] == pytest.approx(EPSILON)
