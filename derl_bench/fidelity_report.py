"""Checking tables and measuring the surrogate's error (``derl-bench fidelity check | report``).

``derl-bench fidelity check`` (:func:`integrity_check`) re-runs the cheapest stored entries live
and compares them exactly. ``derl-bench fidelity report`` (:func:`surrogate_report`)
cross-validates the surrogate families on held-out meta-rewards (Spearman rho, Kendall tau, MAE,
top-10 recall) and records the choice. Tables are built by :mod:`derl_bench.fidelity_build`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.fidelity.surrogate import DEFAULT_FEATURES, FEATURE_SETS, MODEL_NAMES, Surrogate
from derl_bench.fidelity.table import FidelityTable
from derl_bench.fidelity_build import entry_provenance
from derl_bench.meta_reward import parse

__all__ = ["integrity_check", "out_of_fold_predictions", "seed_agreement", "surrogate_report"]

# -- checks and reports --------------------------------------------------------------------------

_COMPARED = ("validation_success", "primitive_means", "validation_primitive_means")


def integrity_check(
    env_id: str, preset: str, *, n: int = 3, root: str | Path | None = None
) -> list[dict[str, Any]]:
    """Re-run the ``n`` cheapest stored entries live and compare them exactly.

    Compared: validation success, training and validation primitive means, the training curve
    (every number), inner steps and rollouts.

    Returns:
        One dict per entry: ``canonical``, ``seed``, ``stored``, ``live`` (validation success),
        ``equal`` (bool) and ``differences`` (the fields that differ).
    """
    import gymnasium

    import derl_bench  # noqa: F401

    table = FidelityTable.load(env_id, preset, root)
    entries = sorted(
        (e for k in table.keys for e in table.entries(k)),
        key=lambda e: (e.cost["wall_seconds"], e.key, e.seed),
    )[:n]
    kwargs = dict(table.meta.get("env_kwargs", {}))
    kwargs = {k: v for k, v in kwargs.items() if v not in (None, {}, False)}
    env = gymnasium.make(env_id, preset=preset, budget=1, **kwargs)
    out = []
    try:
        for entry in entries:
            env.reset(seed=entry.seed)
            _, _, _, _, info = env.step(entry.canonical)
            differences = [f for f in _COMPARED if info[f] != getattr(entry, f)]
            if info["training_curve"] != entry.training_curve:
                differences.append("training_curve")
            for field in ("inner_steps", "rollouts"):
                if info["cost"][field] != entry.cost[field]:
                    differences.append(f"cost.{field}")
            out.append(
                {
                    "canonical": entry.canonical,
                    "seed": entry.seed,
                    "stored": entry.validation_success,
                    "live": info["validation_success"],
                    "equal": not differences,
                    "differences": differences,
                }
            )
    finally:
        env.close()
    return out


BOOTSTRAP_RESAMPLES = 2000
"""Resamples of the held-out rho's confidence interval (:func:`_metrics`)."""

TOP_K = 10
"""Size of "the top" in the report's top-k recall and top-k live means (the issue's top-10)."""


def _metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Spearman rho, Kendall tau (scipy; None when a side is constant), MAE, the top-10.

    ``top10_recall``: the share of the 10 keys predicted highest that belong to the live top-10,
    ties included (a key whose live value equals the 10th highest counts: when more than 10 keys
    tie there, e.g. Pendulum's keys at 1.000, no order among them is "the" top-10).
    ``top10_live_mean``: the mean live value of the 10 keys predicted highest, what picking by
    the surrogate gets (its predictions are out of fold, so this is not biased by the picking).

    ``spearman_rho_ci95``: the 95 % percentile-bootstrap interval of rho over keys
    (:func:`scipy.stats.bootstrap`, paired, :data:`BOOTSTRAP_RESAMPLES` resamples, seed 0): how
    much rho moves with the sample of keys; the fold split and the fitted surrogates are held
    fixed, so it does not include their variance. None when rho is.
    """
    from scipy.stats import bootstrap, kendalltau, spearmanr

    rho = spearmanr(truth, predicted).statistic
    tau = kendalltau(truth, predicted).statistic
    interval = None
    if not np.isnan(rho):

        def statistic(a: np.ndarray, b: np.ndarray) -> float:
            return float(spearmanr(a, b).statistic)

        with np.errstate(invalid="ignore", divide="ignore"):
            ci = bootstrap(
                (truth, predicted),
                statistic,
                paired=True,
                vectorized=False,
                n_resamples=BOOTSTRAP_RESAMPLES,
                method="percentile",
                rng=np.random.default_rng(0),
            ).confidence_interval
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            interval = [float(ci.low), float(ci.high)]
    return {
        "spearman_rho": None if np.isnan(rho) else float(rho),
        "spearman_rho_ci95": interval,
        "kendall_tau": None if np.isnan(tau) else float(tau),
        "mae": float(np.mean(np.abs(truth - predicted))),
        "top10_recall": _top_recall(truth, predicted, TOP_K),
        "top10_live_mean": float(truth[_top(predicted, TOP_K)].mean()),
    }


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest values (ties: first index first), ``int64 (min(k, n),)``."""
    return np.argsort(-values, kind="stable")[:k]


def _top_recall(truth: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """Share of the ``k`` highest ``predicted`` whose ``truth`` reaches the k-th highest truth."""
    k = min(k, len(truth))
    kth = np.sort(truth)[-k]
    return float(np.sum(truth[_top(predicted, k)] >= kth)) / k


def _seed_pick(values: dict[str, dict[int, float]], k: int) -> float | None:
    """What picking the top by one seed gets: a float in [0, 1], or None.

    For each seed ``s``: the ``k`` keys highest at ``s`` alone, scored on the mean of their other
    seeds (only keys with ``s`` and another seed take part); the mean over seeds. None when no
    seed has ``k`` such keys.
    """
    scores = []
    seeds = sorted({s for per_key in values.values() for s in per_key})
    for seed in seeds:
        held = [per_key for per_key in values.values() if seed in per_key and len(per_key) > 1]
        if len(held) < k:
            continue
        own = np.array([per_key[seed] for per_key in held])
        other = np.array([np.mean([v for s, v in pk.items() if s != seed]) for pk in held])
        scores.append(float(other[_top(own, k)].mean()))
    return float(np.mean(scores)) if scores else None


def seed_agreement(values: dict[str, dict[int, float]]) -> dict[str, Any]:
    """How well one seed's outcome ranks meta-rewards against another's, and what that allows.

    The held-out rho of :func:`surrogate_report` compares predictions with *n-seed means*, which
    carry seed noise: even a perfect predictor of the expected success cannot rank them
    perfectly. Two numbers state that limit:

    - ``seed_vs_seed_rho``: Spearman rho between two seeds' validation success over the keys
      both hold, averaged over seed pairs (pairs sharing fewer than 5 keys are skipped). It is
      what a one-seed table reaches against another seed (the comparison NAS-Bench-301 makes
      between its surrogate and a tabular benchmark's noise; Zela et al., ICLR 2022).
    - ``noise_ceiling_rho``: ``sqrt(r_n)`` with ``r_n = n r / (1 + (n - 1) r)`` the
      Spearman-Brown reliability of an ``n``-seed mean (``r`` = ``seed_vs_seed_rho``, ``n`` = the
      mean number of seeds per key): the expected correlation between the n-seed means and the
      expected success, i.e. about the best held-out rho any surrogate can reach on this table
      (the "noise ceiling" of neuroscience's model comparisons; applied to ranks it is an
      approximation). 0 when ``r <= 0``.

    Two more state what picking the best few gets, beside a surrogate's ``top10_live_mean``:

    - ``live_top10_mean``: the mean of the 10 highest n-seed means, the live top-10's own value
      (biased upward: scored on the seeds that picked them, the winner's curse).
    - ``seed_pick_top10``: the 10 keys highest at one seed, scored on the mean of their other
      seeds, averaged over seeds: what picking by a one-seed live run gets (unbiased). None
      when no seed has 10 keys that also hold another seed.

    Args:
        values: ``{key: {seed: validation success in [0, 1]}}``.

    Returns:
        ``{"seed_vs_seed_rho", "seed_pairs", "mean_seeds_per_key", "noise_ceiling_rho",
        "live_top10_mean", "seed_pick_top10"}``; the rhos are None when no seed pair shares 5
        keys (or one seed's values are constant).
    """
    from itertools import combinations

    from scipy.stats import spearmanr

    seeds = sorted({s for per_key in values.values() for s in per_key})
    rhos = []
    for a, b in combinations(seeds, 2):
        common = [k for k, per_key in values.items() if a in per_key and b in per_key]
        if len(common) < 5:
            continue
        rho = spearmanr([values[k][a] for k in common], [values[k][b] for k in common]).statistic
        if not np.isnan(rho):
            rhos.append(float(rho))
    n = float(np.mean([len(per_key) for per_key in values.values()])) if values else 0.0
    means = np.array([np.mean(list(per_key.values())) for per_key in values.values()])
    top = {
        "live_top10_mean": float(np.sort(means)[-TOP_K:].mean()) if len(means) else None,
        "seed_pick_top10": _seed_pick(values, TOP_K),
    }
    if not rhos:
        return {
            "seed_vs_seed_rho": None,
            "seed_pairs": 0,
            "mean_seeds_per_key": n,
            "noise_ceiling_rho": None,
            **top,
        }
    r = float(np.mean(rhos))
    reliability = n * r / (1 + (n - 1) * r) if r > 0 else 0.0
    return {
        "seed_vs_seed_rho": r,
        "seed_pairs": len(rhos),
        "mean_seeds_per_key": n,
        "noise_ceiling_rho": float(np.sqrt(reliability)),
        **top,
    }


def out_of_fold_predictions(
    table: FidelityTable,
    keys: Sequence[str],
    parsed: Sequence[Any],
    *,
    model: str,
    feature_set: str,
    folds: int = 5,
    split_seed: int = 0,
    targets: Sequence[str] = ("validation_mean",),
) -> dict[str, np.ndarray]:
    """Each key's prediction by a surrogate fitted on the other folds (the report's procedure).

    Args:
        table: The table.
        keys: Effective keys to cross-validate (a subset of the table's).
        parsed: Their parsed meta-rewards, in the same order.
        model: Regressor family (:data:`~derl_bench.fidelity.surrogate.MODEL_NAMES`).
        feature_set: Feature set (:data:`~derl_bench.fidelity.surrogate.FEATURE_SETS`).
        folds: ``KFold`` folds over keys, shuffled with ``split_seed``.
        split_seed: Seed of the fold split (the report uses 0).
        targets: Surrogate targets to predict (``validation_mean``, ``test_mean``, ...).

    Returns:
        ``{target: float64 (len(keys),)}``, out-of-fold predictions clipped to [0, 1].
    """
    from sklearn.model_selection import KFold

    out = {target: np.zeros(len(keys)) for target in targets}
    for train_idx, test_idx in KFold(folds, shuffle=True, random_state=split_seed).split(keys):
        surrogate = Surrogate(
            table, model=model, feature_set=feature_set, keys=[keys[i] for i in train_idx]
        )
        x = np.stack([surrogate.features(parsed[i]) for i in test_idx])
        raw = surrogate.predict_features(x, targets)
        for target in targets:
            out[target][test_idx] = np.clip(raw[target], 0, 1)
    return out


def surrogate_report(
    env_id: str,
    preset: str,
    *,
    root: str | Path | None = None,
    folds: int = 5,
    models: Sequence[str] = MODEL_NAMES,
    feature_sets: Sequence[str] = FEATURE_SETS,
    out: str | Path = "docs/fidelity",
    record_choice: bool = True,
    rechoose: bool = False,
) -> dict[str, Any]:
    """Cross-validate the surrogates (feature set x regressor family) on held-out meta-rewards.

    ``folds``-fold cross-validation over effective keys (shuffled, seed 0): each key's mean
    validation success is predicted by a surrogate fitted on the other folds. Over all
    out-of-fold predictions: Spearman rho, Kendall tau (scipy), MAE, the recall of the live
    top-10 in the predicted top-10 (ties counted) and the predicted top-10's live mean
    (:func:`_metrics`). The pair with the highest rho (ties: lowest MAE, then the
    order of ``feature_sets`` and ``models``) is the best candidate; its rho is the best of
    several on the same folds, so slightly optimistic (every candidate's numbers are in the
    report). The report also states the seed-to-seed agreement and the noise ceiling of rho
    (:func:`seed_agreement`). When every key has test success (a fresh policy trained on
    D_in + V, what a run reports for its best meta-reward), each candidate's ``test`` entry has
    the same four numbers for the predicted test success, and ``test_agreement`` the seed
    agreement of test success; the choice is made on validation success alone (the env's
    reward). A table being built (some keys without test success yet) gets the same, measured
    on its ``test_keys`` keys with test success in folds of their own (``test_own_folds``),
    from ``2 * folds`` such keys on.

    The choice is what the ``surrogate`` fidelity uses (``meta.json``: ``surrogate_features``,
    ``surrogate_model``), so it is part of the benchmark: results made at that fidelity are
    checked against its answers (the leaderboards). A table without a recorded choice gets the
    best candidate; a table with one keeps it (the report re-measures it and names the best
    candidate) unless ``rechoose``.

    Args:
        env_id: The table's env id, e.g. ``"DERL-CartPole-v0"``.
        preset: The table's preset.
        root: Root of table folders (default: the shipped tables).
        folds: Cross-validation folds over keys (>= 2).
        models: Regressor families (:data:`~derl_bench.fidelity.surrogate.MODEL_NAMES`).
        feature_sets: Feature sets (:data:`~derl_bench.fidelity.surrogate.FEATURE_SETS`).
        out: Folder of the report files.
        record_choice: Write the choice into ``meta.json`` (``surrogate_model``,
            ``surrogate_features``, and ``surrogate_heldout``: the chosen pair's held-out
            Spearman rho, the keys it was measured on and the report's path as ``out`` gives it,
            which ``derl-bench run --fidelity auto`` quotes).
        rechoose: Choose the best candidate even if the table has a recorded choice.

    Returns:
        The report (also written to ``OUT/<env id>-<preset>.json`` and ``.md``).

    Raises:
        ValueError: If the table holds fewer than ``2 * folds`` keys.
    """
    table = FidelityTable.load(env_id, preset, root)
    summary = table.summary()
    keys = list(summary)
    if len(keys) < 2 * folds:
        raise ValueError(
            f"the {env_id} table holds {len(keys)} keys; a {folds}-fold report needs >= {2 * folds}"
        )
    truth = np.array([summary[k]["validation_mean"] for k in keys])
    tests = [summary[k]["test_mean"] for k in keys]
    truth_test = None if any(t is None for t in tests) else np.array(tests, dtype=np.float64)
    parsed = [parse(summary[k]["canonical"], table.scheme.primitive_names) for k in keys]
    # A table being built holds keys without test success yet: test success is then
    # cross-validated on the keys that have it, in folds of their own.
    tested = [i for i, t in enumerate(tests) if t is not None]
    own_folds = truth_test is None and len(tested) >= 2 * folds
    if own_folds:
        tested_keys = [keys[i] for i in tested]
        tested_parsed = [parsed[i] for i in tested]
        tested_truth = np.array([tests[i] for i in tested], dtype=np.float64)
    by_features: dict[str, dict[str, Any]] = {}
    for feature_set in feature_sets:
        results: dict[str, Any] = {}
        for model in models:
            start = time.perf_counter()
            targets = (
                ("validation_mean",) if truth_test is None else ("validation_mean", "test_mean")
            )
            predicted = out_of_fold_predictions(
                table,
                keys,
                parsed,
                model=model,
                feature_set=feature_set,
                folds=folds,
                targets=targets,
            )
            test = None if truth_test is None else _metrics(truth_test, predicted["test_mean"])
            if own_folds:
                on_tested = out_of_fold_predictions(
                    table,
                    tested_keys,
                    tested_parsed,
                    model=model,
                    feature_set=feature_set,
                    folds=folds,
                    targets=("test_mean",),
                )
                test = _metrics(tested_truth, on_tested["test_mean"])
            results[model] = {
                **_metrics(truth, predicted["validation_mean"]),
                "test": test,
                "cv_seconds": time.perf_counter() - start,
            }
        by_features[feature_set] = results
    candidates = [(f, m) for f in by_features for m in by_features[f]]
    chosen_features, chosen = max(
        candidates,
        key=lambda c: (
            by_features[c[0]][c[1]]["spearman_rho"] or -2.0,
            -by_features[c[0]][c[1]]["mae"],
            -candidates.index(c),
        ),
    )
    best_pair = (chosen_features, chosen)
    recorded = table.meta.get("surrogate_model")
    kept = False
    if recorded and not rechoose:
        pair = (table.meta.get("surrogate_features", DEFAULT_FEATURES), recorded)
        if pair[1] in by_features.get(pair[0], {}):
            chosen_features, chosen = pair
            kept = pair != best_pair
    best = by_features[chosen_features][chosen]
    seeds = sorted({s for k in keys for s in table.seeds(k)})
    report = {
        "env_id": env_id,
        "preset": preset,
        "keys": len(keys),
        "entries": len(table),
        "seeds": seeds,
        "folds": folds,
        "probe_bank_rows": int(table.probe_bank().shape[0]),
        "feature_sets": by_features,
        "chosen_features": chosen_features,
        "chosen": chosen,
        "why": _why(best, by_features, best_pair, kept),
        "seed_noise": float(np.mean([summary[k]["validation_std"] for k in keys])),
        **seed_agreement(
            {k: {e.seed: e.validation_success for e in table.entries(k)} for k in keys}
        ),
        "test_keys": len(tested),
        "test_own_folds": own_folds,
        "test_agreement": None
        if truth_test is None and not own_folds
        else seed_agreement(
            {
                keys[i]: {
                    e.seed: e.test_success
                    for e in table.entries(keys[i])
                    if e.test_success is not None
                }
                for i in tested
            }
        ),
        "command": f"derl-bench fidelity report --env {env_id} --preset {preset}",
        **entry_provenance(),
    }
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{env_id}-{preset}.json").write_text(
        json.dumps(report, indent=2) + "\n", encoding="utf-8"
    )
    (target / f"{env_id}-{preset}.md").write_text(_markdown(report), encoding="utf-8")
    if record_choice:
        meta_path = table.folder / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["surrogate_model"] = chosen
        meta["surrogate_features"] = chosen_features
        meta["surrogate_heldout"] = {
            "spearman_rho": best["spearman_rho"],
            "keys": len(keys),
            "report": (Path(out) / f"{env_id}-{preset}.md").as_posix(),
        }
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return report


def _why(
    best: dict[str, Any],
    by_features: dict[str, dict[str, Any]],
    best_pair: tuple[str, str],
    kept: bool,
) -> str:
    rho = best["spearman_rho"]
    if rho is None:
        return "no surrogate ranks the held-out keys (constant targets)"
    if kept:
        top = by_features[best_pair[0]][best_pair[1]]["spearman_rho"]
        return (
            f"the table's recorded choice, kept (held-out Spearman rho {rho:.3f}; the best "
            f"candidate is {best_pair[1]} on {best_pair[0]} features, {top:.3f}: --rechoose "
            "records it, which changes the surrogate's answers)"
        )
    return f"highest held-out Spearman rho ({rho:.3f})"


def _agreement_sentence(report: dict[str, Any]) -> str:
    if report.get("seed_vs_seed_rho") is None:
        return "Too few keys share two seeds to measure the seed-to-seed agreement."
    return (
        f"One seed against another ranks the keys with Spearman ρ "
        f"{report['seed_vs_seed_rho']:.3f} (mean of {report['seed_pairs']} seed pairs); with "
        f"{report['mean_seeds_per_key']:.2f} seeds per key that puts the noise ceiling of the "
        f"held-out ρ (Spearman-Brown) at about {report['noise_ceiling_rho']:.3f}: no surrogate "
        f"of the expected success ranks the seed means better."
    )


def _metrics_table(report: dict[str, Any], part: str | None) -> list[str]:
    """Markdown rows of every candidate's metrics (``part``: None validation, ``"test"``)."""

    def fmt(value: Any) -> str:
        return "—" if value is None else f"{value:.3f}"

    lines = [
        "| features | model | Spearman ρ [95 % CI] | Kendall τ | MAE | top-10 recall | "
        "top-10 live mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for feature_set, results in report["feature_sets"].items():
        for name, candidate in results.items():
            r = candidate if part is None else candidate.get(part)
            if r is None:
                continue
            chosen = name == report["chosen"] and feature_set == report["chosen_features"]
            mark = " (chosen)" if chosen else ""
            ci = r.get("spearman_rho_ci95")
            interval = "" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            lines.append(
                f"| {feature_set} | {name}{mark} | {fmt(r['spearman_rho'])}{interval} | "
                f"{fmt(r['kendall_tau'])} | {r['mae']:.3f} | {r['top10_recall']:.2f} | "
                f"{r['top10_live_mean']:.3f} |"
            )
    return lines


def _top_sentence(agreement: dict[str, Any], best: dict[str, Any] | None) -> str:
    """What picking the top-10 gets: by the chosen surrogate, by one live seed, the live top."""
    if best is None or agreement.get("live_top10_mean") is None:
        return ""
    seed_pick = agreement.get("seed_pick_top10")
    by_seed = (
        ""
        if seed_pick is None
        else f"; the 10 keys highest at one live seed, scored on their other seeds, "
        f"{seed_pick:.3f} (mean over seeds: what picking by a one-seed live run gets)"
    )
    return (
        f" Picking the top: the 10 held-out keys the chosen surrogate ranks highest have a live "
        f"mean of {best['top10_live_mean']:.3f}{by_seed}; the live top-10's own mean is "
        f"{agreement['live_top10_mean']:.3f} (scored on the seeds that picked them, so biased "
        f"upward). Top-10 recall counts a pick whose live value ties the 10th highest."
    )


def _markdown(report: dict[str, Any]) -> str:
    chosen = report["feature_sets"][report["chosen_features"]][report["chosen"]]
    lines = [
        f"# Surrogate error: {report['env_id']} at preset `{report['preset']}`",
        "",
        f"{report['keys']} effective keys ({report['entries']} entries, seeds "
        f"{report['seeds']}), {report['folds']}-fold cross-validation over keys; probe bank of "
        f"{report['probe_bank_rows']} primitive vectors. Mean seed std of validation success: "
        f"{report['seed_noise']:.3f}. {_agreement_sentence(report)} Made by "
        f"`{report['command']}` (lock `{report['lock_sha256']}`).",
        "",
        *_metrics_table(report, None),
        "",
        f"Chosen: `{report['chosen']}` on `{report['chosen_features']}` features, "
        f"{report['why']}. {sum(len(r) for r in report['feature_sets'].values())} candidates "
        "on the same folds: the best one's rho is slightly optimistic. The interval is a 95 % "
        "percentile bootstrap over keys of the out-of-fold predictions (the folds and the fits "
        f"held fixed).{_top_sentence(report, chosen)}",
        "",
    ]
    agreement = report.get("test_agreement")
    if agreement is not None:
        which = (
            f"The {report['test_keys']} keys with test success so far, in {report['folds']} "
            "folds of their own (the other keys have no test success yet),"
            if report.get("test_own_folds")
            else "The same folds,"
        )
        lines += [
            "## Test success",
            "",
            f"{which} predicting each held-out key's mean test success (a fresh policy "
            "trained on D_in ∪ V and scored on the test split: what a run reports for its best "
            f"meta-reward). {_agreement_sentence(agreement)} The choice above is made on "
            "validation success alone.",
            "",
            *_metrics_table(report, "test"),
            "",
            _top_sentence(agreement, chosen["test"]).lstrip(),
            "",
        ]
    return "\n".join(lines)
