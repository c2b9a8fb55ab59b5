"""Plots of result files: validation success, primitive usage and structure per outer iteration.

``derl-bench plot RUN_DIR`` calls :func:`plot_run_dir`: it reads every result file under
``RUN_DIR`` (``seed<S>.json``, recursively; see :mod:`derl_bench.results`) and writes PNGs to
``RUN_DIR/plots``, three per env id:

- ``<env>__validation.png``: best-so-far and mean validation success per outer iteration, one
  line per agent (mean over seeds) with a shaded min–max band over seeds;
- ``<env>__primitives.png``: per agent, the share of valid meta-rewards that use each primitive
  g_i, per outer iteration (pooled over seeds);
- ``<env>__structures.png``: per agent, the shares of stable, unstable and invalid meta-rewards
  per outer iteration (pooled over seeds), the paper's structure taxonomy (PAPER_FACTS.md §5,
  arXiv 2512.13399 §4.2 / §5.2 and Fig. 4), by :func:`classify_structure`.

An *outer iteration* is one round of the runner: ``proposals_per_step`` meta-steps proposed by one agent
call, so meta-step ``i`` belongs to iteration ``i // proposals_per_step`` (0-based, as the paper's outer
steps 0–8). Invalid meta-steps carry no validation success and are left out of the validation
means; an iteration without a valid meta-step has no mean (a gap in the line). A run's
best-so-far is 0 until its first valid meta-step, as in the results table (``derl-bench
table`` counts a run without a valid meta-reward as 0), so the last point of the best-so-far
curve is the table's "best validation" mean.

matplotlib draws with its Agg canvas directly (no pyplot, no display, no global backend
switch), and is imported only when plotting.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from derl_bench.meta_reward import DEFAULT_PRIMITIVES, EPSILON, InvalidMetaReward, parse
from derl_bench.meta_reward.nodes import Neg, Node, Num, Prim
from derl_bench.results import ResultRecord, load_result

__all__ = [
    "GOOD_SIGNAL",
    "STRUCTURES",
    "LoadedResult",
    "PrimitiveUsage",
    "RunDirResults",
    "SkippedFile",
    "Structure",
    "StructureShares",
    "ValidationCurve",
    "classify_structure",
    "load_run_dir",
    "plot_run_dir",
    "primitive_usage",
    "structure_shares",
    "validation_curves",
]

Structure = Literal["stable", "unstable", "invalid"]
"""A class of the paper's structure taxonomy."""
STRUCTURES: tuple[Structure, ...] = ("stable", "unstable", "invalid")
"""The classes, in plotting order."""
GOOD_SIGNAL = "g1"
"""The primitive whose weight must not be negative: outcome / task success in every domain."""

_RESULT_NAME = re.compile(r"seed-?\d+\.json")
_PRIMITIVE = re.compile(r"\bg[1-9]\d*\b")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


# -- the structure taxonomy ------------------------------------------------------------------------


def _has_primitive(node: Node) -> bool:
    if isinstance(node, Prim):
        return True
    if isinstance(node, Num):
        return False
    if isinstance(node, Neg):
        return _has_primitive(node.operand)
    return _has_primitive(node.left) or _has_primitive(node.right)


def _has_primitive_product(node: Node) -> bool:
    if isinstance(node, (Num, Prim)):
        return False
    if isinstance(node, Neg):
        return _has_primitive_product(node.operand)
    if node.op == "*" and _has_primitive(node.left) and _has_primitive(node.right):
        return True
    return _has_primitive_product(node.left) or _has_primitive_product(node.right)


def classify_structure(
    meta_reward: str | None,
    primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
    *,
    valid: bool = True,
) -> Structure:
    """Classify a meta-reward by the paper's structure taxonomy (PAPER_FACTS.md §5).

    The paper names three kinds (arXiv 2512.13399 §4.2 / §5.2, Table 3): *stable* — linear or
    normalised, e.g. ``0.5*g1 + 0.8*g2`` or ``g1/(g2+1)``; *unstable* — products of primitives
    that act as a veto, e.g. ``g1*(g2+0.2)*g3``; *invalid* — invalid expressions or negative
    coefficients on good signals, e.g. ``-(g1+0.5*g2)``. The paper gives no algorithm; ours,
    applied in this order to the parsed, constant-folded tree:

    1. **invalid** if the meta-step was invalid (``valid`` False, ``meta_reward`` None or
       unparseable), or if the reward *falls* when the good signal :data:`GOOD_SIGNAL` (g1)
       rises: with every primitive at ``1 + EPSILON``, the reward at ``g1 = 1 + EPSILON`` is
       below the reward at ``g1 = EPSILON`` (a finite-difference sign of the derivative at the
       probe point; skipped if g1 is not a primitive or a value is not finite);
    2. **unstable** if any ``*`` node multiplies two subtrees that both read a primitive
       (division is not counted: ``g1/(g2+1)`` is a normalisation);
    3. **stable** otherwise.

    Args:
        meta_reward: The meta-reward text (canonical or as proposed), or None for an invalid
            meta-step.
        primitive_names: The domain's primitives, ``g<n>`` each (default g1..g4).
        valid: Whether the env accepted the meta-reward.

    Returns:
        ``"stable"``, ``"unstable"`` or ``"invalid"``.

    Raises:
        ValueError: If ``primitive_names`` is malformed.
    """
    if not valid or meta_reward is None:
        return "invalid"
    try:
        parsed = parse(meta_reward, primitive_names)
    except InvalidMetaReward:
        return "invalid"
    names = parsed.primitive_names
    if GOOD_SIGNAL in names:
        column = names.index(GOOD_SIGNAL)
        rows = np.full((2, len(names)), 1.0 + EPSILON)
        rows[1, column] = EPSILON
        high, low = parsed(rows)
        if math.isfinite(high) and math.isfinite(low) and high < low:
            return "invalid"
    if _has_primitive_product(parsed.tree):
        return "unstable"
    return "stable"


# -- reading result files --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LoadedResult:
    """One result file."""

    path: Path
    """The file."""
    record: ResultRecord
    """Its schema-valid content."""


class SkippedFile(NamedTuple):
    """A ``seed<S>.json`` file that could not be used."""

    path: Path
    """The file."""
    reason: str
    """Why (the JSON or schema error)."""


@dataclass(frozen=True, kw_only=True)
class RunDirResults:
    """The result files found under a folder."""

    results: list[LoadedResult]
    """Readable, schema-valid results, sorted by path."""
    skipped: list[SkippedFile]
    """Files named like results that were unreadable or invalid."""


def load_run_dir(run_dir: str | Path) -> RunDirResults:
    """Read every result file (``seed<S>.json``) under ``run_dir``, recursively.

    ``*.invalid.json`` dumps and files under ``checkpoints/`` or ``plots/`` folders are ignored.

    Args:
        run_dir: A folder of results, e.g. ``runs`` or ``runs/DERL-GSM8K-v0``.

    Returns:
        The results and the skipped files.

    Raises:
        NotADirectoryError: If ``run_dir`` is not a folder.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of result files")
    results: list[LoadedResult] = []
    skipped: list[SkippedFile] = []
    for path in sorted(root.rglob("seed*.json")):
        parts = path.relative_to(root).parts[:-1]
        if not _RESULT_NAME.fullmatch(path.name) or {"checkpoints", "plots"} & set(parts):
            continue
        try:
            results.append(LoadedResult(path=path, record=load_result(path)))
        except (OSError, ValueError) as exc:
            skipped.append(SkippedFile(path=path, reason=str(exc).splitlines()[0]))
    return RunDirResults(results=results, skipped=skipped)


def _group(results: Sequence[LoadedResult]) -> dict[tuple[str, str], list[ResultRecord]]:
    groups: dict[tuple[str, str], list[ResultRecord]] = {}
    for result in results:
        record = result.record
        groups.setdefault((record["env_id"], record["agent"]["name"]), []).append(record)
    return dict(sorted(groups.items()))


def _iterations(record: ResultRecord) -> list[list[dict[str, Any]]]:
    """The record's meta-steps split into outer iterations (rounds of proposals_per_step)."""
    size = int(record["proposals_per_step"])
    rounds: list[list[dict[str, Any]]] = []
    for step in record["meta_steps"]:
        iteration = int(step["index"]) // size
        while len(rounds) <= iteration:
            rounds.append([])
        rounds[iteration].append(dict(step))
    return rounds


def _primitive_names(record: ResultRecord) -> tuple[str, ...]:
    names: set[str] = set()
    configured = record["agent"]["config"].get("primitive_names")
    if isinstance(configured, list):
        names.update(n for n in configured if isinstance(n, str) and _PRIMITIVE.fullmatch(n))
    for step in record["meta_steps"]:
        names.update(n for n in step["primitive_means"] if _PRIMITIVE.fullmatch(n))
        names.update(_PRIMITIVE.findall(step["canonical"] or ""))
    return tuple(sorted(names, key=lambda n: int(n[1:]))) or DEFAULT_PRIMITIVES


# -- the numbers behind the plots ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ValidationCurve:
    """Validation success per outer iteration of one agent on one env, over seeds."""

    env_id: str
    """Gymnasium id."""
    agent: str
    """Agent name."""
    n_seeds: int
    """Number of runs (result files) behind the curve."""
    iterations: np.ndarray
    """int64, shape (n_iterations,): 0, 1, ..."""
    best: np.ndarray
    """float64, shape (3, n_iterations): mean, min and max over seeds of the best validation
    success so far (up to and including the iteration); 0 for a run before its first valid
    meta-step (as the results table counts it)."""
    mean: np.ndarray
    """float64, shape (3, n_iterations): mean, min and max over seeds of the mean validation
    success of the iteration's valid meta-steps; nan where no seed has one."""


def _band(per_run: list[list[float]], n_iterations: int) -> np.ndarray:
    table = np.full((len(per_run), n_iterations), np.nan)
    for i, values in enumerate(per_run):
        table[i, : len(values)] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns give nan, as meant
        return np.stack(
            [np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)]
        )


def validation_curves(results: Sequence[LoadedResult]) -> list[ValidationCurve]:
    """Compute best-so-far and mean validation success per iteration, per (env, agent).

    Args:
        results: Result files (e.g. :attr:`RunDirResults.results`).

    Returns:
        One curve per (env id, agent), sorted by env id then agent.
    """
    curves: list[ValidationCurve] = []
    for (env_id, agent), records in _group(results).items():
        best_runs: list[list[float]] = []
        mean_runs: list[list[float]] = []
        for record in records:
            best_so_far = 0.0  # no valid meta-reward yet: 0, as in the results table
            best_run: list[float] = []
            mean_run: list[float] = []
            for steps in _iterations(record):
                scores = [
                    float(s["validation_success"])
                    for s in steps
                    if s["valid"] and s["validation_success"] is not None
                ]
                if scores:
                    best_so_far = max(best_so_far, *scores)
                best_run.append(best_so_far)
                mean_run.append(float(np.mean(scores)) if scores else math.nan)
            best_runs.append(best_run)
            mean_runs.append(mean_run)
        n_iterations = max((len(run) for run in best_runs), default=0)
        curves.append(
            ValidationCurve(
                env_id=env_id,
                agent=agent,
                n_seeds=len(records),
                iterations=np.arange(n_iterations, dtype=np.int64),
                best=_band(best_runs, n_iterations),
                mean=_band(mean_runs, n_iterations),
            )
        )
    return curves


@dataclass(frozen=True, kw_only=True)
class PrimitiveUsage:
    """How often the valid meta-rewards of one agent on one env use each primitive."""

    env_id: str
    """Gymnasium id."""
    agent: str
    """Agent name."""
    primitive_names: tuple[str, ...]
    """The primitives, in column order."""
    iterations: np.ndarray
    """int64, shape (n_iterations,)."""
    share: np.ndarray
    """float64, shape (n_iterations, K): share in [0, 1] of the iteration's valid meta-rewards
    (pooled over seeds) that read primitive k; nan where the iteration has none."""
    n_valid: np.ndarray
    """int64, shape (n_iterations,): valid meta-rewards behind each row."""


def primitive_usage(results: Sequence[LoadedResult]) -> list[PrimitiveUsage]:
    """Compute the share of valid meta-rewards using each primitive, per iteration.

    A meta-reward uses g_i if its parsed form reads g_i
    (:attr:`derl_bench.meta_reward.MetaReward.primitives_used`).

    Args:
        results: Result files.

    Returns:
        One entry per (env id, agent), sorted.
    """
    usages: list[PrimitiveUsage] = []
    for (env_id, agent), records in _group(results).items():
        names = tuple(
            sorted({n for r in records for n in _primitive_names(r)}, key=lambda n: int(n[1:]))
        )
        counts: list[np.ndarray] = []
        totals: list[int] = []
        for record in records:
            for iteration, steps in enumerate(_iterations(record)):
                while len(counts) <= iteration:
                    counts.append(np.zeros(len(names), dtype=np.int64))
                    totals.append(0)
                for step in steps:
                    if not step["valid"] or step["canonical"] is None:
                        continue
                    try:
                        used = parse(step["canonical"], names).primitives_used
                    except InvalidMetaReward:
                        continue
                    totals[iteration] += 1
                    for name in used:
                        counts[iteration][names.index(name)] += 1
        n_valid = np.array(totals, dtype=np.int64)
        table = np.array(counts, dtype=np.float64).reshape(len(totals), len(names))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n_valid[:, None] > 0, table / n_valid[:, None], np.nan)
        usages.append(
            PrimitiveUsage(
                env_id=env_id,
                agent=agent,
                primitive_names=names,
                iterations=np.arange(len(totals), dtype=np.int64),
                share=share,
                n_valid=n_valid,
            )
        )
    return usages


@dataclass(frozen=True, kw_only=True)
class StructureShares:
    """Shares of the taxonomy's classes among one agent's meta-rewards, per iteration."""

    env_id: str
    """Gymnasium id."""
    agent: str
    """Agent name."""
    iterations: np.ndarray
    """int64, shape (n_iterations,)."""
    share: np.ndarray
    """float64, shape (n_iterations, 3), columns in :data:`STRUCTURES` order; rows sum to 1
    (pooled over seeds; every meta-step counts, invalid ones as invalid)."""
    n_meta_steps: np.ndarray
    """int64, shape (n_iterations,): meta-steps behind each row."""


def structure_shares(results: Sequence[LoadedResult]) -> list[StructureShares]:
    """Classify every meta-step with :func:`classify_structure` and count per iteration.

    Args:
        results: Result files.

    Returns:
        One entry per (env id, agent), sorted.
    """
    out: list[StructureShares] = []
    for (env_id, agent), records in _group(results).items():
        counts: list[np.ndarray] = []
        for record in records:
            names = _primitive_names(record)
            for iteration, steps in enumerate(_iterations(record)):
                while len(counts) <= iteration:
                    counts.append(np.zeros(len(STRUCTURES), dtype=np.int64))
                for step in steps:
                    kind = classify_structure(step["canonical"], names, valid=step["valid"])
                    counts[iteration][STRUCTURES.index(kind)] += 1
        table = np.array(counts, dtype=np.float64).reshape(len(counts), len(STRUCTURES))
        totals = table.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(totals[:, None] > 0, table / totals[:, None], np.nan)
        out.append(
            StructureShares(
                env_id=env_id,
                agent=agent,
                iterations=np.arange(len(counts), dtype=np.int64),
                share=share,
                n_meta_steps=totals.astype(np.int64),
            )
        )
    return out


# -- drawing ---------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _iteration_axis(axes: Any, n_iterations: int) -> None:
    axes.set_xlabel("outer iteration")
    axes.set_xlim(-0.25, max(n_iterations - 1, 0) + 0.25)
    if n_iterations <= 12:
        axes.set_xticks(range(n_iterations))
    axes.grid(alpha=0.3)


def _plot_validation(env_id: str, curves: list[ValidationCurve], path: Path) -> Path:
    figure = _figure(11, 4.2)
    left, right = figure.subplots(1, 2, sharey=True)
    n_iterations = max(len(c.iterations) for c in curves)
    for axes, attribute, title in (
        (left, "best", "best validation success so far"),
        (right, "mean", "mean validation success of the iteration"),
    ):
        for curve in curves:
            mean, low, high = getattr(curve, attribute)
            label = f"{curve.agent} ({curve.n_seeds} seed{'s' if curve.n_seeds != 1 else ''})"
            (line,) = axes.plot(curve.iterations, mean, marker="o", markersize=3, label=label)
            axes.fill_between(curve.iterations, low, high, color=line.get_color(), alpha=0.2)
        axes.set_title(title)
        _iteration_axis(axes, n_iterations)
    left.set_ylabel("validation success (mean over seeds, band: min–max)")
    left.legend(loc="lower right", fontsize="small")
    figure.suptitle(env_id)
    return _save(figure, path)


def _plot_primitives(env_id: str, usages: list[PrimitiveUsage], path: Path) -> Path:
    figure = _figure(4.2 * len(usages) + 1, 3.8)
    axes_list = np.atleast_1d(figure.subplots(1, len(usages), sharey=True, squeeze=False)[0])
    for axes, usage in zip(axes_list, usages, strict=True):
        for k, name in enumerate(usage.primitive_names):
            axes.plot(usage.iterations, usage.share[:, k], marker="o", markersize=3, label=name)
        axes.set_title(usage.agent)
        axes.set_ylim(-0.05, 1.05)
        _iteration_axis(axes, len(usage.iterations))
    axes_list[0].set_ylabel("share of valid meta-rewards using g_i")
    axes_list[-1].legend(loc="best", fontsize="small")
    figure.suptitle(f"{env_id}: primitive usage")
    return _save(figure, path)


_STRUCTURE_COLOURS = {"stable": "#4c9a2a", "unstable": "#e0a100", "invalid": "#c0392b"}


def _plot_structures(env_id: str, shares: list[StructureShares], path: Path) -> Path:
    figure = _figure(4.2 * len(shares) + 1, 3.8)
    axes_list = np.atleast_1d(figure.subplots(1, len(shares), sharey=True, squeeze=False)[0])
    for axes, entry in zip(axes_list, shares, strict=True):
        filled = np.nan_to_num(entry.share, nan=0.0)
        axes.stackplot(
            entry.iterations,
            *(filled[:, i] for i in range(len(STRUCTURES))),
            labels=STRUCTURES,
            colors=[_STRUCTURE_COLOURS[s] for s in STRUCTURES],
            alpha=0.85,
        )
        if len(entry.iterations) == 1:  # a stack over one point has no width: draw bars
            bottom = 0.0
            for i, kind in enumerate(STRUCTURES):
                axes.bar(0, filled[0, i], bottom=bottom, color=_STRUCTURE_COLOURS[kind], width=0.4)
                bottom += filled[0, i]
        axes.set_title(entry.agent)
        axes.set_ylim(0, 1)
        _iteration_axis(axes, len(entry.iterations))
    axes_list[0].set_ylabel("share of meta-rewards")
    axes_list[-1].legend(loc="upper right", fontsize="small")
    figure.suptitle(f"{env_id}: structure (stable / unstable / invalid)")
    return _save(figure, path)


def plot_run_dir(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the validation, primitive-usage and structure plots of every env under a folder.

    Args:
        run_dir: Folder of result files, searched recursively (see :func:`load_run_dir`).
        out_dir: Where to write the PNGs; default ``run_dir/plots``.

    Returns:
        The written PNG files, three per env id (``<env>__validation.png``,
        ``<env>__primitives.png``, ``<env>__structures.png``), in that order per env.

    Raises:
        NotADirectoryError: If ``run_dir`` is not a folder.
        FileNotFoundError: If it holds no readable result file (the message lists skipped ones).
    """
    found = load_run_dir(run_dir)
    if not found.results:
        skipped = "".join(f"\n  skipped {s.path}: {s.reason}" for s in found.skipped)
        raise FileNotFoundError(
            f"no readable result file (seed<S>.json) under {run_dir}; run `derl-bench run` "
            f"first{skipped}"
        )
    target = Path(out_dir) if out_dir is not None else Path(run_dir) / "plots"
    curves = validation_curves(found.results)
    usages = primitive_usage(found.results)
    shares = structure_shares(found.results)
    written: list[Path] = []
    for env_id in sorted({c.env_id for c in curves}):
        stem = _UNSAFE_FILE_CHARS.sub("_", env_id)
        written.append(
            _plot_validation(
                env_id,
                [c for c in curves if c.env_id == env_id],
                target / f"{stem}__validation.png",
            )
        )
        written.append(
            _plot_primitives(
                env_id,
                [u for u in usages if u.env_id == env_id],
                target / f"{stem}__primitives.png",
            )
        )
        written.append(
            _plot_structures(
                env_id,
                [s for s in shares if s.env_id == env_id],
                target / f"{stem}__structures.png",
            )
        )
    return written
