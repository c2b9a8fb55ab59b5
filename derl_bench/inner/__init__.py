"""Inner loop: GRPO training of a policy under a meta-reward (DESIGN.md "Inner loop").

Two trainers, each a ``*_config.py`` beside its ``*_trainer.py`` (TRL's habit): the LM GRPO
with TRL (math domains) and the compact episode GRPO (classic control, text agents). Submodules
load torch/transformers/TRL lazily; importing this package is light.
"""

from __future__ import annotations

from derl_bench.inner.base import (
    DEFAULT_PRESET,
    PRESET_NAMES,
    Cost,
    EvalResult,
    InnerResult,
    InnerTrainer,
)
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig
from derl_bench.inner.episode_presets import episode_preset
from derl_bench.inner.lm_grpo_config import LMGRPOConfig
from derl_bench.inner.lm_presets import lm_preset

__all__ = [
    "DEFAULT_PRESET",
    "PRESET_NAMES",
    "Cost",
    "EpisodeGRPOConfig",
    "EvalResult",
    "InnerResult",
    "InnerTrainer",
    "LMGRPOConfig",
    "episode_preset",
    "lm_preset",
]
