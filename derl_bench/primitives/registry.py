"""A lazy registry of primitive sets: built-ins plus plug-ins from entry points.

Built-in sets are listed here as ``"module:attribute"`` strings and imported on first lookup.
Other packages add sets through the entry-point group ``derl_bench.primitives``, e.g. in their
``pyproject.toml``::

    [project.entry-points."derl_bench.primitives"]
    my_domain = "my_package.primitives:MY_PRIMITIVES"

Entry points are discovered on the first call to :func:`get_primitive_set` or
:func:`list_primitive_sets` and loaded only when their name is looked up. A built-in name wins
over a plug-in of the same name.
"""

from __future__ import annotations

import threading

from derl_bench._lazy_registry import LazyRegistry, UnknownNameError
from derl_bench.primitives.base import PrimitiveSet

__all__ = [
    "ENTRY_POINT_GROUP",
    "UnknownPrimitiveSetError",
    "get_primitive_set",
    "list_primitive_sets",
]

ENTRY_POINT_GROUP = "derl_bench.primitives"
"""Entry-point group whose entries each resolve to a :class:`PrimitiveSet`."""

_BUILTINS: dict[str, str] = {
    "math": "derl_bench.primitives.math:MATH_PRIMITIVES",
    "episode": "derl_bench.primitives.episode:EPISODE_PRIMITIVES",
}

_LOCK = threading.Lock()
_LOADED: dict[str, PrimitiveSet] = {}


class UnknownPrimitiveSetError(UnknownNameError):
    """No primitive set has the requested name; the message suggests close names."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(name, available, "primitive set")


_REGISTRY = LazyRegistry(ENTRY_POINT_GROUP, _BUILTINS, UnknownPrimitiveSetError)


def list_primitive_sets() -> list[str]:
    """Return the names of all primitive sets, built-in and plug-in, sorted.

    Returns:
        The names, e.g. ``["math"]``. Plug-ins are listed without being imported.
    """
    return _REGISTRY.names()


def get_primitive_set(name: str) -> PrimitiveSet:
    """Return the primitive set registered under ``name`` (imported on first use).

    Args:
        name: A name from :func:`list_primitive_sets`, e.g. ``"math"``.

    Returns:
        The primitive set.

    Raises:
        UnknownPrimitiveSetError: (a ``KeyError``) if no set has that name; the message
            suggests close names and lists the available ones.
        TypeError: If the registered object is not a :class:`PrimitiveSet`.
    """
    with _LOCK:
        cached = _LOADED.get(name)
    if cached is not None:
        return cached
    obj, origin = _REGISTRY.load(name)
    if not isinstance(obj, PrimitiveSet):
        raise TypeError(
            f"primitive set {name!r} from {origin} is a {type(obj).__name__}, not a PrimitiveSet"
        )
    with _LOCK:
        _LOADED[name] = obj
    return obj
