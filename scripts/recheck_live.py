"""Re-check each agent's best meta-reward live: the surrogate-vs-live table of a comparison.

Issue 15's headline experiment compares reward-search agents at the table or surrogate fidelity;
this script then trains each agent's best meta-reward for real. Reads the finished result files
under RUN_DIR (``RUN_DIR/<agent>/seed<S>.json``, as written by ``derl-bench compare --out``),
takes per agent the meta-reward with the highest best validation success over its seeds (ties:
the one most seeds found, then the first seed's), trains it in live meta-steps at ``--seeds``
(default 0, 1, 2) with the same env id and preset, and writes ``OUT/recheck.md`` and
``OUT/recheck.json``: per agent the meta-reward, the answer its runs got (mean over the seeds
that found it), the live validation success per seed with mean and sample std, and the live
seconds. A meta-reward the env's shipped table holds also shows the table's recorded mean (the
same live meta-steps, recorded earlier), so surrogate error and seed noise can be told apart.
``--reuse EARLIER/recheck.json`` takes the live values of meta-rewards an earlier re-check of
the same env id, preset, seeds and lock already trained (same effective key), marked ``*``.

Run::

    python scripts/recheck_live.py runs/headline/DERL-CartPole-v0 \
        --out docs/results/headline-cartpole-cpu
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.provenance import provenance
from derl_bench.report.load import load_run_dir


def best_per_agent(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per agent: its best meta-reward over seeds and what the runs answered for it."""
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for item in load_run_dir(run_dir).results:
        record = item.record
        if record["status"] == "finished" and record["best"]:
            by_agent.setdefault(record["agent"]["name"], []).append(record)
    chosen = {}
    for agent, records in sorted(by_agent.items()):
        records.sort(key=lambda r: r["seed"])
        found = Counter(r["best"]["canonical"] for r in records)
        top = max(r["best"]["validation_success"] for r in records)
        candidates = [r for r in records if r["best"]["validation_success"] == top]
        canonical = max(candidates, key=lambda r: found[r["best"]["canonical"]])["best"][
            "canonical"
        ]
        answers = [
            r["best"]["validation_success"] for r in records if r["best"]["canonical"] == canonical
        ]
        chosen[agent] = {
            "meta_reward": canonical,
            "seeds_that_found_it": [
                r["seed"] for r in records if r["best"]["canonical"] == canonical
            ],
            "answer_mean": float(np.mean(answers)),
            "env_id": records[0]["env_id"],
            "preset": records[0]["preset"],
            "fidelity": records[0].get("fidelity", "live"),
        }
    return chosen


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring); returns the summary written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="RUN_DIR/<agent>/seed<S>.json (one env id).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", default="0,1,2", help="Seeds of the live re-checks.")
    parser.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        help="An earlier recheck.json of the same env id, preset, seeds and lock (repeatable): "
        "its live values are taken for the same effective meta-rewards instead of training them "
        "again (a live meta-step's numbers are fixed by the lock, the seed and the key).",
    )
    args = parser.parse_args(argv)
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.fidelity.keys import effective_key
    from derl_bench.fidelity.table import FidelityTable, TableMissing
    from derl_bench.meta_reward import parse

    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = best_per_agent(args.run_dir)
    if not chosen:
        raise SystemExit(f"no finished run with a valid best meta-reward under {args.run_dir}")
    setups = {(c["env_id"], c["preset"]) for c in chosen.values()}
    if len(setups) != 1:
        raise SystemExit(f"{args.run_dir} mixes env ids or presets: {sorted(setups)}")
    ((env_id, preset),) = setups
    try:
        table = FidelityTable.load(env_id, preset)
    except TableMissing:
        table = None
    made_under = provenance()
    lock_now = made_under["lock_sha256"]
    earlier_checks = {}
    for path in args.reuse:  # refused before an env is made
        earlier = json.loads(path.read_text())
        lock_then = earlier["provenance"].get("lock_sha256")
        if (earlier["env_id"], earlier["preset"], earlier["seeds"]) != (env_id, preset, seeds) or (
            lock_then != lock_now
        ):
            raise SystemExit(
                f"--reuse {path}: made for {earlier['env_id']} {earlier['preset']} at seeds "
                f"{earlier['seeds']} under lock {str(lock_then)[:12]}; this re-check is "
                f"{env_id} {preset} at seeds {seeds} under lock "
                f"{str(lock_now)[:12]}. Reuse only a re-check of the same setup, or drop --reuse."
            )
        earlier_checks[path] = earlier
    env = gymnasium.make(env_id, preset=preset, budget=len(seeds) * len(chosen))
    scheme = env.unwrapped.key_scheme
    cache: dict[str, dict[str, Any]] = {}
    for path, earlier in earlier_checks.items():
        for row in earlier["agents"].values():
            key = effective_key(parse(row["meta_reward"], scheme.primitive_names), scheme)
            fields = ("live", "live_mean", "live_std", "live_seconds", "table_mean")
            cache.setdefault(key, {f: row[f] for f in fields} | {"reused_from": str(path)})
    try:
        for agent, row in chosen.items():
            text = row["meta_reward"]
            same = effective_key(parse(text, scheme.primitive_names), scheme)
            if same not in cache:  # one effective meta-reward trains once per seed
                live, seconds = [], []
                for seed in seeds:
                    env.reset(seed=seed)
                    _, reward, _, _, info = env.step(text)
                    live.append(float(reward))
                    seconds.append(float(info["cost"]["wall_seconds"]))
                    print(f"{agent}: {text} seed {seed} -> {reward:.3f}", flush=True)
                recorded = None  # the table keys meta-rewards with the env's own key scheme
                if table is not None and same in table:
                    recorded = float(np.mean([e.validation_success for e in table.entries(same)]))
                cache[same] = {
                    "live": live,
                    "live_mean": float(np.mean(live)),
                    "live_std": float(np.std(live, ddof=1)) if len(live) > 1 else 0.0,
                    "live_seconds": seconds,
                    "table_mean": recorded,
                }
            row.update(cache[same])
    finally:
        env.close()
    summary = {
        "command": "python scripts/recheck_live.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "env_id": env_id,
        "preset": preset,
        "seeds": seeds,
        "agents": chosen,
        "provenance": made_under,
    }
    lock = (summary["provenance"]["lock_sha256"] or "none")[:12]
    lines = [
        f"# Live re-check of each agent's best meta-reward: {env_id}, {preset}",
        "",
        f"Made by `{summary['command']}`; lock `{lock}`. Each agent's best meta-reward (highest "
        f"best validation over its seeds) trained live at seeds {args.seeds}: one real inner "
        "GRPO training per seed. 'answer' is what the agent's runs were told (their fidelity); "
        "'table' is the shipped table's recorded live mean when it holds the meta-reward."
        + (
            " Rows marked * took their live values from an earlier re-check of the same setup "
            "and lock (--reuse)."
            if any("reused_from" in row for row in chosen.values())
            else ""
        ),
        "",
        "| agent | best meta-reward | fidelity | answer | live (per seed) | live mean ± std "
        "| table | live s / step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for agent, row in chosen.items():
        table_cell = "-" if row["table_mean"] is None else f"{row['table_mean']:.3f}"
        lines.append(
            f"| {agent}{' *' if 'reused_from' in row else ''} | `{row['meta_reward']}` "
            f"| {row['fidelity']} | {row['answer_mean']:.3f} "
            f"| {', '.join(f'{v:.3f}' for v in row['live'])} | {row['live_mean']:.3f} ± "
            f"{row['live_std']:.3f} | {table_cell} | {np.mean(row['live_seconds']):.1f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recheck.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "recheck.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


if __name__ == "__main__":
    main()
