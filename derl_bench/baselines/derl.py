"""DERL's Meta-Optimizer as an outer agent: a language model over meta-rewards, trained by GRPO.

DERL (arXiv 2512.13399, §3.2; PAPER_FACTS.md §1) samples a group of n = 8 meta-rewards from a
small LM each outer iteration, trains one inner policy per meta-reward and uses the validation
success of each as the outer reward of a GRPO step on the LM. Stabilisers, as in the paper:
cold-start SFT on valid examples, token-level constrained decoding and a validity penalty.

This agent, ``cpu`` preset: a character-level GRU (:mod:`.meta_optimizer.model`), SFT on a
generated corpus (:mod:`.meta_optimizer.corpus`, :mod:`.meta_optimizer.sft`), grammar-
constrained sampling so that every proposal parses (:mod:`.meta_optimizer.constrained`), and
the outer GRPO update (:mod:`.meta_optimizer.outer_update`). The ``paper`` preset
(Qwen2.5-0.5B-Instruct, lr 1e-6) exists as configuration only and is not loaded.

Invalid proposals: the official ``fit_outer`` drops rollouts scored -1 (invalid) from the batch
and pads the group back with copies of the first valid one; the paper instead scores them 0. We
follow the code and drop them, without padding (copies would only re-weight one proposal).
With constrained decoding the env never sees an invalid proposal from this agent anyway.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from derl_bench.baselines.base import StepResult
from derl_bench.baselines.meta_optimizer import (
    ConstrainedSample,
    DERLConfig,
    GrammarConstraint,
    GRPOStats,
    build_model,
    config_for_preset,
    generate_corpus,
    grpo_update,
    sample_constrained,
    torch_threads,
    train_sft,
)
from derl_bench.meta_reward import DEFAULT_PRIMITIVES

__all__ = ["DERLAgent"]


class DERLAgent:
    """The DERL Meta-Optimizer (outer GRPO on a meta-reward LM); registry name ``"derl"``.

    Construction builds the model and runs the cold-start SFT (a few seconds on a CPU). Each
    :meth:`propose` draws ``n`` constrained samples (repeats possible; the env caches them) and
    :meth:`update` runs one GRPO update on that group. Everything is seeded from ``seed``: the
    same seed and the same results give the same proposals. Implements
    :class:`~derl_bench.baselines.base.MetaRewardAgent`.

    Args:
        primitive_names: The env's primitive names in order, e.g. ``("g1", "g2", "g3", "g4")``.
        seed: Seeds the corpus, the model's initialisation, SFT batches and sampling.
        preset: ``"cpu"`` (default) or ``"paper"`` (configuration only; raises).
        **config: Overrides of :class:`~derl_bench.baselines.meta_optimizer.DERLConfig` fields,
            e.g. ``lr=1e-3`` or ``sft_steps=100``.

    Attributes:
        settings: The validated :class:`DERLConfig`.
        corpus: The cold-start corpus, tuple of str.
        sft_losses: Cross-entropy per SFT step, nats per character.
        history: One :class:`GRPOStats` per update that trained (groups with < 2 valid
            results are skipped).

    Raises:
        ValueError: If ``primitive_names`` or a configuration value is invalid.
        TypeError: If a configuration key is unknown.
        NotImplementedError: For ``preset="paper"`` (a 0.5B model needs a GPU backend).
    """

    name = "derl"

    def __init__(
        self,
        *,
        primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
        seed: int = 0,
        preset: str = "cpu",
        **config: Any,
    ) -> None:
        self.settings: DERLConfig = config_for_preset(preset, **config)
        if self.settings.backbone != "char-gru":
            raise NotImplementedError(
                f"preset={preset!r} uses backbone {self.settings.backbone!r} (lr "
                f"{self.settings.lr}, {self.settings.ppo_epochs} PPO epochs, KL "
                f"{self.settings.kl_coef}); it is configuration only and needs a GPU backend "
                "that derl_bench does not ship. Use preset='cpu'."
            )
        self.constraint = GrammarConstraint(primitive_names)
        self.primitive_names = self.constraint.primitive_names
        self.seed = int(seed)
        init_seed, sft_seed, sample_seed = np.random.SeedSequence(self.seed).generate_state(3)
        self.corpus = generate_corpus(
            self.primitive_names, self.settings.corpus_size, seed=int(init_seed)
        )
        with torch_threads(self.settings.num_threads):
            self.policy = build_model(self.settings, seed=int(init_seed))
            self.sft_losses = train_sft(
                self.policy,
                self.corpus,
                steps=self.settings.sft_steps,
                batch_size=self.settings.sft_batch_size,
                lr=self.settings.sft_lr,
                generator=torch.Generator().manual_seed(int(sft_seed)),
                max_grad_norm=self.settings.max_grad_norm,
            )
        self.reference = copy.deepcopy(self.policy).eval()
        self.reference.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.settings.lr)
        self._generator = torch.Generator().manual_seed(int(sample_seed))
        self._pending: list[ConstrainedSample] = []
        self.history: list[GRPOStats] = []

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files."""
        return {
            "primitive_names": list(self.primitive_names),
            "seed": self.seed,
            **self.settings.as_dict(),
        }

    def propose(self, observation: Any, n: int) -> list[str]:
        """Sample ``n`` meta-rewards from the Meta-Optimizer under the grammar constraint.

        Args:
            observation: Ignored: the paper's Meta-Optimizer sees only a fixed instruction, so
                the ``cpu`` model is unconditional.
            n: Group size, >= 1.

        Returns:
            ``n`` texts, each accepted by :func:`derl_bench.meta_reward.parse`.

        Raises:
            ValueError: If ``n < 1``.
            RuntimeError: If constrained sampling keeps failing (see ``max_resample_rounds``).
        """
        del observation
        with torch_threads(self.settings.num_threads):
            self._pending = sample_constrained(
                self.policy,
                self.constraint,
                n,
                temperature=self.settings.temperature,
                max_chars=self.settings.max_chars,
                generator=self._generator,
                max_resample_rounds=self.settings.max_resample_rounds,
            )
        return [sample.text for sample in self._pending]

    def update(self, results: list[StepResult]) -> None:
        """Run one GRPO update on the last group with its outer rewards.

        ``results[i]`` must belong to proposal ``i`` of the last :meth:`propose` call. Results
        with ``info["valid"] is False`` or a non-finite reward are dropped (official
        ``fit_outer``); if fewer than 2 remain, nothing is learned this round.

        Args:
            results: The group's meta-step results in proposal order; may be shorter than the
                group when the budget ran out.

        Raises:
            ValueError: If there are more results than pending proposals, or a result's
                ``meta_reward`` is not the proposal at its position.
        """
        pending, self._pending = self._pending, []
        if len(results) > len(pending):
            raise ValueError(
                f"update got {len(results)} results but only {len(pending)} proposals are "
                "pending; call update once per propose, with results in proposal order"
            )
        kept_samples, kept_rewards = [], []
        for i, (sample, result) in enumerate(zip(pending, results, strict=False)):
            if result.meta_reward != sample.text:
                raise ValueError(
                    f"result {i} is for {result.meta_reward!r} but proposal {i} was "
                    f"{sample.text!r}; results must be in proposal order"
                )
            if result.info.get("valid") is False or not math.isfinite(result.reward):
                continue
            kept_samples.append(sample)
            kept_rewards.append(float(result.reward))
        if len(kept_samples) < 2:
            return
        with torch_threads(self.settings.num_threads):
            stats = grpo_update(
                self.policy,
                self.reference,
                self.optimizer,
                kept_samples,
                kept_rewards,
                self.settings,
            )
        self.history.append(stats)
