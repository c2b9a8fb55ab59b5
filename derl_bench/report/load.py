"""Reading a folder of result files (``seed<S>.json``, recursively), skipping unreadable ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from derl_bench.results import ResultRecord, load_result

__all__ = ["LoadedResult", "RunDirResults", "SkippedFile", "load_run_dir"]

_RESULT_NAME = re.compile(r"seed-?\d+\.json")


@dataclass(frozen=True, kw_only=True)
class LoadedResult:
    """One result file."""

    path: Path
    """The file."""
    record: ResultRecord
    """Its schema-valid content."""


class SkippedFile(NamedTuple):
    """A ``seed<S>.json`` file that could not be used."""

    path: Path
    """The file."""
    reason: str
    """Why (the JSON or schema error)."""


@dataclass(frozen=True, kw_only=True)
class RunDirResults:
    """The result files found under a folder."""

    results: list[LoadedResult]
    """Readable, schema-valid results, sorted by path."""
    skipped: list[SkippedFile]
    """Files named like results that were unreadable or invalid."""


def load_run_dir(run_dir: str | Path) -> RunDirResults:
    """Read every result file (``seed<S>.json``) under ``run_dir``, recursively.

    ``*.invalid.json`` dumps and files under ``checkpoints/`` or ``plots/`` folders are ignored.

    Args:
        run_dir: A folder of results, e.g. ``runs`` or ``runs/DERL-GSM8K-v0``.

    Returns:
        The results and the skipped files.

    Raises:
        NotADirectoryError: If ``run_dir`` is not a folder.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of result files")
    results: list[LoadedResult] = []
    skipped: list[SkippedFile] = []
    for path in sorted(root.rglob("seed*.json")):
        parts = path.relative_to(root).parts[:-1]
        if not _RESULT_NAME.fullmatch(path.name) or {"checkpoints", "plots"} & set(parts):
            continue
        try:
            results.append(LoadedResult(path=path, record=load_result(path)))
        except (OSError, ValueError) as exc:
            skipped.append(SkippedFile(path=path, reason=str(exc).splitlines()[0]))
    return RunDirResults(results=results, skipped=skipped)
