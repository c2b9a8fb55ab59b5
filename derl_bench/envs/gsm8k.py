"""GSM8K loader (Cobbe et al., 2021; the ``openai/gsm8k`` "main" data set used by DERL).

Local files: ``gsm8k/{train,test}.jsonl`` from github.com/openai/grade-school-math, fields
``question`` and ``answer`` (a worked solution whose last line is ``#### N``).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Literal

from derl_bench.envs.data import data_file, hf_rows
from derl_bench.envs.records import MathRecord

__all__ = ["GSM8K_ROWS", "gsm8k_final_answer", "load_gsm8k"]

GSM8KSplit = Literal["train", "test"]

GSM8K_ROWS: dict[str, int] = {"train": 7473, "test": 1319}
"""Number of rows per split (Cobbe et al., 2021)."""


def gsm8k_final_answer(solution: str) -> str:
    """Return the final answer of a GSM8K solution: the text after the last ``####``.

    The text is stripped and thousands separators are removed (``"1,000"`` -> ``"1000"``), as in
    verl's ``gsm8k.py`` preprocessing and ``meta_reward_grpo.py``'s ``extract_solution_gsm8k``.

    Args:
        solution: A GSM8K ``answer`` field.

    Returns:
        The final answer, e.g. ``"72"``.

    Raises:
        ValueError: If the solution has no ``####``.
    """
    if "####" not in solution:
        raise ValueError(f"GSM8K solution has no '####' line: {solution[-80:]!r}")
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


def _rows_to_records(rows: list[dict[str, str]], split: str) -> tuple[MathRecord, ...]:
    return tuple(
        MathRecord(
            uid=f"gsm8k/{split}/{i}",
            source="gsm8k",
            question=row["question"],
            answer=gsm8k_final_answer(row["answer"]),
            solution=row["answer"],
        )
        for i, row in enumerate(rows)
    )


@functools.cache
def _load_local(path: str, split: str, mtime_ns: int, size: int) -> tuple[MathRecord, ...]:
    del mtime_ns, size  # part of the cache key only: a rewritten file is read again
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return _rows_to_records(rows, split)


@functools.cache
def _load_hf(split: str) -> tuple[MathRecord, ...]:
    return _rows_to_records(hf_rows("openai/gsm8k", "main", split), split)


def load_gsm8k(
    split: GSM8KSplit,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    source: Literal["local", "hf"] = "local",
    verify: bool = True,
) -> tuple[MathRecord, ...]:
    """Load one GSM8K split as :class:`MathRecord` s (cached per file and split in-process).

    Each record has ``uid="gsm8k/<split>/<row index>"``, ``source="gsm8k"``, the bare
    ``question``, ``answer`` = the text after ``####`` without commas, and ``solution`` = the
    full ``answer`` field (including its ``#### N`` line).

    Args:
        split: ``"train"`` (7,473 rows) or ``"test"`` (1,319 rows).
        data_dir: Data folder holding ``gsm8k/``; ``None`` resolves it with
            :func:`derl_bench.envs.data.data_root`.
        source: ``"local"`` reads ``gsm8k/<split>.jsonl``; ``"hf"`` loads
            ``openai/gsm8k`` (config ``"main"``) with ``datasets``.
        verify: Check the local file's SHA-256 against the embedded one.

    Returns:
        The records in file order.

    Raises:
        ValueError: If ``split`` or ``source`` is unknown.
        DataFileMissing: If the local file does not exist.
        ChecksumMismatch: If ``verify`` and the local file differs from the expected one.
        DataSourceUnavailable: If ``source="hf"`` and the Hub data set cannot be loaded.
    """
    if split not in GSM8K_ROWS:
        raise ValueError(f"unknown GSM8K split {split!r}; expected one of {sorted(GSM8K_ROWS)}")
    if source == "hf":
        return _load_hf(split)
    if source != "local":
        raise ValueError(f"unknown source {source!r}; expected 'local' or 'hf'")
    path = data_file(f"gsm8k/{split}.jsonl", data_dir=data_dir, verify=verify)
    stat = path.stat()
    return _load_local(str(path), split, stat.st_mtime_ns, stat.st_size)
