"""Building tables from live meta-steps, checking them, and measuring the surrogate's error.

``derl-bench fidelity build`` (:func:`build_table`) runs live meta-steps over a designed sample
of meta-rewards (:func:`design_sample`) with several seeds and appends them, with validation
and test success, primitive means, cost and provenance, to the (env id, preset) table
(:mod:`derl_bench.fidelity.table`). A build is resumable: entries are flushed as Parquet shards
every ``flush`` meta-steps, and a (key, seed) already in the table is never trained again, so the
same command after an interruption continues. Checks and the surrogate report are in
:mod:`derl_bench.fidelity_report`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.fidelity.keys import KeyScheme, effective_key, trainer_invariance
from derl_bench.fidelity.table import (
    TABLES_DIR,
    FidelityTable,
    TableMissing,
    build_command,
    table_dir,
    write_shard,
)
from derl_bench.meta_reward import InvalidMetaReward, parse

__all__ = [
    "DEFAULT_SAMPLE",
    "BuildSummary",
    "SignalCells",
    "TableConfigMismatch",
    "build_table",
    "design_sample",
    "entry_provenance",
    "interleave_families",
    "open_table_folder",
    "parse_sample",
    "record_probe_bank",
    "table_row",
]

DEFAULT_SAMPLE = "panel,sweep:12,corpus:12,random:12,evolution:8"
"""The design of ``--sample``: families and how many meta-rewards each contributes."""

FAMILIES = ("panel", "sweep", "corpus", "random", "evolution")
"""``panel``: the signal check's panel (:data:`derl_bench.signal_check.SIGNAL_META_REWARDS`);
``sweep``: coefficient sweeps ``g1 + c * gk`` and ``c * g1 + gk``; ``corpus``: DERL's cold-start
corpus (:func:`derl_bench.baselines.meta_optimizer.corpus.generate_corpus`); ``random``: random
expression trees (the random-search agent's generator); ``evolution``: subtree mutations and
constant perturbations of the best meta-rewards recorded so far (run after the others)."""

SWEEP_COEFFICIENTS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
"""Coefficients of the ``sweep`` family."""


# -- the design ----------------------------------------------------------------------------------


def parse_sample(spec: str) -> dict[str, int | None]:
    """Parse ``--sample``: ``"panel,sweep:12,random:40"`` -> ``{family: count or None (all)}``.

    Raises:
        ValueError: On an unknown family or a bad count (the message lists the families).
    """
    out: dict[str, int | None] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, count = part.partition(":")
        if name not in FAMILIES:
            raise ValueError(
                f"Unknown sample family {name!r} in --sample {spec!r}; known: "
                f"{', '.join(FAMILIES)} (e.g. {DEFAULT_SAMPLE!r})"
            )
        if count and (not count.isdigit() or int(count) < 1):
            raise ValueError(f"--sample {spec!r}: the count of {name!r} must be an int >= 1")
        out[name] = int(count) if count else None
    if not out:
        raise ValueError(f"--sample {spec!r} names no family; e.g. {DEFAULT_SAMPLE!r}")
    return out


def _sweep(names: Sequence[str]) -> list[str]:
    out = []
    for c in SWEEP_COEFFICIENTS:
        for k in names[1:]:
            out.append(f"{names[0]} + {c} * {k}")
            out.append(f"{c} * {names[0]} + {k}")
    return out


def design_sample(
    primitive_names: Sequence[str], families: dict[str, int | None], seed: int = 0
) -> list[tuple[str, str]]:
    """The first-phase meta-rewards of a build (every family but ``evolution``).

    Args:
        primitive_names: The domain's primitives.
        families: From :func:`parse_sample`.
        seed: Seed of the random families.

    Returns:
        ``[(meta_reward text, family)]`` in family order, not yet deduplicated by key.
    """
    from derl_bench.signal_check import SIGNAL_META_REWARDS

    names = tuple(primitive_names)
    out: list[tuple[str, str]] = []
    for family, count in families.items():
        if family == "panel":
            texts = list(SIGNAL_META_REWARDS)
        elif family == "sweep":
            texts = _sweep(names)
        elif family == "corpus":
            from derl_bench.baselines.meta_optimizer.corpus import generate_corpus

            texts = list(generate_corpus(names, int(_family_count(family, count)), seed))
        elif family == "random":
            from derl_bench.baselines.expression_trees import random_valid_tree

            rng = np.random.default_rng(seed)
            n = int(_family_count(family, count))
            texts = [random_valid_tree(rng, names).canonical for _ in range(n)]
        else:
            continue
        if count is not None and family in ("panel", "sweep"):
            texts = texts[:count]
        out.extend((t, family) for t in texts)
    return out


def interleave_families(
    todo: Sequence[tuple[str, str, str, int]],
) -> list[tuple[str, str, str, int]]:
    """Order a build's first phase so that a build stopped anywhere holds a sample of every family.

    A table of hundreds of live meta-steps takes many stops to build (``DERL-Arith-v2`` at ``cpu``:
    about 60 CPU-hours). Trained family by family, a build stopped halfway would hold the panel
    and the sweeps and no random tree, and a surrogate fitted on it would never have seen one.
    Here the keys take turns by family (round robin, in the order the families first appear;
    ``extra`` meta-rewards, given by the user, all come first), each key's seeds kept together
    so that every key held has its seed spread.

    Args:
        todo: ``(canonical, family, effective key, seed)`` rows, deduplicated by key in family
            order (so a key two families produce keeps the first family's name).

    Returns:
        The same rows, reordered; the order within a family and of a key's seeds is kept.
    """
    keys: dict[str, list[tuple[str, str, str, int]]] = {}
    for row in todo:
        keys.setdefault(row[2], []).append(row)
    by_family: dict[str, list[list[tuple[str, str, str, int]]]] = {}
    for rows in keys.values():
        by_family.setdefault(rows[0][1], []).append(rows)
    out = [row for rows in by_family.pop("extra", []) for row in rows]
    queues = list(by_family.values())
    for turn in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if turn < len(queue):
                out.extend(queue[turn])
    return out


def _mutations(best: Sequence[str], names: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` children of ``best`` (canonical texts): subtree mutation and constant perturbation."""
    from derl_bench.baselines.evolution import perturb_constants, subtree_mutation

    rng = np.random.default_rng(seed + 1)
    out = []
    for i in range(n):
        parent = parse(best[i % len(best)], names).tree
        op = subtree_mutation if i % 2 == 0 else perturb_constants
        out.append(op(parent, rng=rng, primitive_names=names).canonical)
    return out


# -- the probe bank ------------------------------------------------------------------------------


def record_probe_bank(
    env: Any, scheme: KeyScheme, *, seeds: Sequence[int] = (0, 1, 2, 3), max_rows: int = 64
) -> np.ndarray:
    """Real primitive vectors from the domain's own rollouts (the surrogate's features).

    Episode domains: the initial policy plays sampled episodes on D_in tasks, one batch per
    seed; the distinct primitive vectors are kept (at most ``max_rows``, a seeded subset), plus
    the all-``ε`` and all-``1 + ε`` corners. Domains whose primitives are all binary (math): the
    2^K corners, which are every vector their rollouts can produce.

    Args:
        env: A live MetaRewardEnv (``env.unwrapped`` is used).
        scheme: The key scheme (its ``binary`` flags).
        seeds: Seeds of the sampled batches.
        max_rows: Cap on rows from rollouts.

    Returns:
        float64, shape (n_rows, K).
    """
    from derl_bench.fidelity.keys import key_bank

    base = env.unwrapped
    trainer = base.trainer
    if all(scheme.binary) or type(trainer).__name__ != "EpisodeGRPOTrainer":
        return np.array(key_bank(scheme.binary)[: 2 ** len(scheme.binary)])
    import torch

    from derl_bench.inner.episode_grpo_trainer import run_episodes

    cfg = trainer.config
    rows = []
    envs = [trainer.env_factory() for _ in range(cfg.n_envs)]
    try:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            pool = trainer.splits.d_in
            picks = rng.choice(len(pool), size=min(len(pool), cfg.tasks_per_step), replace=False)
            tasks = [pool[int(i)] for i in picks for _ in range(cfg.group_size)]
            episodes = run_episodes(
                envs,
                trainer.policy_factory(seed),
                tasks,
                max_episode_steps=cfg.max_episode_steps,
                generator=torch.Generator().manual_seed(seed),
                greedy=False,
            )
            trajectories = [e.trajectory for e in episodes]
            rows.append(base.primitive_set.compute(trajectories, [None] * len(trajectories)))
    finally:
        for inner_env in envs:
            inner_env.close()
    found = np.unique(np.round(np.concatenate(rows), 12), axis=0)
    if len(found) > max_rows:
        found = found[np.sort(np.random.default_rng(0).choice(len(found), max_rows, False))]
    corners = key_bank(scheme.binary)[[0, 2 ** len(scheme.binary) - 1]]
    return np.unique(np.concatenate([found, corners]), axis=0)


# -- the build -----------------------------------------------------------------------------------


class TableConfigMismatch(ValueError):
    """The table folder holds another configuration of the env than the one adding to it.

    Another configuration: other ``inner`` overrides or another key scheme than the build or
    signal check about to add entries to the folder.
    """


@dataclass(frozen=True, kw_only=True)
class BuildSummary:
    """What a build did."""

    folder: Path
    """The table folder."""
    trained: int
    """Live meta-steps run by this call."""
    skipped: int
    """(key, seed) pairs already in the table."""
    failed: list[str]
    """``"meta-reward @ seed: error"`` of meta-steps that failed twice."""
    keys: int
    """Distinct effective keys in the table after the build."""
    entries: int
    """Entries in the table after the build."""
    wall_seconds: float
    """Wall seconds of this call."""
    planned: dict[str, int] = field(default_factory=dict)
    """(key, seed) entries the first phase (the sampled families and ``--meta-rewards``) had to
    train when the call started, by family (``"extra"`` for ``--meta-rewards``); the
    ``evolution`` children are planned only after that phase."""


def record_build_status(folder: str | Path, **status: Any) -> None:
    """Merge ``status`` into the ``build`` object of a table folder's ``meta.json``.

    ``build`` says what the last build with a designed sample (``--sample``) planned and
    whether it finished: ``command`` (the CLI command that resumes it, without executor
    options), ``sample``, ``seeds``, ``sample_seed`` (only when not 0), ``complete`` (every
    planned entry trained; False while it runs, after it was stopped, or if an entry failed) and
    ``updated_at``; a field given as None is removed. Builds of ``--meta-rewards`` alone add
    entries without changing it, and so do phases of the recorded plan (:func:`_plan_covering`).
    The table and surrogate fidelities warn while ``complete`` is False (their answers change as
    the table grows).
    Other fields of ``meta.json`` are kept. ``updated_at`` is when the status last changed: a
    call that changes nothing (a stopped build resumed with the same plan) leaves the file
    untouched, so the table's :attr:`~derl_bench.fidelity.table.FidelityTable.sha256` (which
    covers ``meta.json``) and the runs pinned to it stay valid, and the work tree stays clean.
    """
    from derl_bench.results import utc_now

    meta_path = Path(folder) / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    old = {k: v for k, v in meta.get("build", {}).items() if k != "updated_at"}
    merged = {k: v for k, v in {**old, **status}.items() if v is not None}  # None: drop the field
    new = json.loads(json.dumps(merged))  # as the file would hold it (tuples: lists)
    if "updated_at" in meta.get("build", {}) and new == old:
        return
    meta["build"] = {**new, "updated_at": utc_now()}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def open_table_folder(base: Any, env_id: str, preset: str, folder: str | Path) -> dict[str, Any]:
    """Create a table folder's ``meta.json`` for this env, or check that it describes this env.

    Args:
        base: The live ``MetaRewardEnv`` (``env.unwrapped``) whose meta-steps go in the table.
        env_id: Its id.
        preset: Its preset.
        folder: The table folder (created if missing).

    Returns:
        The folder's metadata (``meta.json`` as a dict).

    Raises:
        TableConfigMismatch: If the folder holds a table of another configuration (other
            ``inner`` overrides or key scheme); the message names both and says to use another
            folder (``--out``).
    """
    folder = Path(folder)
    scheme: KeyScheme = base.key_scheme
    meta_path = folder / "meta.json"
    identity = json.loads(json.dumps(base.identity_kwargs))
    if meta_path.is_file():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta["key_scheme"] != scheme.as_dict() or meta.get("env_kwargs") != identity:
            raise TableConfigMismatch(
                f"{folder} holds a table of another configuration ({meta.get('env_kwargs')}, "
                f"{meta['key_scheme']['name']}); this build is {identity}, {scheme.name}. Use "
                "another --out."
            )
        return meta
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "env_id": env_id,
        "preset": preset,
        "env_kwargs": identity,
        "key_scheme": scheme.as_dict(),
        "invariance": trainer_invariance(base.trainer).reason,
        "primitive_set": base.primitive_set.name,
        "instruction": base.instruction,
        "probe_bank": "probe_bank.parquet",
        "build_command": f"derl-bench fidelity build --env {env_id} --preset {preset}",
        **{k: v for k, v in entry_provenance().items() if k != "created_at"},
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


class SignalCells:
    """Where ``derl-bench signal`` keeps its finished cells: entries of a fidelity table.

    A signal cell (one meta-reward, one seed, one live meta-step) is a table entry of the
    ``panel`` family without test success, so a signal check both resumes from and adds to the
    (env id, preset) table that ``derl-bench fidelity build`` extends (and that the ``table`` and
    ``surrogate`` fidelities answer from); a build later skips what the check trained, and the
    check reuses what a build trained. Only entries made under the current lock file are reused.
    With ``inner`` overrides the entries go to a folder of their own,
    ``<env id>-<preset>-<8 hex digits of the overrides>``, never into the preset's table.

    Args:
        env_id: A registered id.
        preset: Its preset.
        env_kwargs: The check's further ``gymnasium.make`` kwargs (e.g. ``inner_overrides``).
        root: Root of table folders (default: the shipped tables, as ``fidelity build``).
        fresh: Reuse nothing (every cell is trained again; the new entries win).

    Raises:
        ValueError: If the folder holds a table of another configuration.
    """

    def __init__(
        self,
        env_id: str,
        preset: str,
        env_kwargs: dict[str, Any] | None = None,
        *,
        root: str | Path | None = None,
        fresh: bool = False,
    ) -> None:
        import hashlib

        from derl_bench.meta_env.executors import shared_env
        from derl_bench.provenance import lock_file_sha256

        base = shared_env(env_id, {"preset": preset, **(env_kwargs or {})}).unwrapped
        folder = table_dir(env_id, preset, root)
        if env_kwargs:
            text = json.dumps(base.identity_kwargs, sort_keys=True, default=str)
            folder = folder.with_name(
                f"{folder.name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
            )
        open_table_folder(base, env_id, preset, folder)
        self.folder = folder
        self.scheme: KeyScheme = base.key_scheme
        self.done: dict[tuple[str, int], tuple[float, float, dict[str, float]]] = {}
        if fresh:
            return
        lock = lock_file_sha256()
        for row in FidelityTable(folder).frame.to_dict(orient="records"):
            if row.get("lock_sha256") != lock:
                continue
            self.done[(str(row["key"]), int(row["seed"]))] = (
                float(row["validation_success"]),
                float(row["wall_seconds"]),
                dict(json.loads(row["validation_primitive_means"])),
            )

    def _key(self, meta_reward: str) -> str:
        return effective_key(parse(meta_reward, self.scheme.primitive_names), self.scheme)

    def get(self, meta_reward: str, seed: int) -> tuple[float, float, dict[str, float]] | None:
        """``(validation success, wall seconds, validation primitive means)`` or None."""
        return self.done.get((self._key(meta_reward), int(seed)))

    def add(self, meta_reward: str, seed: int, info: dict[str, Any]) -> None:
        """Append the meta-step whose ``info`` the env returned, as one shard."""
        key = self._key(meta_reward)
        write_shard(self.folder, [table_row(key, seed, "panel", info, entry_provenance())])
        self.done[(key, int(seed))] = (
            float(info["validation_success"]),
            float(info["cost"]["wall_seconds"]),
            dict(info.get("validation_primitive_means") or {}),
        )


def entry_provenance() -> dict[str, Any]:
    """Version, git hash, lock hash and UTC time, stamped on every table entry and report."""
    from derl_bench.provenance import lock_file_sha256
    from derl_bench.results import derl_bench_version, git_hash, utc_now

    return {
        "derl_bench_version": derl_bench_version(),
        "git_hash": git_hash(),
        "lock_sha256": lock_file_sha256(),
        "created_at": utc_now(),
    }


def table_row(
    key: str, seed: int, family: str, info: dict[str, Any], prov: dict[str, Any]
) -> dict[str, Any]:
    """One table entry (every column of :data:`~derl_bench.fidelity.table.COLUMNS`).

    Built from a meta-step's ``info``, with ``info["test"]`` (what ``evaluate_test`` returned)
    when test success was measured, else NaN test columns.
    """
    test = info.get("test") or {}
    cost = info["cost"]
    return {
        "key": key,
        "canonical": info["canonical"],
        "seed": int(seed),
        "validation_success": float(info["validation_success"]),
        "test_success": float(test["test_success"]) if test else float("nan"),
        "n_test": float(test["n_test"]) if test else float("nan"),
        "primitive_means": json.dumps(info["primitive_means"]),
        "validation_primitive_means": json.dumps(info["validation_primitive_means"]),
        "training_curve": json.dumps(info["training_curve"]),
        "n_nonfinite_rewards": int(info["n_nonfinite_rewards"]),
        "wall_seconds": float(cost["wall_seconds"]),
        "inner_steps": int(cost["inner_steps"]),
        "rollouts": int(cost["rollouts"]),
        "tokens": int(cost["tokens"]),
        "test_wall_seconds": float(test["cost"]["wall_seconds"]) if test else float("nan"),
        "sample": family,
        **prov,
    }


def build_table(
    env_id: str,
    preset: str,
    seeds: Sequence[int],
    *,
    sample: str = DEFAULT_SAMPLE,
    meta_rewards: Sequence[str] = (),
    out: str | Path | None = None,
    executor: str = "sync",
    max_workers: int | None = None,
    with_test: bool = True,
    flush: int = 8,
    sample_seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    say: Callable[[str], None] = print,
    dry_run: bool = False,
) -> BuildSummary:
    """Build (or extend, or resume) the table of ``(env_id, preset)`` from live meta-steps.

    The sampled families are trained first, keys taking turns by family
    (:func:`interleave_families`, so a build stopped anywhere holds some of each), then the
    ``evolution`` children of the best four meta-rewards held by then.

    Args:
        env_id: A registered id, e.g. ``"DERL-CartPole-v0"``.
        preset: The preset (``smoke``, ``cpu``, ``paper``).
        seeds: Seeds of every meta-reward.
        sample: The design (:func:`parse_sample`); ``""`` with ``meta_rewards``: those only.
        meta_rewards: Extra meta-rewards (family ``extra``), trained first.
        out: Root of table folders (default: the package's ``fidelity/tables``).
        executor: ``sync``, ``process`` or ``ray`` (:mod:`derl_bench.meta_env.executors`).
        max_workers: Workers of the ``process`` executor.
        with_test: Also record test success (a second training per entry, on D_in ∪ V).
        flush: Meta-steps per shard (a killed build loses at most this many).
        sample_seed: Seed of the random families.
        env_kwargs: Further ``gymnasium.make`` kwargs (e.g. ``inner_overrides``), recorded.
        say: Progress messages.
        dry_run: Train and write nothing (no folder, probe bank, status or shard): say what
            the first phase would train, by family, and estimate its cost from the held
            entries' recorded wall seconds (meta-step, plus test training when ``with_test``)
            on ``max_workers`` workers.

    Returns:
        A :class:`BuildSummary`.

    Raises:
        ValueError: On a bad sample.
        TableConfigMismatch: If the folder holds a table of another configuration.
    """
    import pandas as pd

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.meta_env.executors import MetaStepTask, make_executor, shared_env

    start = time.perf_counter()
    families = parse_sample(sample) if sample else {}
    kwargs = {"preset": preset, **(env_kwargs or {})}
    env = shared_env(env_id, kwargs)  # the sync executor trains on this very env
    base = env.unwrapped
    scheme: KeyScheme = base.key_scheme
    folder = table_dir(env_id, preset, out)
    if dry_run:
        if (folder / "meta.json").is_file():  # only checks that the table is this env's
            open_table_folder(base, env_id, preset, folder)
    else:
        meta = open_table_folder(base, env_id, preset, folder)
        bank_path = folder / meta.get("probe_bank", "probe_bank.parquet")
        if not bank_path.is_file():
            say("recording the probe bank (the initial policy's rollouts)")
            bank = record_probe_bank(env, scheme)
            frame = pd.DataFrame(bank, columns=list(scheme.primitive_names))
            frame.to_parquet(bank_path, index=False)

    # A designed sample is the table's plan (--meta-rewards: extra), unless it is a phase of the
    # plan already recorded (part of its keys and seeds): then the record keeps that plan.
    phase_of = _plan_covering(folder, families, seeds, sample_seed) if sample else None
    if phase_of:
        say(
            f"a phase of the table's recorded plan ({phase_of}): the record keeps that plan "
            "(not marked complete by this build); run the plan's command to finish the table"
        )
    elif sample and not dry_run:
        extra = f" --sample-seed {sample_seed}" if sample_seed else ""
        record_build_status(
            folder,
            command=f"{build_command(env_id, preset, seeds=seeds)} --sample {sample}{extra}",
            sample=sample,
            seeds=[int(s) for s in seeds],
            sample_seed=sample_seed or None,
            complete=False,
        )
    held: FidelityTable | None = None
    try:
        held = FidelityTable(folder)
    except TableMissing:
        done: set[tuple[str, int]] = set()
    else:  # an entry without test success (a signal check's) is trained again when tests are on
        done = {
            (key, entry.seed)
            for key in held.keys
            for entry in held.entries(key)
            if not with_test or entry.test_success is not None
        }
        untested = len(held.done()) - len(done)
        if untested:
            say(
                f"{untested} (key, seed) entries held without test success (a signal check's or "
                "a --no-test build's): those this build samples are trained again with test "
                "(the new entry wins)"
            )
    names = scheme.primitive_names
    stats = {"trained": 0, "skipped": 0}
    failed: list[str] = []
    seen: set[str] = set()

    def plan(candidates: Sequence[tuple[str, str]]) -> list[tuple[str, str, str, int]]:
        todo = []
        for text, family in candidates:
            try:
                parsed = parse(text, names)
            except InvalidMetaReward:
                continue
            key = effective_key(parsed, scheme)
            if key in seen:
                continue
            seen.add(key)
            for seed in seeds:
                if (key, int(seed)) in done:
                    stats["skipped"] += 1
                else:
                    todo.append((parsed.canonical, family, key, int(seed)))
        return todo

    def train(todo: list[tuple[str, str, str, int]], phase: str) -> None:
        say(
            f"{phase}: {len(todo)} (key, seed) entries to train, {stats['skipped']} already in "
            "the table"
        )
        phase_start = time.perf_counter()
        for i in range(0, len(todo), flush):
            chunk = todo[i : i + flush]
            tasks = [
                MetaStepTask(meta_reward=c, seed=s, with_test=with_test) for c, _, _, s in chunk
            ]
            outcomes = runner.run(env_id, kwargs, tasks)
            prov = entry_provenance()
            rows = []
            for (canonical, family, key, seed), outcome in zip(chunk, outcomes, strict=True):
                if outcome.failed or not outcome.info.get("valid"):
                    failed.append(f"{canonical} @ {seed}: {outcome.error or 'invalid'}")
                    continue
                rows.append(table_row(key, seed, family, outcome.info, prov))
                done.add((key, seed))
            write_shard(folder, rows)
            stats["trained"] += len(rows)
            left = len(todo) - (i + len(chunk))
            pace = (time.perf_counter() - phase_start) / (i + len(chunk))
            say(
                f"{stats['trained']} trained, {stats['skipped']} already in the table, "
                f"{len(failed)} failed ({time.perf_counter() - start:.0f} s); {left} left in "
                f"this phase, about {_duration(left * pace)} at this pace"
            )

    first = [(m, "extra") for m in meta_rewards] + design_sample(names, families, sample_seed)
    first_todo = interleave_families(plan(first))
    planned = dict(Counter(family for _, family, _, _ in first_todo))
    if dry_run:
        say(_dry_run_plan(planned, stats["skipped"], families, seeds, held, with_test, max_workers))
        return BuildSummary(
            folder=folder,
            trained=0,
            skipped=stats["skipped"],
            failed=[],
            keys=len(held.keys) if held else 0,
            entries=len(held) if held else 0,
            wall_seconds=time.perf_counter() - start,
            planned=planned,
        )
    runner = make_executor(executor, **({"max_workers": max_workers} if max_workers else {}))
    try:
        train(first_todo, "sampled families")
        n_evolution = _evolution_count(families)
        if n_evolution:
            summary = FidelityTable(folder).summary()
            ranked = sorted(summary.values(), key=lambda r: -r["validation_mean"])
            best = [r["canonical"] for r in ranked[:4]] or ["(g1 + g2 + g3 + g4) / 4"]
            children = _mutations(best, names, n_evolution, sample_seed)
            train(plan([(c, "evolution") for c in children]), "evolution children")
    finally:
        runner.close()
    if sample and not phase_of:
        record_build_status(folder, complete=not failed)
    table = FidelityTable(folder)
    return BuildSummary(
        folder=folder,
        trained=stats["trained"],
        skipped=stats["skipped"],
        failed=failed,
        keys=len(table.keys),
        entries=len(table),
        wall_seconds=time.perf_counter() - start,
        planned=planned,
    )


def _dry_run_plan(
    planned: dict[str, int],
    skipped: int,
    families: dict[str, int | None],
    seeds: Sequence[int],
    held: FidelityTable | None,
    with_test: bool,
    workers: int | None,
) -> str:
    """The message of a dry run: the first phase by family, the evolution phase, the cost."""
    total = sum(planned.values())
    by_family = ", ".join(f"{family} {n}" for family, n in planned.items())
    lines = [
        f"dry run (nothing trained or written): sampled families: {total} (key, seed) entries "
        f"to train ({by_family or 'none'}), {skipped} already in the table"
    ]
    n = _evolution_count(families)
    if n:
        lines.append(
            f"then up to {n} evolution children x {len(seeds)} seeds (mutations of the best four "
            "meta-rewards held after the first phase)"
        )
    frame = held.frame if held is not None else None
    n_workers = workers or 1
    on = f"on {n_workers} worker{'s' if n_workers > 1 else ''}"
    if frame is None or frame.empty:
        lines.append("cost: no entry held to time it by (the estimate needs a trained entry)")
    elif not with_test:
        per_entry = float(frame["wall_seconds"].mean())
        lines.append(
            f"cost: {per_entry:.0f} s per entry (meta-step, wall, the mean of the {len(frame)} "
            f"entries recorded): about {_duration(total * per_entry / n_workers)} {on}"
        )
    elif (tested := frame[frame["test_wall_seconds"].notna()]).empty:
        # e.g. a signal check's table: meta-steps timed, test trainings not
        per_step = float(frame["wall_seconds"].mean())
        lines.append(
            f"cost: more than {_duration(total * per_step / n_workers)} {on}: {per_step:.0f} s "
            f"per meta-step (wall, the mean of the {len(frame)} entries recorded), plus a test "
            "training per entry that no held entry has timed"
        )
    else:
        per_entry = float((tested["wall_seconds"] + tested["test_wall_seconds"]).mean())
        lines.append(
            f"cost: {per_entry:.0f} s per entry (meta-step and test training, wall, the mean of "
            f"the {len(tested)} entries recorded): about "
            f"{_duration(total * per_entry / n_workers)} {on}"
        )
    return "\n".join(lines)


def _plan_covering(
    folder: Path, families: dict[str, int | None], seeds: Sequence[int], sample_seed: int
) -> str | None:
    """The recorded plan's command if a build of ``families`` at ``seeds`` is a phase of it.

    A phase trains part of the plan and not all of it: its seeds are among the plan's, and each
    of its families is in the plan with at most the plan's count (a sampled family's first N
    meta-rewards are the same for any larger N at the same ``sample_seed``; the ``evolution``
    children mutate the best keys held when they are drawn). A table built in
    phases (e.g. every sampled key at 2 seeds, then the third seed, then the evolution children)
    thus keeps the whole plan as its record, not the phase that ran last, and is marked
    complete only by the plan's own command.

    Returns:
        The plan's ``command``, or None (no recorded plan, the same plan, or not a part of it).
    """
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    build = json.loads(meta_path.read_text(encoding="utf-8")).get("build") or {}
    if not build.get("sample") or build.get("sample_seed", 0) != sample_seed:
        return None
    try:
        plan = parse_sample(build["sample"])
    except ValueError:  # a family this version does not know: not comparable
        return None

    planned_seeds = {int(s) for s in build.get("seeds", ())}
    within = {int(s) for s in seeds} <= planned_seeds and all(
        f in plan and _family_count(f, n) <= _family_count(f, plan[f]) for f, n in families.items()
    )
    same = {int(s) for s in seeds} == planned_seeds and {
        f: _family_count(f, n) for f, n in families.items()
    } == {f: _family_count(f, n) for f, n in plan.items()}
    return build.get("command") if within and not same else None


def _family_count(family: str, count: int | None) -> float:
    """Meta-rewards a family of ``--sample`` draws.

    Its count, or without one the whole family (``panel``, ``sweep``: ``inf``), 32 (``corpus``,
    ``random``) or 16 (``evolution``).
    """
    if count is not None:
        return count
    return {"corpus": 32, "random": 32, "evolution": 16}.get(family, float("inf"))


def _evolution_count(families: dict[str, int | None]) -> int:
    """Evolution children a ``--sample`` asks for (a bare ``evolution``: 16; none: 0)."""
    return int(_family_count("evolution", families["evolution"])) if "evolution" in families else 0


def _duration(seconds: float) -> str:
    """``"2 h 05 min"``, ``"7 min"`` or ``"40 s"`` (progress messages)."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds)} s"


def default_tables_dir() -> Path:
    """Where the shipped tables live (:data:`derl_bench.fidelity.table.TABLES_DIR`)."""
    return TABLES_DIR
