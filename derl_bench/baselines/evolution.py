# Over 450 lines: one agent: selection, crossover, mutation and its bookkeeping together.
"""A genetic algorithm over meta-reward expression trees (genetic programming, Koza 1992).

This is the "derivative-free evolutionary heuristic" that DERL (arXiv 2512.13399, §1 and
App. F) argues against: it searches the space of reward expressions by selection and random
variation, with no model of *why* an expression scored well. One generation is one
propose/update round of the runner: ``propose(observation, n)`` breeds ``n`` offspring and
``update`` scores them by validation success.

Algorithm, per generation:

1. *Initial population*: the paper's hand-designed rewards (``g1``, ``g1 + g2``, the average;
   see :mod:`derl_bench.baselines.heuristic`) followed by random trees, ``population_size`` in
   all. They are proposed first, over as many rounds as that takes.
2. *Breeding*, once some are scored: parent 1 by tournament selection (``tournament_size``
   draws with replacement, the fittest wins); with probability ``crossover_rate`` a subtree of
   parent 1 is replaced by a random subtree of a second tournament winner; with probability
   ``mutation_rate`` a random subtree is replaced by a fresh random tree; with probability
   ``perturbation_rate`` every constant c becomes ``c * (1 + constant_sigma * N(0, 1))``.
   Every operator retries until :func:`~derl_bench.meta_reward.parse` accepts the child and
   falls back to the unchanged parent, so all offspring are valid. A child that repeats an
   earlier proposal of the run is bred again (up to ``novelty_tries`` times).
3. *Replacement*: the ``elite`` fittest of the old population survive, then the new offspring
   (fittest first), then the rest of the old population (fittest first), truncated to
   ``population_size``.

Fitness is the meta-step reward: validation_success in [0, 1], and ``-1.0`` for an invalid
meta-reward (which this agent never proposes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from derl_bench.baselines._common import resolve_settings, tree_agent_config
from derl_bench.baselines.base import StepResult
from derl_bench.baselines.expression_trees import (
    TreeConfig,
    random_tree,
    random_valid_tree,
    replace_subtree,
    round_significant,
    subtrees,
    validate,
)
from derl_bench.baselines.heuristic import heuristic_meta_rewards
from derl_bench.meta_reward import DEFAULT_PRIMITIVES, InvalidMetaReward, MetaReward, parse
from derl_bench.meta_reward.limits import check_primitive_names
from derl_bench.meta_reward.nodes import BinOp, Neg, Node, Num

__all__ = [
    "INVALID_FITNESS",
    "EvolutionAgent",
    "EvolutionConfig",
    "Individual",
    "crossover",
    "perturb_constants",
    "subtree_mutation",
]

INVALID_FITNESS = -1.0
"""Fitness of an invalid meta-reward, as the official DERL code's validity check (−1.0)."""


@dataclass(frozen=True, kw_only=True)
class EvolutionConfig:
    """Settings of :class:`EvolutionAgent` (defaults: a small GA for budgets of ~16-64).

    Raises:
        ValueError: If a field is out of range; the message quotes the value.
    """

    population_size: int = 8
    """Individuals kept for breeding, >= 1."""
    tournament_size: int = 3
    """Individuals drawn (with replacement) per tournament, >= 1; 1 is uniform selection."""
    crossover_rate: float = 0.7
    """Chance that a child is made by subtree crossover, in [0, 1]."""
    mutation_rate: float = 0.3
    """Chance that a child gets a subtree mutation, in [0, 1]."""
    perturbation_rate: float = 0.5
    """Chance that a child's constants are perturbed, in [0, 1]."""
    constant_sigma: float = 0.2
    """Relative standard deviation of a constant perturbation (0.2 = 20 %), >= 0."""
    elite: int = 1
    """Fittest individuals that always survive a generation, in [0, population_size - 1]."""
    max_depth: int = 4
    """Largest height of random and bred trees (heuristic seeds may be deeper), >= 1."""
    seed_heuristics: bool = True
    """Start the initial population with the paper's hand-designed rewards."""
    novelty_tries: int = 20
    """Breeding attempts per child to avoid repeating an earlier proposal, >= 1."""
    operator_tries: int = 20
    """Attempts of one variation operator before it returns the parent unchanged, >= 1."""
    tree: TreeConfig = field(default_factory=TreeConfig)
    """How random trees (initial and mutation subtrees) are grown; its ``max_depth`` is
    replaced by :attr:`max_depth`. A dict of :class:`TreeConfig` fields is accepted."""

    def __post_init__(self) -> None:
        tree = self.tree
        if isinstance(tree, dict):  # from JSON-like agent configuration
            tree = TreeConfig(**tree)
        if not isinstance(tree, TreeConfig):
            raise ValueError(f"tree={tree!r} must be a TreeConfig or a dict of its fields")
        object.__setattr__(self, "tree", dataclasses.replace(tree, max_depth=self.max_depth))
        if self.population_size < 1:
            raise ValueError(f"population_size={self.population_size} must be >= 1")
        if self.tournament_size < 1:
            raise ValueError(f"tournament_size={self.tournament_size} must be >= 1")
        for name in ("crossover_rate", "mutation_rate", "perturbation_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} must be in [0, 1]")
        if not self.constant_sigma >= 0.0:
            raise ValueError(f"constant_sigma={self.constant_sigma} must be >= 0")
        if not 0 <= self.elite < self.population_size:
            raise ValueError(
                f"elite={self.elite} must be in [0, population_size - 1] "
                f"(population_size={self.population_size})"
            )
        if self.novelty_tries < 1 or self.operator_tries < 1:
            raise ValueError(
                f"novelty_tries={self.novelty_tries} and operator_tries={self.operator_tries} "
                "must be >= 1"
            )


@dataclass(frozen=True, kw_only=True)
class Individual:
    """A scored member of the population."""

    meta_reward: MetaReward
    """The genome: a parsed meta-reward (``.tree`` constant-folded, ``.canonical`` its text)."""
    fitness: float
    """validation_success in [0, 1], or :data:`INVALID_FITNESS`."""
    born: int
    """Index of the proposal in the run (0-based); breaks fitness ties (older first)."""

    @property
    def text(self) -> str:
        """The canonical meta-reward text."""
        return self.meta_reward.canonical


def _fallback(parent: Node, names: tuple[str, ...], rng: np.random.Generator) -> MetaReward:
    parsed = validate(parent, names)
    return parsed if parsed is not None else random_valid_tree(rng, names)


def _depth_limit(parent: Node, config: TreeConfig) -> int:
    return max(config.max_depth, parent.depth)


def crossover(
    first: Node,
    second: Node,
    *,
    rng: np.random.Generator,
    primitive_names: Sequence[str],
    config: TreeConfig | None = None,
    tries: int = 20,
) -> MetaReward:
    """Subtree crossover: a random subtree of ``first`` replaced by a random one of ``second``.

    Subtrees are picked uniformly over all nodes. A child is accepted when ``parse`` accepts it
    and its height is at most ``max(config.max_depth, first.depth)``.

    Args:
        first: The receiving parent (should be valid).
        second: The donating parent.
        rng: Source of randomness (advanced in place).
        primitive_names: The domain's primitives, K >= 1.
        config: Supplies ``max_depth``; defaults to ``TreeConfig()``.
        tries: Attempts before giving up, >= 1.

    Returns:
        The parsed child; ``first`` itself (parsed) if no attempt was accepted, or a random
        valid tree if even ``first`` does not parse.
    """
    config = config or TreeConfig()
    names = check_primitive_names(primitive_names)
    limit = _depth_limit(first, config)
    targets, donors = subtrees(first), subtrees(second)
    for _ in range(tries):
        path, _ = targets[int(rng.integers(len(targets)))]
        _, donor = donors[int(rng.integers(len(donors)))]
        child = replace_subtree(first, path, donor)
        parsed = validate(child, names, digits=config.constant_digits)
        if parsed is not None and parsed.depth <= limit:
            return parsed
    return _fallback(first, names, rng)


def subtree_mutation(
    parent: Node,
    *,
    rng: np.random.Generator,
    primitive_names: Sequence[str],
    config: TreeConfig | None = None,
    tries: int = 20,
) -> MetaReward:
    """Subtree mutation: a random subtree replaced by a fresh random tree.

    The new subtree at depth ``d`` (root: 0) has height at most ``max(1, limit - d)`` with
    ``limit = max(config.max_depth, parent.depth)``, so the child stays within ``limit``.

    Args:
        parent: The tree to mutate (should be valid).
        rng: Source of randomness (advanced in place).
        primitive_names: The domain's primitives, K >= 1.
        config: Growth controls for the new subtree; defaults to ``TreeConfig()``.
        tries: Attempts before giving up, >= 1.

    Returns:
        The parsed child; ``parent`` itself (parsed) if no attempt was accepted, or a random
        valid tree if even ``parent`` does not parse.
    """
    config = config or TreeConfig()
    names = check_primitive_names(primitive_names)
    limit = _depth_limit(parent, config)
    targets = subtrees(parent)
    for _ in range(tries):
        path, _ = targets[int(rng.integers(len(targets)))]
        new = random_tree(rng, names, config, max_depth=max(1, limit - len(path)))
        child = replace_subtree(parent, path, new)
        parsed = validate(child, names, digits=config.constant_digits)
        if parsed is not None and parsed.depth <= limit:
            return parsed
    return _fallback(parent, names, rng)


def _perturbed(node: Node, rng: np.random.Generator, sigma: float, digits: int) -> Node:
    if isinstance(node, Num):
        value = node.value * (1.0 + sigma * float(rng.standard_normal()))
        return Num(value=round_significant(value, digits))
    if isinstance(node, Neg):
        return Neg(operand=_perturbed(node.operand, rng, sigma, digits))
    if isinstance(node, BinOp):
        left = _perturbed(node.left, rng, sigma, digits)
        return BinOp(op=node.op, left=left, right=_perturbed(node.right, rng, sigma, digits))
    return node


def perturb_constants(
    parent: Node,
    *,
    rng: np.random.Generator,
    primitive_names: Sequence[str],
    sigma: float = 0.2,
    config: TreeConfig | None = None,
    tries: int = 20,
) -> MetaReward:
    """Relative Gaussian perturbation of every constant: ``c -> c * (1 + sigma * N(0, 1))``.

    Perturbed constants are rounded to ``config.constant_digits`` significant digits; a zero
    constant stays zero and a tree without constants is returned unchanged.

    Args:
        parent: The tree to perturb (should be valid).
        rng: Source of randomness (advanced in place).
        primitive_names: The domain's primitives, K >= 1.
        sigma: Relative standard deviation, >= 0.
        config: Supplies ``constant_digits``; defaults to ``TreeConfig()``.
        tries: Attempts before giving up (a perturbation can create a zero divisor), >= 1.

    Returns:
        The parsed child; ``parent`` itself (parsed) if no attempt was accepted, or a random
        valid tree if even ``parent`` does not parse.
    """
    config = config or TreeConfig()
    names = check_primitive_names(primitive_names)
    for _ in range(tries):
        child = _perturbed(parent, rng, sigma, config.constant_digits)
        parsed = validate(child, names, digits=config.constant_digits)
        if parsed is not None:
            return parsed
    return _fallback(parent, names, rng)


class EvolutionAgent:
    """Outer agent running a genetic algorithm over meta-reward trees (module docstring).

    Implements :class:`~derl_bench.baselines.base.MetaRewardAgent`. Deterministic given
    ``seed`` and the sequence of calls and results; every proposal is accepted by
    :func:`~derl_bench.meta_reward.parse`.

    Args:
        primitive_names: The env's primitive names in order, K >= 1.
        seed: Seeds the agent's ``numpy.random.Generator``.
        config: Settings; if omitted, built from ``**overrides``.
        **overrides: Fields of :class:`EvolutionConfig` when ``config`` is omitted, e.g.
            ``population_size=16``.

    Attributes:
        population: The current breeding population (at most ``population_size``), fittest
            first.
        best_meta_reward: Proposed text with the highest reward so far (earliest on ties), or
            ``None`` before the first valid result.
        best_reward: Its reward, or ``-inf`` before any valid result.
        generation: Number of finished ``update`` rounds.

    Raises:
        TypeError: If both ``config`` and overrides are given, or an override is unknown.
        ValueError: If ``primitive_names`` or a setting is invalid.
    """

    name = "evolution"

    def __init__(
        self,
        *,
        primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
        seed: int = 0,
        config: EvolutionConfig | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = resolve_settings(config, overrides, EvolutionConfig)
        self.primitive_names = check_primitive_names(primitive_names)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self.population: list[Individual] = []
        self.best_meta_reward: str | None = None
        self.best_reward = float("-inf")
        self.generation = 0
        self._proposed: set[str] = set()
        self._pending: dict[str, MetaReward] = {}
        self._born = 0
        self._initial = self._initial_population()

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files."""
        return tree_agent_config(self.primitive_names, self.seed, self.settings)

    def _initial_population(self) -> list[MetaReward]:
        settings = self.settings
        initial: list[MetaReward] = []
        if settings.seed_heuristics:
            for text in heuristic_meta_rewards(self.primitive_names):
                initial.append(parse(text, self.primitive_names))
        initial = initial[: settings.population_size]
        seen = {mr.canonical for mr in initial}
        while len(initial) < settings.population_size:
            for _ in range(settings.novelty_tries):
                parsed = random_valid_tree(self._rng, self.primitive_names, settings.tree)
                if parsed.canonical not in seen:
                    break
            seen.add(parsed.canonical)
            initial.append(parsed)
        return initial

    def _tournament(self) -> Individual:
        size = len(self.population)
        picks = self._rng.integers(size, size=self.settings.tournament_size)
        return min(
            (self.population[int(i)] for i in picks), key=lambda ind: (-ind.fitness, ind.born)
        )

    def _breed_once(self) -> MetaReward:
        settings, names, rng = self.settings, self.primitive_names, self._rng
        tries = settings.operator_tries
        child = self._tournament().meta_reward
        if rng.random() < settings.crossover_rate:
            donor = self._tournament().meta_reward
            child = crossover(
                child.tree,
                donor.tree,
                rng=rng,
                primitive_names=names,
                config=settings.tree,
                tries=tries,
            )
        if rng.random() < settings.mutation_rate:
            child = subtree_mutation(
                child.tree, rng=rng, primitive_names=names, config=settings.tree, tries=tries
            )
        if rng.random() < settings.perturbation_rate:
            child = perturb_constants(
                child.tree,
                rng=rng,
                primitive_names=names,
                sigma=settings.constant_sigma,
                config=settings.tree,
                tries=tries,
            )
        return child

    def _breed(self) -> MetaReward:
        if not self.population:  # nothing scored yet (no results came back): sample afresh
            return random_valid_tree(self._rng, self.primitive_names, self.settings.tree)
        for _ in range(self.settings.novelty_tries):
            child = self._breed_once()
            if child.canonical not in self._proposed:
                return child
        return subtree_mutation(
            child.tree,
            rng=self._rng,
            primitive_names=self.primitive_names,
            config=self.settings.tree,
            tries=self.settings.operator_tries,
        )

    def propose(self, observation: Any, n: int) -> list[str]:
        """Return ``n`` proposals: unproposed initial individuals first, then offspring.

        Args:
            observation: Ignored (the GA sees only the scores passed to :meth:`update`).
            n: Number of proposals, >= 1.

        Returns:
            ``n`` canonical meta-reward texts, each accepted by ``parse``.

        Raises:
            ValueError: If ``n < 1``.
        """
        del observation
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        batch: list[MetaReward] = []
        while len(batch) < n:
            child = self._initial.pop(0) if self._initial else self._breed()
            self._proposed.add(child.canonical)  # later children of this batch avoid it too
            batch.append(child)
        self._pending = {child.canonical: child for child in batch}
        return [child.canonical for child in batch]

    def update(self, results: list[StepResult]) -> None:
        """Score the last batch and form the next population (elites, offspring, the rest).

        Results for texts this agent did not propose are parsed and scored too (e.g. after a
        resumed run); ones that do not parse are skipped.

        Args:
            results: The last batch's meta-step results, in proposal order.
        """
        offspring: list[Individual] = []
        for result in results:
            meta_reward = self._pending.get(result.meta_reward)
            if meta_reward is None:
                try:
                    meta_reward = parse(result.meta_reward, self.primitive_names)
                except InvalidMetaReward:
                    continue
            valid = bool(result.info.get("valid", result.reward >= 0.0))
            fitness = float(result.reward) if valid else INVALID_FITNESS
            offspring.append(Individual(meta_reward=meta_reward, fitness=fitness, born=self._born))
            self._born += 1
            if valid and fitness > self.best_reward:
                self.best_reward = fitness
                self.best_meta_reward = result.meta_reward

        def rank(individuals: list[Individual]) -> list[Individual]:
            return sorted(individuals, key=lambda ind: (-ind.fitness, ind.born))

        old = rank(self.population)
        elite = self.settings.elite
        survivors = old[:elite] + rank(offspring) + old[elite:]
        self.population = rank(survivors[: self.settings.population_size])
        self.generation += 1
