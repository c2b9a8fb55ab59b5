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

import difflib
import importlib
import threading
from importlib.metadata import EntryPoint, entry_points

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
    "agent": "derl_bench.primitives.agent:AGENT_PRIMITIVES",
}

_LOCK = threading.Lock()
_LOADED: dict[str, PrimitiveSet] = {}
_PLUGINS: dict[str, EntryPoint] | None = None


class UnknownPrimitiveSetError(KeyError):
    """No primitive set has the requested name; the message suggests close names."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        self.message = (
            f"Unknown primitive set {name!r}.{hint} Available: {', '.join(available) or 'none'}."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _plugins() -> dict[str, EntryPoint]:
    global _PLUGINS
    with _LOCK:
        if _PLUGINS is None:
            found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
            _PLUGINS = {name: ep for name, ep in found.items() if name not in _BUILTINS}
        return _PLUGINS


def list_primitive_sets() -> list[str]:
    """Return the names of all primitive sets, built-in and plug-in, sorted.

    Returns:
        The names, e.g. ``["math"]``. Plug-ins are listed without being imported.
    """
    return sorted(set(_BUILTINS) | set(_plugins()))


def _resolve(target: str) -> object:
    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


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
    if name in _BUILTINS:
        obj = _resolve(_BUILTINS[name])
        origin = _BUILTINS[name]
    else:
        plugins = _plugins()
        if name not in plugins:
            raise UnknownPrimitiveSetError(name, list_primitive_sets())
        obj = plugins[name].load()
        origin = f"entry point {plugins[name].value!r} ({ENTRY_POINT_GROUP})"
    if not isinstance(obj, PrimitiveSet):
        raise TypeError(
            f"primitive set {name!r} from {origin} is a {type(obj).__name__}, not a PrimitiveSet"
        )
    with _LOCK:
        _LOADED[name] = obj
    return obj
