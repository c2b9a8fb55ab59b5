"""The paper's structure taxonomy of meta-rewards: stable, unstable, invalid.

PAPER_FACTS.md §5, arXiv 2512.13399 §4.2 / §5.2 and Fig. 4. Used by the reports
(:mod:`derl_bench.report.aggregate`) to count the structures an agent proposes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from derl_bench.meta_reward.compiler import EPSILON
from derl_bench.meta_reward.errors import InvalidMetaReward
from derl_bench.meta_reward.limits import DEFAULT_PRIMITIVES
from derl_bench.meta_reward.nodes import Neg, Node, Num, Prim
from derl_bench.meta_reward.parser import parse

__all__ = ["GOOD_SIGNAL", "STRUCTURES", "Structure", "classify_structure"]

Structure = Literal["stable", "unstable", "invalid"]
"""A class of the paper's structure taxonomy."""
STRUCTURES: tuple[Structure, ...] = ("stable", "unstable", "invalid")
"""The classes, in plotting order."""
GOOD_SIGNAL = "g1"
"""The primitive whose weight must not be negative: outcome / task success in every domain."""


def _has_primitive(node: Node) -> bool:
    if isinstance(node, Prim):
        return True
    if isinstance(node, Num):
        return False
    if isinstance(node, Neg):
        return _has_primitive(node.operand)
    return _has_primitive(node.left) or _has_primitive(node.right)


def _has_primitive_product(node: Node) -> bool:
    if isinstance(node, (Num, Prim)):
        return False
    if isinstance(node, Neg):
        return _has_primitive_product(node.operand)
    if node.op == "*" and _has_primitive(node.left) and _has_primitive(node.right):
        return True
    return _has_primitive_product(node.left) or _has_primitive_product(node.right)


def classify_structure(
    meta_reward: str | None,
    primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
    *,
    valid: bool = True,
) -> Structure:
    """Classify a meta-reward by the paper's structure taxonomy (PAPER_FACTS.md §5).

    The paper names three kinds (arXiv 2512.13399 §4.2 / §5.2, Table 3): *stable* — linear or
    normalised, e.g. ``0.5*g1 + 0.8*g2`` or ``g1/(g2+1)``; *unstable* — products of primitives
    that act as a veto, e.g. ``g1*(g2+0.2)*g3``; *invalid* — invalid expressions or negative
    coefficients on good signals, e.g. ``-(g1+0.5*g2)``. The paper gives no algorithm; ours,
    applied in this order to the parsed, constant-folded tree:

    1. **invalid** if the meta-step was invalid (``valid`` False, ``meta_reward`` None or
       unparseable), or if the reward *falls* when the good signal :data:`GOOD_SIGNAL` (g1)
       rises: with every primitive at ``1 + EPSILON``, the reward at ``g1 = 1 + EPSILON`` is
       below the reward at ``g1 = EPSILON`` (a finite-difference sign of the derivative at the
       probe point; skipped if g1 is not a primitive or a value is not finite);
    2. **unstable** if any ``*`` node multiplies two subtrees that both read a primitive
       (division is not counted: ``g1/(g2+1)`` is a normalisation);
    3. **stable** otherwise.

    Args:
        meta_reward: The meta-reward text (canonical or as proposed), or None for an invalid
            meta-step.
        primitive_names: The domain's primitives, ``g<n>`` each (default g1..g4).
        valid: Whether the env accepted the meta-reward.

    Returns:
        ``"stable"``, ``"unstable"`` or ``"invalid"``.

    Raises:
        ValueError: If ``primitive_names`` is malformed.
    """
    if not valid or meta_reward is None:
        return "invalid"
    try:
        parsed = parse(meta_reward, primitive_names)
    except InvalidMetaReward:
        return "invalid"
    names = parsed.primitive_names
    if GOOD_SIGNAL in names:
        column = names.index(GOOD_SIGNAL)
        rows = np.full((2, len(names)), 1.0 + EPSILON)
        rows[1, column] = EPSILON
        high, low = parsed(rows)
        if math.isfinite(high) and math.isfinite(low) and high < low:
            return "invalid"
    if _has_primitive_product(parsed.tree):
        return "unstable"
    return "stable"
