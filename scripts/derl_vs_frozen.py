"""DERL vs its frozen Meta-Optimizer at equal budget: the outer curve with 95 % intervals.

Issue 16's control: the `random` agent samples the frozen, cold-started Meta-Optimizer (the
paper's random search), `derl` is the same model trained by the outer GRPO. Both runs of a seed
share the cold start and the sampling seed, so the first round is identical and any later
difference is what outer learning adds. Reads the result files of both agents under RUN_DIR
(``RUN_DIR/<env id>/{derl,random}/seed<S>.json``, e.g. from
``scripts/leaderboard_seed_entries.sh``) and writes ``OUT/summary.md`` and ``OUT/summary.json``:

- per outer iteration, the mean validation success of the round's valid proposals, mean over
  seeds with a 95 % stratified-bootstrap interval (rliable, ``derl_bench.report.intervals``);
- the last quarter of the iterations pooled per seed: mean with interval for each agent and
  P(derl > frozen) with its interval (rliable's probability of improvement);
- best validation success at the full budget and test success (IQM), with intervals;
- the agents' own seconds per run (sampling and outer updates).

Run::

    python scripts/derl_vs_frozen.py RUN_DIR/DERL-CartPole-v0 \
        --out docs/results/derl-vs-frozen-surrogate-160
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.provenance import provenance
from derl_bench.report.intervals import improvement_interval, iqm_interval, mean_interval
from derl_bench.report.load import load_run_dir

AGENTS = ("derl", "random")
LABELS = {"derl": "DERL (outer GRPO)", "random": "frozen Meta-Optimizer (`random`)"}


def _rounds(record: dict[str, Any]) -> list[float]:
    size = int(record["proposals_per_step"])
    steps = record["meta_steps"]
    means = []
    for start in range(0, len(steps), size):
        scores = [
            float(s["validation_success"])
            for s in steps[start : start + size]
            if s["valid"] and s["validation_success"] is not None
        ]
        means.append(float(np.mean(scores)) if scores else math.nan)
    return means


def _iv(values: list[float] | np.ndarray) -> dict[str, float]:
    column = np.asarray(values, dtype=np.float64)[:, None]
    interval = mean_interval(column)
    return {"mean": interval.value, "low": interval.low, "high": interval.high}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring); returns the summary written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="Folder holding derl/ and random/ results.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    loaded = load_run_dir(args.run_dir)
    runs: dict[str, dict[int, dict[str, Any]]] = {a: {} for a in AGENTS}
    for item in loaded.results:
        record = item.record
        if record["agent"]["name"] in runs and record["status"] == "finished":
            runs[record["agent"]["name"]][int(record["seed"])] = record
    seeds = sorted(set(runs["derl"]) & set(runs["random"]))
    if not seeds:
        raise SystemExit(f"no seed with finished derl and random runs under {args.run_dir}")
    budgets = {int(runs[a][s]["budget"]) for a in AGENTS for s in seeds}
    rounds = {a: np.array([_rounds(runs[a][s]) for s in seeds]) for a in AGENTS}
    n_iter = rounds["derl"].shape[1]
    late = max(1, n_iter // 4)
    late_means = {a: np.nanmean(rounds[a][:, -late:], axis=1) for a in AGENTS}
    p_improve = improvement_interval(late_means["derl"], late_means["random"])
    summary: dict[str, Any] = {
        "command": "python scripts/derl_vs_frozen.py "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "env_id": runs["derl"][seeds[0]]["env_id"],
        "preset": runs["derl"][seeds[0]]["preset"],
        "fidelity": runs["derl"][seeds[0]].get("fidelity", "live"),
        "budget": sorted(budgets),
        "proposals_per_step": int(runs["derl"][seeds[0]]["proposals_per_step"]),
        "seeds": seeds,
        "iterations": n_iter,
        "round_mean": {a: [_iv(rounds[a][:, i]) for i in range(n_iter)] for a in AGENTS},
        "late_iterations": [n_iter - late + 1, n_iter],
        "late_mean": {a: _iv(late_means[a]) for a in AGENTS},
        "p_derl_beats_frozen_late": {
            "value": p_improve.value,
            "low": p_improve.low,
            "high": p_improve.high,
        },
        "best_validation": {
            a: _iv([runs[a][s]["best"]["validation_success"] for s in seeds]) for a in AGENTS
        },
        "test_iqm": {},
        "agent_seconds_per_run": {
            a: float(np.mean([runs[a][s]["clock"]["agent_seconds"] for s in seeds])) for a in AGENTS
        },
        "provenance": provenance(),
    }
    for a in AGENTS:
        tests = np.array([[runs[a][s]["test_success"] or 0.0] for s in seeds], dtype=np.float64)
        iv = iqm_interval(tests)
        summary["test_iqm"][a] = {"iqm": iv.value, "low": iv.low, "high": iv.high}

    def fmt(d: dict[str, float], key: str = "mean") -> str:
        return f"{d[key]:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

    lines = [
        f"# DERL vs the frozen Meta-Optimizer: {summary['env_id']}, {summary['preset']}, "
        f"{summary['fidelity']}, budget {n_iter * summary['proposals_per_step']}",
        "",
        f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); {n_iter} outer iterations of "
        f"{summary['proposals_per_step']} proposals. Made by `{summary['command']}`; lock "
        f"`{(summary['provenance']['lock_sha256'] or 'none')[:12]}`. Means over seeds with 95 % "
        "stratified-bootstrap intervals (rliable).",
        "",
        "| | DERL (outer GRPO) | frozen Meta-Optimizer |",
        "|---|---|---|",
        f"| mean validation of the proposals, iterations {summary['late_iterations'][0]}-"
        f"{n_iter} | {fmt(summary['late_mean']['derl'])} | {fmt(summary['late_mean']['random'])} |",
        f"| best validation at the full budget | {fmt(summary['best_validation']['derl'])} | "
        f"{fmt(summary['best_validation']['random'])} |",
        f"| test success (IQM) | {fmt(summary['test_iqm']['derl'], 'iqm')} | "
        f"{fmt(summary['test_iqm']['random'], 'iqm')} |",
        f"| agent seconds per run (sampling + outer updates) | "
        f"{summary['agent_seconds_per_run']['derl']:.0f} | "
        f"{summary['agent_seconds_per_run']['random']:.0f} |",
        "",
        "P(DERL > frozen) on the late-iteration mean: "
        f"{fmt(summary['p_derl_beats_frozen_late'], 'value')}.",
        "",
        "Mean validation of each round's proposals:",
        "",
        "| iteration | DERL | frozen |",
        "|---|---|---|",
    ]
    for i in range(n_iter):
        lines.append(
            f"| {i + 1} | {fmt(summary['round_mean']['derl'][i])} | "
            f"{fmt(summary['round_mean']['random'][i])} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:14]))
    return summary


if __name__ == "__main__":
    main()
