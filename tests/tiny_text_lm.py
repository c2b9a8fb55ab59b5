"""TEST HELPER: a random 2-layer Qwen2 (about 30 k parameters) with a 300-token BPE trained on
the given texts in seconds; for the LM-agent code path (no pretrained weights, no hub)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def tiny_text_lm(texts: Sequence[str], *, max_position_embeddings: int) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)``: random weights (seed 0), tokenizer trained on ``texts``."""
    from derl_bench.inner.tiny_lm import TinyLMConfig, _build_model, _train_tokenizer

    tokenizer = _train_tokenizer(list(texts), vocab_size=300)
    config = TinyLMConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        seed=0,
    )
    return _build_model(config, tokenizer), tokenizer
