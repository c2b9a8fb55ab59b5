"""CMA-ES over the weights of a linear meta-reward ``w1 * g1 + ... + wK * gK``.

A continuous black-box baseline for DERL (arXiv 2512.13399): where DERL's Meta-Optimizer
writes symbolic expressions, this agent fixes the structure to a weighted sum of the K
primitives and tunes the weights with the covariance matrix adaptation evolution strategy
(Hansen & Ostermeier 2001), using the ``cma`` library's ask/tell interface and minimising
``-validation_success``. The paper's v2 notes that DERL "does not ... directly optimize
continuous reward parameters"; this is the method that does.

Batches and generations: the strategy's population size λ is ``config.popsize`` or, if unset,
the ``n`` of the first ``propose`` call, but at least 3. Each ``propose(observation, n)`` asks
for exactly ``n`` fresh candidates; scored candidates are collected and told to the strategy
once at least λ are in, so with ``n == λ`` every round is one CMA-ES generation, and with small
``n`` several rounds make one generation. (``cma`` 4.x rejects a ``tell`` with fewer than
μ = λ // 2 solutions, and with fewer than 3 unless mirrored sampling is on; mirrored sampling is
turned off here because its injected mirror directions break under repeated ``ask(1)``.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from derl_bench.baselines.base import StepResult
from derl_bench.meta_reward import DEFAULT_PRIMITIVES, parse
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = ["CMAESAgent", "CMAESConfig", "linear_meta_reward"]

_MIN_POPSIZE = 3
"""Smallest batch ``cma`` accepts in ``tell`` without mirrored sampling."""


def linear_meta_reward(
    weights: Sequence[float], primitive_names: Sequence[str], *, digits: int = 4
) -> str:
    """Write weights as a linear meta-reward, e.g. ``"0.9 * g1 - 0.3 * g2 + 0 * g3"``.

    Each weight is printed with ``f"{abs(w):.{digits}g}"`` (so ``1e-05`` and ``1.5e+03``
    can appear, both valid number literals); negative weights become a subtraction, except
    the first, which gets a unary minus.

    Args:
        weights: K finite floats, one per primitive.
        primitive_names: The domain's primitives, K >= 1.
        digits: Significant digits per weight, >= 1.

    Returns:
        The text, accepted by :func:`~derl_bench.meta_reward.parse` when every |weight| is
        below about 1e300 (larger sums overflow to inf on the probe rows) and at least one
        weight prints as non-zero (else the reward is constant, reason ``"constant"``).

    Raises:
        ValueError: If the lengths differ, a weight is not finite, or ``digits < 1``.
    """
    names = check_primitive_names(primitive_names)
    if len(weights) != len(names):
        raise ValueError(f"got {len(weights)} weights for {len(names)} primitives {names}")
    if digits < 1:
        raise ValueError(f"digits={digits} must be >= 1")
    parts: list[str] = []
    for i, (weight, name) in enumerate(zip(weights, names, strict=True)):
        weight = float(weight)
        if not math.isfinite(weight):
            raise ValueError(f"weight {i} for {name} is {weight!r}; weights must be finite")
        term = f"{abs(weight):.{digits}g} * {name}"
        negative = weight < 0 and f"{abs(weight):.{digits}g}" != "0"
        if i == 0:
            parts.append(f"-{term}" if negative else term)
        else:
            parts.append(f"{'-' if negative else '+'} {term}")
    return " ".join(parts)


@dataclass(frozen=True, kw_only=True)
class CMAESConfig:
    """Settings of :class:`CMAESAgent`.

    Raises:
        ValueError: If a field is out of range; the message quotes the value.
    """

    sigma0: float = 0.5
    """Initial step size of the search distribution, in weight units, > 0."""
    x0: tuple[float, ...] | None = None
    """Initial mean weights, one per primitive; ``None`` is e1 = (1, 0, ..., 0), pure outcome."""
    popsize: int | None = None
    """CMA-ES population size λ, >= 3; ``None`` takes the ``n`` of the first ``propose`` (or 3
    if that is smaller)."""
    digits: int = 4
    """Significant digits of each weight in the proposed text, >= 1."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma0) and self.sigma0 > 0):
            raise ValueError(f"sigma0={self.sigma0} must be finite and > 0")
        if self.x0 is not None:
            object.__setattr__(self, "x0", tuple(float(x) for x in self.x0))
            if not self.x0 or not all(math.isfinite(x) for x in self.x0):
                raise ValueError(f"x0={self.x0} must be a non-empty tuple of finite floats")
        if self.popsize is not None and self.popsize < _MIN_POPSIZE:
            raise ValueError(f"popsize={self.popsize} must be >= {_MIN_POPSIZE} (or None)")
        if self.digits < 1:
            raise ValueError(f"digits={self.digits} must be >= 1")


class CMAESAgent:
    """Outer agent tuning linear meta-reward weights with CMA-ES (see the module docstring).

    Implements :class:`~derl_bench.baselines.base.MetaRewardAgent`. All randomness comes from a
    ``numpy.random.Generator`` seeded with ``seed`` and handed to ``cma`` as its ``randn``; the
    global numpy state is neither read nor changed, so runs are deterministic.

    Args:
        primitive_names: The env's primitive names in order, K >= 1 (the search dimension).
        seed: Seeds the sampler.
        config: Settings; if omitted, built from ``**overrides``.
        **overrides: Fields of :class:`CMAESConfig` when ``config`` is omitted, e.g.
            ``sigma0=0.3``.

    Attributes:
        best_meta_reward: Proposed text with the highest reward so far (earliest on ties), or
            ``None`` before the first valid result.
        best_reward: Its reward, or ``-inf`` before any valid result.
        n_told: Candidates told to the strategy so far.

    Raises:
        TypeError: If both ``config`` and overrides are given, or an override is unknown.
        ValueError: If ``primitive_names`` or a setting is invalid, or ``len(x0) != K``.
    """

    name = "cma"

    def __init__(
        self,
        *,
        primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
        seed: int = 0,
        config: CMAESConfig | None = None,
        **overrides: Any,
    ) -> None:
        if config is not None and overrides:
            raise TypeError(f"pass either config or field overrides, not both: {overrides}")
        self.primitive_names = check_primitive_names(primitive_names)
        self.seed = int(seed)
        self.settings = config if config is not None else CMAESConfig(**overrides)
        k = len(self.primitive_names)
        if self.settings.x0 is not None and len(self.settings.x0) != k:
            raise ValueError(f"x0={self.settings.x0} has {len(self.settings.x0)} weights, K={k}")
        self._rng = np.random.default_rng(self.seed)
        self._es: Any = None
        self._pending: dict[str, np.ndarray] = {}
        self._scored: list[tuple[np.ndarray, float]] = []
        self.best_meta_reward: str | None = None
        self.best_reward = float("-inf")
        self.n_told = 0

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files."""
        settings = self.settings
        return {
            "primitive_names": list(self.primitive_names),
            "seed": self.seed,
            "sigma0": settings.sigma0,
            "x0": None if settings.x0 is None else list(settings.x0),
            "popsize": settings.popsize,
            "digits": settings.digits,
        }

    @property
    def mean(self) -> np.ndarray | None:
        """The strategy's current mean weights, float64 shape (K,), or ``None`` before use."""
        return None if self._es is None else np.array(self._es.mean, dtype=np.float64)

    def _strategy(self, n: int) -> Any:
        if self._es is None:
            import cma

            k = len(self.primitive_names)
            x0 = self.settings.x0 or tuple(1.0 if i == 0 else 0.0 for i in range(k))
            rng = self._rng
            options = {
                "popsize": self.settings.popsize or max(_MIN_POPSIZE, n),
                "seed": float("nan"),  # "do nothing" to numpy's global state; we pass randn
                "randn": lambda *shape: rng.standard_normal(shape),
                "verbose": -9,
                "verb_disp": 0,
                "verb_log": 0,
                "CMA_mirrors": 0,  # see the module docstring
            }
            self._es = cma.CMAEvolutionStrategy(list(x0), self.settings.sigma0, options)
        return self._es

    def propose(self, observation: Any, n: int) -> list[str]:
        """Sample ``n`` weight vectors from the strategy and write them as linear meta-rewards.

        Args:
            observation: Ignored (CMA-ES sees only the scores passed to :meth:`update`).
            n: Number of proposals, >= 1.

        Returns:
            ``n`` texts ``w1 * g1 + ... + wK * gK``, each accepted by ``parse``.

        Raises:
            ValueError: If ``n < 1``.
        """
        del observation
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        es = self._strategy(n)
        self._pending = {}
        proposals = []
        for x in es.ask(n):
            x = np.asarray(x, dtype=np.float64)
            text = linear_meta_reward(x, self.primitive_names, digits=self.settings.digits)
            parse(text, self.primitive_names)  # a bug here must fail loudly, not cost budget
            self._pending.setdefault(text, x)
            proposals.append(text)
        return proposals

    def update(self, results: list[StepResult]) -> None:
        """Collect the scores and tell the strategy once at least λ are collected.

        The strategy minimises ``-reward`` (an invalid result, reward -1, counts as 1). Results
        for texts not in the last batch are ignored (their weights are unknown).

        Args:
            results: The last batch's meta-step results, in proposal order.
        """
        for result in results:
            x = self._pending.get(result.meta_reward)
            if x is None:
                continue
            self._scored.append((x, -float(result.reward)))
            valid = bool(result.info.get("valid", result.reward >= 0.0))
            if valid and result.reward > self.best_reward:
                self.best_reward = float(result.reward)
                self.best_meta_reward = result.meta_reward
        if self._es is not None and len(self._scored) >= self._es.popsize:
            solutions = [x for x, _ in self._scored]
            self._es.tell(solutions, [f for _, f in self._scored])
            self.n_told += len(solutions)
            self._scored = []
