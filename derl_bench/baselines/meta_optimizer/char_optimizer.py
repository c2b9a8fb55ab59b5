"""The char-level GRU Meta-Optimizer: a cheap ablation, not the paper's method.

A ~66k-parameter character-level GRU (:mod:`.model`) trained from scratch: SFT on the generated
corpus, character-level grammar-constrained sampling (:mod:`.constrained`) and the outer GRPO
step (:mod:`.outer_update`). Unlike the paper's Meta-Optimizer it sees no instruction: it
models p(meta-reward) unconditionally. Select it with ``backbone="char-gru"``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from derl_bench.baselines.meta_optimizer.config import DERLConfig
from derl_bench.baselines.meta_optimizer.constrained import ConstrainedSample, sample_constrained
from derl_bench.baselines.meta_optimizer.corpus import generate_corpus
from derl_bench.baselines.meta_optimizer.model import build_model, torch_threads
from derl_bench.baselines.meta_optimizer.outer_update import GRPOStats, grpo_update
from derl_bench.baselines.meta_optimizer.sft import train_sft
from derl_bench.baselines.meta_optimizer.viability import GrammarConstraint

__all__ = ["CharGRUMetaOptimizer"]


class CharGRUMetaOptimizer:
    """Char-level GRU LM over meta-rewards with cold-start SFT done at construction.

    Args:
        settings: The validated configuration (``backbone="char-gru"``).
        primitive_names: The env's primitive names.
        seed: Seeds the corpus, initialisation, SFT batches and sampling.

    Attributes:
        corpus: The cold-start corpus.
        sft_losses: Cross-entropy per SFT step, nats per character.
    """

    def __init__(self, settings: DERLConfig, primitive_names: Sequence[str], seed: int) -> None:
        self.settings = settings
        self.constraint = GrammarConstraint(primitive_names)
        init_seed, sft_seed, sample_seed = np.random.SeedSequence(seed).generate_state(3)
        self.corpus = generate_corpus(
            self.constraint.primitive_names, settings.corpus_size, seed=int(init_seed)
        )
        with torch_threads(settings.num_threads):
            self.policy = build_model(settings, seed=int(init_seed))
            self.sft_losses = train_sft(
                self.policy,
                self.corpus,
                steps=settings.sft_steps,
                batch_size=settings.sft_batch_size,
                lr=settings.sft_lr,
                generator=torch.Generator().manual_seed(int(sft_seed)),
                max_grad_norm=settings.max_grad_norm,
            )
        self.reference = copy.deepcopy(self.policy).eval()
        self.reference.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=settings.lr)
        self._generator = torch.Generator().manual_seed(int(sample_seed))

    def sample(self, observation: Any, n: int) -> list[ConstrainedSample]:
        """Draw ``n`` constrained samples; the observation is ignored (no prompt)."""
        del observation
        with torch_threads(self.settings.num_threads):
            return sample_constrained(
                self.policy,
                self.constraint,
                n,
                temperature=self.settings.temperature,
                max_chars=self.settings.max_chars,
                generator=self._generator,
                max_resample_rounds=self.settings.max_resample_rounds,
            )

    def update(self, samples: Sequence[ConstrainedSample], rewards: Sequence[float]) -> GRPOStats:
        """One outer GRPO update (see :func:`.outer_update.grpo_update`)."""
        with torch_threads(self.settings.num_threads):
            return grpo_update(
                self.policy, self.reference, self.optimizer, samples, rewards, self.settings
            )
