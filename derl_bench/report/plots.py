"""Plots of result files: validation success, primitive usage and structure per outer iteration.

``derl-bench plot RUN_DIR`` calls :func:`plot_run_dir`: it reads every result file under
``RUN_DIR`` (``seed<S>.json``, recursively; see :mod:`derl_bench.results`) and writes PNGs to
``RUN_DIR/plots``, three per env id:

- ``<env>__validation.png``: best-so-far and mean validation success per outer iteration, one
  line per agent (mean over seeds); the best-so-far band is the 95 % bootstrap interval of
  that mean (rliable), the per-iteration mean's band the min–max over seeds;
- ``<env>__primitives.png``: per agent, the share of valid meta-rewards that use each primitive
  g_i, per outer iteration (pooled over seeds);
- ``<env>__structures.png``: per agent, the shares of stable, unstable and invalid meta-rewards
  per outer iteration (pooled over seeds), the paper's structure taxonomy (PAPER_FACTS.md §5,
  arXiv 2512.13399 §4.2 / §5.2 and Fig. 4), by
  :func:`derl_bench.meta_reward.structure.classify_structure`.

The numbers come from :mod:`derl_bench.report.aggregate` (outer iterations, means over seeds),
the files from :mod:`derl_bench.report.load`.

matplotlib draws with its Agg canvas directly (no pyplot, no display, no global backend
switch), and is imported only when plotting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.meta_reward.structure import STRUCTURES
from derl_bench.report.aggregate import (
    PrimitiveUsage,
    StructureShares,
    ValidationCurve,
    primitive_usage,
    structure_shares,
    validation_curves,
)
from derl_bench.report.load import load_run_dir

__all__ = ["plot_run_dir"]

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


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
        (left, "best_ci", "best validation success so far (band: 95 % CI)"),
        (right, "mean", "mean validation success of the iteration (band: min–max)"),
    ):
        for curve in curves:
            mean, low, high = getattr(curve, attribute)
            label = f"{curve.agent} ({curve.n_seeds} seed{'s' if curve.n_seeds != 1 else ''})"
            (line,) = axes.plot(curve.iterations, mean, marker="o", markersize=3, label=label)
            axes.fill_between(curve.iterations, low, high, color=line.get_color(), alpha=0.2)
        axes.set_title(title)
        _iteration_axis(axes, n_iterations)
    left.set_ylabel("validation success (mean over seeds)")
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
