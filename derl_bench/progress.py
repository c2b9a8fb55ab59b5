"""The run's progress display: callbacks the runner calls per meta-step (a rich bar, or nothing).

Each meta-step is also printed as one line above the bar, so that logs (CI, ``tee``) keep the
history even where the live bar is not drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Progress", "progress_bar"]


class Progress:
    """Progress callbacks: one advance per meta-step, or nothing when there is no bar."""

    def __init__(self, bar: Any | None, task: Any | None, total: int) -> None:
        self._bar = bar
        self._task = task
        self._total = total
        self._done = 0

    def step(self, meta_reward: str, score: float | None, wall_seconds: float) -> None:
        """A meta-step was trained: ``score`` is its validation_success (None: invalid)."""
        if self._bar is None:
            return
        self._done += 1
        shown = "invalid" if score is None else f"val {score:.3f}"
        self._bar.update(self._task, advance=1, last=f"last: {meta_reward}  {shown}")
        self._bar.console.print(
            f"meta-step {self._done}/{self._total}: {meta_reward}  ->  {shown}  "
            f"({wall_seconds:.0f} s)",
            markup=False,
            highlight=False,
        )

    def replayed(self, count: int) -> None:
        """Advance over ``count`` meta-steps taken from the store (no line each)."""
        if self._bar is None or count == 0:
            return
        self._done += count
        self._bar.update(self._task, advance=count)

    def note(self, text: str) -> None:
        """Show a status line (e.g. the final test training)."""
        if self._bar is not None:
            self._bar.update(self._task, last=text)
            self._bar.console.print(text, markup=False, highlight=False)


@contextmanager
def progress_bar(enabled: bool, total: int, description: str) -> Iterator[Progress]:
    """Yield the :class:`Progress` callbacks of a bar over ``total`` meta-steps.

    Args:
        enabled: Draw a rich progress bar; False yields callbacks that do nothing.
        total: Meta-steps in the run (the outer budget).
        description: The bar's label, e.g. ``"DERL-CartPole-v0 · heuristic · seed 0"``.
    """
    if not enabled:
        yield Progress(None, None, total)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with RichProgress(*columns) as bar:
        task = bar.add_task(description, total=total, last="training under the first meta-reward")
        yield Progress(bar, task, total)
