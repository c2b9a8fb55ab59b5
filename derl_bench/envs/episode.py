"""The contract between episode-domain inner envs, the compact GRPO and the episode primitives.

Episode domains (ScienceWorld, ALFWorld, classic control) wrap a simulator as a Gymnasium env
that the compact GRPO (:mod:`derl_bench.inner.episode_grpo_trainer`) drives episode by
episode. Every such *inner env* follows this contract:

* ``reset(seed=..., options={"task": EpisodeTask})`` starts the episode that ``task`` names
  (task type, variation or game, and the simulator seed). Two resets with the same task give
  the same initial observation: a GRPO group of G episodes shares one initial state.
* ``step(action)`` returns ``(obs, reward, terminated, truncated, info)``. ``reward`` is the
  simulator's native reward and is **never** shown to the policy or the primitives. ``info``
  carries at least:

  - ``"step_score"`` — float in [0, 1], the domain's documented step score for this step
    (the mean of binary checks, e.g. *effective*, *novel*, *goal-relevant*);
  - ``"success"`` — bool, whether the task is solved (set on every step; True at most on the
    final step);
  - text envs also ``"valid_actions"`` — ``list[str]`` of actions admissible in the new state.

  ``reset``'s ``info`` carries ``"valid_actions"`` (text envs) and ``"success": False``.
* ``terminated`` is True at success or failure; ``truncated`` at the step limit.
* ``close()`` releases every external resource (JVM, game engine).

The compact GRPO turns one episode into a :class:`Trajectory`; the episode primitives
(:mod:`derl_bench.primitives.episode`) read only ``Trajectory.success`` and
``Trajectory.step_scores``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EpisodeSplits", "EpisodeTask", "Trajectory"]


@dataclass(frozen=True, kw_only=True)
class EpisodeTask:
    """One initial state of an episode domain (the unit a GRPO group shares).

    Attributes:
        domain: Domain name, e.g. ``"scienceworld"``, ``"alfworld"``, ``"cartpole"``.
        task_id: Task identifier inside the domain: a ScienceWorld task name, an ALFWorld game
            folder (relative to the data root), or ``""`` for classic control.
        variation: ScienceWorld variation index; 0 where the domain has none.
        seed: Simulator seed used at reset (classic control: the reset seed).
        task_type: Coarse type used by the L2 split (ScienceWorld task topic, ALFWorld task type).
    """

    domain: str
    task_id: str
    variation: int = 0
    seed: int = 0
    task_type: str = ""

    @property
    def key(self) -> str:
        """A stable string id, ``"domain/task_id/variation/seed"`` (used for splits and logs)."""
        return f"{self.domain}/{self.task_id}/{self.variation}/{self.seed}"


@dataclass(frozen=True, kw_only=True)
class Trajectory:
    """One finished episode as the primitives see it.

    Attributes:
        task: The task the episode attempted.
        step_scores: float64, shape (n_steps,), each in [0, 1]: ``info["step_score"]`` of every
            step, in order. Classic control pads a failed (terminated) episode with zeros up to
            the step limit, so that surviving longer scores higher (see ``classic.py``).
        success: Whether the task was solved (ALFWorld ``won``, ScienceWorld score 100, ...).
        n_steps: Actions actually taken (before any padding).
        score: Domain score for logs, e.g. ScienceWorld's 0-100 score or the hidden native
            return of classic control; never used by primitives.
        actions: The actions taken (strings for text envs, ints/floats for classic control).
        info: JSON-able extras for logs.
    """

    task: EpisodeTask
    step_scores: np.ndarray
    success: bool
    n_steps: int
    score: float = 0.0
    actions: tuple[Any, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        scores = np.asarray(self.step_scores, dtype=np.float64).reshape(-1)
        if scores.size and (
            not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1
        ):
            raise ValueError(
                f"step_scores must be finite and in [0, 1], got min {scores.min()}, "
                f"max {scores.max()}"
            )
        object.__setattr__(self, "step_scores", scores)


@dataclass(frozen=True, kw_only=True)
class EpisodeSplits:
    """The task splits of one episode domain at one generalisation level.

    Attributes:
        level: ``"L0"`` (in-distribution test), ``"L1"`` (unseen variations / rooms) or ``"L2"``
            (held-out task types); ``""`` for domains without levels.
        d_in: Tasks the inner GRPO trains on (the paper's D_in).
        val: Validation tasks V; validation_success is measured on them (greedy).
        test: Test tasks, used only by ``evaluate_test``.
        held_out_types: The task types reserved for the L2 test (empty for L0/L1).
    """

    level: str
    d_in: tuple[EpisodeTask, ...]
    val: tuple[EpisodeTask, ...]
    test: tuple[EpisodeTask, ...]
    held_out_types: tuple[str, ...] = ()

    @property
    def train_pool(self) -> tuple[EpisodeTask, ...]:
        """D_in followed by V: what ``evaluate_test`` trains on."""
        return self.d_in + self.val

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name in ("d_in", "val", "test"):
            for task in getattr(self, name):
                if task.key in seen and seen[task.key] != name:
                    raise ValueError(
                        f"task {task.key} is in both {seen[task.key]} and {name}; splits must "
                        "be disjoint"
                    )
                seen[task.key] = name
