"""Inner loop: GRPO training of a policy under a meta-reward (DESIGN.md "Inner loop").

Submodules load torch/transformers/TRL lazily; importing this package is light.
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

__all__ = [
    "DEFAULT_PRESET",
    "PRESET_NAMES",
    "Cost",
    "EvalResult",
    "InnerResult",
    "InnerTrainer",
]
