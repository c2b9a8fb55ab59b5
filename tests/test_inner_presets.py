from __future__ import annotations

import pytest

from derl_bench.inner.base import PRESET_NAMES
from derl_bench.inner.lm_grpo_config import LMGRPOConfig
from derl_bench.inner.lm_presets import lm_preset


def test_paper_preset_matches_the_papers_math_setting() -> None:
    # PAPER_FACTS.md §1, "Math code": Qwen2.5-3B, group 5, lr 1e-6, KL 0.001, 512 tokens,
    # train batch 1024 prompts.
    paper = lm_preset("gsm8k", "paper")
    assert paper.model == "Qwen/Qwen2.5-3B"
    assert paper.group_size == 5
    assert paper.learning_rate == 1e-6
    assert paper.beta == 0.001
    assert paper.max_completion_length == 512
    assert paper.tasks_per_step == 1024
    assert paper.temperature == 1.0


def test_every_preset_exists_and_cpu_uses_the_offline_model() -> None:
    assert set(PRESET_NAMES) == {"smoke", "cpu", "paper"}
    assert lm_preset("gsm8k", "cpu").model == "smollm2-135m"
    assert lm_preset("gsm8k", "smoke").model == "tiny"


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        lm_preset("gsm8k", "fast")


@pytest.mark.parametrize(
    ("field", "value"),
    [("group_size", 1), ("max_steps", 0), ("learning_rate", 0.0), ("beta", -0.1), ("n_val", 0)],
)
def test_config_rejects_bad_values_quoting_them(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field}={value}"):
        lm_preset("gsm8k", "smoke").with_overrides(**{field: value})


def test_override_of_unknown_field_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        lm_preset("gsm8k", "smoke").with_overrides(group=3)


def test_config_is_frozen() -> None:
    config = lm_preset("gsm8k", "smoke")
    assert isinstance(config, LMGRPOConfig)
    with pytest.raises(AttributeError):
        config.max_steps = 3  # type: ignore[misc]


def test_step_score_option_is_alfworld_only_and_checked() -> None:
    from derl_bench.inner.episode_presets import episode_preset

    assert episode_preset("alfworld", "cpu", {"step_score": "all"}, version=1).step_score == "all"
    with pytest.raises(ValueError, match="ALFWorld setting.*Drop the step_score"):
        episode_preset("scienceworld", "cpu", {"step_score": "all"}, version=6)
    with pytest.raises(ValueError, match="'mean' or 'all'.*'sum'"):
        episode_preset("alfworld", "cpu", {"step_score": "sum"}, version=1)
