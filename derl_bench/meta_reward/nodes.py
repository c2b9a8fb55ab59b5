"""Expression tree of the meta-reward language: nodes, constant folding, printing, evaluation.

The parser builds these nodes bottom-up; every node records its height (``depth``) and size
(``n_nodes``) when it is created, so limits are enforced before any recursive walk. All walks
below recurse, which is safe because trees deeper than ``MAX_DEPTH`` are rejected first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from derl_bench.meta_reward.errors import InvalidMetaReward

__all__ = [
    "BINARY_OPS",
    "BinOp",
    "Neg",
    "Node",
    "Num",
    "Prim",
    "evaluate",
    "fold_constants",
    "format_number",
    "primitive_indices",
    "to_text",
]

#: The binary operators and their float64 ufuncs (IEEE 754 semantics: ``1/0 == inf``).
BINARY_OPS: dict[str, Callable[..., np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
}

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_UNARY_PRECEDENCE = 3
_ATOM_PRECEDENCE = 4


@dataclass(frozen=True, kw_only=True)
class Num:
    """A float64 constant; finite in every accepted meta-reward."""

    value: float
    """The constant, a Python float (IEEE 754 binary64)."""

    @property
    def depth(self) -> int:
        """Height of the subtree: 1."""
        return 1

    @property
    def n_nodes(self) -> int:
        """Number of nodes in the subtree: 1."""
        return 1


@dataclass(frozen=True, kw_only=True)
class Prim:
    """A primitive ``g<n>``, read from column ``index`` of the values matrix."""

    name: str
    """The primitive's name, e.g. ``"g2"``."""
    index: int
    """Column of the primitive in the values matrix, ``0 <= index < K``."""

    @property
    def depth(self) -> int:
        """Height of the subtree: 1."""
        return 1

    @property
    def n_nodes(self) -> int:
        """Number of nodes in the subtree: 1."""
        return 1


@dataclass(frozen=True, kw_only=True)
class Neg:
    """Unary minus of ``operand``."""

    operand: Node
    """The negated subtree."""
    depth: int = field(init=False, compare=False, repr=False)
    """Height of the subtree, ``operand.depth + 1``."""
    n_nodes: int = field(init=False, compare=False, repr=False)
    """Number of nodes in the subtree, ``operand.n_nodes + 1``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", self.operand.depth + 1)
        object.__setattr__(self, "n_nodes", self.operand.n_nodes + 1)


@dataclass(frozen=True, kw_only=True)
class BinOp:
    """A binary operation ``left op right`` with ``op`` in ``+ - * /``."""

    op: str
    """One of the keys of :data:`BINARY_OPS`."""
    left: Node
    """Left operand."""
    right: Node
    """Right operand."""
    depth: int = field(init=False, compare=False, repr=False)
    """Height of the subtree, ``max(left.depth, right.depth) + 1``."""
    n_nodes: int = field(init=False, compare=False, repr=False)
    """Number of nodes in the subtree, ``left.n_nodes + right.n_nodes + 1``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", max(self.left.depth, self.right.depth) + 1)
        object.__setattr__(self, "n_nodes", self.left.n_nodes + self.right.n_nodes + 1)


Node = Num | Prim | Neg | BinOp
"""Any node of an expression tree."""


def format_number(value: float) -> str:
    """Print a finite float in the shortest form that reads back to the same float.

    Uses Python's shortest round-trip ``repr`` and drops a trailing ``.0``: ``3.0 -> "3"``,
    ``0.5 -> "0.5"``, ``1e-06 -> "1e-06"``, ``-0.0 -> "-0"``, ``1e+16 -> "1e+16"``. Every
    output matches the grammar's ``NUMBER`` (after an optional unary minus).

    Args:
        value: A finite float.

    Returns:
        The printed number; ``float(result) == value`` with the same sign bit.

    Raises:
        ValueError: If ``value`` is nan or infinite (the language has no such literals).
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot print non-finite constant {value!r} in a meta-reward")
    text = repr(value)
    if text.endswith(".0"):
        text = text[:-2]
    return text


def _precedence(node: Node) -> int:
    if isinstance(node, BinOp):
        return _PRECEDENCE[node.op]
    if isinstance(node, Neg):
        return _UNARY_PRECEDENCE
    if isinstance(node, Num) and math.copysign(1.0, node.value) < 0:
        return _UNARY_PRECEDENCE  # printed with a leading "-"
    return _ATOM_PRECEDENCE


def to_text(node: Node) -> str:
    """Print a tree with normalised spacing and the fewest parentheses that keep its shape.

    Binary operators are left-associative and printed with one space on each side; unary minus
    is printed without a space. A left operand is parenthesised when it binds more loosely than
    its operator, a right operand when it binds as loosely or more (``g1 - (g2 - g3)``, and also
    ``g1 + (g2 + g3)`` since float addition is not associative). Parsing the output gives back
    the same tree, so printing a folded tree yields the canonical form.

    Args:
        node: Any tree whose constants are finite.

    Returns:
        The expression text.
    """
    if isinstance(node, Num):
        return format_number(node.value)
    if isinstance(node, Prim):
        return node.name
    if isinstance(node, Neg):
        inner = to_text(node.operand)
        if _precedence(node.operand) < _UNARY_PRECEDENCE:
            inner = f"({inner})"
        return f"-{inner}"
    prec = _PRECEDENCE[node.op]
    left = to_text(node.left)
    if _precedence(node.left) < prec:
        left = f"({left})"
    right = to_text(node.right)
    if _precedence(node.right) <= prec:
        right = f"({right})"
    return f"{left} {node.op} {right}"


def fold_constants(node: Node) -> Node:
    """Replace every primitive-free subtree by its float64 value and drop double negations.

    Folding uses the same IEEE 754 float64 arithmetic as :func:`evaluate` (numpy, warnings
    suppressed), so the folded tree evaluates bit-identically to the original. Operations that
    involve a primitive are never reordered or simplified: ``2 * g1 * 3`` stays as written, only
    ``(2 * 3) * g1`` becomes ``6 * g1``. ``-(-x)`` becomes ``x`` (negation is exact).

    Args:
        node: A tree built by the parser.

    Returns:
        The folded tree; a :class:`Num` only when ``node`` contains no primitive.

    Raises:
        InvalidMetaReward: reason ``"non_finite"`` if a constant subexpression evaluates to
            inf or nan (e.g. ``1 / 0`` or ``1e308 * 10`` inside a larger expression).
    """
    if isinstance(node, (Num, Prim)):
        return node
    if isinstance(node, Neg):
        operand = fold_constants(node.operand)
        if isinstance(operand, Num):
            return Num(value=-operand.value)
        if isinstance(operand, Neg):
            return operand.operand
        return Neg(operand=operand)
    left = fold_constants(node.left)
    right = fold_constants(node.right)
    if isinstance(left, Num) and isinstance(right, Num):
        with np.errstate(all="ignore"):
            value = float(BINARY_OPS[node.op](np.float64(left.value), np.float64(right.value)))
        if not math.isfinite(value):
            raise InvalidMetaReward(
                "non_finite",
                f"constant subexpression '{to_text(node)}' evaluates to {value!r}; "
                "use finite constants and never divide by a constant zero",
            )
        return Num(value=value)
    return BinOp(op=node.op, left=left, right=right)


def primitive_indices(node: Node) -> set[int]:
    """Collect the columns of the primitives a tree reads.

    Args:
        node: Any tree.

    Returns:
        The set of :attr:`Prim.index` values in the tree (empty for a constant tree).
    """
    if isinstance(node, Prim):
        return {node.index}
    if isinstance(node, Num):
        return set()
    if isinstance(node, Neg):
        return primitive_indices(node.operand)
    return primitive_indices(node.left) | primitive_indices(node.right)


def evaluate(node: Node, columns: Sequence[np.ndarray]) -> np.ndarray | np.float64:
    """Evaluate a tree on primitive columns with numpy, one vectorised op per node.

    Call inside ``np.errstate(all="ignore")`` to silence overflow and division warnings; the
    result then simply holds inf or nan where IEEE 754 says so.

    Args:
        node: A tree whose :attr:`Prim.index` values are valid indices into ``columns``.
        columns: ``columns[i]`` is primitive ``i``'s values, float64, shape (n_rollouts,).

    Returns:
        float64, shape (n_rollouts,) (a numpy scalar only for a primitive-free tree).
    """
    if isinstance(node, Prim):
        return columns[node.index]
    if isinstance(node, Num):
        return np.float64(node.value)
    if isinstance(node, Neg):
        return np.negative(evaluate(node.operand, columns))
    return BINARY_OPS[node.op](evaluate(node.left, columns), evaluate(node.right, columns))
