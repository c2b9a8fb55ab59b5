"""Configuration of the DERL Meta-Optimizer: one frozen dataclass and its two presets.

Presets (issue 6; PAPER_FACTS.md §1):

* ``cpu``: a character-level GRU language model over the meta-reward alphabet, trained from
  scratch (cold-start SFT on a generated corpus, then outer GRPO) in seconds on a CPU.
* ``paper``: the paper's Meta-Optimizer, Qwen2.5-0.5B-Instruct with lr 1e-6, 4 PPO epochs and
  KL 0.001 (official ``run_qwen2_5_05b_instr_math_meta_rl.sh``). Configuration only: this
  package does not load or train it (it needs a GPU backend).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from derl_bench.meta_reward import MAX_LENGTH

__all__ = ["PRESETS", "DERLConfig", "config_for_preset"]


@dataclass(frozen=True, kw_only=True)
class DERLConfig:
    """Every tunable of the Meta-Optimizer (model, cold start, decoding, outer GRPO).

    Raises:
        ValueError: From ``__post_init__`` if a field is out of range; the message quotes it.
    """

    preset: str = "cpu"
    """Name of the preset these values came from: ``"cpu"`` or ``"paper"``."""
    backbone: str = "char-gru"
    """The language model: ``"char-gru"`` (trained from scratch) or a Hugging Face model id."""
    embed_dim: int = 32
    """Character embedding width of the GRU model, in units."""
    hidden_size: int = 128
    """GRU hidden state width, in units."""
    num_layers: int = 1
    """Number of stacked GRU layers."""
    corpus_size: int = 300
    """Cold-start corpus records (generated, seeded); the official corpus has 206."""
    sft_steps: int = 200
    """Cold-start SFT optimizer steps (teacher-forced cross-entropy on the corpus)."""
    sft_batch_size: int = 32
    """Corpus records per SFT step."""
    sft_lr: float = 3e-3
    """Adam learning rate of the cold-start SFT."""
    temperature: float = 0.7
    """Sampling temperature (official ``constrained_rollout.py``: 0.7, top_p 1.0)."""
    max_chars: int = 128
    """Longest sample in characters, <= 512 (official rollouts: max_tokens 128)."""
    max_resample_rounds: int = 20
    """How many times samples that end invalid (e.g. non-finite on the probes) are redrawn."""
    lr: float = 3e-3
    """Adam learning rate of the outer GRPO update (paper: 1e-6 on the 0.5B model)."""
    ppo_epochs: int = 4
    """Optimizer steps per outer update over the whole group (official: ppo_epochs 4)."""
    clip_ratio: float = 0.2
    """PPO clip range epsilon of the surrogate (verl default 0.2)."""
    kl_coef: float = 0.001
    """Coefficient of the per-token KL to the SFT model, k3 estimator (official: 0.001)."""
    entropy_coef: float = 0.0
    """Coefficient of the entropy bonus (official: 0)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip of the outer update (verl default 1.0)."""
    advantage_eps: float = 1e-6
    """Added to the group std in (r - mean) / (std + eps) (paper Eq. 5)."""
    num_threads: int = 1
    """torch intra-op threads while the agent computes (0: leave torch's setting alone)."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset={self.preset!r} is not one of {sorted(PRESETS)}")
        positive_ints = (
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
        for name in ("sft_steps", "num_threads"):
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
        "lr": 1e-6,
        "ppo_epochs": 4,
        "kl_coef": 0.001,
        "entropy_coef": 0.0,
        "temperature": 0.7,
    },
}
"""Field values of each preset on top of the defaults (paper values: PAPER_FACTS.md §1)."""


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
    return DERLConfig(preset=preset, **{**PRESETS[preset], **overrides})
