r"""MATH loaders (Hendrycks et al., 2021): train, test and the MATH-500 subset.

Local files (see ``shared/data/README.md``):

- ``math/train.parquet``: MATH train in the verl layout (``prompt[{role, content}]``,
  ``reward_model{ground_truth}``, ``level``, ``type``), answers only, derived from
  ``DigitalLearningGmbH/MATH-lighteval``; the user prompt ends with DERL's instruction suffix
  :data:`MATH_PROMPT_SUFFIX`, which is stripped.
- ``math/test.jsonl``: MATH test (``problem``, ``solution``, ...); the answer is the content of
  the last ``\boxed{}`` of the solution.
- ``math/math500.jsonl``: the MATH-500 subset (``problem``, ``solution``, ``answer``, ...).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Literal

from derl_bench.envs.data import data_file, hf_rows
from derl_bench.envs.records import MathRecord

__all__ = ["MATH_PROMPT_SUFFIX", "MATH_ROWS", "last_boxed_content", "load_math"]

MathSplit = Literal["train", "test", "math500"]

MATH_ROWS: dict[str, int] = {"train": 7500, "test": 5000, "math500": 500}
"""Number of rows per split."""

MATH_PROMPT_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
"""Instruction DERL appends to every math prompt (verl's ``math_dataset.py`` preprocessing)."""

_FILES: dict[str, str] = {
    "train": "math/train.parquet",
    "test": "math/test.jsonl",
    "math500": "math/math500.jsonl",
}
_BOX_COMMANDS = ("\\boxed", "\\fbox")


def _balanced_group(text: str, start: int) -> int | None:
    """Return the index just past the ``}`` closing the ``{`` at ``text[start]``, or None."""
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2  # an escaped character (\{, \}, \\) never opens or closes a group
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def last_boxed_content(text: str) -> str | None:
    r"""Return the content of the last ``\boxed{...}`` (or ``\fbox{...}``) in ``text``.

    Braces are matched with a depth counter, so nested groups survive
    (``\boxed{\frac{1}{2}}`` -> ``\frac{1}{2}``); escaped braces ``\{``/``\}`` are content,
    not grouping. The brace-less form ``\boxed 5`` yields the text up to the next ``$``
    (or the end), stripped. Follows ``last_boxed_only_string`` / ``remove_boxed`` in the
    official ``verl/utils/reward_score/meta_reward_grpo.py`` (and Hendrycks et al.'s MATH code).

    Args:
        text: A solution or a model completion.

    Returns:
        The content of the last box, or ``None`` if there is none or its braces never close.
    """
    best: int | None = None
    best_cmd = ""
    for cmd in _BOX_COMMANDS:
        search_from = len(text)
        while True:
            idx = text.rfind(cmd, 0, search_from)
            if idx < 0:
                break
            after = text[idx + len(cmd) : idx + len(cmd) + 1]
            # Skip longer command names that merely start with \boxed / \fbox (e.g. \fboxsep).
            if after.isalpha():
                search_from = idx
                continue
            if best is None or idx > best:
                best, best_cmd = idx, cmd
            break
    if best is None:
        return None
    pos = best + len(best_cmd)
    rest = text[pos:]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        brace = pos + (len(rest) - len(stripped))
        end = _balanced_group(text, brace)
        if end is None:
            return None
        return text[brace + 1 : end - 1]
    if rest[:1].isspace():
        content = stripped.split("$", 1)[0].strip()
        return content or None
    return None


def _math_answer(solution: str, where: str) -> str:
    answer = last_boxed_content(solution)
    if answer is None:
        raise ValueError(f"{where}: the solution has no \\boxed{{...}} answer")
    return answer


def _strip_suffix(prompt: str) -> str:
    prompt = prompt.rstrip()
    if prompt.endswith(MATH_PROMPT_SUFFIX):
        prompt = prompt[: -len(MATH_PROMPT_SUFFIX)]
    return prompt.rstrip()


def _train_records(rows: list[dict[str, Any]]) -> tuple[MathRecord, ...]:
    records = []
    for i, row in enumerate(rows):
        user = [m["content"] for m in row["prompt"] if m["role"] == "user"]
        if not user:
            raise ValueError(f"math/train row {i}: prompt has no user message")
        records.append(
            MathRecord(
                uid=f"math/train/{i}",
                source="math",
                question=_strip_suffix(user[-1]),
                answer=row["reward_model"]["ground_truth"].strip(),
                solution=None,
            )
        )
    return tuple(records)


def _solution_records(rows: list[dict[str, Any]], split: str) -> tuple[MathRecord, ...]:
    """Records from rows with ``problem`` and ``solution`` (and optionally ``answer``)."""
    return tuple(
        MathRecord(
            uid=f"math/{split}/{i}",
            source="math",
            question=row["problem"],
            answer=(
                row["answer"]
                if row.get("answer") is not None
                else _math_answer(row["solution"], f"math/{split} row {i}")
            ).strip(),
            solution=row["solution"],
        )
        for i, row in enumerate(rows)
    )


@functools.cache
def _load_local(path: str, split: str, mtime_ns: int, size: int) -> tuple[MathRecord, ...]:
    del mtime_ns, size  # part of the cache key only: a rewritten file is read again
    if split == "train":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["prompt", "reward_model"])
        return _train_records(table.to_pylist())
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if split == "test":
        # MATH test rows carry no answer field; it is the last \boxed{} of the solution.
        rows = [{k: v for k, v in row.items() if k != "answer"} for row in rows]
    return _solution_records(rows, split)


@functools.cache
def _load_hf(split: str) -> tuple[MathRecord, ...]:
    if split == "math500":
        rows = hf_rows("HuggingFaceH4/MATH-500", None, "test")
    else:
        rows = hf_rows("DigitalLearningGmbH/MATH-lighteval", None, split)
        rows = [{k: v for k, v in row.items() if k != "answer"} for row in rows]
    return _solution_records(rows, split)


def load_math(
    split: MathSplit,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    source: Literal["local", "hf"] = "local",
    verify: bool = True,
) -> tuple[MathRecord, ...]:
    r"""Load one MATH split as :class:`MathRecord` s (cached per file and split in-process).

    Every record has ``source="math"``, ``uid="math/<split>/<row index>"`` and a stripped
    ``answer`` (a few boxes in the data carry surrounding spaces, e.g. ``\boxed{ 96}``).

    - ``"train"`` (7,500 rows): ``question`` is the user prompt without
      :data:`MATH_PROMPT_SUFFIX`, ``answer`` is ``reward_model.ground_truth``,
      ``solution=None`` (the verl file carries answers only). Two rows (``math/train/5341``
      and ``math/train/5343``) have an empty ground truth in that file; they are kept, so row
      indices match the file, and no answer matches them.
    - ``"test"`` (5,000 rows): ``answer`` is :func:`last_boxed_content` of ``solution``.
    - ``"math500"`` (500 rows): ``answer`` is the file's ``answer`` field.

    With ``source="hf"``, train and test come from ``DigitalLearningGmbH/MATH-lighteval`` (whose
    train rows do carry a ``solution``, kept) and math500 from ``HuggingFaceH4/MATH-500``.

    Args:
        split: ``"train"``, ``"test"`` or ``"math500"``.
        data_dir: Data folder holding ``math/``; ``None`` resolves it with
            :func:`derl_bench.envs.data.data_root`.
        source: ``"local"`` (files under the data folder) or ``"hf"`` (Hugging Face Hub).
        verify: Check the local file's SHA-256 against the embedded one.

    Returns:
        The records in file order.

    Raises:
        ValueError: If ``split`` or ``source`` is unknown, or a test solution has no box.
        DataFileMissing: If the local file does not exist.
        ChecksumMismatch: If ``verify`` and the local file differs from the expected one.
        DataSourceUnavailable: If ``source="hf"`` and the Hub data set cannot be loaded.
    """
    if split not in _FILES:
        raise ValueError(f"unknown MATH split {split!r}; expected one of {sorted(_FILES)}")
    if source == "hf":
        return _load_hf(split)
    if source != "local":
        raise ValueError(f"unknown source {source!r}; expected 'local' or 'hf'")
    path = data_file(_FILES[split], data_dir=data_dir, verify=verify)
    stat = path.stat()
    return _load_local(str(path), split, stat.st_mtime_ns, stat.st_size)
