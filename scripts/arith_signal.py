#!/usr/bin/env python
"""Signal check of DERL-Arith: are meta-rewards distinguishable beyond seed noise?

Runs one meta-step (inner GRPO training from the warmed-up tiny policy, then greedy pass@1 on
the validation split) for each meta-reward and seed at a preset, also scores the untrained
policy, prints a markdown table (mean ± sample std over seeds, per meta-reward) and writes every
number to a JSON file.

Examples:
    python scripts/arith_signal.py --preset cpu --out arith_signal_cpu.json
    python scripts/arith_signal.py --preset smoke --seeds 0 1 --out /tmp/arith_smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

DEFAULT_META_REWARDS = ("g1", "g1 + g2", "(g1 + g2 + g3 + g4) / 4", "-g1")
"""Three reasonable meta-rewards and one deliberately bad one (pays for wrong answers)."""


def _git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> dict:
    """Run the grid and return the JSON-able results (also written to ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", help="inner preset: smoke | cpu | paper")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="inner seeds")
    parser.add_argument(
        "--meta-rewards", nargs="+", default=list(DEFAULT_META_REWARDS), help="expressions"
    )
    parser.add_argument("--out", default="arith_signal.json", help="JSON results file")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="inner preset override, e.g. --override max_steps=4 (repeatable)",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.override:
        field, _, value = item.partition("=")
        overrides[field] = json.loads(value)

    from derl_bench.envs.arith import build_arith_domain
    from derl_bench.meta_reward import parse

    domain = build_arith_domain(preset=args.preset, inner_overrides=overrides or None)
    trainer = domain.trainer
    names = domain.primitive_set.names

    start = time.perf_counter()
    initial = trainer.evaluate_initial()
    initial_means = {k: round(v, 3) for k, v in initial.primitive_means.items()}
    print(
        f"untrained policy: validation success {initial.success:.3f} "
        f"(primitive means {json.dumps(initial_means)})",
        flush=True,
    )
    runs = []
    for text in args.meta_rewards:
        meta_reward = parse(text, primitive_names=names)
        for seed in args.seeds:
            result = trainer.train(meta_reward, seed=seed)
            run = {
                "meta_reward": meta_reward.canonical,
                "seed": seed,
                "validation_success": result.validation.success,
                "validation_primitive_means": result.validation.primitive_means,
                "training_primitive_means": result.primitive_means,
                "wall_seconds": result.cost.wall_seconds,
            }
            runs.append(run)
            print(
                f"{run['meta_reward']:<26} seed {seed}: validation success "
                f"{run['validation_success']:.3f}  ({run['wall_seconds']:.0f} s)",
                flush=True,
            )

    rows = []
    for text in args.meta_rewards:
        canonical = parse(text, primitive_names=names).canonical
        values = [r["validation_success"] for r in runs if r["meta_reward"] == canonical]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(
            {
                "meta_reward": canonical,
                "mean": statistics.fmean(values),
                "std": std,
                "values": values,
            }
        )
    lines = [
        f"Validation success on DERL-Arith, preset `{args.preset}`, n_val = {domain.n_val}, "
        f"seeds {args.seeds} (mean ± sample std); untrained policy: {initial.success:.3f}",
        "",
        "| meta-reward | validation success | per seed |",
        "|---|---|---|",
    ]
    for row in rows:
        per_seed = ", ".join(f"{v:.3f}" for v in row["values"])
        lines.append(
            f"| `{row['meta_reward']}` | {row['mean']:.3f} ± {row['std']:.3f} | {per_seed} |"
        )
    table = "\n".join(lines)
    print("\n" + table)

    results = {
        "env": "DERL-Arith-v0",
        "preset": args.preset,
        "overrides": overrides,
        "config": {k: v for k, v in vars(trainer.config).items()},
        "n_val": domain.n_val,
        "seeds": args.seeds,
        "untrained": {
            "validation_success": initial.success,
            "primitive_means": initial.primitive_means,
        },
        "runs": runs,
        "summary": rows,
        "table_markdown": table,
        "total_seconds": time.perf_counter() - start,
        "git_hash": _git_hash(),
        "hardware": {"machine": platform.machine(), "cpus": os.cpu_count()},
    }
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")
    return results


if __name__ == "__main__":
    main()
