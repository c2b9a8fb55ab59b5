"""Leaderboards: validated submissions, honest ranking, a static page (issue 17).

- :mod:`~derl_bench.leaderboards.model`: the typed submission, its JSON Schema
  (``derl_bench/schemas/submission.schema.json``) and bounded, safe reading;
- :mod:`~derl_bench.leaderboards.validate`: every acceptance rule, one line per failure;
- :mod:`~derl_bench.leaderboards.recheck`: replaying per-step scores through a fidelity;
- :mod:`~derl_bench.leaderboards.ranking`: IQM, mean, P(improvement) with bootstrap intervals;
- :mod:`~derl_bench.leaderboards.render`: ``leaderboards/README.md`` and ``index.html``;
- :mod:`~derl_bench.leaderboards.pack`: a submission from the runner's result files.

The command line is ``derl-bench leaderboard validate | render | pack``.
"""

from __future__ import annotations

from derl_bench.leaderboards.model import (
    MAX_SUBMISSION_BYTES,
    Problem,
    Reported,
    Submission,
    SubmissionLoadError,
    Track,
    read_submission_json,
)
from derl_bench.leaderboards.validate import FileReport, check_submission, validate_paths

__all__ = [
    "MAX_SUBMISSION_BYTES",
    "FileReport",
    "Problem",
    "Reported",
    "Submission",
    "SubmissionLoadError",
    "Track",
    "check_submission",
    "read_submission_json",
    "render_leaderboard",
    "validate_paths",
]


def render_leaderboard(leaderboard_dir: str = "leaderboards", *, write: bool = True) -> dict:
    """Validate every submission of a leaderboard folder, then render (and write) both pages.

    Args:
        leaderboard_dir: The folder holding ``<env id>/*.json`` submissions.
        write: Write ``README.md`` and ``index.html`` into the folder (default True).

    Returns:
        ``{"README.md": text, "index.html": text}``.

    Raises:
        ValueError: If a submission is not accepted; the message lists every problem.
    """
    from pathlib import Path

    from derl_bench.leaderboards.render import render_outputs, submission_files

    files = submission_files(leaderboard_dir)
    reports = validate_paths(files)
    bad = [f"{r.path}: {p.line()}" for r in reports for p in r.problems]
    if bad:
        raise ValueError("not rendering: some submissions are not accepted\n" + "\n".join(bad))
    pages = render_outputs([r.submission for r in reports if r.submission is not None])
    if write:
        for name, text in pages.items():
            (Path(leaderboard_dir) / name).write_text(text, encoding="utf-8")
    return pages
