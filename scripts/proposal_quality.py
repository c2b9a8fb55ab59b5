"""Does an agent's outer loop improve what it proposes? Paired by seed, on the answers, then live.

DERL's claim (arXiv 2512.13399, §3-4) is that outer GRPO moves the Meta-Optimizer's whole
distribution of meta-rewards towards better ones, not only its best sample. A run's best
validation success cannot show that once a domain saturates (every agent finds a 1.0), so this
script compares the *mean answer of each outer iteration's proposals* of two agents that share
everything but the outer updates (``derl`` and the frozen Meta-Optimizer ``random``: same
cold-start SFT, same sampler seed per run seed).

Reads ``RUN_DIR/<agent>/seed<S>.json`` (``derl-bench compare --out``), for the two ``--agents``
(A, then the baseline B) at the seeds both have. Per seed: the mean validation success of the
valid proposals of each iteration (``proposals_per_step`` meta-steps). Over the ``--last K``
iterations: the per-seed mean of A minus B's, their mean with a 95 % bootstrap interval over
seeds (``scipy.stats.bootstrap``, percentile, 10,000 resamples, seed 0) and the Wilcoxon
signed-rank test (two-sided, exact for few seeds). The answers are the runs' fidelity (here the
surrogate), so ``--live-seeds`` then trains, at each given seed, every proposal of both agents'
last iteration in real live meta-steps (same env id and preset, the run's seed; parallel over
``--workers`` processes) and reports the live means beside the answers.

Run::

    python scripts/proposal_quality.py docs/results/headline-pendulum-cpu/runs/DERL-Pendulum-v0 \
        --agents derl,random --last 5 --live-seeds 0,1 --out docs/results/headline-pendulum-cpu

Writes ``OUT/proposal_quality.md`` and ``OUT/proposal_quality.json`` (with the provenance).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.provenance import provenance
from derl_bench.report.aggregate import iteration_means, outer_iterations
from derl_bench.report.load import load_run_dir


def last_iteration(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The meta-steps of the run's last outer iteration."""
    return outer_iterations(record)[-1]


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Mean of a - b with a 95 % percentile bootstrap interval and the Wilcoxon test."""
    from scipy import stats

    diff = a - b
    boot = stats.bootstrap(
        (diff,),
        np.mean,
        confidence_level=0.95,
        n_resamples=10_000,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    # no p for identical pairs (the test is undefined; scipy returns NaN with a warning)
    p = None if not np.any(diff) else float(stats.wilcoxon(a, b).pvalue)
    return {
        "differences": diff.round(6).tolist(),
        "mean": float(diff.mean()),
        "ci95": [float(boot.confidence_interval.low), float(boot.confidence_interval.high)],
        "wilcoxon_p": p,
        "seeds_a_higher": int((diff > 0).sum()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring); returns the summary written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="RUN_DIR/<agent>/seed<S>.json (one env id).")
    parser.add_argument("--agents", default="derl,random", help="A,B: A's outer loop vs B.")
    parser.add_argument("--last", type=int, default=5, help="Iterations compared (the last K).")
    parser.add_argument("--live-seeds", default="", help="Seeds whose last iterations train live.")
    parser.add_argument("--workers", type=int, default=2, help="Processes for the live steps.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    names = [a.strip() for a in args.agents.split(",") if a.strip()]
    if len(names) != 2 or names[0] == names[1]:
        raise SystemExit(f"--agents takes two different agents, A,B; got {args.agents!r}")
    if args.last < 1:
        raise SystemExit(f"--last {args.last}: give at least 1 iteration")

    runs: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in names}
    for item in load_run_dir(args.run_dir).results:
        record = item.record
        if record["agent"]["name"] in runs and record["status"] == "finished":
            runs[record["agent"]["name"]][int(record["seed"])] = record
    seeds = sorted(set(runs[names[0]]) & set(runs[names[1]]))
    if len(seeds) < 2:
        raise SystemExit(
            f"{args.run_dir}: {names[0]} and {names[1]} share {len(seeds)} finished seed(s); "
            "the paired comparison needs at least 2"
        )
    setups = {
        (r["env_id"], r["preset"], r.get("fidelity", "live"))
        for a in names
        for r in runs[a].values()
    }
    if len(setups) != 1:
        raise SystemExit(f"{args.run_dir} mixes env ids, presets or fidelities: {sorted(setups)}")
    ((env_id, preset, fidelity),) = setups

    curves = {a: np.array([iteration_means(runs[a][s]) for s in seeds]) for a in names}
    n_iter = min(c.shape[1] for c in curves.values())
    if args.last > n_iter:
        raise SystemExit(f"--last {args.last}: the runs have {n_iter} iterations")
    window = {a: np.nanmean(curves[a][:, n_iter - args.last : n_iter], axis=1) for a in names}
    first = {a: np.nanmean(curves[a][:, : args.last], axis=1) for a in names}
    summary: dict[str, Any] = {
        "env_id": env_id,
        "preset": preset,
        "fidelity": fidelity,
        "agents": names,
        "seeds": seeds,
        "iterations": n_iter,
        "last": args.last,
        "iteration_means": {a: curves[a].mean(axis=0).round(6).tolist() for a in names},
        "first_window": {a: first[a].round(6).tolist() for a in names},
        "last_window": {a: window[a].round(6).tolist() for a in names},
        "paired_first": paired(first[names[0]], first[names[1]]),
        "paired_last": paired(window[names[0]], window[names[1]]),
        "command": "python scripts/proposal_quality.py " + " ".join(argv or []),
        "provenance": provenance(),
    }

    live_seeds = [int(s) for s in args.live_seeds.split(",") if s.strip()]
    if live_seeds:
        summary["live"] = live_check(env_id, preset, runs, names, live_seeds, args.workers)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proposal_quality.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "proposal_quality.md").write_text(markdown(summary))
    print(markdown(summary))
    return summary


def live_check(
    env_id: str,
    preset: str,
    runs: dict[str, dict[int, dict[str, Any]]],
    names: list[str],
    seeds: list[int],
    workers: int,
) -> dict[str, Any]:
    """Train both agents' last-iteration proposals live at ``seeds``; their answers beside."""
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.meta_env.executors import make_executor

    missing = [s for s in seeds if any(s not in runs[a] for a in names)]
    if missing:
        raise SystemExit(f"--live-seeds {missing}: not finished for both agents")
    total = sum(len(last_iteration(runs[a][s])) for a in names for s in seeds)
    env = gymnasium.make(env_id, preset=preset, budget=total)
    executor = make_executor("process", max_workers=workers)
    rows: dict[str, list[dict[str, Any]]] = {a: [] for a in names}
    try:
        for seed in seeds:
            env.reset(seed=seed)
            texts = [s["meta_reward"] for a in names for s in last_iteration(runs[a][seed])]
            env.unwrapped.prefetch(texts, executor)
            for agent in names:
                for step in last_iteration(runs[agent][seed]):
                    _, reward, _, _, info = env.step(step["meta_reward"])
                    rows[agent].append(
                        {
                            "seed": seed,
                            "meta_reward": step["meta_reward"],
                            "valid": bool(info["valid"]),
                            "answer": float(step["validation_success"]),
                            "live": float(reward),
                            "live_seconds": float(info["cost"]["wall_seconds"]),
                        }
                    )
                    print(f"{agent} seed {seed}: {step['meta_reward']} -> {reward:.3f}", flush=True)
    finally:
        executor.close()
        env.close()
    out: dict[str, Any] = {"seeds": seeds, "rows": rows, "per_agent": {}}
    for agent in names:
        valid = [r for r in rows[agent] if r["valid"]]
        out["per_agent"][agent] = {
            "proposals": len(rows[agent]),
            "valid": len(valid),
            "answer_mean": float(np.mean([r["answer"] for r in valid])) if valid else None,
            "live_mean": float(np.mean([r["live"] for r in valid])) if valid else None,
            "live_seed_means": [
                float(np.mean([r["live"] for r in valid if r["seed"] == s] or [np.nan]))
                for s in seeds
            ],
        }
    return out


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a Markdown section."""
    a, b = summary["agents"]
    k, n = summary["last"], summary["iterations"]
    lock = str(summary["provenance"].get("lock_sha256"))[:12]
    lines = [
        f"# Proposal quality: `{a}` against `{b}`, {summary['env_id']}, {summary['preset']}",
        "",
        f"Made by `{summary['command']}`; lock `{lock}`. Per run seed, the mean validation "
        f"success ({summary['fidelity']} answers) of the valid proposals of each outer "
        f"iteration, averaged over the first and the last {k} of {n} iterations; paired by seed "
        f"({len(summary['seeds'])} seeds: {', '.join(map(str, summary['seeds']))}); 95 % "
        "percentile bootstrap interval over seeds; Wilcoxon signed-rank p (two-sided).",
        "",
        f"| iterations | `{a}` mean | `{b}` mean | difference [95 % CI] | seeds `{a}` higher | p |",
        "|---|---|---|---|---|---|",
    ]
    for label, window, stat in (
        (f"first {k}", "first_window", "paired_first"),
        (f"last {k}", "last_window", "paired_last"),
    ):
        s = summary[stat]
        lines.append(
            f"| {label} | {np.mean(summary[window][a]):.3f} | {np.mean(summary[window][b]):.3f} "
            f"| {s['mean']:+.3f} [{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}] "
            f"| {s['seeds_a_higher']} of {len(s['differences'])} "
            f"| {'-' if s['wilcoxon_p'] is None else format(s['wilcoxon_p'], '.2g')} |"
        )
    curve_a = ", ".join(f"{v:.2f}" for v in summary["iteration_means"][a])
    curve_b = ", ".join(f"{v:.2f}" for v in summary["iteration_means"][b])
    lines += ["", f"Mean over seeds per iteration, `{a}`: {curve_a}", "", f"`{b}`: {curve_b}"]
    live = summary.get("live")
    if live:
        lines += [
            "",
            f"## Live: the last iteration's proposals trained for real (seeds "
            f"{', '.join(map(str, live['seeds']))})",
            "",
            "| agent | proposals (valid) | answer mean | live mean | live mean per seed |",
            "|---|---|---|---|---|",
        ]
        for agent in (a, b):
            p = live["per_agent"][agent]
            fmt = "-" if p["live_mean"] is None else f"{p['live_mean']:.3f}"
            ans = "-" if p["answer_mean"] is None else f"{p['answer_mean']:.3f}"
            per_seed = ", ".join(f"{v:.3f}" for v in p["live_seed_means"])
            lines.append(
                f"| `{agent}` | {p['proposals']} ({p['valid']}) | {ans} | {fmt} | {per_seed} |"
            )
        lines += ["", "| agent | seed | meta-reward | answer | live |", "|---|---|---|---|---|"]
        for agent in (a, b):
            for r in live["rows"][agent]:
                text = r["meta_reward"].replace("|", "\\|")
                lines.append(
                    f"| `{agent}` | {r['seed']} | `{text}` | {r['answer']:.3f} | {r['live']:.3f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
