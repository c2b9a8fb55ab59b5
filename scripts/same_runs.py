"""Check that two agents' runs got the same meta-steps, seed by seed (e.g. DERL-pop vs DERL).

At the table and surrogate fidelities a meta-step is answered from cold-start live trainings, so
DERL-pop's warm starts (arXiv 2512.13399 §3.2) cannot change an answer (the env warns); with the
same Meta-Optimizer and seed, ``derl_pop`` then proposes exactly what ``derl`` does. This script
shows it on result files: for every seed both agents finished, how many meta-steps have the same
meta-reward and the same validation success, and both runs' best and test success. Writes
Markdown to stdout.

Run::

    python scripts/same_runs.py docs/results/headline-cartpole-cpu/runs/DERL-CartPole-v0/derl \
        docs/results/headline-cartpole-cpu/derl_pop-surrogate/derl_pop
"""

from __future__ import annotations

import argparse
from pathlib import Path

from derl_bench.report.load import load_run_dir


def main() -> None:
    """Print the per-seed comparison of the two folders (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="folder of one agent's seed<S>.json files")
    parser.add_argument("b", type=Path, help="folder of the other agent's seed<S>.json files")
    args = parser.parse_args()
    runs = [
        {f"seed{r.record['seed']}": r.record for r in load_run_dir(d).results}
        for d in (args.a, args.b)
    ]
    seeds = sorted(set(runs[0]) & set(runs[1]), key=lambda s: int(s[4:]))
    if not seeds:
        raise SystemExit(f"no seed finished in both {args.a} and {args.b}")
    names = [runs[i][seeds[0]]["agent"]["name"] for i in (0, 1)]
    print(f"| seed | same meta-steps ({names[0]} vs {names[1]}) | best validation | test success |")
    print("|---|---|---|---|")
    for seed in seeds:
        a, b = runs[0][seed], runs[1][seed]
        pairs = zip(a["meta_steps"], b["meta_steps"], strict=False)
        same = sum(
            x["meta_reward"] == y["meta_reward"]
            and x["validation_success"] == y["validation_success"]
            for x, y in pairs
        )
        best = f"{a['best']['validation_success']:.3f} / {b['best']['validation_success']:.3f}"
        test = f"{a['test_success']:.3f} / {b['test_success']:.3f}"
        steps = max(len(a["meta_steps"]), len(b["meta_steps"]))
        print(f"| {seed[4:]} | {same} of {steps} | {best} | {test} |")


if __name__ == "__main__":
    main()
