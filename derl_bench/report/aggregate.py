"""The numbers behind the plots: per outer iteration, over seeds, per agent and env.

An *outer iteration* is one round of the runner: ``proposals_per_step`` meta-steps proposed by one
agent call, so meta-step ``i`` belongs to iteration ``i // proposals_per_step`` (0-based, as the
paper's outer steps 0–8). Invalid meta-steps carry no validation success and are left out of the
validation means; an iteration without a valid meta-step has no mean (a gap in the line). A run's
best-so-far is 0 until its first valid meta-step, as in the results table (``derl-bench table``
counts a run without a valid meta-reward as 0), so the last point of the best-so-far curve is the
table's "best validation" mean.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from derl_bench.meta_reward import DEFAULT_PRIMITIVES, InvalidMetaReward, parse
from derl_bench.meta_reward.structure import STRUCTURES, classify_structure
from derl_bench.report.load import LoadedResult
from derl_bench.results import ResultRecord

__all__ = [
    "PrimitiveUsage",
    "StructureShares",
    "ValidationCurve",
    "iteration_means",
    "outer_iterations",
    "primitive_usage",
    "structure_shares",
    "validation_curves",
]

_PRIMITIVE = re.compile(r"\bg[1-9]\d*\b")


def _group(results: Sequence[LoadedResult]) -> dict[tuple[str, str], list[ResultRecord]]:
    groups: dict[tuple[str, str], list[ResultRecord]] = {}
    for result in results:
        record = result.record
        groups.setdefault((record["env_id"], record["agent"]["name"]), []).append(record)
    return dict(sorted(groups.items()))


def outer_iterations(record: ResultRecord) -> list[list[dict[str, Any]]]:
    """The record's meta-steps split into outer iterations (rounds of proposals_per_step)."""
    size = int(record["proposals_per_step"])
    rounds: list[list[dict[str, Any]]] = []
    for step in record["meta_steps"]:
        iteration = int(step["index"]) // size
        while len(rounds) <= iteration:
            rounds.append([])
        rounds[iteration].append(dict(step))
    return rounds


def _scores(steps: Sequence[dict[str, Any]]) -> list[float]:
    return [
        float(s["validation_success"])
        for s in steps
        if s["valid"] and s["validation_success"] is not None
    ]


def iteration_means(record: ResultRecord) -> list[float]:
    """Mean validation success of the valid proposals of each outer iteration of one run.

    Returns:
        One float per iteration (:func:`outer_iterations`); NaN for an iteration without a
        valid, scored proposal. The per-run values behind :attr:`ValidationCurve.mean`.
    """
    means = []
    for steps in outer_iterations(record):
        scores = _scores(steps)
        means.append(float(np.mean(scores)) if scores else math.nan)
    return means


def _primitive_names(record: ResultRecord) -> tuple[str, ...]:
    names: set[str] = set()
    configured = record["agent"]["config"].get("primitive_names")
    if isinstance(configured, list):
        names.update(n for n in configured if isinstance(n, str) and _PRIMITIVE.fullmatch(n))
    for step in record["meta_steps"]:
        names.update(n for n in step["primitive_means"] if _PRIMITIVE.fullmatch(n))
        names.update(_PRIMITIVE.findall(step["canonical"] or ""))
    return tuple(sorted(names, key=lambda n: int(n[1:]))) or DEFAULT_PRIMITIVES


@dataclass(frozen=True, kw_only=True)
class ValidationCurve:
    """Validation success per outer iteration of one agent on one env, over seeds."""

    env_id: str
    """Gymnasium id."""
    agent: str
    """Agent name."""
    n_seeds: int
    """Number of runs (result files) behind the curve."""
    iterations: np.ndarray
    """int64, shape (n_iterations,): 0, 1, ..."""
    best: np.ndarray
    """float64, shape (3, n_iterations): mean, min and max over seeds of the best validation
    success so far (up to and including the iteration); 0 for a run before its first valid
    meta-step (as the results table counts it)."""
    mean: np.ndarray
    """float64, shape (3, n_iterations): mean, min and max over seeds of the mean validation
    success of the iteration's valid meta-steps; nan where no seed has one."""
    best_ci: np.ndarray
    """float64, shape (3, n_iterations): mean over seeds of the best validation success so far
    and its 95 % percentile-bootstrap interval over seeds (rliable,
    :func:`derl_bench.report.intervals.mean_interval`), over the runs that reached the
    iteration."""


def _band(per_run: list[list[float]], n_iterations: int) -> np.ndarray:
    table = np.full((len(per_run), n_iterations), np.nan)
    for i, values in enumerate(per_run):
        table[i, : len(values)] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns give nan, as meant
        return np.stack(
            [np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)]
        )


def _ci_band(per_run: list[list[float]], n_iterations: int) -> np.ndarray:
    from derl_bench.report.intervals import mean_interval

    band = np.full((3, n_iterations), np.nan)
    for i in range(n_iterations):
        column = np.array([run[i] for run in per_run if len(run) > i], dtype=np.float64)
        if column.size:
            interval = mean_interval(column[:, None])
            band[:, i] = (interval.value, interval.low, interval.high)
    return band


def validation_curves(results: Sequence[LoadedResult]) -> list[ValidationCurve]:
    """Compute best-so-far and mean validation success per iteration, per (env, agent).

    Args:
        results: Result files (e.g. :attr:`RunDirResults.results`).

    Returns:
        One curve per (env id, agent), sorted by env id then agent.
    """
    curves: list[ValidationCurve] = []
    for (env_id, agent), records in _group(results).items():
        best_runs: list[list[float]] = []
        mean_runs: list[list[float]] = []
        for record in records:
            best_so_far = 0.0  # no valid meta-reward yet: 0, as in the results table
            best_run: list[float] = []
            for steps in outer_iterations(record):
                scores = _scores(steps)
                if scores:
                    best_so_far = max(best_so_far, *scores)
                best_run.append(best_so_far)
            best_runs.append(best_run)
            mean_runs.append(iteration_means(record))
        n_iterations = max((len(run) for run in best_runs), default=0)
        curves.append(
            ValidationCurve(
                env_id=env_id,
                agent=agent,
                n_seeds=len(records),
                iterations=np.arange(n_iterations, dtype=np.int64),
                best=_band(best_runs, n_iterations),
                mean=_band(mean_runs, n_iterations),
                best_ci=_ci_band(best_runs, n_iterations),
            )
        )
    return curves


@dataclass(frozen=True, kw_only=True)
class PrimitiveUsage:
    """How often the valid meta-rewards of one agent on one env use each primitive."""

    env_id: str
    """Gymnasium id."""
    agent: str
    """Agent name."""
    primitive_names: tuple[str, ...]
    """The primitives, in column order."""
    iterations: np.ndarray
    """int64, shape (n_iterations,)."""
    share: np.ndarray
    """float64, shape (n_iterations, K): share in [0, 1] of the iteration's valid meta-rewards
    (pooled over seeds) that read primitive k; nan where the iteration has none."""
    n_valid: np.ndarray
    """int64, shape (n_iterations,): valid meta-rewards behind each row."""


def primitive_usage(results: Sequence[LoadedResult]) -> list[PrimitiveUsage]:
    """Compute the share of valid meta-rewards using each primitive, per iteration.

    A meta-reward uses g_i if its parsed form reads g_i
    (:attr:`derl_bench.meta_reward.MetaReward.primitives_used`).

    Args:
        results: Result files.

    Returns:
        One entry per (env id, agent), sorted.
    """
    usages: list[PrimitiveUsage] = []
    for (env_id, agent), records in _group(results).items():
        names = tuple(
            sorted({n for r in records for n in _primitive_names(r)}, key=lambda n: int(n[1:]))
        )
        counts: list[np.ndarray] = []
        totals: list[int] = []
        for record in records:
            for iteration, steps in enumerate(outer_iterations(record)):
                while len(counts) <= iteration:
                    counts.append(np.zeros(len(names), dtype=np.int64))
                    totals.append(0)
                for step in steps:
                    if not step["valid"] or step["canonical"] is None:
                        continue
                    try:
                        used = parse(step["canonical"], names).primitives_used
                    except InvalidMetaReward:
                        continue
                    totals[iteration] += 1
                    for name in used:
                        counts[iteration][names.index(name)] += 1
        n_valid = np.array(totals, dtype=np.int64)
        table = np.array(counts, dtype=np.float64).reshape(len(totals), len(names))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n_valid[:, None] > 0, table / n_valid[:, None], np.nan)
        usages.append(
            PrimitiveUsage(
                env_id=env_id,
                agent=agent,
                primitive_names=names,
                iterations=np.arange(len(totals), dtype=np.int64),
                share=share,
                n_valid=n_valid,
            )
        )
    return usages


@dataclass(frozen=True, kw_only=True)
class StructureShares:
    """Shares of the taxonomy's classes among one agent's meta-rewards, per iteration."""

    env_id: str
    """Gymnasium id."""
    agent: str
    """Agent name."""
    iterations: np.ndarray
    """int64, shape (n_iterations,)."""
    share: np.ndarray
    """float64, shape (n_iterations, 3), columns in :data:`STRUCTURES` order; rows sum to 1
    (pooled over seeds; every meta-step counts, invalid ones as invalid)."""
    n_meta_steps: np.ndarray
    """int64, shape (n_iterations,): meta-steps behind each row."""


def structure_shares(results: Sequence[LoadedResult]) -> list[StructureShares]:
    """Classify every meta-step with :func:`classify_structure` and count per iteration.

    Args:
        results: Result files.

    Returns:
        One entry per (env id, agent), sorted.
    """
    out: list[StructureShares] = []
    for (env_id, agent), records in _group(results).items():
        counts: list[np.ndarray] = []
        for record in records:
            names = _primitive_names(record)
            for iteration, steps in enumerate(outer_iterations(record)):
                while len(counts) <= iteration:
                    counts.append(np.zeros(len(STRUCTURES), dtype=np.int64))
                for step in steps:
                    kind = classify_structure(step["canonical"], names, valid=step["valid"])
                    counts[iteration][STRUCTURES.index(kind)] += 1
        table = np.array(counts, dtype=np.float64).reshape(len(counts), len(STRUCTURES))
        totals = table.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(totals[:, None] > 0, table / totals[:, None], np.nan)
        out.append(
            StructureShares(
                env_id=env_id,
                agent=agent,
                iterations=np.arange(len(counts), dtype=np.int64),
                share=share,
                n_meta_steps=totals.astype(np.int64),
            )
        )
    return out
