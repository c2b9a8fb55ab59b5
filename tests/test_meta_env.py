"""MetaRewardEnv contract tests that need no inner training (the trainer is faked where noted)."""

from __future__ import annotations

import copy
import subprocess
import sys

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.inner.base import Cost, EvalResult, InnerResult

IDS = ["DERL-GSM8K-v0", "DERL-MATH-v0"]
pytestmark = pytest.mark.data


class _FakeTrainer:
    """FAKE inner trainer for unit tests only: reward = number of primitives used / 10."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.inits: list[object] = []

    def train(self, meta_reward, *, seed, init=None):  # noqa: ANN001
        self.calls.append((meta_reward.canonical, seed))
        self.inits.append(init)
        names = meta_reward.primitive_names
        success = len(meta_reward.primitives_used) / 10
        return InnerResult(
            validation=EvalResult(
                success=success, n=10, primitive_means={n: 0.5 for n in names}, tokens=7
            ),
            primitive_means={n: 0.25 for n in names},
            training_curve=[{"inner_step": 1, "reward_mean": 0.1}],
            n_nonfinite_rewards=0,
            cost=Cost(wall_seconds=0.5, inner_steps=3, rollouts=12, tokens=99),
        )

    inner_steps_per_training = 3  # as Cost.inner_steps of train

    def evaluate_test(self, meta_reward, *, seed):  # noqa: ANN001
        return EvalResult(success=0.5, n=4, primitive_means={}, tokens=11)


def _env(env_id: str = "DERL-GSM8K-v0", **kwargs):  # noqa: ANN202
    env = gymnasium.make(env_id, preset="smoke", **kwargs)
    fake = _FakeTrainer()
    env.unwrapped.trainer = fake
    return env, fake


def test_import_registers_ids_and_loads_nothing_heavy() -> None:
    code = (
        "import sys, gymnasium, derl_bench\n"
        "ids = [i for i in gymnasium.registry if i.startswith('DERL-')]\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'math_verify') "
        "if m in sys.modules]\n"
        "print(sorted(ids), heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'DERL-GSM8K-v0'" in out.stdout and "'DERL-MATH-v0'" in out.stdout
    assert out.stdout.strip().endswith("[]"), out.stdout


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes(env_id: str) -> None:
    env, _ = _env(env_id)
    check_env(env.unwrapped, skip_render_check=True)


def test_latest_version_resolves_without_suffix() -> None:
    env = gymnasium.make("DERL-GSM8K", preset="smoke")
    assert env.spec.id == "DERL-GSM8K-v0"
    assert env.spec.kwargs["preset"] == "smoke"


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("__import__('os').system('ls')", "bad_character"),
        ("g1**2", "syntax"),
        ("g9 + 1", "unknown_primitive"),
        ("1 + 2", "no_primitive"),
        ("g1 / 0", "non_finite"),
        ("", "empty"),
        (None, "not_a_string"),
    ],
)
def test_invalid_meta_reward_costs_nothing_and_trains_nothing(action: object, reason: str) -> None:
    env, fake = _env()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert reward == -1.0
    assert info["valid"] is False and info["invalid_reason"] == reason
    assert info["invalid_message"]
    assert info["cost"]["inner_steps"] == 0 and info["cost"]["wall_seconds"] == 0.0
    assert fake.calls == []
    assert obs["history_length"] == 1 and obs["history_rewards"][0] == -1.0
    assert not terminated and not truncated


def test_invalid_reward_is_configurable() -> None:
    env, _ = _env(invalid_reward=0.0)
    env.reset(seed=0)
    assert env.step("g1 +")[1] == 0.0


def test_valid_step_returns_trainer_result_with_full_info() -> None:
    env, fake = _env()
    env.reset(seed=7)
    obs, reward, _, _, info = env.step("g1+0.5*g2")
    assert reward == pytest.approx(0.2)
    assert fake.calls == [("g1 + 0.5 * g2", 7)]
    assert info["canonical"] == "g1 + 0.5 * g2" and info["valid"] is True
    assert info["validation_success"] == pytest.approx(0.2)
    assert set(info["cost"]) == {
        "wall_seconds",
        "inner_steps",
        "rollouts",
        "tokens",
        "simulated_seconds",
    }
    assert info["cost"]["inner_steps"] == 3
    assert info["cache_hit"] is False
    assert obs["history_meta_rewards"] == ("g1 + 0.5 * g2",)
    assert "test_success" not in info  # test results never reach the agent


def test_same_meta_reward_in_an_episode_is_served_from_cache() -> None:
    env, fake = _env()
    env.reset(seed=0)
    first = env.step("g1 + g2")
    second = env.step("g1 + 2 * g2")  # another function: trained
    # Other text, same function: same effective key. (A translation such as ``g1 + g2 + 1``
    # shares it only for trainers known to ignore it; this labelled fake trainer is not one.)
    third = env.step("g2+g1")
    assert len(fake.calls) == 2
    assert third[1] == first[1]
    assert third[4]["cache_hit"] is True and third[4]["cost"]["inner_steps"] == 0
    assert third[4]["effective_key"] == first[4]["effective_key"]
    assert second[4]["cache_hit"] is False


def test_editing_a_returned_info_does_not_change_the_cached_answer() -> None:
    env, fake = _env()
    env.reset(seed=0)
    info = env.step("g1 + g2")[4]
    keys = ("primitive_means", "training_curve", "validation_success")
    expected = copy.deepcopy({k: info[k] for k in keys})
    info["primitive_means"]["g1"] = 99.0
    info["training_curve"].append({"inner_step": 99.0})
    info["validation_success"] = -1.0
    again = env.step("g2 + g1")[4]  # the cache answers
    assert again["cache_hit"] is True and len(fake.calls) == 1
    assert {k: again[k] for k in expected} == expected


def test_budget_truncates_and_further_steps_need_reset() -> None:
    env, _ = _env(budget=2)
    env.reset(seed=0)
    assert env.step("g1")[3] is False
    assert env.step("g2")[3] is True
    with pytest.raises(RuntimeError, match="reset"):
        env.step("g3")
    obs, _ = env.reset(seed=1)
    assert obs["history_length"] == 0


def test_evaluate_test_reports_test_success() -> None:
    env, _ = _env()
    env.reset(seed=0)
    out = env.unwrapped.evaluate_test("g1 + g2")
    assert out["test_success"] == 0.5 and out["n_test"] == 4
    # a test training is charged the inner steps of a meta-step's training (no restarts here)
    assert out["cost"]["inner_steps"] == 3 and out["cost"]["rollouts"] == 4


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        gymnasium.make("DERL-GSM8K-v0", preset="turbo")


def test_missing_data_names_the_path_and_the_fix(tmp_path) -> None:  # noqa: ANN001
    from derl_bench.envs.data import DataFileMissing

    with pytest.raises(DataFileMissing, match="DERL_BENCH_DATA") as error:
        gymnasium.make("DERL-GSM8K-v0", preset="smoke", data_dir=str(tmp_path))
    assert str(tmp_path) in str(error.value)


def test_paper_preset_is_configured_but_not_loaded_on_make() -> None:
    env = gymnasium.make("DERL-MATH-v0", preset="paper", include_gsm8k_train=True)
    config = env.unwrapped.trainer.config
    assert config.model == "Qwen/Qwen2.5-3B" and config.group_size == 5
    assert len(env.unwrapped.trainer.test) == 500  # MATH-500


def test_warm_start_trains_from_the_checkpoint_and_is_part_of_the_cache_key(tmp_path) -> None:  # noqa: ANN001
    env, fake = _env()
    env.reset(seed=0)
    env.step("g1")
    env.unwrapped.set_warm_start(str(tmp_path))
    _, _, _, _, info = env.step("g1")
    assert fake.inits == [None, str(tmp_path)]
    assert info["cache_hit"] is False and info["warm_start"] == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="keep_checkpoints"):
        env.unwrapped.set_warm_start(str(tmp_path / "missing"))
    env.reset(seed=0)
    env.step("g2")
    assert fake.inits[-1] is None  # reset clears the warm start


def test_hub_data_source_without_hub_access_is_a_clear_error(monkeypatch) -> None:  # noqa: ANN001
    from derl_bench.envs import gsm8k
    from derl_bench.envs.data import DataSourceUnavailable

    gsm8k._load_hf.cache_clear()
    with pytest.raises(DataSourceUnavailable):
        gymnasium.make("DERL-GSM8K-v0", preset="smoke", data_source="hf")


def test_each_env_records_the_data_files_its_own_domain_read() -> None:
    from derl_bench.envs.data import EXPECTED_SHA256, data_hashes

    gsm8k = gymnasium.make("DERL-GSM8K-v0", preset="smoke").unwrapped
    math = gymnasium.make("DERL-MATH-v0", preset="smoke").unwrapped
    cartpole = gymnasium.make("DERL-CartPole-v1", preset="smoke").unwrapped
    # GSM8K: its train and test files, not the MATH files the process read after it
    assert gsm8k.data_hashes == {
        name: EXPECTED_SHA256[name] for name in ("gsm8k/test.jsonl", "gsm8k/train.jsonl")
    }
    # MATH: its train and test files, and GSM8K train, which its `tiny` policy is warmed up on
    assert math.data_hashes == {
        name: EXPECTED_SHA256[name]
        for name in ("gsm8k/train.jsonl", "math/math500.jsonl", "math/train.parquet")
    }
    assert cartpole.data_hashes == {}  # simulated: reads no data file
    assert set(data_hashes()) >= set(gsm8k.data_hashes) | set(math.data_hashes)  # process-wide
