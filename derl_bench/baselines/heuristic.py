"""The paper's hand-designed meta-rewards, tried in a fixed order.

DERL (arXiv 2512.13399) compares against GRPO trained with three hand-written rewards
(Table 1b rows "Outcome", "Out.+Format", "Avg."; Table 1a rows "GRPO + Out.", "GRPO + Avg."):

1. outcome: ``g1``;
2. outcome + format: ``g1 + g2``;
3. average of all primitives: ``(g1 + g2 + g3 + g4) / 4`` for the four math primitives, and in
   general ``(g1 + ... + gK) / K`` over the env's K primitives;
4. format only: ``g2`` (the control beside outcome-only, issue 16; the second primitive is the
   format primitive in the math domains and the first-third step score in the agent domains).

The expressions use the env's primitive names in order: the first primitive is the outcome
(exact answer, or task success for episode domains) and the second the format primitive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from derl_bench.baselines.base import StepResult

__all__ = ["HeuristicAgent", "heuristic_meta_rewards"]

_MATH_PRIMITIVES = ("g1", "g2", "g3", "g4")


def heuristic_meta_rewards(primitive_names: Sequence[str]) -> tuple[str, ...]:
    """Return the paper's hand-designed meta-rewards over the given primitives, in order.

    Args:
        primitive_names: The env's primitive names in order, K >= 1, e.g.
            ``("g1", "g2", "g3", "g4")``.

    Returns:
        ``(outcome, outcome + format, average, format only)`` without duplicates: for K = 4,
        ``("g1", "g1 + g2", "(g1 + g2 + g3 + g4) / 4", "g2")``; for K = 2 the average is
        ``(g1 + g2) / 2``; for K = 1 only ``("g1",)``.

    Raises:
        ValueError: If ``primitive_names`` is empty.
    """
    names = tuple(primitive_names)
    if not names:
        raise ValueError("primitive_names must name at least one primitive, got none")
    proposals = [names[0]]
    if len(names) >= 2:
        proposals.append(f"{names[0]} + {names[1]}")
        proposals.append(f"({' + '.join(names)}) / {len(names)}")
        proposals.append(names[1])
    return tuple(proposals)


class HeuristicAgent:
    """Outer agent proposing the paper's hand-designed meta-rewards (see the module docstring).

    Deterministic and blind to results: proposal i of the run is
    ``heuristic_meta_rewards(primitive_names)[i % M]`` with M the number of distinct heuristics
    (4 for K >= 2), i.e. the list is cycled when the budget exceeds it. Implements
    :class:`~derl_bench.baselines.base.MetaRewardAgent`.

    Args:
        primitive_names: The env's primitive names in order (K >= 1).
        seed: Accepted for the registry's constructor convention; unused (the agent is
            deterministic).

    Raises:
        ValueError: If ``primitive_names`` is empty.
    """

    name = "heuristic"

    def __init__(self, *, primitive_names: Sequence[str] = _MATH_PRIMITIVES, seed: int = 0) -> None:
        self.primitive_names = tuple(primitive_names)
        self.seed = seed
        self.meta_rewards = heuristic_meta_rewards(self.primitive_names)
        self._next = 0

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files."""
        return {"primitive_names": list(self.primitive_names), "seed": self.seed}

    def propose(self, observation: Any, n: int) -> list[str]:
        """Return the next ``n`` heuristic meta-rewards, cycling through the list.

        Args:
            observation: Ignored.
            n: Number of proposals, >= 1.

        Returns:
            ``n`` meta-reward texts.

        Raises:
            ValueError: If ``n < 1``.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        start = self._next
        self._next += n
        return [self.meta_rewards[i % len(self.meta_rewards)] for i in range(start, start + n)]

    def update(self, results: list[StepResult]) -> None:
        """Ignore the results: the heuristics do not adapt.

        Args:
            results: The last batch's meta-step results (unused).
        """
        del results
