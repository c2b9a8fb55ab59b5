"""Does a surrogate need more keys? Held-out Spearman rho on random subsets of a table's keys.

For each subset size ``n`` (and the whole table), ``--draws`` random subsets of ``n`` effective
keys (numpy seed 0) are cross-validated exactly as ``derl-bench fidelity report`` does (5 folds
over keys, a fresh surrogate per fold, rho of the out-of-fold predictions against the keys'
seed means), for the table's recorded surrogate choice and the best ``bank`` model family.
A flat curve says more keys of the same design will not lift rho; a rising one says they will.
Writes ``OUT/<env id>-<preset>-learning-curve.json`` and ``.md``.

Run::

    python scripts/surrogate_learning_curve.py --env DERL-Pendulum-v0 --preset cpu \
        --sizes 30,45,60,75,90 --out docs/fidelity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from derl_bench.fidelity.table import FidelityTable
from derl_bench.fidelity_build import entry_provenance
from derl_bench.fidelity_report import out_of_fold_predictions
from derl_bench.meta_reward import parse


def held_out_rho(
    table: FidelityTable, keys: list[str], model: str, feature_set: str, split_seed: int
) -> float:
    """Spearman rho of 5-fold out-of-fold predictions of the keys' mean validation success."""
    summary = table.summary()
    names = table.scheme.primitive_names
    truth = np.array([summary[k]["validation_mean"] for k in keys])
    parsed = [parse(summary[k]["canonical"], names) for k in keys]
    predicted = out_of_fold_predictions(
        table, keys, parsed, model=model, feature_set=feature_set, split_seed=split_seed
    )["validation_mean"]
    return float(spearmanr(truth, predicted).statistic)


def main() -> None:
    """Parse the arguments, measure every (size, candidate), write the JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--sizes", default="30,45,60,75,90", help="Subset sizes (keys).")
    parser.add_argument("--draws", type=int, default=5, help="Random subsets per size.")
    parser.add_argument("--out", type=Path, default=Path("docs/fidelity"))
    args = parser.parse_args()

    table = FidelityTable.load(args.env, args.preset)
    keys = list(table.summary())
    chosen = (table.meta.get("surrogate_features", "bank"), table.meta.get("surrogate_model"))
    candidates = [chosen] if chosen == ("bank", "rf") else [chosen, ("bank", "rf")]
    sizes = [int(n) for n in args.sizes.split(",") if int(n) < len(keys)] + [len(keys)]
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        draws = 1 if n == len(keys) else args.draws
        subsets = [keys if n == len(keys) else list(rng.choice(keys, n, replace=False))]
        subsets += [list(rng.choice(keys, n, replace=False)) for _ in range(draws - 1)]
        for feature_set, model in candidates:
            rhos = [
                held_out_rho(table, sub, model, feature_set, i) for i, sub in enumerate(subsets)
            ]
            rows.append(
                {
                    "keys": n,
                    "features": feature_set,
                    "model": model,
                    "draws": draws,
                    "rho_mean": float(np.mean(rhos)),
                    "rho_std": float(np.std(rhos)),
                    "rhos": rhos,
                }
            )
            print(f"{n} keys, {model} on {feature_set}: {np.mean(rhos):.3f} +- {np.std(rhos):.3f}")
    command = (
        f"python scripts/surrogate_learning_curve.py --env {args.env} --preset {args.preset} "
        f"--sizes {args.sizes} --draws {args.draws} --out {args.out}"
    )
    report = {
        "env_id": args.env,
        "preset": args.preset,
        "table_keys": len(keys),
        "table_entries": len(table),
        "table_sha256": table.sha256,
        "rows": rows,
        "command": command,
        **entry_provenance(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{args.env}-{args.preset}-learning-curve"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Surrogate learning curve: {args.env} at preset `{args.preset}`",
        "",
        f"Held-out Spearman rho (5-fold over keys, as `derl-bench fidelity report`) on random "
        f"subsets of the table's {len(keys)} keys ({len(table)} entries, sha256 "
        f"`{table.sha256[:12]}`), mean +- std over {args.draws} subsets per size (the whole "
        f"table once). Made by `{command}` (lock `{report['lock_sha256']}`).",
        "",
        "| keys | features | model | held-out rho |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['keys']} | {row['features']} | {row['model']} | "
            f"{row['rho_mean']:.3f} ± {row['rho_std']:.3f} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {stem.with_suffix('.md')}")


if __name__ == "__main__":
    main()
