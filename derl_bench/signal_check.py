"""Signal check of a domain: do different meta-rewards give different validation success?

A domain is useful for comparing reward-search methods only if the meta-rewards it is asked to
rank really train policies of different quality, beyond seed noise. :func:`signal_table`
trains each meta-reward of a panel (:data:`SIGNAL_META_REWARDS`: the structure families a
search visits, and a deliberately bad one) with several seeds, through an executor (so a
proposal-sized batch trains concurrently), and reports validation success per meta-reward next
to the untrained policy's (the reference a trained policy should beat: a meta-reward that only
moves the policy away from it is worse than none). :func:`signal_statistics` turns the table
into numbers (SNR, one-way ANOVA, whether the bad reward falls below the untrained policy).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "BAD_META_REWARD",
    "SIGNAL_META_REWARDS",
    "CellStore",
    "SignalStatistics",
    "signal_statistics",
    "UNTRAINED",
    "SignalRow",
    "signal_markdown",
    "signal_table",
    "untrained_success",
]

BAD_META_REWARD = "-g1"
"""The deliberately bad meta-reward of the panel (pays for failing); left out of the SNR and
ANOVA, and expected to fall below the untrained policy."""

SIGNAL_META_REWARDS: tuple[str, ...] = (
    "g1",  # outcome only
    "g1 + g2",  # outcome + format (math) / + early step scores (episodes)
    "(g1 + g2 + g3 + g4) / 4",  # the average
    "g2 + g3 + g4",  # step scores (process primitives) only
    "g4",  # one step-score third (math: ground truth anywhere) alone
    "g1 * g4",  # a product of primitives
    "g4 / g2",  # a ratio of primitives (primitives carry +1e-6, so never 0 / 0)
    "2 * g1 + 0.5 * g2 + 0.25 * g3",  # a linear mix with unequal weights
    BAD_META_REWARD,  # deliberately bad
)
"""The default panel: the structure families a reward search visits (the signal issue's list),
and a deliberately bad reward. Valid for every primitive set with g1..g4."""
UNTRAINED = "(untrained policy)"

MEAN_TOLERANCE = 1e-9
"""Two means of validation success closer than this count as equal in the above / below counts.
Validation success is a fraction k/n of V; a mean over seeds of such fractions is rounded in
the last bits (the mean of 0.175, 0.125, 0.225 is 0.17500000000000002), and a float rounding
must not count as a reward that raised the policy. Real differences are at least 1/(seeds * |V|)."""
"""``SignalRow.meta_reward`` of the reference row: the initial policy, scored without training."""


@dataclass(frozen=True, kw_only=True)
class SignalRow:
    """Validation success of one meta-reward over seeds."""

    meta_reward: str
    seeds: tuple[int, ...]
    validation_success: tuple[float, ...]
    """Per seed, in [0, 1]."""
    wall_seconds: tuple[float, ...]
    """Per seed, seconds of the meta-step."""
    primitive_means: tuple[dict[str, float], ...] = ()
    """Per seed, the mean of each primitive over the validation rollouts (what the trained
    policy does, e.g. the format share for math)."""

    @property
    def mean(self) -> float:
        """Mean validation success over seeds."""
        return float(np.mean(self.validation_success))

    @property
    def std(self) -> float:
        """Sample std over seeds (0 for one seed)."""
        values = self.validation_success
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


@dataclass(frozen=True, kw_only=True)
class SignalStatistics:
    """How well a domain separates meta-rewards (:func:`signal_statistics`)."""

    snr: float | None
    """Signal-to-noise ratio: sample std (ddof 1) over meta-rewards of their mean validation
    success, over the square root of the mean within-reward sample variance over seeds; without
    the bad reward and the untrained row. None when undefined (fewer than 2 meta-rewards or 2
    seeds, or no seed variance at all: then see ``between_std``)."""
    between_std: float
    """The numerator: std over meta-rewards of their mean validation success."""
    within_std: float
    """The denominator: sqrt of the mean within-reward variance over seeds."""
    anova_f: float | None
    """One-way ANOVA F over the meta-rewards' per-seed values (``scipy.stats.f_oneway``),
    without the bad reward; None when undefined (no variance at all)."""
    anova_p: float | None
    """Its p-value; None when undefined."""
    bad_mean: float | None
    """Mean validation success of the bad reward; None if it is not in the table."""
    untrained_mean: float | None
    """Mean validation success of the untrained policy; None if it is not in the table."""
    bad_below_untrained: bool | None
    """Whether ``bad_mean`` is below ``untrained_mean`` by more than :data:`MEAN_TOLERANCE`;
    None if either is missing."""
    above_bad: int | None
    """How many of the ``n_meta_rewards`` have a mean validation success above the bad reward's
    by more than :data:`MEAN_TOLERANCE`: whether the panel ranks sensible rewards over the
    deliberately bad one, or only spreads them (a dense reward that wrecks the policy can also
    score below ``-g1``); None if the bad reward is not in the table."""
    above_untrained: int | None
    """How many of the ``n_meta_rewards`` have a mean above the untrained policy's by more than
    :data:`MEAN_TOLERANCE` (did any reward raise the policy in one meta-step); None if the
    untrained row is missing."""
    n_meta_rewards: int
    """Meta-rewards the SNR and ANOVA are computed over."""


def signal_statistics(
    rows: Sequence[SignalRow], *, bad: str | None = BAD_META_REWARD
) -> SignalStatistics:
    """Compute SNR, one-way ANOVA, the bad-reward check and the counts above the bad / untrained.

    Definitions (the signal issue; STYLE.md "SNR"): SNR = std over meta-rewards of their mean
    validation success / sqrt(mean within-reward variance over seeds), both sample (ddof 1), over
    every row but the untrained one and ``bad``. ANOVA: ``scipy.stats.f_oneway`` over the same
    rows' per-seed values.

    Args:
        rows: The table of :func:`signal_table` (the untrained row, if any, is recognised by
            :data:`UNTRAINED`).
        bad: The deliberately bad meta-reward's text, or None.

    Returns:
        The statistics; undefined ones are None (see :class:`SignalStatistics`).
    """
    from scipy import stats

    by_name = {row.meta_reward: row for row in rows}
    panel = [r for r in rows if r.meta_reward not in {UNTRAINED, bad}]
    values = [np.asarray(r.validation_success, dtype=float) for r in panel]
    means = np.array([v.mean() for v in values]) if values else np.zeros(0)
    between = float(np.std(means, ddof=1)) if len(means) > 1 else 0.0
    variances = [float(np.var(v, ddof=1)) for v in values if len(v) > 1]
    within = float(np.sqrt(np.mean(variances))) if variances else 0.0
    snr = between / within if within > 0 and len(means) > 1 else None
    anova_f = anova_p = None
    if len(values) > 1 and all(len(v) > 1 for v in values) and (within > 0 or between > 0):
        if within > 0:
            result = stats.f_oneway(*values)
            anova_f, anova_p = float(result.statistic), float(result.pvalue)
        else:  # every seed agrees and the means differ: F is infinite, p is 0
            anova_f, anova_p = None, 0.0
    bad_row = by_name.get(bad) if bad else None
    untrained_row = by_name.get(UNTRAINED)
    bad_mean = None if bad_row is None else bad_row.mean
    untrained_mean = None if untrained_row is None else untrained_row.mean
    return SignalStatistics(
        snr=snr,
        between_std=between,
        within_std=within,
        anova_f=anova_f,
        anova_p=anova_p,
        bad_mean=bad_mean,
        untrained_mean=untrained_mean,
        bad_below_untrained=(
            None
            if bad_mean is None or untrained_mean is None
            else bad_mean < untrained_mean - MEAN_TOLERANCE
        ),
        above_bad=(None if bad_mean is None else int(np.sum(means > bad_mean + MEAN_TOLERANCE))),
        above_untrained=(
            None if untrained_mean is None else int(np.sum(means > untrained_mean + MEAN_TOLERANCE))
        ),
        n_meta_rewards=len(panel),
    )


def untrained_success(trainer: Any, seed: int) -> tuple[float, dict[str, float]] | None:
    """Greedy validation success of a trainer's initial policy, or None if it cannot say.

    Args:
        trainer: An inner trainer; used if it has ``evaluate_initial(*, seed=)`` (the compact
            GRPO's returns ``(EvalResult, score)``, the LM trainers' an ``EvalResult``; the
            initial LM does not depend on the seed).
        seed: Seed of the initial policy (classic control: the MLP's initialisation).

    Returns:
        ``(success in [0, 1], primitive means on V)``, or None.
    """
    evaluate = getattr(trainer, "evaluate_initial", None)
    if evaluate is None:
        return None
    result = evaluate(seed=seed)
    if isinstance(result, tuple):
        result = result[0]
    return float(result.success), dict(result.primitive_means)


def signal_table(
    env_id: str,
    *,
    preset: str,
    seeds: Sequence[int] = (0, 1, 2),
    meta_rewards: Sequence[str] = SIGNAL_META_REWARDS,
    env_kwargs: dict[str, Any] | None = None,
    notify: Callable[[str], None] | None = None,
    untrained: bool = True,
    executor: str | None = "sync",
    store: CellStore | None = None,
    batch_size: int | None = None,
) -> list[SignalRow]:
    """Run one meta-step per (meta-reward, seed) on ``env_id`` and collect validation success.

    Args:
        env_id: A registered derl_bench id.
        preset: Inner preset.
        seeds: Inner seeds (``env.reset(seed=...)``).
        meta_rewards: The meta-rewards to compare (must be valid for the env).
        env_kwargs: Further ``gymnasium.make`` arguments (e.g. ``inner_overrides``).
        notify: Called with one line per finished meta-step.
        untrained: Also score the untrained policy per seed (first row, :data:`UNTRAINED`),
            when the env's inner trainer can (:func:`untrained_success`).
        executor: ``"sync"``, ``"process"`` or ``"ray"``
            (:func:`derl_bench.meta_env.executors.make_executor`); each seed's meta-rewards are
            one batch. Every executor gives the same numbers.
        store: Where finished cells are kept as each finishes (:class:`CellStore`), or None.
            Cells it already holds are read back instead of trained again, so an interrupted
            check resumes where it stopped. The untrained row is always scored again (greedy
            play of the initial policy; a cold-started policy is scored once per process).
        batch_size: Meta-steps per executor call (e.g. 2 with a 2-worker process pool, so each
            pair is saved as soon as it is done); None: each seed's panel in one call.

    Returns:
        One :class:`SignalRow` per meta-reward, in the given order, after the untrained row.

    Raises:
        ValueError: If a meta-reward is invalid for the env, or ``batch_size < 1``.
        RuntimeError: If a meta-step failed twice (worker died, engine crashed); the message
            names it and the error.
    """
    from derl_bench.meta_env.executors import (
        MetaStepTask,
        close_shared_envs,
        make_executor,
        shared_env,
    )
    from derl_bench.meta_reward import InvalidMetaReward, parse

    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    kwargs = {"preset": preset, **(env_kwargs or {})}
    env = shared_env(env_id, kwargs)
    for meta_reward in meta_rewards:  # before any training, so a typo costs nothing
        try:
            parse(meta_reward, env.unwrapped.primitive_set.names)
        except InvalidMetaReward as exc:
            raise ValueError(f"{meta_reward!r} is invalid: {exc}") from None
    names = ([UNTRAINED] if untrained else []) + list(meta_rewards)
    cells: dict[str, list[tuple[int, float, float, dict[str, float]]]] = {n: [] for n in names}
    runner = make_executor(executor)
    try:
        for seed in seeds:
            if untrained:
                env.reset(seed=seed)
                start = time.perf_counter()
                initial = untrained_success(env.unwrapped.trainer, seed)
                seconds = time.perf_counter() - start
                if initial is None:
                    del cells[UNTRAINED]
                    untrained = False
                else:
                    cells[UNTRAINED].append((seed, initial[0], seconds, initial[1]))
                    if notify is not None:
                        notify(f"seed {seed}: {UNTRAINED}  ->  {initial[0]:.3f}")
            todo = []
            for meta_reward in meta_rewards:
                done = None if store is None else store.get(meta_reward, seed)
                if done is None:
                    todo.append(meta_reward)
                else:
                    cells[meta_reward].append((seed, *done))
                    if notify is not None:
                        notify(f"seed {seed}: {meta_reward}  ->  {done[0]:.3f}  (resumed)")
            width = batch_size or max(1, len(todo))
            for first in range(0, len(todo), width):
                chunk = todo[first : first + width]
                tasks = [MetaStepTask(meta_reward=m, seed=seed) for m in chunk]
                for outcome in runner.run(env_id, kwargs, tasks):
                    meta_reward = outcome.task.meta_reward
                    if outcome.failed:
                        raise RuntimeError(
                            f"seed {seed}: the meta-step of {meta_reward!r} failed twice: "
                            f"{outcome.error}"
                        )
                    info = outcome.info
                    if not info["valid"]:
                        raise ValueError(f"{meta_reward!r} is invalid: {info['invalid_message']}")
                    seconds = float(info["cost"]["wall_seconds"])
                    means = dict(info.get("validation_primitive_means") or {})
                    reward = float(outcome.reward)
                    cells[meta_reward].append((seed, reward, seconds, means))
                    if store is not None:
                        store.add(meta_reward, seed, info)
                    if notify is not None:
                        notify(f"seed {seed}: {meta_reward}  ->  {reward:.3f}  ({seconds:.0f} s)")
    finally:
        runner.close()
        close_shared_envs()
    return [
        SignalRow(
            meta_reward=name,
            seeds=tuple(c[0] for c in runs),
            validation_success=tuple(c[1] for c in runs),
            wall_seconds=tuple(c[2] for c in runs),
            primitive_means=tuple(c[3] for c in runs),
        )
        for name, runs in cells.items()
    ]


class CellStore(Protocol):
    """Where a signal check keeps finished cells, so an interrupted check resumes.

    The CLI passes :class:`derl_bench.fidelity_build.SignalCells` (cells are entries of the
    (env id, preset) fidelity table).
    """

    def get(self, meta_reward: str, seed: int) -> tuple[float, float, dict[str, float]] | None:
        """``(validation success, wall seconds, validation primitive means)`` or None."""
        ...

    def add(self, meta_reward: str, seed: int, info: dict[str, Any]) -> None:
        """Keep the finished meta-step (``info`` as the env returned it)."""
        ...


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "undefined" if value is None else format(value, spec)


def signal_markdown(env_id: str, preset: str, rows: Sequence[SignalRow]) -> str:
    """Markdown: the table (per-seed validation success, mean ± std, time) and the statistics."""
    lines = [
        f"Validation success on `{env_id}`, preset `{preset}` (one meta-step per cell):",
        "",
        "| meta-reward | per seed | mean ± std | seconds / meta-step |",
        "|---|---|---|---|",
    ]
    for row in rows:
        per_seed = ", ".join(f"{v:.3f}" for v in row.validation_success)
        name = row.meta_reward if row.meta_reward == UNTRAINED else f"`{row.meta_reward}`"
        seconds = "—" if row.meta_reward == UNTRAINED else f"{np.mean(row.wall_seconds):.0f}"
        lines.append(f"| {name} | {per_seed} | {row.mean:.3f} ± {row.std:.3f} | {seconds} |")
    st = signal_statistics(rows)
    lines += [
        "",
        f"Over the {st.n_meta_rewards} meta-rewards other than `{BAD_META_REWARD}`: "
        f"SNR {_fmt(st.snr)} (std of means {st.between_std:.3f} / pooled seed std "
        f"{st.within_std:.3f}); one-way ANOVA F {_fmt(st.anova_f)}, p {_fmt(st.anova_p, '.2g')}.",
    ]
    if st.bad_below_untrained is not None:
        verdict = "below" if st.bad_below_untrained else "not below"
        lines.append(
            f"`{BAD_META_REWARD}` ({st.bad_mean:.3f}) is {verdict} the untrained policy "
            f"({st.untrained_mean:.3f})."
        )
    counts = []
    if st.above_bad is not None:
        counts.append(f"{st.above_bad} of {st.n_meta_rewards} above `{BAD_META_REWARD}`")
    if st.above_untrained is not None:
        counts.append(f"{st.above_untrained} of {st.n_meta_rewards} above the untrained policy")
    if counts:
        lines.append("Sensible rewards' means: " + "; ".join(counts) + ".")
    return "\n".join(lines) + "\n"


def write_signal(
    path: str | Path,
    env_id: str,
    preset: str,
    rows: Sequence[SignalRow],
    *,
    wall_seconds: float | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Write the table and its statistics as JSON; return the path.

    Fields: ``env_id``, ``preset``, ``env_kwargs``, ``rows`` (every meta-reward's per-seed
    values), ``untrained`` (the untrained row or None), the statistics (``snr``,
    ``anova_f``, ``anova_p``, ``between_std``, ``within_std``, ``bad_meta_reward``,
    ``bad_below_untrained``, ``above_bad``, ``above_untrained``, ...), ``wall_seconds`` of the
    whole check, ``derl_bench_version``, ``git_hash`` and ``provenance`` (lock hash, package
    versions).
    """
    from derl_bench.provenance import provenance
    from derl_bench.results import derl_bench_version, git_hash

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    untrained_rows = [asdict(r) for r in rows if r.meta_reward == UNTRAINED]
    payload = {
        "env_id": env_id,
        "preset": preset,
        "env_kwargs": env_kwargs or {},
        "rows": [asdict(r) for r in rows if r.meta_reward != UNTRAINED],
        "untrained": untrained_rows[0] if untrained_rows else None,
        "bad_meta_reward": BAD_META_REWARD,
        **asdict(signal_statistics(rows)),
        "wall_seconds": wall_seconds,
        "derl_bench_version": derl_bench_version(),
        "git_hash": git_hash(),
        "provenance": provenance(),
    }
    out.write_text(json.dumps(payload, indent=1))
    return out
