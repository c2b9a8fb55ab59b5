"""A lazy name -> object registry for built-ins and entry-point plug-ins.

Built-ins are ``"module:attribute"`` strings, plug-ins come from an entry-point group; both are
imported only when their name is looked up.

Shared by the primitive-set registry (:mod:`derl_bench.primitives.registry`) and the agent
registry (:mod:`derl_bench.baselines.base`). A built-in name wins over a plug-in of the same
name; entry points are discovered once per registry, on first use.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from derl_bench._names import did_you_mean

__all__ = ["LazyRegistry", "UnknownNameError"]


class UnknownNameError(KeyError):
    """No entry has the requested name; the message suggests close names and lists them all.

    Args:
        name: The name looked up.
        available: The registered names.
        what: What the registry holds, for the message (``"agent"``, ``"primitive set"``).
    """

    def __init__(self, name: str, available: list[str], what: str = "name") -> None:
        self.name = name
        self.available = available
        hint = did_you_mean(name, available)
        self.message = (
            f"Unknown {what} {name!r}.{hint} Available: {', '.join(available) or 'none'}."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class LazyRegistry:
    """Built-ins plus entry-point plug-ins, resolved on lookup.

    Args:
        group: The entry-point group of plug-ins, e.g. ``"derl_bench.baselines"``.
        builtins: Name -> ``"module:attribute"`` (dotted attributes allowed). The dict is kept,
            not copied, so entries added later are seen.
        unknown: ``unknown(name, available)`` -> the exception to raise for a missing name.
        find_entry_points: Discovery function (``importlib.metadata.entry_points``; tests pass
            a fake).
    """

    def __init__(
        self,
        group: str,
        builtins: dict[str, str],
        unknown: Callable[[str, list[str]], Exception],
        find_entry_points: Callable[..., object] = entry_points,
    ) -> None:
        self.group = group
        self.builtins = builtins
        self.unknown = unknown
        self.find_entry_points = find_entry_points
        self._plugins: dict[str, EntryPoint] | None = None
        self._lock = threading.Lock()

    def plugins(self) -> dict[str, EntryPoint]:
        """Entry points of the group whose names are not built-ins (discovered once)."""
        with self._lock:
            if self._plugins is None:
                found_eps = self.find_entry_points(group=self.group)
                found = {ep.name: ep for ep in found_eps}  # type: ignore[attr-defined]
                self._plugins = {n: ep for n, ep in found.items() if n not in self.builtins}
            return self._plugins

    def names(self) -> list[str]:
        """All names, built-in and plug-in, sorted; plug-ins are not imported."""
        return sorted(set(self.builtins) | set(self.plugins()))

    def load(self, name: str) -> tuple[object, str]:
        """Import the object registered under ``name``.

        Returns:
            ``(object, origin)``, origin naming where it came from (for error messages).

        Raises:
            Exception: ``unknown(name, names())`` if nothing has that name.
        """
        if name in self.builtins:
            target = self.builtins[name]
            module_name, _, attr = target.partition(":")
            obj: object = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj, target
        plugins = self.plugins()
        if name not in plugins:
            raise self.unknown(name, self.names())
        return plugins[name].load(), f"entry point {plugins[name].value!r} ({self.group})"
