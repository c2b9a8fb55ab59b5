"""The cold-start corpus: valid meta-rewards in the three shapes of the paper's examples.

The official cold-start data (``dataset/cold_start_training_data.json`` in
github.com/sitaocheng/DERL; PAPER_FACTS.md §1) holds 206 formulas such as
``0.4 * g1 + 0.3 * g2 + 0.2 * g3 + 0.1 * g4``. Its SFT script is not published, so we generate a
corpus of the same kind, seeded, in three shapes (paper Table 3 shows all three among the
learned rewards):

* linear: ``0.4 * g1 + 0.35 * g3`` (weights that sum to 1, or free weights in [0.1, 2]);
* normalised: ``(2 * g1 + 0.5 * g2) / (2 + 0.5)``;
* nested: ``g1 + 0.5 * (g2 + 0.3 * (g4 + 0.2 * g3))``.

Every record uses the first primitive (the outcome, g1) and a random subset of the others.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from derl_bench.meta_reward import parse
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = ["SHAPES", "generate_corpus"]


def _weight(rng: random.Random) -> str:
    """A weight such as ``0.3``, ``1.5`` or ``2`` (one decimal, in [0.1, 2])."""
    return f"{rng.randint(1, 20) / 10:g}"


def _subset(rng: random.Random, names: tuple[str, ...]) -> list[str]:
    """The first primitive, then a random subset of the others (usually non-empty), shuffled."""
    others = list(names[1:])
    chosen = rng.sample(others, rng.randint(0, len(others))) if others else []
    if not chosen and others and rng.random() < 0.8:
        chosen = [rng.choice(others)]
    return [names[0], *chosen]


def _linear(rng: random.Random, names: tuple[str, ...]) -> str:
    terms = _subset(rng, names)
    if rng.random() < 0.5:  # weights summing to 1, as in the official corpus
        raw = [rng.randint(1, 9) for _ in terms]
        weights = [f"{round(r / sum(raw), 2):g}" for r in raw]
    else:
        weights = [_weight(rng) for _ in terms]
    parts = [name if w == "1" else f"{w} * {name}" for w, name in zip(weights, terms, strict=True)]
    return " + ".join(parts)


def _normalised(rng: random.Random, names: tuple[str, ...]) -> str:
    terms = _subset(rng, names)
    weights = [_weight(rng) for _ in terms]
    top = " + ".join(f"{w} * {name}" for w, name in zip(weights, terms, strict=True))
    return f"({top}) / ({' + '.join(weights)})"


def _nested(rng: random.Random, names: tuple[str, ...]) -> str:
    terms = _subset(rng, names)
    text = terms[-1]
    for name in reversed(terms[:-1]):
        inner = text if text in names else f"({text})"
        text = f"{name} + {_weight(rng)} * {inner}"
    return text


SHAPES: dict[str, Callable[[random.Random, tuple[str, ...]], str]] = {
    "linear": _linear,
    "normalised": _normalised,
    "nested": _nested,
}
"""The corpus shapes, each a function of (rng, primitive_names) returning meta-reward text."""


def generate_corpus(primitive_names: Sequence[str], n: int, seed: int) -> tuple[str, ...]:
    """Generate the cold-start corpus: ``n`` valid meta-rewards, shapes in turn.

    Args:
        primitive_names: The domain's primitives, e.g. ``("g1", "g2", "g3", "g4")``.
        n: Number of records, >= 1 (duplicates possible, as in the official corpus).
        seed: Seed of the generator; the same arguments give the same corpus.

    Returns:
        ``n`` texts, each accepted by :func:`derl_bench.meta_reward.parse`; record ``i`` has
        shape ``list(SHAPES)[i % 3]``.

    Raises:
        ValueError: If ``n < 1`` or ``primitive_names`` is invalid.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    names = check_primitive_names(primitive_names)
    rng = random.Random(seed)
    shapes = list(SHAPES.values())
    records = []
    for i in range(n):
        text = shapes[i % len(shapes)](rng, names)
        parse(text, primitive_names=names)  # raises if a shape is ever wrong
        records.append(text)
    return tuple(records)
