"""DERL's Meta-Optimizer: an LLM over meta-rewards and its training (and a char-GRU ablation).

One module per role: :mod:`.config` (settings and presets); the LLM: :mod:`.lm` (loading, the
official instruction, sampling, log-probs), :mod:`.token_grammar` (token-level constrained
decoding with llguidance), :mod:`.llm_optimizer` (cold start, sampling, outer update),
:mod:`.parse_rate` (the parse-share measurement); shared: :mod:`.corpus` (cold-start corpus and
its shape statistics), :mod:`.outer_update` (the outer GRPO step, Eq. 5 advantages); the
char-GRU ablation: :mod:`.vocab`, :mod:`.model`, :mod:`.viability`, :mod:`.constrained`,
:mod:`.sft`, :mod:`.char_optimizer`. The agents that use them are
:mod:`derl_bench.baselines.derl` and :mod:`derl_bench.baselines.derl_pop`. Needs torch (the
``llm`` extra).
"""

from __future__ import annotations

from derl_bench.baselines.meta_optimizer.config import (
    CHAR_GRU,
    PRESETS,
    DERLConfig,
    config_for_preset,
)
from derl_bench.baselines.meta_optimizer.constrained import ConstrainedSample, sample_constrained
from derl_bench.baselines.meta_optimizer.corpus import SHAPES, generate_corpus, shape_statistics
from derl_bench.baselines.meta_optimizer.model import CharLM, build_model, torch_threads
from derl_bench.baselines.meta_optimizer.outer_update import (
    GRPOStats,
    group_advantages,
    grpo_step,
    grpo_update,
    masked_entropy,
    outer_advantages,
    token_log_probs,
)
from derl_bench.baselines.meta_optimizer.sft import train_sft
from derl_bench.baselines.meta_optimizer.viability import (
    SAMPLED_NUMBER,
    GrammarConstraint,
    PrefixState,
)

__all__ = [
    "CHAR_GRU",
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
    "grpo_step",
    "grpo_update",
    "outer_advantages",
    "masked_entropy",
    "sample_constrained",
    "shape_statistics",
    "token_log_probs",
    "torch_threads",
    "train_sft",
]
