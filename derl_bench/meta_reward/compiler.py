"""Compiled meta-rewards: validation on probe rows and vectorised evaluation."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from derl_bench.meta_reward.errors import InvalidMetaReward
from derl_bench.meta_reward.limits import EPSILON, MAX_LENGTH, check_primitive_names
from derl_bench.meta_reward.nodes import (
    Node,
    evaluate,
    fold_constants,
    format_number,
    primitive_indices,
    to_text,
)

__all__ = [
    "DERL_PROBE",
    "MetaReward",
    "SafeRewards",
    "compile_tree",
    "probe_values",
    "safe_rewards",
]

#: The validity probe of the official DERL code (``check_rollout`` in ``expression_check.py``,
#: github.com/sitaocheng/DERL): values of g1..g4 on which a meta-reward must evaluate.
DERL_PROBE: tuple[float, ...] = (1.0, 1.0, EPSILON, 1.0 + EPSILON)


def probe_values(n_primitives: int) -> np.ndarray:
    """Build the probe rows every accepted meta-reward must evaluate to finite numbers on.

    Row 0 is :data:`DERL_PROBE` (cycled when K != 4: column ``i`` gets ``DERL_PROBE[i % 4]``),
    row 1 has every primitive at ``EPSILON`` (all false) and row 2 at ``1 + EPSILON`` (all true),
    the values binary primitives take.

    Args:
        n_primitives: K, the number of primitives of the domain, ``>= 1``.

    Returns:
        float64, shape (3, n_primitives), values in {1.0, 1e-6, 1 + 1e-6}.

    Raises:
        ValueError: If ``n_primitives < 1``.
    """
    if n_primitives < 1:
        raise ValueError(f"n_primitives must be >= 1, got {n_primitives}")
    derl_row = [DERL_PROBE[i % len(DERL_PROBE)] for i in range(n_primitives)]
    return np.array(
        [derl_row, [EPSILON] * n_primitives, [1.0 + EPSILON] * n_primitives], dtype=np.float64
    )


CONSTANCY_ROWS = 32
"""Random rows (uniform in [ε, 1 + ε], fixed seed) on which, with the probe rows, a meta-reward
must take at least two different values."""


@functools.cache
def _constancy_rows(n_primitives: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = rng.uniform(EPSILON, 1.0 + EPSILON, size=(CONSTANCY_ROWS, n_primitives))
    rows.setflags(write=False)
    return rows


@dataclass(frozen=True, kw_only=True)
class MetaReward:
    """A validated meta-reward: an arithmetic expression over a domain's primitives.

    Build one with :func:`derl_bench.meta_reward.parse`; calling it maps a matrix of primitive
    values to one reward per rollout. Equality and hashing use ``canonical`` and
    ``primitive_names`` only, so ``parse("g1+g2") == parse("(g1) + g2")`` and a MetaReward
    is a good cache key. Instances pickle (the tree is plain dataclasses).

    Example:
        >>> mr = parse("g1 + 0.5*g2")
        >>> mr(np.array([[1.0, 1.0, 0.0, 0.0]]))
        array([1.5])
    """

    source: str = field(compare=False)
    """The text as given to :func:`parse`."""
    primitive_names: tuple[str, ...]
    """The domain's primitives; column ``i`` of a values matrix is ``primitive_names[i]``."""
    tree: Node = field(compare=False, repr=False)
    """The constant-folded expression tree."""
    canonical: str = field(init=False)
    """Canonical text: normalised spacing, constants folded, fewest parentheses, shortest
    round-trip numbers; ``parse(canonical).canonical == canonical``."""
    primitives_used: tuple[str, ...] = field(init=False, compare=False)
    """Primitives the expression reads, ordered by their column in ``primitive_names``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "primitive_names", check_primitive_names(self.primitive_names))
        object.__setattr__(self, "canonical", to_text(self.tree))
        used = sorted(primitive_indices(self.tree))
        object.__setattr__(self, "primitives_used", tuple(self.primitive_names[i] for i in used))

    @property
    def n_nodes(self) -> int:
        """Number of nodes of the folded tree (numbers, primitives, operators), ``>= 1``."""
        return self.tree.n_nodes

    @property
    def depth(self) -> int:
        """Height of the folded tree (``g1`` has depth 1, ``g1 + g2`` depth 2), ``>= 1``."""
        return self.tree.depth

    def __str__(self) -> str:
        return self.canonical

    def __call__(self, values: ArrayLike) -> np.ndarray:
        """Compute one reward per rollout, vectorised over rollouts.

        Args:
            values: Primitive values, float64-convertible, shape (n_rollouts, K) with
                ``K == len(primitive_names)``; column ``i`` holds ``primitive_names[i]``.
                DERL's binary primitives take values in {1e-6, 1 + 1e-6}.

        Returns:
            rewards: float64, shape (n_rollouts,), a new array. May contain inf or nan (e.g.
            a division by a primitive that is 0 in some row); no numpy warning is emitted.
            Use :func:`safe_rewards` to zero them.

        Raises:
            ValueError: If ``values`` is not 2-D with K columns or not convertible to float64.
        """
        matrix = np.asarray(values, dtype=np.float64)
        k = len(self.primitive_names)
        if matrix.ndim != 2 or matrix.shape[1] != k:
            raise ValueError(
                f"values must have shape (n_rollouts, {k}) with columns {self.primitive_names}, "
                f"got shape {matrix.shape}"
            )
        with np.errstate(all="ignore"):
            result = evaluate(self.tree, matrix.T)
        rewards = np.empty(matrix.shape[0], dtype=np.float64)
        rewards[...] = result
        return rewards


class SafeRewards(NamedTuple):
    """Rewards with non-finite entries replaced, and how many were replaced."""

    rewards: np.ndarray
    """float64, shape (n_rollouts,), all finite."""
    n_nonfinite: int
    """Number of entries that were inf or nan and are now 0.0, in [0, n_rollouts]."""


def safe_rewards(meta_reward: MetaReward, values: ArrayLike) -> SafeRewards:
    """Evaluate a meta-reward and set every inf or nan reward to 0.0.

    Args:
        meta_reward: A parsed meta-reward.
        values: float64, shape (n_rollouts, K), as for :meth:`MetaReward.__call__`.

    Returns:
        ``SafeRewards(rewards, n_nonfinite)``, unpackable as a pair: rewards float64, shape
        (n_rollouts,), finite; n_nonfinite an ``int``.

    Raises:
        ValueError: If ``values`` has the wrong shape (see :meth:`MetaReward.__call__`).
    """
    rewards = meta_reward(values)
    nonfinite = ~np.isfinite(rewards)
    n_nonfinite = int(np.count_nonzero(nonfinite))
    if n_nonfinite:
        rewards[nonfinite] = 0.0
    return SafeRewards(rewards=rewards, n_nonfinite=n_nonfinite)


def _describe_row(primitive_names: tuple[str, ...], row: np.ndarray) -> str:
    return ", ".join(f"{n}={format_number(v)}" for n, v in zip(primitive_names, row, strict=True))


def compile_tree(tree: Node, *, source: str, primitive_names: tuple[str, ...]) -> MetaReward:
    """Turn a parsed tree into a validated :class:`MetaReward` (the checks after syntax).

    Checks, in order: the tree reads a primitive; constant subtrees fold to finite values;
    the result is finite on every row of :func:`probe_values`; it is not constant (the same
    value on the probe rows and on :data:`CONSTANCY_ROWS` random rows, e.g. ``g1 - g1``: every
    rollout would get the same reward, so GRPO's group-normalised advantages would all be 0 and
    training would leave the policy unchanged); the canonical text fits in ``MAX_LENGTH``
    characters (so that it parses again).

    Args:
        tree: Tree from the parser, within the depth and node limits.
        source: The text the tree was parsed from.
        primitive_names: The domain's validated primitive names.

    Returns:
        The compiled meta-reward.

    Raises:
        InvalidMetaReward: reason ``"no_primitive"``, ``"non_finite"``, ``"constant"`` or
            ``"too_long"``.
    """
    if not primitive_indices(tree):
        raise InvalidMetaReward(
            "no_primitive",
            f"the expression uses no primitive, so it gives every rollout the same reward; "
            f"include at least one of {', '.join(primitive_names)}, e.g. 'g1 + 0.5 * g2'",
        )
    meta_reward = MetaReward(
        source=source, primitive_names=primitive_names, tree=fold_constants(tree)
    )
    probe = probe_values(len(primitive_names))
    rewards = meta_reward(probe)
    for row, reward in zip(probe, rewards, strict=True):
        if not math.isfinite(reward):
            raise InvalidMetaReward(
                "non_finite",
                f"'{meta_reward.canonical}' evaluates to {float(reward)!r} on the probe rollout "
                f"{_describe_row(primitive_names, row)}: a divisor is zero or a value "
                "overflows there; keep divisors away from zero, e.g. g1 / (g2 + 1) instead "
                "of g1 / (g2 - g2)",
            )
    rows = np.concatenate([probe, _constancy_rows(len(primitive_names))])
    values = meta_reward(rows)
    finite = values[np.isfinite(values)]
    if finite.size >= 2 and np.all(finite == finite[0]):
        raise InvalidMetaReward(
            "constant",
            f"'{meta_reward.canonical}' gives every rollout the same reward "
            f"({float(finite[0])!r}) whatever the primitives are, so GRPO's group-normalised "
            "advantages are all 0 and training leaves the policy unchanged; write an "
            "expression whose value changes with the primitives, e.g. 'g1 + 0.5 * g2' instead "
            "of 'g1 - g1'",
        )
    if len(meta_reward.canonical) > MAX_LENGTH:
        raise InvalidMetaReward(
            "too_long",
            f"the canonical form of this expression has {len(meta_reward.canonical)} characters "
            f"(limit {MAX_LENGTH}, spaces around operators included); write a shorter expression",
        )
    return meta_reward
