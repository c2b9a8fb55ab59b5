"""Small pieces shared by the tree-search agents (random search, evolution)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, TypeVar

T = TypeVar("T")


def resolve_settings(config: T | None, overrides: dict[str, Any], cls: type[T]) -> T:
    """Return ``config``, or ``cls(**overrides)`` when no config is given.

    Raises:
        TypeError: If both a config and overrides are given, or an override is unknown.
        ValueError: If the settings are invalid (from ``cls.__post_init__``).
    """
    if config is not None and overrides:
        raise TypeError(f"pass either config or field overrides, not both: {overrides}")
    return config if config is not None else cls(**overrides)


def tree_agent_config(primitive_names: tuple[str, ...], seed: int, settings: Any) -> dict[str, Any]:
    """JSON-able configuration of a tree-search agent whose settings hold a ``tree`` config."""
    values = asdict(settings)
    values["tree"]["operators"] = list(settings.tree.operators)
    return {"primitive_names": list(primitive_names), "seed": seed, **values}
