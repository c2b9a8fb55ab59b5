"""Comparison tables of reward-search agents, generated from result files (never by hand)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.provenance import lock_file_sha256, lock_warning
from derl_bench.report.load import LoadedResult, load_run_dir
from derl_bench.results import answered_noisy

__all__ = ["MIN_SEEDS_FOR_IQM", "AgentRow", "agent_rows", "fidelity_label", "markdown_table"]

MIN_SEEDS_FOR_IQM = 3
"""Fewest seeds for which the table gives an IQM and its interval (the IQM of one or two runs
is their mean, and a bootstrap over two runs says little)."""


@dataclass(frozen=True, kw_only=True)
class AgentRow:
    """One agent on one env, aggregated over seeds (finished runs only)."""

    env_id: str
    agent: str
    preset: str
    budget: int
    seeds: tuple[int, ...]
    best_validation: tuple[float, ...]
    """Per seed: validation_success of the best valid meta-step (0 if no meta-step of the run
    was valid, so an agent that never proposes a valid meta-reward scores 0)."""
    test_success: tuple[float | None, ...]
    """Per seed: test_success of the best meta-reward (None where not run)."""
    valid_share: float
    """Valid meta-rewards / all meta-steps, over all seeds, in [0, 1]."""
    wall_seconds: float
    """Mean wall time per run, seconds: each result's ``clock.wall_seconds`` (its working
    sessions summed, gaps between an interruption and its resume left out); finish minus start
    for result files without a clock."""
    best_meta_rewards: tuple[str, ...]
    """Per seed: the best canonical meta-reward ('-' if none was valid)."""
    fidelity: str = "live"
    """How the runs' meta-steps were answered (``live``, ``table``, ``surrogate``)."""
    simulated_seconds: float | None = None
    """Mean simulated clock per run, seconds (``clock.simulated_seconds``: live seconds charged
    per meta-step plus the agent's own time); None for result files without a clock."""
    lock_warnings: tuple[str, ...] = ()
    """Why some seeds' numbers may not reproduce under this checkout's lock (one line per seed
    with a warning, :func:`derl_bench.provenance.lock_warning`); empty when all match."""


def fidelity_label(record: Mapping[str, Any]) -> str:
    """The fidelity column of a result: ``live``, ``table``, ``surrogate`` or ``surrogate (noisy)``.

    Noisy (:func:`derl_bench.results.answered_noisy`) and mean surrogate runs answer differently,
    so they are separate rows.
    """
    fidelity = str(record.get("fidelity", "live"))
    return f"{fidelity} (noisy)" if answered_noisy(record) else fidelity


def agent_rows(results: Sequence[LoadedResult]) -> list[AgentRow]:
    """Group finished results by (env, agent, preset, budget, fidelity) into rows.

    Args:
        results: Loaded result files (:func:`derl_bench.report.load.load_run_dir`).

    Returns:
        Rows sorted by env, then by mean best validation (descending), then agent name.
    """
    groups: dict[tuple[str, str, str, int, str], list] = {}
    for loaded in results:
        record = loaded.record
        if record["status"] != "finished":
            continue
        key = (
            record["env_id"],
            record["agent"]["name"],
            record["preset"],
            int(record["budget"]),
            fidelity_label(record),
        )
        groups.setdefault(key, []).append(record)
    current = lock_file_sha256()
    rows = []
    for (env_id, agent, preset, budget, fidelity), records in groups.items():
        records.sort(key=lambda r: r["seed"])
        steps = [s for r in records for s in r["meta_steps"]]
        clocks = [r["clock"]["simulated_seconds"] for r in records if r.get("clock")]
        rows.append(
            AgentRow(
                env_id=env_id,
                agent=agent,
                preset=preset,
                budget=budget,
                seeds=tuple(int(r["seed"]) for r in records),
                best_validation=tuple(
                    float(r["best"]["validation_success"]) if r["best"] else 0.0 for r in records
                ),
                test_success=tuple(r["test_success"] for r in records),
                valid_share=float(np.mean([s["valid"] for s in steps])) if steps else 0.0,
                wall_seconds=float(np.mean([_elapsed(r) for r in records])),
                best_meta_rewards=tuple(
                    r["best"]["canonical"] if r["best"] else "-" for r in records
                ),
                fidelity=fidelity,
                simulated_seconds=float(np.mean(clocks)) if len(clocks) == len(records) else None,
                lock_warnings=tuple(
                    f"seed {r['seed']}: {w}"
                    for r in records
                    if (w := lock_warning(r.get("provenance"), current))
                ),
            )
        )
    rows.sort(key=lambda r: (r.env_id, -float(np.mean(r.best_validation)), r.agent))
    return rows


def _elapsed(record: dict) -> float:
    """Wall seconds a run worked, from its result record.

    ``clock.wall_seconds`` (sessions summed, so a run resumed the next day does not count the
    night); finish minus start for result files without a clock.
    """
    from datetime import datetime

    clock = record.get("clock") or {}
    if clock.get("wall_seconds") is not None:
        return float(clock["wall_seconds"])
    start = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(record["finished_at"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _mean_std(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    if len(known) == 1:
        return f"{known[0]:.3f}"
    return f"{np.mean(known):.3f} ± {np.std(known, ddof=1):.3f}"


def _iqm(values: Sequence[float | None]) -> str:
    """IQM over seeds with its 95 % stratified-bootstrap interval; '-' under 3 known values."""
    from derl_bench.report.intervals import iqm_interval

    known = [v for v in values if v is not None]
    if len(known) < MIN_SEEDS_FOR_IQM:
        return "-"
    interval = iqm_interval(np.asarray(known, dtype=np.float64)[:, None])
    return f"{interval.value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"  # a table or surrogate run takes well under a second
    return f"{seconds:.0f} s" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def markdown_table(rows: Sequence[AgentRow]) -> str:
    """Render rows as a Markdown table.

    Columns: env, agent, preset, fidelity, budget, seeds; best validation success and test
    success, each as mean ± sample std over seeds and as the interquartile mean (IQM) with its
    95 % stratified-bootstrap interval (rliable, :mod:`derl_bench.report.intervals`; '-' with
    fewer than :data:`MIN_SEEDS_FOR_IQM` seeds); valid share; wall time and simulated clock per
    run; best meta-reward of the first seed. A row with seeds made under another lock than
    this checkout's (or outside a lock) is marked ``†`` after the agent name, with the reasons
    listed under the table.
    """
    lines = [
        "| env | agent | preset | fidelity | budget | seeds | best validation | best validation "
        "IQM [95 % CI] | test | test IQM [95 % CI] | valid share | wall time / run "
        "| simulated / run | best meta-reward (first seed) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for row in rows:
        mark = " †" if row.lock_warnings else ""
        notes += [f"- † {row.agent}, {w}" for w in row.lock_warnings]
        lines.append(
            f"| {row.env_id} | {row.agent}{mark} | {row.preset} | {row.fidelity} | {row.budget} "
            f"| {','.join(map(str, row.seeds))} | {_mean_std(row.best_validation)} "
            f"| {_iqm(row.best_validation)} | {_mean_std(row.test_success)} "
            f"| {_iqm(row.test_success)} | {row.valid_share:.2f} "
            f"| {_duration(row.wall_seconds)} | {_duration(row.simulated_seconds)} "
            f"| `{row.best_meta_rewards[0]}` |"
        )
    if notes:
        lines += ["", "† not made under this checkout's lock (requirements/lock-py311.txt):"]
        lines += notes
    return "\n".join(lines) + "\n"


def table_for_run_dir(run_dir: str | Path) -> str:
    """Markdown table of every finished result under ``run_dir``.

    Raises:
        NotADirectoryError: If ``run_dir`` is not a folder.
    """
    return markdown_table(agent_rows(load_run_dir(run_dir).results))
