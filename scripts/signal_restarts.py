"""What a signal check at ``restarts=r`` gives, from single-training signal files.

A meta-step with ``restarts=r`` at env seed ``s`` is the mean of the single trainings at inner
seeds ``s*r … s*r + r - 1`` (:func:`derl_bench.inner.base.restart_seeds`). So the signal files
of the same env and inner settings at ``restarts=1`` whose seeds together cover ``0 … r*n - 1``
give, exactly, the rows of ``restarts=r`` over env seeds ``0 … n - 1`` (no training needed).
This prints the statistics of both settings (:func:`derl_bench.signal_check.signal_statistics`)
and the restart rows' per-seed means. Used to choose a restart count before paying for a run;
the committed signal file of a version with restarts is always its own run.

Run::

    python scripts/signal_restarts.py --restarts 2 A.json B.json

Exit code 2 if the files disagree on a cell or do not cover the seeds ``0 … r*n - 1``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from derl_bench.signal_check import UNTRAINED, SignalRow, signal_statistics


def _cells(paths: list[Path]) -> dict[str, dict[int, float]]:
    cells: dict[str, dict[int, float]] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for raw in data["rows"] + ([data["untrained"]] if data.get("untrained") else []):
            per_seed = cells.setdefault(raw["meta_reward"], {})
            for seed, value in zip(raw["seeds"], raw["validation_success"], strict=True):
                if seed in per_seed and per_seed[seed] != value:
                    sys.exit(
                        f"{path}: {raw['meta_reward']} seed {seed} is {value}, elsewhere "
                        f"{per_seed[seed]}"
                    )
                per_seed[seed] = value
    return cells


def _describe(title: str, rows: list[SignalRow]) -> str:
    st = signal_statistics(rows)
    lines = [
        f"{title}: SNR {st.snr:.2f}, ANOVA p {st.anova_p:.2g}, between std {st.between_std:.3f}, "
        f"within std {st.within_std:.3f}, above -g1 / untrained {st.above_bad} / "
        f"{st.above_untrained} of {st.n_meta_rewards}"
    ]
    for row in rows:
        values = ", ".join(f"{v:.3f}" for v in row.validation_success)
        lines.append(f"  {row.meta_reward:32s} {values}  mean {row.mean:.3f}")
    return "\n".join(lines)


def main() -> None:
    """Print the statistics (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, required=True, help="r >= 1")
    parser.add_argument("files", nargs="+", type=Path, help="signal JSON files (restarts=1)")
    args = parser.parse_args()
    r = args.restarts
    cells = _cells(args.files)
    trained = {m: s for m, s in cells.items() if m != UNTRAINED}
    seeds = sorted(set.intersection(*(set(s) for s in trained.values())))
    n = len(seeds) // r
    if n < 2 or seeds[: n * r] != list(range(n * r)):
        sys.exit(f"need seeds 0 … {r}*n - 1 (n >= 2) for every meta-reward; common seeds {seeds}")
    single, restarted = [], []
    for name, per_seed in cells.items():
        if name == UNTRAINED:
            value = next(iter(per_seed.values()))
            single.append(
                SignalRow(
                    meta_reward=name,
                    seeds=tuple(range(n * r)),
                    validation_success=(value,) * (n * r),
                    wall_seconds=(),
                )
            )
            restarted.append(
                SignalRow(
                    meta_reward=name,
                    seeds=tuple(range(n)),
                    validation_success=(value,) * n,
                    wall_seconds=(),
                )
            )
            continue
        values = [per_seed[s] for s in range(n * r)]
        single.append(
            SignalRow(
                meta_reward=name,
                seeds=tuple(range(n * r)),
                validation_success=tuple(values),
                wall_seconds=(),
            )
        )
        means = tuple(float(np.mean(values[k * r : (k + 1) * r])) for k in range(n))
        restarted.append(
            SignalRow(
                meta_reward=name, seeds=tuple(range(n)), validation_success=means, wall_seconds=()
            )
        )
    print(_describe(f"one training per meta-step, seeds 0-{n * r - 1}", single))
    print(_describe(f"restarts={r}, env seeds 0-{n - 1}", restarted))


if __name__ == "__main__":
    main()
