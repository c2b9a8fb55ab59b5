"""DERL's Meta-Optimizer for the ``cpu`` preset: a small LM over meta-rewards and its training.

One module per role: :mod:`.config` (settings and presets), :mod:`.vocab` and :mod:`.model`
(character-level GRU LM), :mod:`.viability` (the grammar mask) and :mod:`.constrained`
(constrained sampling), :mod:`.corpus` and :mod:`.sft` (cold start), :mod:`.outer_update` (the
outer GRPO update). The agents that use them are :mod:`derl_bench.baselines.derl` and
:mod:`derl_bench.baselines.derl_pop`. Needs torch (the ``llm`` extra).
"""

from __future__ import annotations

from derl_bench.baselines.meta_optimizer.config import PRESETS, DERLConfig, config_for_preset
from derl_bench.baselines.meta_optimizer.constrained import ConstrainedSample, sample_constrained
from derl_bench.baselines.meta_optimizer.corpus import SHAPES, generate_corpus
from derl_bench.baselines.meta_optimizer.model import CharLM, build_model, torch_threads
from derl_bench.baselines.meta_optimizer.outer_update import (
    GRPOStats,
    group_advantages,
    grpo_update,
    masked_entropy,
    token_log_probs,
)
from derl_bench.baselines.meta_optimizer.sft import train_sft
from derl_bench.baselines.meta_optimizer.viability import (
    SAMPLED_NUMBER,
    GrammarConstraint,
    PrefixState,
)

__all__ = [
    "PRESETS",
    "SAMPLED_NUMBER",
    "SHAPES",
    "CharLM",
    "ConstrainedSample",
    "DERLConfig",
    "GRPOStats",
    "GrammarConstraint",
    "PrefixState",
    "build_model",
    "config_for_preset",
    "generate_corpus",
    "group_advantages",
    "grpo_update",
    "masked_entropy",
    "sample_constrained",
    "token_log_probs",
    "torch_threads",
    "train_sft",
]
