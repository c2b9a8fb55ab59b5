"""Inner loop: GRPO training of a policy under a meta-reward (DESIGN.md "Inner loop").

Submodules load torch/transformers/TRL lazily; importing this package is light.
"""

from __future__ import annotations

from derl_bench.inner.base import Cost, EvalResult, InnerResult, InnerTrainer
from derl_bench.inner.presets import PRESET_NAMES, LMGRPOConfig, math_preset

__all__ = [
    "PRESET_NAMES",
    "Cost",
    "EvalResult",
    "InnerResult",
    "InnerTrainer",
    "LMGRPOConfig",
    "math_preset",
]
