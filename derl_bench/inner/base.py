"""The inner-training contract shared by every inner trainer (DESIGN.md "Inner loop")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from derl_bench._names import unknown_name_error
from derl_bench.meta_reward import MetaReward

PRESET_NAMES: tuple[str, ...] = ("smoke", "cpu", "paper")
"""Inner presets, cheapest first: ``smoke`` (seconds; CI), ``cpu`` (minutes on 2 CPU cores, with
signal), ``paper`` (the paper's models and settings; GPUs)."""

DEFAULT_PRESET = "cpu"
"""Inner preset when none is given (``gymnasium.make(id)``): the same on every machine, so the
number is comparable. ``derl-bench run`` uses it too (``derl_bench.cli.MAIN_JOB_PRESET``)."""


def check_preset_name(name: str) -> str:
    """Return ``name`` if it is one of :data:`PRESET_NAMES`.

    Raises:
        ValueError: ``"Unknown preset 'x'. Did you mean …? Known: smoke, cpu, paper."``
    """
    if name not in PRESET_NAMES:
        raise unknown_name_error("preset", name, PRESET_NAMES)
    return name


def preset_config(
    base: Any,
    changes: Mapping[str, Mapping[str, Any]],
    name: str,
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """Look up a preset in a table written as a base config plus the fields each preset changes.

    Every preset table (:mod:`~derl_bench.inner.lm_presets`,
    :mod:`~derl_bench.inner.episode_presets`) is looked up this one way.

    Args:
        base: The domain's base config (a frozen dataclass with ``with_overrides``).
        changes: Preset name -> the fields that preset sets differently from ``base``.
        name: The preset, one of :data:`PRESET_NAMES`.
        overrides: The user's ``inner_overrides`` (recorded in ``env.spec``), applied last with
            the config's ``with_overrides`` (which validates them).

    Returns:
        The resolved config.

    Raises:
        ValueError: On an unknown preset (with a did-you-mean suggestion), or an invalid value.
        TypeError | ValueError: On an override that names no field (as ``with_overrides`` does).
    """
    check_preset_name(name)
    if name not in changes:
        raise unknown_name_error("preset", name, changes)
    config = replace(base, **changes[name])
    if overrides:
        config = config.with_overrides(**overrides)
    return config


def version_changes(
    domain: str,
    version: int,
    versions: Mapping[int, Mapping[str, Mapping[str, Any]]] | None,
    unversioned: Mapping[str, Mapping[str, Any]],
) -> Mapping[str, Mapping[str, Any]]:
    """The preset changes of ``domain`` at env version ``version``.

    Args:
        domain: Domain name (for the error message).
        version: The env id's version (``-v0``: 0).
        versions: Env version -> preset changes, or None for a domain with only version 0.
        unversioned: The changes of a domain without ``versions``.

    Raises:
        ValueError: On a version the domain does not have (the message lists the known ones).
    """
    if versions is None:
        if version != 0:
            raise ValueError(f"{domain} has only env version 0, got {version!r}")
        return unversioned
    if version not in versions:
        raise ValueError(f"Unknown {domain} env version {version!r}; known: {sorted(versions)}")
    return versions[version]


@dataclass(frozen=True, kw_only=True)
class Cost:
    """What one inner training (plus its evaluation) cost."""

    wall_seconds: float = 0.0
    """Wall-clock time in seconds (the only field that is not deterministic)."""
    inner_steps: int = 0
    """GRPO optimizer steps."""
    rollouts: int = 0
    """Sampled completions or trajectories (training) plus evaluated problems."""
    tokens: int = 0
    """Tokens processed: prompt + completion tokens of training rollouts and of evaluation."""

    def as_dict(self) -> dict[str, float | int]:
        """Return the cost as a JSON-able dict with the field names as keys."""
        return {
            "wall_seconds": self.wall_seconds,
            "inner_steps": self.inner_steps,
            "rollouts": self.rollouts,
            "tokens": self.tokens,
        }

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            wall_seconds=self.wall_seconds + other.wall_seconds,
            inner_steps=self.inner_steps + other.inner_steps,
            rollouts=self.rollouts + other.rollouts,
            tokens=self.tokens + other.tokens,
        )


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """Greedy evaluation of a policy on a list of problems (validation V or test)."""

    success: float
    """Fraction solved, in [0, 1] (pass@1 with greedy decoding; paper Eq. 6)."""
    n: int
    """Number of problems evaluated."""
    primitive_means: dict[str, float]
    """Mean of each primitive over the evaluated completions (values carry the ε offset)."""
    tokens: int
    """Prompt + generated tokens."""
    examples: tuple[str, ...] = ()
    """The first few completions, for logs."""


@dataclass(frozen=True, kw_only=True)
class InnerResult:
    """Outcome of one inner training under one meta-reward, evaluated on validation."""

    validation: EvalResult
    """Greedy evaluation of the trained policy on the validation split V."""
    primitive_means: dict[str, float]
    """Mean of each primitive over all training rollouts."""
    training_curve: list[dict[str, float]]
    """Per inner step: ``inner_step``, ``reward_mean``, ``reward_std`` and each primitive's mean."""
    n_nonfinite_rewards: int
    """Training rollouts whose meta-reward was nan/inf and was therefore set to 0."""
    cost: Cost
    """Training plus validation cost."""
    checkpoint: Any = None
    """The trained policy's checkpoint (a folder path) when the trainer was asked to keep it."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Trainer-specific diagnostics (JSON-able)."""


@runtime_checkable
class InnerTrainer(Protocol):
    """Trains a fresh policy under a meta-reward and evaluates it (one meta-step's work)."""

    def train(self, meta_reward: MetaReward, *, seed: int, init: Any = None) -> InnerResult:
        """Train from ``init`` (``None``: the preset's initial policy) and evaluate on V.

        Args:
            meta_reward: A parsed, valid meta-reward over the trainer's primitive set.
            seed: Seed of data order, sampling and initialisation of trainable parts.
            init: A checkpoint to warm-start from (DERL-pop), or ``None``.

        Returns:
            The :class:`InnerResult`.
        """
        ...

    @property
    def inner_steps_per_training(self) -> int:
        """Inner steps of one training (one restart's ``Cost.inner_steps``).

        ``MetaRewardEnv.evaluate_test`` charges this times ``config.restarts`` for a test run.
        """
        ...

    def evaluate_test(self, meta_reward: MetaReward, *, seed: int) -> EvalResult:
        """Train a fresh policy on the whole training pool (D_in ∪ V), evaluate on test."""
        ...

    def evaluate_checkpoint(self, checkpoint: str, *, seed: int) -> EvalResult:
        """Greedy success on test of a saved policy (a ``keep_checkpoints`` folder), untrained.

        DERL-pop's reported number: the chained policy, warm-started round after round, scored
        as it is (arXiv 2512.13399 §3.2, "population-based variant"), beside the fresh policy of
        :meth:`evaluate_test`.

        Args:
            checkpoint: A folder written by this trainer's ``train`` (``InnerResult.checkpoint``).
            seed: Seed of evaluation-time randomness (greedy play uses none on most domains).

        Raises:
            FileNotFoundError: If the folder holds no policy of this trainer.
        """
        ...


# -- restarts: several independent inner trainings per meta-step ------------------------------


def restart_seeds(seed: int, restarts: int) -> list[int]:
    """The inner seeds of a meta-step's ``restarts`` independent trainings.

    Restart ``k`` of seed ``s`` trains with inner seed ``s * restarts + k``: one restart is the
    seed itself (so ``restarts=1`` is the single training of earlier versions), and the seeds of
    ``restarts=r`` at env seeds 0, 1, 2, … are 0 … r-1, r … 2r-1, …, i.e. disjoint across env
    seeds and equal to ``r`` single trainings at consecutive seeds (a signal check at
    ``restarts=r`` over seeds 0..n-1 averages the single-training cells of seeds 0..rn-1).

    Args:
        seed: The meta-step's inner seed (``env.reset(seed=…)``), an int >= 0.
        restarts: Trainings per meta-step, an int >= 1.

    Returns:
        ``restarts`` ints.

    Raises:
        ValueError: If ``restarts < 1`` or ``seed < 0``.
    """
    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be an int >= 1, got {restarts!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    return [int(seed) * restarts + k for k in range(restarts)]


def _mean_dicts(dicts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    keys = list(dicts[0])
    return {k: float(sum(d[k] for d in dicts) / len(dicts)) for k in keys}


def mean_evaluation(results: Sequence[EvalResult]) -> EvalResult:
    """Average the evaluations of several independently trained policies on the same tasks.

    Args:
        results: One :class:`EvalResult` per restart, all on the same ``n`` tasks.

    Returns:
        ``success`` and ``primitive_means``: the means over restarts; ``n``: the tasks (not
        multiplied); ``tokens``: the sum; ``examples``: the first restart's.

    Raises:
        ValueError: If ``results`` is empty or the restarts scored different numbers of tasks.
    """
    if not results:
        raise ValueError("mean_evaluation needs at least one result")
    if len({r.n for r in results}) != 1:
        raise ValueError(f"restarts scored different task counts: {[r.n for r in results]}")
    if len(results) == 1:
        return results[0]
    return EvalResult(
        success=float(sum(r.success for r in results) / len(results)),
        n=results[0].n,
        primitive_means=_mean_dicts([r.primitive_means for r in results]),
        tokens=int(sum(r.tokens for r in results)),
        examples=results[0].examples,
    )


def mean_inner_result(results: Sequence[InnerResult]) -> InnerResult:
    """Combine a meta-step's restarts into its one result (the mean policy outcome).

    Args:
        results: One :class:`InnerResult` per restart, in restart order.

    Returns:
        ``validation`` and ``primitive_means``: the means over restarts (:func:`mean_evaluation`);
        ``training_curve``: per inner step, each field's mean over restarts; ``cost`` and
        ``n_nonfinite_rewards``: the sums; ``checkpoint``: the first restart's (the one a warm
        start chains from); ``extra``: the first restart's, plus ``restart_validation_success``
        (the list of each restart's validation success) and ``restart_extra`` when there is more
        than one restart.

    Raises:
        ValueError: If ``results`` is empty.
    """
    if not results:
        raise ValueError("mean_inner_result needs at least one result")
    if len(results) == 1:
        return results[0]
    curves = [r.training_curve for r in results]
    curve = [_mean_dicts(rows) for rows in zip(*curves, strict=True)]
    cost = results[0].cost
    for r in results[1:]:
        cost = cost + r.cost
    return InnerResult(
        validation=mean_evaluation([r.validation for r in results]),
        primitive_means=_mean_dicts([r.primitive_means for r in results]),
        training_curve=curve,
        n_nonfinite_rewards=int(sum(r.n_nonfinite_rewards for r in results)),
        cost=cost,
        checkpoint=results[0].checkpoint,
        extra={
            **results[0].extra,
            "restart_validation_success": [r.validation.success for r in results],
            "restart_extra": [r.extra for r in results],
        },
    )
