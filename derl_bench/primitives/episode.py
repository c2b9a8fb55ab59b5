"""Agent primitives g1..g4, shared by ScienceWorld, ALFWorld and classic control.

Definitions (DERL, arXiv 2512.13399, episode domains; PAPER_FACTS.md §2):

* g1 — task success, binary, with the official ε offset: ``1 + ε`` or ``ε``.
* g2, g3, g4 — mean *step score* over the first, middle and last third of the trajectory,
  plus ε. The trajectory's ``step_scores`` (float64 (n_steps,), each in [0, 1]) are cut into
  three consecutive parts with :func:`numpy.array_split` (the first parts get the extra steps
  when n_steps is not divisible by 3); the mean of an empty part is 0. Worked example from the
  paper: step scores [1, 0, 1, 1, 0, 0] give g2, g3, g4 = 0.5, 1, 0 (+ ε).

The step score itself is domain-specific and documented in each inner env
(``derl_bench/envs/scienceworld.py``, ``alfworld.py``, ``classic.py``): the paper's step
score checks RLVMR-style reasoning tags that our CPU policies do not produce, so ours is the
mean of documented binary checks of the action and its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from derl_bench.primitives.base import EPSILON, PrimitiveSet

__all__ = ["EPISODE_PRIMITIVES", "SuccessPrimitive", "ThirdMeanPrimitive", "thirds"]

_SOURCE = "DERL arXiv 2512.13399, episode domains (PAPER_FACTS.md §2); ε from meta_reward_grpo.py"


def thirds(step_scores: np.ndarray) -> tuple[float, float, float]:
    """Mean step score over the first, middle and last third (no ε).

    Args:
        step_scores: float64, shape (n_steps,), values in [0, 1].

    Returns:
        ``(first, middle, last)``, each in [0, 1]; an empty third contributes 0.
    """
    parts = np.array_split(np.asarray(step_scores, dtype=np.float64).reshape(-1), 3)
    return tuple(float(p.mean()) if p.size else 0.0 for p in parts)  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class SuccessPrimitive:
    """g1: ``1 + ε`` if the trajectory solved its task, else ``ε``."""

    name: str = "g1"
    description: str = "task success: 1 if the episode solved the task, else 0"
    value_range: tuple[float, float] = (EPSILON, 1.0 + EPSILON)
    source: str = _SOURCE

    def __call__(self, rollout: Any, record: Any = None) -> float:
        """Score one trajectory.

        Args:
            rollout: A :class:`derl_bench.envs.episode.Trajectory`.
            record: Unused (the task is in the trajectory).

        Returns:
            ``1 + EPSILON`` or ``EPSILON``.
        """
        return 1.0 + EPSILON if bool(rollout.success) else EPSILON


@dataclass(frozen=True, kw_only=True)
class ThirdMeanPrimitive:
    """g2/g3/g4: mean step score over one third of the trajectory, plus ε."""

    name: str
    description: str
    part: int
    """0 = first third, 1 = middle third, 2 = last third."""
    value_range: tuple[float, float] = (EPSILON, 1.0 + EPSILON)
    source: str = _SOURCE

    def __post_init__(self) -> None:
        if self.part not in (0, 1, 2):
            raise ValueError(f"part must be 0, 1 or 2, got {self.part!r}")

    def __call__(self, rollout: Any, record: Any = None) -> float:
        """Score one trajectory.

        Args:
            rollout: A :class:`derl_bench.envs.episode.Trajectory`.
            record: Unused.

        Returns:
            A float in ``[EPSILON, 1 + EPSILON]``.
        """
        return thirds(rollout.step_scores)[self.part] + EPSILON


def _third(name: str, part: int, which: str) -> ThirdMeanPrimitive:
    return ThirdMeanPrimitive(
        name=name,
        part=part,
        description=f"mean step score (0..1) over the {which} third of the episode's steps",
    )


EPISODE_PRIMITIVES = PrimitiveSet(
    name="episode",
    primitives=(
        SuccessPrimitive(),
        _third("g2", 0, "first"),
        _third("g3", 1, "middle"),
        _third("g4", 2, "last"),
    ),
)
"""The episode primitive set g1..g4 (``get_primitive_set("episode")``)."""
