"""The single exception type of the meta-reward language and its reason codes."""

from __future__ import annotations

__all__ = ["REASONS", "InvalidMetaReward"]

#: Every value ``InvalidMetaReward.reason`` can take, roughly in the order :func:`parse` checks
#: them: input type and size first (without looking at the grammar), then syntax and the
#: structure of the expression, last the numbers (constant folding and the probe rows). A number
#: literal that overflows to inf (``1e309``) is reported as ``"non_finite"`` as soon as it is read.
REASONS: tuple[str, ...] = (
    "not_a_string",
    "empty",
    "too_long",
    "bad_character",
    "too_deep",
    "syntax",
    "unknown_primitive",
    "too_many_nodes",
    "no_primitive",
    "non_finite",
    "constant",
)


class InvalidMetaReward(ValueError):
    """A meta-reward text that the language rejects.

    Raised by :func:`derl_bench.meta_reward.parse`, which lets no other exception escape for any
    ``str`` input. A MetaRewardEnv typically turns it into an invalid-action penalty and shows
    ``message`` to the agent, so every message names the problem and how to fix it.

    Attributes:
        reason: Short machine-readable code, one of :data:`REASONS` (e.g. ``"syntax"``).
        message: Human-readable explanation with a fix; also ``str(error)``.

    Args:
        reason: One of :data:`REASONS`.
        message: Explanation that names the problem and the fix.

    Raises:
        ValueError: If ``reason`` is not one of :data:`REASONS` (a bug in the caller).
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(
                f"unknown InvalidMetaReward reason {reason!r}; expected one of {REASONS}"
            )
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[InvalidMetaReward], tuple[str, str]]:
        # Keep the two-argument constructor working across pickling (multiprocessing, ray).
        return (type(self), (self.reason, self.message))

    def __repr__(self) -> str:
        return f"InvalidMetaReward(reason={self.reason!r}, message={self.message!r})"
