"""Uniform random expression trees: a search control without any language-model prior.

Registry name ``"random_tree"``. The paper's own random-search control (arXiv 2512.13399, App.
F, row "Compute-controlled random search": the outer loop frozen, reward functions sampled at
DERL's budget, the best of all steps reported) samples the *frozen Meta-Optimizer*; that is
``"random"`` (:mod:`.frozen_meta_optimizer`). Here every proposal is an independent random
expression tree from the meta-reward language
(:func:`~derl_bench.baselines.expression_trees.random_valid_tree`); results are only recorded
to track the best. Budget matching is the runner's job: it asks every agent for the same number
of meta-steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from derl_bench.baselines._common import resolve_settings, tree_agent_config
from derl_bench.baselines.base import StepResult
from derl_bench.baselines.expression_trees import TreeConfig, random_valid_tree
from derl_bench.meta_reward import DEFAULT_PRIMITIVES
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = ["RandomSearchAgent", "RandomSearchConfig"]


@dataclass(frozen=True, kw_only=True)
class RandomSearchConfig:
    """Settings of :class:`RandomSearchAgent`.

    Raises:
        ValueError: If a field is out of range (see :class:`TreeConfig` for the tree fields).
    """

    tree: TreeConfig = field(default_factory=TreeConfig)
    """How random trees are grown (depth 4, constants in [-2, 2], ... by default)."""
    novelty_tries: int = 20
    """Draws per proposal to find an expression not proposed before in this run (canonical
    form), >= 1; after that a repeat is allowed (the env then answers from its cache)."""

    def __post_init__(self) -> None:
        if isinstance(self.tree, dict):  # from JSON-like agent configuration
            object.__setattr__(self, "tree", TreeConfig(**self.tree))
        if not isinstance(self.tree, TreeConfig):
            raise ValueError(f"tree={self.tree!r} must be a TreeConfig or a dict of its fields")
        if self.novelty_tries < 1:
            raise ValueError(f"novelty_tries={self.novelty_tries} must be >= 1")


class RandomSearchAgent:
    """Outer agent that proposes independent random meta-rewards and remembers the best.

    Implements :class:`~derl_bench.baselines.base.MetaRewardAgent`. Proposals do not depend on
    results (no learning), only on ``seed`` and on how many were asked for so far; they are
    always accepted by :func:`~derl_bench.meta_reward.parse` and, as far as ``novelty_tries``
    allows, distinct from all earlier proposals of the run.

    Args:
        primitive_names: The env's primitive names in order, K >= 1.
        seed: Seeds the agent's ``numpy.random.Generator``.
        config: Settings; if omitted, built from ``**overrides`` (fields of
            :class:`RandomSearchConfig`, e.g. ``novelty_tries=5``).
        **overrides: Fields of :class:`RandomSearchConfig` when ``config`` is omitted.

    Attributes:
        best_meta_reward: Proposed text with the highest reward so far (earliest on ties), or
            ``None`` before the first valid result.
        best_reward: Its reward (validation_success in [0, 1]), or ``-inf`` before any result.

    Raises:
        TypeError: If both ``config`` and overrides are given, or an override is unknown.
        ValueError: If ``primitive_names`` or a setting is invalid.
    """

    name = "random_tree"

    def __init__(
        self,
        *,
        primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
        seed: int = 0,
        config: RandomSearchConfig | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = resolve_settings(config, overrides, RandomSearchConfig)
        self.primitive_names = check_primitive_names(primitive_names)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._proposed: set[str] = set()
        self.best_meta_reward: str | None = None
        self.best_reward = float("-inf")

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files."""
        return tree_agent_config(self.primitive_names, self.seed, self.settings)

    def propose(self, observation: Any, n: int) -> list[str]:
        """Draw ``n`` random meta-rewards.

        Args:
            observation: Ignored (random search is blind to results).
            n: Number of proposals, >= 1.

        Returns:
            ``n`` canonical meta-reward texts, each accepted by ``parse``.

        Raises:
            ValueError: If ``n < 1``.
        """
        del observation
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        proposals: list[str] = []
        for _ in range(n):
            for _ in range(self.settings.novelty_tries):
                parsed = random_valid_tree(self._rng, self.primitive_names, self.settings.tree)
                if parsed.canonical not in self._proposed:
                    break
            self._proposed.add(parsed.canonical)
            proposals.append(parsed.canonical)
        return proposals

    def update(self, results: list[StepResult]) -> None:
        """Record the best result; nothing else changes.

        Args:
            results: The last batch's meta-step results, in proposal order.
        """
        for result in results:
            valid = bool(result.info.get("valid", result.reward >= 0.0))
            if valid and result.reward > self.best_reward:
                self.best_reward = float(result.reward)
                self.best_meta_reward = result.meta_reward
