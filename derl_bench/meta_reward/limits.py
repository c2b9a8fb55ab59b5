"""Constants of the meta-reward language: alphabet, size limits and primitive names."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "ALPHABET",
    "DEFAULT_PRIMITIVES",
    "EPSILON",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "check_primitive_names",
    "describe_primitives",
]

#: Every character a meta-reward text may contain: digits, ``g`` (primitives), ``.``, ``e`` and
#: ``E`` (numbers), the four operators, parentheses and the ASCII space. Anything else (tabs,
#: newlines, Unicode look-alikes such as U+2212 MINUS SIGN) is rejected before parsing.
ALPHABET: str = "0123456789g.eE+-*/() "

#: Longest accepted text, in characters (``len(text)``), checked before parsing.
MAX_LENGTH: int = 512

#: Deepest accepted expression: the height of the expression tree (a primitive or a number has
#: height 1, ``g1 + g2`` height 2) and also the deepest parenthesis nesting.
MAX_DEPTH: int = 32

#: Largest accepted expression tree, in nodes (numbers, primitives, unary minus, binary ops).
MAX_NODES: int = 256

#: Primitive names of DERL's four-primitive domains (official code: ``expression_check.py`` in
#: github.com/sitaocheng/DERL); column ``i`` of a values matrix holds ``DEFAULT_PRIMITIVES[i]``.
DEFAULT_PRIMITIVES: tuple[str, ...] = ("g1", "g2", "g3", "g4")

#: Offset that DERL's primitives carry, so that a binary primitive takes the values ``EPSILON``
#: (false) and ``1 + EPSILON`` (true) and divisions by a primitive stay finite. Source: the
#: official code, ``verl/utils/reward_score/meta_reward_grpo.py`` in github.com/sitaocheng/DERL.
EPSILON: float = 1e-6

_PRIMITIVE_NAME = re.compile(r"g[1-9][0-9]*")


def check_primitive_names(primitive_names: Sequence[str]) -> tuple[str, ...]:
    """Validate a domain's primitive names and return them as a tuple.

    Args:
        primitive_names: Names ``g<n>`` (``n >= 1``, no leading zero), distinct, at least one;
            the order fixes the column of each primitive in a values matrix.

    Returns:
        The names as a tuple of ``str``, in the given order.

    Raises:
        TypeError: If ``primitive_names`` is a string or contains a non-string.
        ValueError: If it is empty, has duplicates, or a name is not of the form ``g<n>``.
    """
    if isinstance(primitive_names, (str, bytes)):
        raise TypeError(
            f"primitive_names must be a sequence of names such as ('g1', 'g2'), "
            f"not the string {primitive_names!r}"
        )
    names = tuple(primitive_names)
    if not names:
        raise ValueError(
            "primitive_names is empty; a domain needs at least one primitive, e.g. ('g1',)"
        )
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"primitive name {name!r} is a {type(name).__name__}, not a str")
        if _PRIMITIVE_NAME.fullmatch(name) is None:
            raise ValueError(
                f"primitive name {name!r} is not of the form g<n> with n >= 1 (e.g. 'g1', 'g12')"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"primitive_names {names!r} contains duplicates")
    return names


def describe_primitives(primitive_names: tuple[str, ...]) -> str:
    """Name a domain's primitives compactly for error messages.

    Args:
        primitive_names: Validated names, see :func:`check_primitive_names`.

    Returns:
        ``"g1..g4"`` when the names are ``g1`` to ``gK`` in order (``"g1"`` when K = 1),
        otherwise the names joined by ``", "``.
    """
    k = len(primitive_names)
    if primitive_names == tuple(f"g{i}" for i in range(1, k + 1)):
        return "g1" if k == 1 else f"g1..g{k}"
    return ", ".join(primitive_names)
