"""The cold-start corpus: generated meta-rewards shaped like the official cold start.

The official cold-start data (``dataset/cold_start_training_data.json`` in
github.com/sitaocheng/DERL; PAPER_FACTS.md §1) holds 206 formulas over g1..g4 such as
``0.4 * g1 + 0.3 * g2 + 0.2 * g3 + 0.1 * g4``, ``(g1 * 0.4 + g2 * 0.3) / (g3 + g4 * 0.5)``,
``(g1 + g2) * (g3 - g4) * 0.75`` and ``((g1 + g2) * g3) / g4``. Its SFT script is not published
and we do not ship its data; this module generates a seeded corpus whose shape statistics
(:func:`shape_statistics`: share with a minus sign, with ``/``, with a product or ratio of two
primitive-reading subterms, with constants, primitives used) match it; the side-by-side table
is ``docs/meta_optimizer/corpus_shapes.md`` (``python -m
derl_bench.baselines.meta_optimizer.corpus_shapes``). Every record uses every primitive, as
every official record does. Families and their weights (:data:`SHAPES`):

* ``linear`` (0.30): weights summing to 1, coefficient before or after the primitive;
* ``signed`` (0.36): a weighted sum with one or two subtracted terms, sometimes ``g / 2``;
* ``ratio`` (0.13): ``(a * g1 + b * g2) / (g3 + c * g4)``, sometimes with a difference;
* ``product`` (0.12): ``(g1 + g2) * (g3 - g4) * 0.75`` or ``g1 * (g2 / 2) + g3 - 0.5 * g4``;
* ``product_ratio`` (0.09): ``((g1 + g2) * g3) / g4`` or ``g1 + g2 * g3 / g4``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from derl_bench.meta_reward import InvalidMetaReward, parse
from derl_bench.meta_reward.limits import check_primitive_names
from derl_bench.meta_reward.nodes import BinOp, Neg, Node, Num, Prim

__all__ = ["SHAPES", "generate_corpus", "shape_statistics"]


def _w(rng: random.Random) -> str:
    """A weight such as ``0.3``, ``0.25``, ``1.2`` or ``2``."""
    return rng.choice(
        [
            "0.1",
            "0.2",
            "0.3",
            "0.4",
            "0.5",
            "0.6",
            "0.8",
            "0.25",
            "0.15",
            "0.75",
            "1.2",
            "1.5",
            "2",
            "0.05",
            "0.35",
        ]
    )


def _term(rng: random.Random, name: str, weight: str) -> str:
    return f"{weight} * {name}" if rng.random() < 0.5 else f"{name} * {weight}"


def _sum_to_one(rng: random.Random, k: int) -> list[str]:
    raw = [rng.randint(1, 8) for _ in range(k)]
    total = sum(raw)
    weights = [round(r / total, 2) for r in raw]
    weights[0] = round(1 - sum(weights[1:]), 2)
    return [f"{max(w, 0.05):g}" for w in weights]


def _linear(rng: random.Random, names: tuple[str, ...]) -> str:
    weights = _sum_to_one(rng, len(names))
    before = rng.random() < 0.5
    parts = [f"{w} * {n}" if before else f"{n} * {w}" for w, n in zip(weights, names, strict=True)]
    if rng.random() < 0.45:
        parts = [f"({p})" for p in parts]
    text = " + ".join(parts)
    return f"{text} - {_w(rng)}" if rng.random() < 0.2 else text


def _signed(rng: random.Random, names: tuple[str, ...]) -> str:
    k = len(names)
    minus = set(rng.sample(range(1, k), min(k - 1, rng.choice([1, 1, 2])))) if k > 1 else set()
    text = ""
    for i, name in enumerate(names):
        roll = rng.random()
        if roll < 0.25:
            term = name
        elif roll < 0.37 and i > 0:
            term = f"{name} / {rng.choice(['2', '3', '4'])}"
        else:
            term = _term(rng, name, _w(rng))
        if i == 0:
            text = term
        else:
            text += f" {'-' if i in minus else '+'} {term}"
    if not minus:
        text = f"{text} - {_w(rng)}"
    return text


def _ratio(rng: random.Random, names: tuple[str, ...]) -> str:
    k = len(names)
    if k == 1:
        return f"{names[0]} / ({names[0]} + {_w(rng)})"
    cut = max(1, k // 2)
    top_op = " - " if rng.random() < 0.35 else " + "
    top = top_op.join(_term(rng, n, _w(rng)) if rng.random() < 0.7 else n for n in names[:cut])
    bottom = " + ".join(_term(rng, n, _w(rng)) if rng.random() < 0.4 else n for n in names[cut:])
    return f"({top}) / ({bottom})"


def _product(rng: random.Random, names: tuple[str, ...]) -> str:
    k = len(names)
    if k < 3 or rng.random() < 0.5:
        left, right = names[: max(1, k // 2)], names[max(1, k // 2) :] or names[:1]
        a = " + ".join(left)
        b = " - ".join(right)
        return f"({a}) * ({b}) * {_w(rng)}"
    rest = " - ".join(_term(rng, n, _w(rng)) if j else n for j, n in enumerate(names[2:]))
    return f"{names[0]} * ({names[1]} / {rng.choice(['2', '3'])}) + {rest}"


def _product_ratio(rng: random.Random, names: tuple[str, ...]) -> str:
    k = len(names)
    if k < 3:
        return f"{names[0]} * {names[-1]} / ({names[-1]} + {_w(rng)})"
    if rng.random() < 0.5:
        return f"(({' + '.join(names[:-2])}) * {names[-2]}) / {names[-1]}"
    return f"{' + '.join(names[:-2])} + {names[-2]} * {names[-1]} / ({names[0]} + {_w(rng)})"


SHAPES: dict[str, tuple[float, Callable[[random.Random, tuple[str, ...]], str]]] = {
    "linear": (0.30, _linear),
    "signed": (0.36, _signed),
    "ratio": (0.13, _ratio),
    "product": (0.12, _product),
    "product_ratio": (0.09, _product_ratio),
}
"""The corpus families: name -> (weight, generator of (rng, primitive_names) -> text)."""


def generate_corpus(primitive_names: Sequence[str], n: int, seed: int) -> tuple[str, ...]:
    """Generate the cold-start corpus: ``n`` valid meta-rewards drawn from :data:`SHAPES`.

    Args:
        primitive_names: The domain's primitives, e.g. ``("g1", "g2", "g3", "g4")``.
        n: Number of records, >= 1 (duplicates possible, as in the official corpus).
        seed: Seed of the generator; the same arguments give the same corpus.

    Returns:
        ``n`` texts, each accepted by :func:`derl_bench.meta_reward.parse` and using every
        primitive.

    Raises:
        ValueError: If ``n < 1`` or ``primitive_names`` is invalid.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    names = check_primitive_names(primitive_names)
    rng = random.Random(seed)
    families = list(SHAPES.values())
    weights = [w for w, _ in families]
    records = []
    while len(records) < n:
        _, make = rng.choices(families, weights=weights)[0]
        text = make(rng, names)
        try:
            parse(text, primitive_names=names)
        except InvalidMetaReward:  # e.g. a zero denominator on the probe rows; draw again
            continue
        records.append(text)
    return tuple(records)


def _reads(node: Node) -> frozenset[str]:
    if isinstance(node, Prim):
        return frozenset([node.name])
    if isinstance(node, Num):
        return frozenset()
    if isinstance(node, Neg):
        return _reads(node.operand)
    return _reads(node.left) | _reads(node.right)


def _nodes(node: Node) -> list[Node]:
    out = [node]
    if isinstance(node, Neg):
        out += _nodes(node.operand)
    elif isinstance(node, BinOp):
        out += _nodes(node.left) + _nodes(node.right)
    return out


def shape_statistics(texts: Sequence[str], primitive_names: Sequence[str]) -> dict[str, Any]:
    """Shape statistics of a set of meta-rewards (the corpus-vs-official table).

    Shares are over the texts that parse; products and ratios count a ``*`` or ``/`` node whose
    two sides both read a primitive (after constant folding, as ``parse`` returns the tree).

    Args:
        texts: Meta-reward texts (``<formula>`` tags must already be removed).
        primitive_names: The primitive set they are over.

    Returns:
        ``records``, ``parsed``, ``unique``, shares ``minus``, ``divide``, ``parentheses``,
        ``product_of_primitives``, ``ratio_of_primitives``, ``constants``, ``uses_first``,
        ``mean_constants``, ``mean_length`` (characters) and ``primitives_used`` (count ->
        share).
    """
    names = check_primitive_names(primitive_names)
    trees = []
    for text in texts:
        try:
            trees.append((text, parse(text, primitive_names=names).tree))
        except InvalidMetaReward:
            continue
    n = max(len(trees), 1)

    def share(flags: list[bool]) -> float:
        return round(sum(flags) / n, 3)

    def has_op(tree: Node, op: str) -> bool:
        return any(
            isinstance(x, BinOp) and x.op == op and _reads(x.left) and _reads(x.right)
            for x in _nodes(tree)
        )

    used: dict[int, int] = {}
    for _, tree in trees:
        k = len(_reads(tree))
        used[k] = used.get(k, 0) + 1
    return {
        "records": len(texts),
        "parsed": len(trees),
        "unique": len(set(texts)),
        "minus": share(["-" in t for t, _ in trees]),
        "divide": share(["/" in t for t, _ in trees]),
        "parentheses": share(["(" in t for t, _ in trees]),
        "product_of_primitives": share([has_op(tree, "*") for _, tree in trees]),
        "ratio_of_primitives": share([has_op(tree, "/") for _, tree in trees]),
        "constants": share([any(isinstance(x, Num) for x in _nodes(tree)) for _, tree in trees]),
        "uses_first": share([names[0] in _reads(tree) for _, tree in trees]),
        "mean_constants": round(
            sum(sum(isinstance(x, Num) for x in _nodes(tree)) for _, tree in trees) / n, 2
        ),
        "mean_length": round(sum(len(t) for t, _ in trees) / n, 1),
        "primitives_used": {str(k): round(v / n, 3) for k, v in sorted(used.items())},
    }
