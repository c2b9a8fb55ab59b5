"""Random meta-reward expression trees and the subtree helpers of genetic programming.

Used by the black-box search baselines (``random``, ``evolution``): DERL (arXiv 2512.13399,
App. F) compares its Meta-Optimizer with a compute-controlled random search over reward
functions, and argues against derivative-free evolutionary heuristics. Both need random
expressions from the meta-reward language.

Trees are the language's own AST (:mod:`derl_bench.meta_reward.nodes`: ``Num``, ``Prim``,
``Neg``, ``BinOp``), printed with :func:`~derl_bench.meta_reward.nodes.to_text`. A random tree
may still be rejected by :func:`~derl_bench.meta_reward.parse`, e.g. ``g1 / (g2 - g2)``
(``non_finite``) or ``0.5 + 1.2`` (``no_primitive``); :func:`random_valid_tree` therefore
resamples until ``parse`` accepts and, after a bounded number of tries, falls back to a random
linear form, so the agents only ever emit valid meta-rewards.

A *path* addresses a subtree: a tuple of child indices from the root (``0`` is ``Neg.operand``
or ``BinOp.left``, ``1`` is ``BinOp.right``); ``()`` is the root.

All randomness comes from a caller's :class:`numpy.random.Generator`, so equal generator states
give equal trees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from derl_bench.meta_reward import InvalidMetaReward, MetaReward, parse
from derl_bench.meta_reward.limits import MAX_DEPTH, check_primitive_names
from derl_bench.meta_reward.nodes import BINARY_OPS, BinOp, Neg, Node, Num, Prim, to_text

__all__ = [
    "Path",
    "TreeConfig",
    "count_nodes",
    "get_subtree",
    "linear_tree",
    "random_linear_tree",
    "random_tree",
    "random_valid_tree",
    "replace_subtree",
    "round_constants",
    "round_significant",
    "subtrees",
    "validate",
]

Path = tuple[int, ...]
"""Child indices from the root to a subtree; ``()`` is the root (see the module docstring)."""


@dataclass(frozen=True, kw_only=True)
class TreeConfig:
    """How random expression trees are grown ("grow" method of genetic programming, Koza 1992).

    Raises:
        ValueError: If a field is out of range; the message quotes the value.
    """

    max_depth: int = 4
    """Largest tree height (a leaf has height 1, ``g1 + g2`` height 2), in [1, MAX_DEPTH]."""
    leaf_probability: float = 0.3
    """Chance that a node above the depth limit becomes a leaf anyway, in [0, 1]; the root is a
    leaf only when ``max_depth == 1``."""
    primitive_probability: float = 0.6
    """Chance that a leaf is a primitive rather than a constant, in [0, 1]."""
    neg_probability: float = 0.05
    """Chance that an inner node is a unary minus rather than a binary operator, in [0, 1]."""
    operators: tuple[str, ...] = ("+", "-", "*", "/")
    """Binary operators to draw from, uniformly; a non-empty subset of ``+ - * /``."""
    constant_low: float = -2.0
    """Smallest random constant (constants are uniform in [constant_low, constant_high])."""
    constant_high: float = 2.0
    """Largest random constant; finite and >= ``constant_low``."""
    constant_digits: int = 3
    """Significant digits random and perturbed constants are rounded to, in [1, 17]."""
    max_tries: int = 100
    """Random trees drawn before :func:`random_valid_tree` falls back to a linear form, >= 1."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_DEPTH:
            raise ValueError(f"max_depth={self.max_depth} must be in [1, {MAX_DEPTH}]")
        for name in ("leaf_probability", "primitive_probability", "neg_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} must be in [0, 1]")
        object.__setattr__(self, "operators", tuple(self.operators))
        if not self.operators or not set(self.operators) <= set(BINARY_OPS):
            raise ValueError(
                f"operators={self.operators!r} must be a non-empty subset of {tuple(BINARY_OPS)}"
            )
        if not (math.isfinite(self.constant_low) and math.isfinite(self.constant_high)):
            raise ValueError(
                f"constant_low={self.constant_low} and constant_high={self.constant_high} "
                "must be finite"
            )
        if self.constant_low > self.constant_high:
            raise ValueError(
                f"constant_low={self.constant_low} must be <= constant_high={self.constant_high}"
            )
        if not 1 <= self.constant_digits <= 17:
            raise ValueError(f"constant_digits={self.constant_digits} must be in [1, 17]")
        if self.max_tries < 1:
            raise ValueError(f"max_tries={self.max_tries} must be >= 1")


def round_significant(value: float, digits: int) -> float:
    """Round a float to ``digits`` significant digits (``0.123456, 3 -> 0.123``).

    Args:
        value: A finite float.
        digits: Significant digits, >= 1.

    Returns:
        The rounded float; ``0.0`` stays ``0.0``, and a non-finite input is returned unchanged.
    """
    if value == 0.0 or not math.isfinite(value):
        return float(value)
    return float(f"{value:.{digits}g}")


def round_constants(node: Node, digits: int) -> Node:
    """Round every constant of a tree to ``digits`` significant digits.

    Args:
        node: Any tree whose constants are finite.
        digits: Significant digits, >= 1.

    Returns:
        The rounded tree (``node`` is unchanged).
    """
    if isinstance(node, Num):
        return Num(value=round_significant(node.value, digits))
    if isinstance(node, Neg):
        return Neg(operand=round_constants(node.operand, digits))
    if isinstance(node, BinOp):
        left = round_constants(node.left, digits)
        return BinOp(op=node.op, left=left, right=round_constants(node.right, digits))
    return node


def _parse_or_none(node: Node, names: Sequence[str]) -> MetaReward | None:
    try:
        return parse(to_text(node), names)
    except InvalidMetaReward:
        return None


def validate(
    node: Node, primitive_names: Sequence[str], *, digits: int | None = None
) -> MetaReward | None:
    """Print a tree and parse it with the language's own parser.

    Args:
        node: Any tree whose constants are finite.
        primitive_names: The domain's primitives; every ``Prim.name`` in the tree should be one.
        digits: If given, the constants of the parsed, constant-folded tree are rounded to this
            many significant digits (``0.30000000000000004 -> 0.3``) and the result is parsed
            again; if the rounded form is rejected, the unrounded one is returned.

    Returns:
        The parsed meta-reward (its ``tree`` is constant-folded, its ``canonical`` the text an
        agent emits), or ``None`` if :func:`~derl_bench.meta_reward.parse` rejects the text.
    """
    parsed = _parse_or_none(node, primitive_names)
    if parsed is None or digits is None:
        return parsed
    rounded = _parse_or_none(round_constants(parsed.tree, digits), primitive_names)
    return rounded if rounded is not None else parsed


def _random_constant(rng: np.random.Generator, config: TreeConfig) -> Num:
    value = float(rng.uniform(config.constant_low, config.constant_high))
    return Num(value=round_significant(value, config.constant_digits))


def _random_leaf(
    rng: np.random.Generator, names: tuple[str, ...], config: TreeConfig
) -> Num | Prim:
    if rng.random() < config.primitive_probability:
        index = int(rng.integers(len(names)))
        return Prim(name=names[index], index=index)
    return _random_constant(rng, config)


def random_tree(
    rng: np.random.Generator,
    primitive_names: Sequence[str],
    config: TreeConfig | None = None,
    *,
    max_depth: int | None = None,
) -> Node:
    """Grow one random tree; it may be invalid (no primitive, or a zero divisor).

    Each node at height budget ``d`` is a leaf if ``d == 1`` or, except at the root, with
    probability ``config.leaf_probability``; an inner node is a unary minus with probability
    ``config.neg_probability`` and otherwise a uniform binary operator.

    Args:
        rng: Source of randomness (advanced in place).
        primitive_names: The domain's primitives ``g<n>``, K >= 1.
        config: Growth controls; defaults to ``TreeConfig()``.
        max_depth: Overrides ``config.max_depth`` (e.g. for a replacement subtree), >= 1.

    Returns:
        A tree of height <= ``max_depth``.

    Raises:
        ValueError: If ``max_depth < 1`` or ``primitive_names`` is malformed.
    """
    config = config or TreeConfig()
    names = check_primitive_names(primitive_names)
    depth = config.max_depth if max_depth is None else max_depth
    if depth < 1:
        raise ValueError(f"max_depth={depth} must be >= 1")

    def grow(budget: int, is_root: bool) -> Node:
        if budget == 1 or (not is_root and rng.random() < config.leaf_probability):
            return _random_leaf(rng, names, config)
        if rng.random() < config.neg_probability:
            return Neg(operand=grow(budget - 1, False))
        op = config.operators[int(rng.integers(len(config.operators)))]
        return BinOp(op=op, left=grow(budget - 1, False), right=grow(budget - 1, False))

    return grow(depth, True)


def linear_tree(weights: Sequence[float], primitive_names: Sequence[str]) -> Node:
    """Build ``w1 * g1 + w2 * g2 + ... + wK * gK`` as a tree (left-nested sums).

    Args:
        weights: K finite floats, one per primitive.
        primitive_names: The domain's primitives, K >= 1.

    Returns:
        The tree; always accepted by ``parse`` when the weights are moderate (|w| < 1e300).

    Raises:
        ValueError: If the lengths differ or ``primitive_names`` is malformed.
    """
    names = check_primitive_names(primitive_names)
    if len(weights) != len(names):
        raise ValueError(f"got {len(weights)} weights for {len(names)} primitives {names}")
    terms = [
        BinOp(op="*", left=Num(value=float(w)), right=Prim(name=name, index=i))
        for i, (w, name) in enumerate(zip(weights, names, strict=True))
    ]
    tree: Node = terms[0]
    for term in terms[1:]:
        tree = BinOp(op="+", left=tree, right=term)
    return tree


def random_linear_tree(
    rng: np.random.Generator, primitive_names: Sequence[str], config: TreeConfig | None = None
) -> Node:
    """Draw a linear form with weights uniform in [0, 1], rounded as ``config`` says.

    The first weight is at least 0.1, so the form never ignores the outcome primitive entirely.

    Args:
        rng: Source of randomness (advanced in place).
        primitive_names: The domain's primitives, K >= 1.
        config: Supplies ``constant_digits``; defaults to ``TreeConfig()``.

    Returns:
        A tree ``w1 * g1 + ... + wK * gK`` that ``parse`` accepts.
    """
    config = config or TreeConfig()
    names = check_primitive_names(primitive_names)
    weights = rng.uniform(0.0, 1.0, size=len(names))
    weights[0] = max(weights[0], 0.1)
    rounded = [round_significant(float(w), config.constant_digits) for w in weights]
    return linear_tree(rounded, names)


def random_valid_tree(
    rng: np.random.Generator, primitive_names: Sequence[str], config: TreeConfig | None = None
) -> MetaReward:
    """Draw random trees until ``parse`` accepts one; fall back to a random linear form.

    Args:
        rng: Source of randomness (advanced in place).
        primitive_names: The domain's primitives, K >= 1.
        config: Growth controls; at most ``config.max_tries`` trees are drawn.

    Returns:
        The parsed meta-reward; its ``canonical`` is the text to propose and its ``tree``
        (constant-folded, height <= ``config.max_depth``) the genome.
    """
    config = config or TreeConfig()
    for _ in range(config.max_tries):
        tree = random_tree(rng, primitive_names, config)
        parsed = validate(tree, primitive_names, digits=config.constant_digits)
        if parsed is not None and parsed.depth <= config.max_depth:
            return parsed
    parsed = validate(random_linear_tree(rng, primitive_names, config), primitive_names)
    assert parsed is not None, "a linear form with weights in [0, 1] always parses"
    return parsed


def subtrees(node: Node) -> list[tuple[Path, Node]]:
    """List every subtree with its path, in pre-order (root first).

    Args:
        node: Any tree.

    Returns:
        ``count_nodes(node)`` pairs ``(path, subtree)``; the first is ``((), node)``.
    """
    found: list[tuple[Path, Node]] = []

    def walk(current: Node, path: Path) -> None:
        found.append((path, current))
        if isinstance(current, Neg):
            walk(current.operand, (*path, 0))
        elif isinstance(current, BinOp):
            walk(current.left, (*path, 0))
            walk(current.right, (*path, 1))

    walk(node, ())
    return found


def get_subtree(node: Node, path: Path) -> Node:
    """Return the subtree at ``path``.

    Args:
        node: Any tree.
        path: A path from :func:`subtrees`.

    Returns:
        The subtree.

    Raises:
        IndexError: If ``path`` does not address a node of ``node``.
    """
    for step in path:
        if isinstance(node, Neg) and step == 0:
            node = node.operand
        elif isinstance(node, BinOp) and step in (0, 1):
            node = node.left if step == 0 else node.right
        else:
            raise IndexError(f"path {path} leaves the tree at step {step}")
    return node


def replace_subtree(node: Node, path: Path, new: Node) -> Node:
    """Return a copy of ``node`` with the subtree at ``path`` replaced by ``new``.

    Trees are immutable, so only the nodes along ``path`` are rebuilt; the rest is shared.

    Args:
        node: Any tree.
        path: A path from :func:`subtrees`; ``()`` replaces the whole tree.
        new: The replacement subtree.

    Returns:
        The new tree (``node`` is unchanged).

    Raises:
        IndexError: If ``path`` does not address a node of ``node``.
    """
    if not path:
        return new
    step, rest = path[0], path[1:]
    if isinstance(node, Neg) and step == 0:
        return Neg(operand=replace_subtree(node.operand, rest, new))
    if isinstance(node, BinOp) and step == 0:
        return BinOp(op=node.op, left=replace_subtree(node.left, rest, new), right=node.right)
    if isinstance(node, BinOp) and step == 1:
        return BinOp(op=node.op, left=node.left, right=replace_subtree(node.right, rest, new))
    raise IndexError(f"path {path} leaves the tree at step {step}")


def count_nodes(node: Node) -> int:
    """Count the nodes of a tree (numbers, primitives, unary minus, binary operators).

    Args:
        node: Any tree.

    Returns:
        The count, >= 1 (the parser's ``MAX_NODES`` limit applies to the same count).
    """
    return node.n_nodes
