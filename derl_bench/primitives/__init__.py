"""Primitives g_i: atomic reward functions of one rollout, grouped in named primitive sets.

``MATH_PRIMITIVES`` is imported lazily (on first attribute access) so that importing this
package stays light; :func:`get_primitive_set` looks sets up by name, including plug-ins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from derl_bench.primitives.base import EPSILON, BinaryPrimitive, Primitive, PrimitiveSet
from derl_bench.primitives.registry import (
    UnknownPrimitiveSetError,
    get_primitive_set,
    list_primitive_sets,
)

if TYPE_CHECKING:
    from derl_bench.primitives.math import MATH_PRIMITIVES

__all__ = [
    "EPSILON",
    "MATH_PRIMITIVES",
    "BinaryPrimitive",
    "Primitive",
    "PrimitiveSet",
    "UnknownPrimitiveSetError",
    "get_primitive_set",
    "list_primitive_sets",
]


def __getattr__(name: str) -> Any:
    if name == "MATH_PRIMITIVES":
        from derl_bench.primitives.math import MATH_PRIMITIVES

        return MATH_PRIMITIVES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
