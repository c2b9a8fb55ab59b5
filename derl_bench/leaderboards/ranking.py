"""Honest ranking: IQM and mean with stratified-bootstrap 95 % intervals, P(improvement), ties.

Per track (issue 17, item 5), every submission's per-seed test success is summarised by the
interquartile mean (IQM) and the mean, each with a 95 % percentile interval from a stratified
bootstrap over seeds (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice",
NeurIPS 2021; their ``rliable`` library). The probability of improvement of an entry over the
outcome-only baseline is ``P(X > Y)`` (ties count one half) between a random run of each, with
its interval. Entries are ranked by IQM; an entry whose IQM interval overlaps the leader's is
*tied* with the leader.

Across envs, for each (fidelity, preset, budget), an entry's IQM on each env is normalised
between the env's outcome-only baseline (0) and its best entry (1), and the normalised scores are
aggregated (IQM over runs x envs, stratified by env) for methods present on every env of the group.

The point estimates are ``rliable.metrics`` (``aggregate_iqm``, ``aggregate_mean``,
``probability_of_improvement``) and the intervals ``rliable.library.get_interval_estimates``
(percentile method; runs resampled within each env, rliable's stratified bootstrap). Every
bootstrap uses a fixed seed (:data:`BOOTSTRAP_SEED`) and its own generator, so the numbers do
not depend on which other entries exist: rendering twice gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from derl_bench.leaderboards.model import Submission, Track
from derl_bench.report.intervals import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    Interval,
    improvement_interval,
    iqm_interval,
    mean_interval,
)

__all__ = [
    "BOOTSTRAP_REPS",
    "BOOTSTRAP_SEED",
    "AggregateRow",
    "Interval",
    "TrackRanking",
    "TrackRow",
    "aggregate_rankings",
    "rank_track",
    "rank_tracks",
]


@dataclass(frozen=True, kw_only=True)
class TrackRow:
    """One submission on its track."""

    submission: Submission
    """The validated submission."""
    test_success: tuple[float, ...]
    """Per seed (sorted by seed), in [0, 1]."""
    seeds: tuple[int, ...]
    """The seeds, sorted."""
    iqm: Interval
    """IQM of test success."""
    mean: Interval
    """Mean of test success."""
    best_validation_mean: float
    """Mean over seeds of the best validation success."""
    chained_test_mean: float | None = None
    """DERL-pop: mean over seeds of the chained (warm-started) policy's test success, the
    number the paper reports (result field ``chained_test``); None unless every seed has it.
    Not ranked: every entry is ranked by a fresh policy's test success."""
    improvement: Interval | None
    """P(improvement) over the outcome-only baseline; None for the baseline or without one."""
    rank: int
    """1-based rank by IQM (then mean, then method name)."""
    tied_with_leader: bool
    """The IQM interval overlaps the leader's (the leader itself: True)."""


@dataclass(frozen=True, kw_only=True)
class TrackRanking:
    """Every submission on one track, ranked."""

    track: Track
    """The track."""
    rows: tuple[TrackRow, ...]
    """Ranked rows, best first."""
    baseline: TrackRow | None
    """The outcome-only baseline's row (also in ``rows``), if submitted."""


def _per_seed(submission: Submission) -> tuple[tuple[int, ...], np.ndarray]:
    ordered = sorted(submission.results, key=lambda r: r["seed"])
    seeds = tuple(int(r["seed"]) for r in ordered)
    return seeds, np.array([float(r["test_success"]) for r in ordered], dtype=np.float64)


def _chained_mean(submission: Submission) -> float | None:
    values = [(r.get("chained_test") or {}).get("test_success") for r in submission.results]
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(np.asarray(values, dtype=np.float64)))


def rank_track(track: Track, submissions: Sequence[Submission]) -> TrackRanking:
    """Rank the submissions of one track.

    Args:
        track: The track.
        submissions: Its validated submissions (at most one outcome-only baseline is used: the
            first by method name).

    Returns:
        The ranking.
    """
    baselines = sorted(
        (s for s in submissions if s.role == "outcome_only_baseline"), key=lambda s: s.method
    )
    base_scores = _per_seed(baselines[0])[1] if baselines else None
    draft = []
    for submission in submissions:
        seeds, scores = _per_seed(submission)
        column = scores[:, None]
        improvement = None
        if base_scores is not None and submission is not baselines[0]:
            improvement = improvement_interval(scores, base_scores)
        draft.append(
            dict(
                submission=submission,
                test_success=tuple(float(v) for v in scores),
                seeds=seeds,
                iqm=iqm_interval(column),
                mean=mean_interval(column),
                best_validation_mean=submission.reported.best_validation_mean,
                chained_test_mean=_chained_mean(submission),
                improvement=improvement,
            )
        )
    draft.sort(key=lambda d: (-d["iqm"].value, -d["mean"].value, d["submission"].method))
    leader = draft[0]["iqm"] if draft else None
    rows = tuple(
        TrackRow(**d, rank=i + 1, tied_with_leader=bool(leader and d["iqm"].overlaps(leader)))
        for i, d in enumerate(draft)
    )
    baseline_row = next((r for r in rows if baselines and r.submission is baselines[0]), None)
    return TrackRanking(track=track, rows=rows, baseline=baseline_row)


def rank_tracks(submissions: Sequence[Submission]) -> list[TrackRanking]:
    """Group submissions by track and rank each.

    Args:
        submissions: Validated submissions.

    Returns:
        One ranking per track, sorted by track key.
    """
    groups: dict[tuple, list[Submission]] = {}
    tracks: dict[tuple, Track] = {}
    for submission in submissions:
        groups.setdefault(submission.track.key, []).append(submission)
        tracks[submission.track.key] = submission.track
    return [rank_track(tracks[key], groups[key]) for key in sorted(groups)]


@dataclass(frozen=True, kw_only=True)
class AggregateRow:
    """One method across the envs of a (fidelity, preset, budget) group."""

    method: str
    """Method name."""
    env_ids: tuple[str, ...]
    """Envs aggregated over."""
    n_runs: int
    """Runs per env used (the fewest any env has; the lowest seeds)."""
    normalised_iqm: Interval
    """IQM of the normalised test success over runs x envs, with a stratified interval."""
    tied_with_leader: bool
    """The interval overlaps the group leader's."""


@dataclass(frozen=True, kw_only=True)
class AggregateRanking:
    """Methods ranked across envs within one (fidelity, preset, budget, simulated seconds)."""

    fidelity: str
    preset: str
    budget_meta_steps: int
    budget_simulated_seconds: float | None
    env_ids: tuple[str, ...]
    """Envs of the group that have a baseline and a best entry above it."""
    skipped: tuple[str, ...]
    """Envs left out, with why (``"<env>: <reason>"``)."""
    rows: tuple[AggregateRow, ...]
    """Ranked rows (methods present on every env of ``env_ids``), best first."""


def aggregate_rankings(rankings: Sequence[TrackRanking]) -> list[AggregateRanking]:
    """Aggregate across envs: scores normalised between outcome-only (0) and the best entry (1).

    Args:
        rankings: Per-track rankings (:func:`rank_tracks`).

    Returns:
        One aggregate per (fidelity, preset, budget, simulated seconds), sorted.
    """
    groups: dict[tuple, list[TrackRanking]] = {}
    for ranking in rankings:
        groups.setdefault(ranking.track.key[1:], []).append(ranking)
    out = []
    for key in sorted(groups):
        fidelity, preset, budget, seconds = key
        usable: list[tuple[TrackRanking, float, float]] = []
        skipped = []
        for ranking in sorted(groups[key], key=lambda r: r.track.env_id):
            env_id = ranking.track.env_id
            if ranking.baseline is None:
                skipped.append(f"{env_id}: no outcome-only baseline submitted")
                continue
            low = ranking.baseline.iqm.value
            high = max(r.iqm.value for r in ranking.rows)
            if not high > low:
                skipped.append(
                    f"{env_id}: no entry's IQM is above the outcome-only baseline's ({low:.3f}), "
                    "so the normalisation is undefined"
                )
                continue
            usable.append((ranking, low, high))
        methods = None
        for ranking, _, _ in usable:
            names = {r.submission.method for r in ranking.rows}
            methods = names if methods is None else methods & names
        draft = []
        for method in sorted(methods or ()):
            columns = []
            for ranking, low, high in usable:
                row = next(r for r in ranking.rows if r.submission.method == method)
                columns.append((np.array(row.test_success) - low) / (high - low))
            n_runs = min(len(c) for c in columns)
            scores = np.stack([c[:n_runs] for c in columns], axis=1)
            draft.append((method, n_runs, iqm_interval(scores)))
        draft.sort(key=lambda d: (-d[2].value, d[0]))
        leader = draft[0][2] if draft else None
        rows = tuple(
            AggregateRow(
                method=method,
                env_ids=tuple(r.track.env_id for r, _, _ in usable),
                n_runs=n_runs,
                normalised_iqm=interval,
                tied_with_leader=bool(leader and interval.overlaps(leader)),
            )
            for method, n_runs, interval in draft
        )
        out.append(
            AggregateRanking(
                fidelity=fidelity,
                preset=preset,
                budget_meta_steps=budget,
                budget_simulated_seconds=None if math.isinf(seconds) else seconds,
                env_ids=tuple(r.track.env_id for r, _, _ in usable),
                skipped=tuple(skipped),
                rows=rows,
            )
        )
    return out
