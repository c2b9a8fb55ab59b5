"""Point estimates with 95 % stratified-bootstrap intervals (rliable), for tables and curves.

Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021), and their
``rliable`` library: the point estimates are ``rliable.metrics`` (``aggregate_iqm``,
``aggregate_mean``, ``probability_of_improvement``) and the intervals
``rliable.library.get_interval_estimates`` (percentile method; runs resampled within each task,
rliable's stratified bootstrap). Every bootstrap uses a fixed seed (:data:`BOOTSTRAP_SEED`) and
puts numpy's global generator back, so the numbers are deterministic and independent of what
else was computed. Used by the leaderboards' ranking and the outer-iteration curves.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rliable import metrics

__all__ = [
    "BOOTSTRAP_REPS",
    "BOOTSTRAP_SEED",
    "CONFIDENCE",
    "Interval",
    "improvement_interval",
    "iqm_interval",
    "mean_interval",
]

BOOTSTRAP_REPS = 2000
"""Bootstrap resamples per interval."""
BOOTSTRAP_SEED = 20251215
"""Seed of every bootstrap's generator (fixed: rendering is deterministic)."""
CONFIDENCE = 0.95
"""Interval coverage."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with a 95 % stratified-bootstrap interval."""

    value: float
    """Point estimate."""
    low: float
    """Lower bound."""
    high: float
    """Upper bound."""

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a point."""
        return self.low <= other.high and other.low <= self.high


def _interval(
    scores: np.ndarray | list[np.ndarray], statistic: Callable[..., float], point: float
) -> Interval:
    """Percentile interval of ``statistic`` by rliable's stratified bootstrap.

    Args:
        scores: float, shape (n_runs, n_tasks): runs are resampled within each task
            (``rliable.library.StratifiedBootstrap``); or a list of such arrays resampled
            independently of each other (``StratifiedIndependentBootstrap``, for P(improvement)).
        statistic: ``rliable.metrics`` function of the array(s).
        point: The point estimate on the data itself.
    """
    from rliable import library

    arrays = scores if isinstance(scores, list) else [scores]
    if all(np.ptp(a) == 0 for a in arrays):  # no spread: every resample gives the point
        return Interval(point, point, point)
    data = scores if isinstance(scores, list) else np.asarray(scores, dtype=np.float64)
    # rliable's StratifiedBootstrap draws its run indices from numpy's global generator: seed
    # it for the call, then put the caller's state back.
    saved = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        with warnings.catch_warnings():
            # arch (rliable's bootstrap) deprecates the random_state rliable passes.
            warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
            _, intervals = library.get_interval_estimates(
                {"entry": data},
                lambda *a: np.array([statistic(*a)]),
                method="percentile",
                reps=BOOTSTRAP_REPS,
                confidence_interval_size=CONFIDENCE,
                random_state=np.random.RandomState(BOOTSTRAP_SEED),
            )
    finally:
        np.random.set_state(saved)
    low, high = (float(v) for v in np.asarray(intervals["entry"]).reshape(2))
    return Interval(point, min(low, point), max(high, point))


def iqm_interval(scores: np.ndarray) -> Interval:
    """IQM over runs x tasks with a stratified-bootstrap interval.

    Args:
        scores: float, shape (n_runs, n_tasks).

    Returns:
        The IQM (``rliable.metrics.aggregate_iqm``) and its 95 % interval.
    """
    return _interval(scores, metrics.aggregate_iqm, float(metrics.aggregate_iqm(scores)))


def mean_interval(scores: np.ndarray) -> Interval:
    """Mean over runs x tasks with a stratified-bootstrap interval.

    Args:
        scores: float, shape (n_runs, n_tasks).

    Returns:
        The mean (``rliable.metrics.aggregate_mean``) and its 95 % interval.
    """
    return _interval(scores, metrics.aggregate_mean, float(metrics.aggregate_mean(scores)))


def improvement_interval(x: np.ndarray, y: np.ndarray) -> Interval:
    """P(X > Y) of a run of ``x`` over a run of ``y`` (one task), with an interval.

    Args:
        x: float, shape (n_runs_x,).
        y: float, shape (n_runs_y,).

    Returns:
        ``rliable.metrics.probability_of_improvement`` and its 95 % interval (x and y resampled
        independently).
    """
    x2, y2 = np.asarray(x, float)[:, None], np.asarray(y, float)[:, None]
    point = float(metrics.probability_of_improvement(x2, y2))
    return _interval([x2, y2], metrics.probability_of_improvement, point)
