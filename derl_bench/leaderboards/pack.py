"""``derl-bench leaderboard pack``: a submission file from the runner's per-seed result files.

The reported means are computed here from the results (never typed in), and the track is read
from them (env id, preset, fidelity); only the track's budget is chosen: the smallest of
:data:`~derl_bench.leaderboards.model.BUDGETS_META_STEPS` that holds the runs, unless given.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from derl_bench.leaderboards.model import BUDGETS_META_STEPS, Reported, Submission, Track
from derl_bench.leaderboards.recheck import record_fidelity
from derl_bench.results import ResultRecord, answered_noisy, load_result

__all__ = ["pack_results", "write_submission"]


def pack_results(
    results: Sequence[ResultRecord],
    *,
    method: str,
    authors: Sequence[str],
    code_url: str,
    role: str = "entry",
    budget_meta_steps: int | None = None,
    budget_simulated_seconds: float | None = None,
    notes: str = "",
) -> Submission:
    """Build a submission from result records (one per seed) of one agent on one track.

    Args:
        results: Result records (schema-valid, e.g. from :func:`derl_bench.results.load_result`).
        method: Method name (plain text).
        authors: Author names.
        code_url: An https URL or a ``derl_bench/...`` path.
        role: ``"entry"`` or ``"outcome_only_baseline"``.
        budget_meta_steps: Track budget (16, 64 or 160); default the smallest that holds every
            run's budget.
        budget_simulated_seconds: Track clock budget, or None.
        notes: Optional remarks.

    Returns:
        The submission (not yet validated: run ``derl-bench leaderboard validate`` on the file).

    Raises:
        ValueError: If there are no results, they mix env ids, presets, fidelities or agents, a
            run answered from the noisy surrogate, or a run's budget exceeds every track budget.
    """
    if not results:
        raise ValueError("no result files given; pass the seed<S>.json files of one agent")
    noisy = [int(r["seed"]) for r in results if answered_noisy(r)]
    if noisy:
        raise ValueError(
            f"the runs of seeds {noisy} answered from the noisy surrogate (--noisy), which is "
            "not a leaderboard track (its re-check replays the surrogate's mean); submit "
            "surrogate runs without --noisy, or table or live runs"
        )
    for name, values in (
        ("env_id", {r["env_id"] for r in results}),
        ("preset", {r["preset"] for r in results}),
        ("fidelity", {record_fidelity(dict(r)) for r in results}),
        ("agent.name", {r["agent"]["name"] for r in results}),
    ):
        if len(values) != 1:
            raise ValueError(
                f"the results mix {name} values {sorted(values)}; pack one track and agent at a "
                "time"
            )
    most = max(int(r["budget"]) for r in results)
    if budget_meta_steps is None:
        fitting = [b for b in BUDGETS_META_STEPS if b >= most]
        if not fitting:
            raise ValueError(
                f"a run's budget {most} exceeds every track budget {BUDGETS_META_STEPS}"
            )
        budget_meta_steps = fitting[0]
    ordered = sorted(results, key=lambda r: r["seed"])
    first = ordered[0]
    config: dict[str, Any] = {k: v for k, v in first["agent"]["config"].items() if k != "seed"}
    tests = [float(r["test_success"] or 0.0) for r in ordered]
    bests = [float(r["best"]["validation_success"]) if r["best"] else 0.0 for r in ordered]
    return Submission(
        method=method,
        authors=tuple(authors),
        code_url=code_url,
        role=role,  # type: ignore[arg-type]
        agent_name=first["agent"]["name"],
        agent_config=config,
        track=Track(
            env_id=first["env_id"],
            fidelity=record_fidelity(dict(first)),  # type: ignore[arg-type]
            preset=first["preset"],
            budget_meta_steps=budget_meta_steps,
            budget_simulated_seconds=budget_simulated_seconds,
        ),
        reported=Reported(
            n_seeds=len(ordered),
            test_success_mean=math.fsum(tests) / len(tests),
            best_validation_mean=math.fsum(bests) / len(bests),
        ),
        results=tuple(ordered),
        notes=notes,
    )


def load_results(paths: Sequence[str | os.PathLike[str]]) -> list[ResultRecord]:
    """Load and schema-check result files (version 1 is upgraded).

    Args:
        paths: ``seed<S>.json`` files.

    Returns:
        The records, in the given order.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If a file is not a valid result.
    """
    return [load_result(path) for path in paths]


def write_submission(path: str | os.PathLike[str], submission: Submission) -> Path:
    """Write a submission as indented JSON (keys in schema order; no NaN).

    Args:
        path: Target file; parent folders are created.
        submission: The submission.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: If a value is not finite.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(submission.to_json(), indent=1, allow_nan=False) + "\n")
    return target
