"""Where the benchmark's data files live, how they are checked, and the D_in / V split.

The data sets (GSM8K, MATH) are read from a local folder, by default ``../shared/data`` beside the
checkout (see ``/work/shared/data/README.md``); nothing is copied into the repository. Every file
a loader reads is checked against a SHA-256 embedded here. :func:`recording_data_files` collects
the files located inside a ``with`` block (the env records the files its domain read, and result
files carry them); :func:`data_hashes` reports every file located in this process.

The validation split follows DERL v2 (arXiv 2512.13399v2): the original training set
``D_train^orig`` is "split at random 8:2" into the inner training pool ``D_in`` and the
validation set ``V`` whose success rate is the outer reward.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "DATA_ENV_VAR",
    "EXPECTED_SHA256",
    "ChecksumMismatch",
    "DataFileMissing",
    "DataSourceUnavailable",
    "SplitPool",
    "data_file",
    "data_hashes",
    "data_root",
    "file_sha256",
    "files_digest",
    "note_data",
    "recording_data_files",
    "hf_rows",
    "split_pool",
    "verify_sha256",
]

DATA_ENV_VAR = "DERL_BENCH_DATA"
"""Environment variable naming the data folder (the one holding ``gsm8k/`` and ``math/``)."""

EXPECTED_SHA256: dict[str, str] = {
    "gsm8k/train.jsonl": "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
    "gsm8k/test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
    "math/train.parquet": "86605991e93cdf2d138bfbc7956d8328f0bb3e16603b33e0c96ceac5742193f3",
    "math/math500.jsonl": "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
    "math/test.jsonl": "3371949f33dd702d04b43fddd7d53a028de0aaca0e76abb1b875a050297b3aa4",
    "alfworld/json_2.1.1/valid_train": (
        "e67aa04069828504bfb2db206e6c7b446c7cae91a961cc76b3b969708b4a8621"
    ),
    "alfworld/json_2.1.1/valid_seen": (
        "563722401415955f6d607ea63323e331a14e4210b079b7c4daba2e20b15bc840"
    ),
    "alfworld/json_2.1.1/valid_unseen": (
        "a92eebcbf0fc1644b8de15715d11dc3f4d246ec17bc53aa0578817eb9a9efd00"
    ),
}
"""SHA-256 (hex) of every data file a loader reads, keyed by path relative to the data root.

A folder (ALFWorld's splits, hundreds of game files) has the :func:`files_digest` of the files
read from it. Source: ``/work/shared/data/SHA256SUMS`` (the folder digests are of its lines for
that folder; ``tests/test_data.py`` recomputes them).
"""


class DataFileMissing(FileNotFoundError):
    """A data file is not where the loader looked for it.

    The message names the full path looked for and how to fix it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"Data file not found: {path}. Set the environment variable {DATA_ENV_VAR} to the "
            f"folder holding gsm8k/ and math/ (e.g. {DATA_ENV_VAR}=/path/to/shared/data), or pass "
            "data_dir=..., or load with source='hf' if you have Hugging Face Hub access."
        )


class ChecksumMismatch(ValueError):
    """A data file's SHA-256 differs from the one embedded in :data:`EXPECTED_SHA256`."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"SHA-256 mismatch for {path}: expected {expected}, got {actual}. The file is "
            "corrupt or a different version; restore it or pass verify=False to load it anyway."
        )


class DataSourceUnavailable(RuntimeError):
    """A remote source (``source="hf"``) could not be loaded; the local files are the fix."""


class SplitPool(NamedTuple):
    """The two disjoint parts of a training set (DERL, arXiv 2512.13399v2).

    Attributes:
        d_in: The inner training pool ``D_in`` (about ``ratio`` of the records), in the records'
            original order.
        val: The validation set ``V`` (the rest), in the records' original order.
    """

    d_in: tuple[Any, ...]
    val: tuple[Any, ...]


_HASH_LOCK = threading.Lock()
_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_USED_LOCK = threading.Lock()
_USED_FILES: dict[str, str] = {}
_RECORDERS: ContextVar[tuple[dict[str, str], ...]] = ContextVar(
    "derl_bench_data_recorders", default=()
)


def _repo_data_dir() -> Path:
    # derl_bench/envs/data.py -> parents: envs, derl_bench, <checkout>, <checkout's parent>.
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder holding the data sets (``gsm8k/``, ``math/``, ...).

    Resolution order: the ``data_dir`` argument; else the environment variable
    ``DERL_BENCH_DATA`` (if set and non-empty); else ``../shared/data`` beside the repository
    checkout; else ``./shared/data`` or ``../shared/data`` relative to the working directory.
    Among the fallbacks the first existing folder wins; if none exists the checkout-relative
    path is returned, so that errors name it.

    Args:
        data_dir: Explicit data folder; ``~`` is expanded.

    Returns:
        The data folder as an absolute path. It is not checked to exist when given explicitly
        or through the environment variable.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(DATA_ENV_VAR, "")
    if env:
        return Path(env).expanduser().resolve()
    candidates = [
        _repo_data_dir(),
        Path.cwd() / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return candidates[0]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file, hashing it at most once per process.

    The cache key is (absolute path, mtime in ns, size in bytes), so a file rewritten in place
    is hashed again.

    Args:
        path: The file to hash.

    Returns:
        The digest as 64 lowercase hex characters.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_mtime_ns, stat.st_size)
    with _HASH_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with resolved.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = value
    return value


def verify_sha256(path: str | os.PathLike[str], expected: str) -> None:
    """Check a file against an expected SHA-256 (hashed once per process, see file_sha256).

    Args:
        path: The file to check.
        expected: The expected digest, hex (case-insensitive).

    Raises:
        ChecksumMismatch: If the digest differs.
        FileNotFoundError: If ``path`` does not exist.
    """
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ChecksumMismatch(Path(path), expected.lower(), actual)


def data_file(
    relpath: str, *, data_dir: str | os.PathLike[str] | None = None, verify: bool = True
) -> Path:
    """Locate one data file, check it, and note it for :func:`data_hashes`.

    Args:
        relpath: Path relative to the data root, e.g. ``"gsm8k/train.jsonl"``.
        data_dir: Data folder; ``None`` resolves it with :func:`data_root`.
        verify: Check the file against :data:`EXPECTED_SHA256` (files not listed there are
            not checked).

    Returns:
        The absolute path of the file.

    Raises:
        DataFileMissing: If the file does not exist.
        ChecksumMismatch: If ``verify`` and the digest differs from the embedded one.
    """
    path = data_root(data_dir) / relpath
    if not path.is_file():
        raise DataFileMissing(path)
    if verify and relpath in EXPECTED_SHA256:
        verify_sha256(path, EXPECTED_SHA256[relpath])
    note_data(relpath, file_sha256(path))  # cached: free after verification
    return path


def files_digest(files: Mapping[str, str]) -> str:
    """One SHA-256 for a set of files: of their ``sha256sum`` lines, sorted by path.

    Args:
        files: ``{path relative to the data root: sha256 hex}``.

    Returns:
        The SHA-256 (hex) of the line ``<sha256>  ./<path>`` (newline-terminated) for each file
        in path order: the lines ``sha256sum`` prints (and ``SHA256SUMS`` holds) for them.
    """
    text = "".join(f"{files[name]}  ./{name}\n" for name in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


def note_data(relpath: str, digest: str) -> None:
    """Note that a loader read ``relpath`` (a file, or a folder with its :func:`files_digest`).

    :func:`data_hashes` and every active :func:`recording_data_files` block see it.

    Args:
        relpath: Path relative to the data root, e.g. ``"gsm8k/train.jsonl"``.
        digest: Its SHA-256, hex.
    """
    with _USED_LOCK:
        _USED_FILES[relpath] = digest
    for recorder in _RECORDERS.get():
        recorder[relpath] = digest


@contextmanager
def recording_data_files() -> Iterator[dict[str, str]]:
    """Collect the data files :func:`data_file` locates inside the ``with`` block.

    Blocks nest (an outer block sees its inner blocks' files) and are local to the thread or
    asyncio task (a :class:`contextvars.ContextVar`), so two envs built side by side in one
    process each see only their own files. Files located in another process (a process or Ray
    executor's worker) are not seen: record where the data is loaded.

    Yields:
        A dict ``{path relative to the data root: sha256 hex}``, filled as files are located
        (the same digests :func:`data_hashes` reports).
    """
    files: dict[str, str] = {}
    token = _RECORDERS.set((*_RECORDERS.get(), files))
    try:
        yield files
    finally:
        _RECORDERS.reset(token)


def data_hashes() -> dict[str, str]:
    """Return the SHA-256 of every data file located by a loader so far in this process.

    Process state: it includes files other envs of the same process read. A result file carries
    its env's own files (``MetaRewardEnv.data_hashes``, from :func:`recording_data_files`).

    Returns:
        ``{path relative to the data root: sha256 hex}``, sorted by path; each digest is the
        file's content when it was located. If the same relative path was read from two data
        roots, the last one wins.
    """
    with _USED_LOCK:
        return dict(sorted(_USED_FILES.items()))


def hf_rows(path: str, name: str | None, split: str) -> list[dict[str, Any]]:
    """Load one split of a Hugging Face Hub data set as a list of row dicts.

    ``datasets`` is imported here, lazily (it is part of the ``llm`` extra).

    Args:
        path: Hub data set id, e.g. ``"openai/gsm8k"``.
        name: Configuration name (``"main"`` for GSM8K) or ``None``.
        split: Split name, e.g. ``"train"``.

    Returns:
        The rows, in the data set's order.

    Raises:
        DataSourceUnavailable: If ``datasets`` is not installed or the Hub cannot be reached;
            the message points to the local files.
    """
    hint = (
        f"Use the local files instead: source='local' with {DATA_ENV_VAR} or data_dir=... "
        "pointing at the folder holding gsm8k/ and math/ (see shared/data/README.md)."
    )
    try:
        import datasets
    except ImportError as exc:
        raise DataSourceUnavailable(
            f"source='hf' needs the 'datasets' package (pip install 'derl-bench[llm]'). {hint}"
        ) from exc
    try:
        ds = datasets.load_dataset(path, name, split=split)
        return [dict(row) for row in ds]
    except Exception as exc:  # network, auth, missing split: all mean "use the local files"
        raise DataSourceUnavailable(
            f"Could not load {path!r} (config {name!r}, split {split!r}) from the Hugging Face "
            f"Hub: {type(exc).__name__}: {exc}. {hint}"
        ) from exc


def split_pool(records: Sequence[Any], *, ratio: float = 0.8, seed: int = 0) -> SplitPool:
    """Split a training set at random into ``D_in`` and ``V`` (DERL v2: "split at random 8:2").

    A fixed-seed permutation from ``numpy.random.default_rng(seed)`` (PCG64) picks the
    ``floor(ratio * n)`` records of ``D_in``; the rest form ``V``. Both parts keep the records'
    original order. The result depends only on ``len(records)``, ``ratio`` and ``seed``, so it is
    the same in every process and on every platform (for a given NumPy stream; the tests pin it).

    Args:
        records: The original training set ``D_train^orig``, length n.
        ratio: Fraction of records in ``D_in``, in (0, 1).
        seed: Seed of the permutation.

    Returns:
        ``SplitPool(d_in=..., val=...)``; ``len(d_in) == floor(ratio * n)``,
        ``len(val) == n - len(d_in)``, disjoint, together all records.

    Raises:
        ValueError: If ``ratio`` is not in (0, 1).
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio!r}")
    items = tuple(records)
    n = len(items)
    n_in = math.floor(ratio * n + 1e-9)
    perm = np.random.default_rng(seed).permutation(n)
    in_idx = np.sort(perm[:n_in])
    val_idx = np.sort(perm[n_in:])
    return SplitPool(
        d_in=tuple(items[i] for i in in_idx.tolist()),
        val=tuple(items[i] for i in val_idx.tolist()),
    )
