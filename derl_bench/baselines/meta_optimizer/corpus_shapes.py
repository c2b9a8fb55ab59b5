"""Side-by-side shape statistics: our generated cold-start corpus vs the official one.

The official file is not shipped (its code and data stay in github.com/sitaocheng/DERL); pass
its path to include it. Run::

    python -m derl_bench.baselines.meta_optimizer.corpus_shapes
        --official <DERL checkout>/dataset/cold_start_training_data.json
        --out docs/meta_optimizer/corpus_shapes.json   (one line)

It writes the JSON and a Markdown table beside it (``.md``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from derl_bench.baselines.meta_optimizer.corpus import generate_corpus, shape_statistics
from derl_bench.meta_reward import DEFAULT_PRIMITIVES

__all__ = ["main", "official_formulas"]

_ROWS = (
    ("records", "records"),
    ("parsed", "parsed by derl_bench"),
    ("unique", "unique texts"),
    ("minus", 'share with "-"'),
    ("divide", 'share with "/"'),
    ("parentheses", "share with parentheses"),
    ("product_of_primitives", "share with a product of primitives"),
    ("ratio_of_primitives", "share with a ratio of primitives"),
    ("constants", "share with constants"),
    ("mean_constants", "constants per formula (mean)"),
    ("uses_first", "share using g1"),
    ("mean_length", "length in characters (mean)"),
    ("primitives_used", "primitives used (count: share)"),
)


def official_formulas(path: Path) -> list[str]:
    """Read the official cold-start records and strip their ``<formula>`` tags."""
    records = json.loads(path.read_text())
    return [re.sub(r"</?formula>", "", str(r["output"])).strip() for r in records]


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seeds", default="0,1,2", help="corpus seeds (206 records each)")
    args = parser.parse_args(argv)
    names = DEFAULT_PRIMITIVES
    columns: dict[str, dict[str, Any]] = {}
    if args.official is not None:
        columns["official (206)"] = shape_statistics(official_formulas(args.official), names)
    for seed in [int(s) for s in args.seeds.split(",")]:
        columns[f"ours seed {seed}"] = shape_statistics(generate_corpus(names, 206, seed), names)
    columns["ours 5,000"] = shape_statistics(generate_corpus(names, 5000, 0), names)
    header = "| statistic | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for key, label in _ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(c[key]) for c in columns.values()) + " |")
    table = "\n".join(lines)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(columns, indent=2) + "\n")
        command = "python -m derl_bench.baselines.meta_optimizer.corpus_shapes " + " ".join(
            argv if argv is not None else __import__("sys").argv[1:]
        )
        args.out.with_suffix(".md").write_text(
            "# Cold-start corpus shapes: official vs generated\n\n"
            f"Command: `{command}`\n\n{table}\n"
        )
    print(table)
    return columns


if __name__ == "__main__":
    main()
