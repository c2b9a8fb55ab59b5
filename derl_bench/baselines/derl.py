"""DERL's Meta-Optimizer as an outer agent: an LLM over meta-rewards, trained by outer GRPO.

DERL (arXiv 2512.13399, §3.2; PAPER_FACTS.md §1) samples a group of n = 8 meta-rewards from a
small instruction-tuned LM prompted with a fixed task instruction, trains one inner policy per
meta-reward and uses each validation success as the outer reward of a GRPO step on the LM.
Stabilisers, as in the paper: cold-start SFT on valid examples, token-level constrained decoding
and a validity penalty.

Backbones (:class:`~.meta_optimizer.DERLConfig` ``backbone``):

* an LLM (default; :class:`~.meta_optimizer.llm_optimizer.LLMMetaOptimizer`): ``cpu`` preset
  SmolLM2-135M-Instruct with LoRA, ``paper`` preset Qwen2.5-0.5B-Instruct with full
  fine-tuning, or any hub id / local folder, all through the same code path;
* ``"char-gru"`` (:class:`~.meta_optimizer.char_optimizer.CharGRUMetaOptimizer`): a cheap
  ablation, a character-level GRU without a prompt; not the paper's method.

Invalid proposals (``invalid``): ``"zero"`` scores them 0 and keeps them in the group (the
paper: "assigned a reward of 0.0"); ``"drop_pad"`` drops them and pads the group back to its size
with copies of the first valid proposal (official ``ray_trainer.fit_outer``). With constrained
decoding the env never sees an invalid proposal from this agent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from derl_bench.baselines.base import StepResult
from derl_bench.baselines.meta_optimizer import DERLConfig, GRPOStats, config_for_preset
from derl_bench.meta_reward import DEFAULT_PRIMITIVES
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = ["DERLAgent", "prepare_group"]


def prepare_group(
    samples: Sequence[Any], results: Sequence[StepResult], invalid: str
) -> tuple[list[Any], list[float]]:
    """Apply the invalid-proposal rule to a group.

    Args:
        samples: The proposals' samples, in proposal order (at least ``len(results)``).
        results: Their meta-step results (may be shorter than ``samples``: budget ran out).
        invalid: ``"zero"`` (paper: invalid scores 0, kept) or ``"drop_pad"`` (official
            ``fit_outer``: invalid dropped, the group padded to ``len(results)`` with copies of
            the first valid one; nothing when none is valid).

    Returns:
        ``(samples, rewards)`` to train on.
    """
    kept, rewards = [], []
    for sample, result in zip(samples, results, strict=False):
        bad = result.info.get("valid") is False or not math.isfinite(result.reward)
        if bad and invalid == "drop_pad":
            continue
        kept.append(sample)
        rewards.append(0.0 if bad else max(float(result.reward), 0.0))
    if invalid == "drop_pad" and kept:
        while len(kept) < len(results):
            kept.append(kept[0])
            rewards.append(rewards[0])
    return kept, rewards


class DERLAgent:
    """The DERL Meta-Optimizer (outer GRPO on a meta-reward LM); registry name ``"derl"``.

    The LLM backbone loads the model and runs (or loads from the cache) the cold-start SFT on
    the first :meth:`propose`, when the observation gives the primitive descriptions of the
    prompt; the char-gru ablation trains at construction. Each :meth:`propose` draws ``n``
    constrained samples (repeats possible; the env caches them) and :meth:`update` runs one
    GRPO update on that group. Everything is seeded from ``seed``: the same seed and the same
    results give the same proposals. Implements
    :class:`~derl_bench.baselines.base.MetaRewardAgent`.

    Args:
        primitive_names: The env's primitive names in order, e.g. ``("g1", "g2", "g3", "g4")``.
        seed: Seeds the corpus, the model's initialisation, SFT batches and sampling.
        preset: ``"cpu"`` (default; SmolLM2-135M-Instruct + LoRA) or ``"paper"``
            (Qwen2.5-0.5B-Instruct, full fine-tuning, lr 1e-6; needs the model locally).
        model: Optional ``(model, tokenizer)`` to use instead of loading ``backbone``.
        **config: Overrides of :class:`~derl_bench.baselines.meta_optimizer.DERLConfig` fields,
            e.g. ``backbone="char-gru"``, ``lr=1e-5`` or ``advantage="raw"``.

    Attributes:
        settings: The validated :class:`DERLConfig`.
        meta_optimizer: The LLM or char-gru Meta-Optimizer.
        history: One :class:`GRPOStats` per update that trained (groups left with fewer than 2
            samples under ``advantage="group"``, or none, are skipped).

    Raises:
        ValueError: If ``primitive_names`` or a configuration value is invalid.
        TypeError: If a configuration key is unknown.
    """

    name = "derl"

    def __init__(
        self,
        *,
        primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
        seed: int = 0,
        preset: str = "cpu",
        model: tuple[Any, Any] | None = None,
        **config: Any,
    ) -> None:
        self.settings: DERLConfig = config_for_preset(preset, **config)
        self.primitive_names = check_primitive_names(primitive_names)
        self.seed = int(seed)
        if self.settings.backbone == "char-gru":
            from derl_bench.baselines.meta_optimizer.char_optimizer import CharGRUMetaOptimizer

            self.meta_optimizer: Any = CharGRUMetaOptimizer(
                self.settings, self.primitive_names, self.seed
            )
        else:
            from derl_bench.baselines.meta_optimizer.llm_optimizer import LLMMetaOptimizer

            self.meta_optimizer = LLMMetaOptimizer(
                self.settings, self.primitive_names, self.seed, model=model
            )
        self._pending: list[Any] = []
        self.history: list[GRPOStats] = []

    @property
    def corpus(self) -> tuple[str, ...]:
        """The cold-start corpus (tuple of str)."""
        return self.meta_optimizer.corpus

    @property
    def sft_losses(self) -> list[float]:
        """Cross-entropy per cold-start SFT step (empty when loaded from the cache)."""
        return self.meta_optimizer.sft_losses

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
            observation: The env observation; the LLM's prompt uses its primitive
                descriptions (fixed for the run). The char-gru ablation ignores it.
            n: Group size, >= 1 (the paper: 8).

        Returns:
            ``n`` texts; with constrained decoding each is accepted by
            :func:`derl_bench.meta_reward.parse`.

        Raises:
            ValueError: If ``n < 1``.
            RuntimeError: If constrained sampling keeps getting stuck (see
                ``max_resample_rounds``).
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self._pending = list(self.meta_optimizer.sample(observation, n))
        return [sample.text for sample in self._pending]

    def update(self, results: list[StepResult]) -> None:
        """Run one outer GRPO update on the last group with its outer rewards.

        ``results[i]`` must belong to proposal ``i`` of the last :meth:`propose` call. Invalid
        results are handled by ``invalid`` (:func:`prepare_group`); under
        ``advantage="group"`` a group of fewer than 2 is skipped (no std).

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
        for i, (sample, result) in enumerate(zip(pending, results, strict=False)):
            if result.meta_reward != sample.text:
                raise ValueError(
                    f"result {i} is for {result.meta_reward!r} but proposal {i} was "
                    f"{sample.text!r}; results must be in proposal order"
                )
        samples, rewards = prepare_group(pending, results, self.settings.invalid)
        minimum = 2 if self.settings.advantage == "group" else 1
        if len(samples) < minimum:
            return
        self.history.append(self.meta_optimizer.update(samples, rewards))
