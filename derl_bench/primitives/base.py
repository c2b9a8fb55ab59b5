"""The primitive protocol and named primitive sets.

A primitive g_i is an atomic reward function of one rollout (DERL, arXiv 2512.13399: the
meta-reward is an expression over "atomic primitives"). A :class:`PrimitiveSet` is the ordered
family g1..gK that one domain offers to the meta-reward; ``compute`` evaluates every primitive
on a batch of rollouts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["EPSILON", "BinaryPrimitive", "Primitive", "PrimitiveSet"]

EPSILON = 1e-6
"""Offset added to every binary primitive value (official ``meta_reward_grpo.py`` returns
``1 + 1e-6`` or ``1e-6``), so that a meta-reward dividing by a primitive never divides by 0."""


@runtime_checkable
class Primitive(Protocol):
    """An atomic reward function g_i of one rollout.

    Attributes:
        name: Symbol the meta-reward uses, e.g. ``"g1"``.
        description: One line an LLM agent can read, saying what the primitive rewards.
        value_range: ``(low, high)``, inclusive bounds of the returned value.
        source: Where the definition comes from (paper section or official code file).
    """

    name: str
    description: str
    value_range: tuple[float, float]
    source: str

    def __call__(self, rollout: str, record: Any) -> float:
        """Score one rollout.

        Args:
            rollout: The rollout (a completion or a serialised trajectory).
            record: The task record the rollout answers (e.g. a ``MathRecord``).

        Returns:
            The primitive's value, within ``value_range``.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class BinaryPrimitive:
    """A 0/1 primitive with the official epsilon offset: returns ``1 + EPSILON`` or ``EPSILON``.

    Implements :class:`Primitive`. The offset follows the official
    ``verl/utils/reward_score/meta_reward_grpo.py`` (every primitive returns ``1+1e-6``/``1e-6``).

    Attributes:
        name: Symbol the meta-reward uses, e.g. ``"g1"``.
        description: One line an LLM agent can read.
        source: Where the definition comes from.
        test: The predicate ``test(rollout, record) -> bool``.
        value_range: Always ``(EPSILON, 1 + EPSILON)``.
    """

    name: str
    description: str
    source: str
    test: Callable[[str, Any], bool]
    value_range: tuple[float, float] = (EPSILON, 1.0 + EPSILON)

    def __call__(self, rollout: str, record: Any) -> float:
        """Return ``1 + EPSILON`` if ``test(rollout, record)`` holds, else ``EPSILON``.

        Args:
            rollout: The rollout text.
            record: The task record the rollout answers.

        Returns:
            ``1.0 + EPSILON`` or ``EPSILON`` (a Python float).
        """
        return 1.0 + EPSILON if self.test(rollout, record) else EPSILON


@dataclass(frozen=True, kw_only=True)
class PrimitiveSet:
    """An ordered, named family of primitives g1..gK for one domain.

    Attributes:
        name: Registry name of the set, e.g. ``"math"``.
        primitives: The primitives, in column order of :meth:`compute`.
    """

    name: str
    primitives: tuple[Primitive, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.primitives]
        if len(set(names)) != len(names):
            raise ValueError(f"primitive set {self.name!r} has duplicate names: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        """The primitives' names in order, e.g. ``("g1", "g2", "g3", "g4")``."""
        return tuple(p.name for p in self.primitives)

    def describe(self) -> str:
        """Return one line per primitive, ``"g1: <description>"``, joined by newlines."""
        return "\n".join(f"{p.name}: {p.description}" for p in self.primitives)

    def compute(self, rollouts: Sequence[str], records: Sequence[Any]) -> np.ndarray:
        """Evaluate every primitive on every (rollout, record) pair.

        Args:
            rollouts: n_rollouts rollouts.
            records: The record each rollout answers, same length as ``rollouts``.

        Returns:
            float64 array, shape (n_rollouts, K) with K = ``len(self.primitives)``; column k
            holds primitive k's values.

        Raises:
            ValueError: If ``rollouts`` and ``records`` differ in length.
        """
        if len(rollouts) != len(records):
            raise ValueError(
                f"rollouts and records must have the same length, got {len(rollouts)} "
                f"rollouts and {len(records)} records"
            )
        out = np.empty((len(rollouts), len(self.primitives)), dtype=np.float64)
        for i, (rollout, record) in enumerate(zip(rollouts, records, strict=True)):
            for k, primitive in enumerate(self.primitives):
                out[i, k] = primitive(rollout, record)
        return out
