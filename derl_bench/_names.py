"""The one did-you-mean helper: error messages for a name that is not in a known set.

Used by every lookup by name (env ids, domains, presets, agents, primitive sets), so that all of
them answer an unknown name the same way: the name, the closest known names, and the full list.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "unknown_name_error", "unknown_name_message"]


def did_you_mean(name: str, known: Iterable[str], *, n: int = 3, cutoff: float = 0.5) -> str:
    """Return ``" Did you mean 'a' or 'b'?"`` for the known names closest to ``name``, or ``""``.

    Args:
        name: The name looked up.
        known: The valid names.
        n: At most this many suggestions.
        cutoff: Similarity in [0, 1] below which a known name is not suggested
            (:func:`difflib.get_close_matches`).
    """
    close = difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown_name_message(what: str, name: str, known: Iterable[str], *, cutoff: float = 0.5) -> str:
    """Return ``"Unknown <what> 'x'. Did you mean 'y'? Known: a, b, c."``.

    Args:
        what: What the names are (``"preset"``, ``"domain"``, ``"agent"``).
        name: The name looked up.
        known: The valid names, listed in the message in the given order.
        cutoff: As for :func:`did_you_mean`.
    """
    names = list(known)
    hint = did_you_mean(name, names, cutoff=cutoff)
    return f"Unknown {what} {name!r}.{hint} Known: {', '.join(names) or 'none'}."


def unknown_name_error(what: str, name: str, known: Iterable[str]) -> ValueError:
    """The ``ValueError`` to raise for an unknown name (message: :func:`unknown_name_message`)."""
    return ValueError(unknown_name_message(what, name, known))
