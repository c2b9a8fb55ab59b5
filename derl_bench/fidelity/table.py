"""Tables of recorded live meta-steps, one folder of Parquet shards per (env id, preset).

Layout of a table folder (``derl_bench/fidelity/tables/<env id>-<preset>/`` ships with the
package; ``derl-bench fidelity build --out`` writes elsewhere):

- ``meta.json``: env id, preset, the env kwargs it was built with, the key scheme
  (:class:`~derl_bench.fidelity.keys.KeyScheme`), the primitive set's name, the instruction,
  the probe bank's file name;
- ``entries-*.parquet``: append-only shards, one row per live meta-step (:data:`COLUMNS`);
- ``probe_bank.parquet``: real primitive vectors from the domain's own rollouts (the
  surrogate's features), one column per primitive.

The answer rule of the ``table`` fidelity (:meth:`FidelityTable.lookup`): the entry of the
effective key (:func:`~derl_bench.fidelity.keys.effective_key`) recorded with the env's seed if
there is one; else the recorded seed at position ``seed mod n`` of the key's sorted seeds
(deterministic, and every recorded seed is used as often as any other). The entry returned says
which seed it is (``info["table_seed"]``).

A loaded table's :attr:`FidelityTable.sha256` names the files its answers come from; result files
made at the ``table`` and ``surrogate`` fidelities record it (``fidelity_source``), so a number
can be traced to the table that gave it while a table grows shard by shard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.fidelity.keys import KeyScheme

__all__ = [
    "COLUMNS",
    "TABLES_DIR",
    "FidelityTable",
    "TableEntry",
    "TableKeyMissing",
    "TableMissing",
    "TestSuccessMissing",
    "build_command",
    "table_dir",
    "table_overview",
]

TABLES_DIR = Path(__file__).resolve().parent / "tables"
"""Where the tables that ship with the package live."""

COLUMNS: tuple[str, ...] = (
    "key",
    "canonical",
    "seed",
    "validation_success",
    "test_success",
    "n_test",
    "primitive_means",
    "validation_primitive_means",
    "training_curve",
    "n_nonfinite_rewards",
    "wall_seconds",
    "inner_steps",
    "rollouts",
    "tokens",
    "test_wall_seconds",
    "sample",
    "derl_bench_version",
    "git_hash",
    "lock_sha256",
    "created_at",
)
"""Columns of an entries shard. ``*_means`` and ``training_curve`` are JSON text; ``sample``
names the design family the meta-reward came from (``panel``, ``random``, ``evolution``,
``corpus``, ``sweep``); the last four are the entry's provenance."""


class TableMissing(FileNotFoundError):
    """No table exists for an (env id, preset); the message gives the command that builds it."""


class TestSuccessMissing(ValueError):
    """The table (or its surrogate) has no test success to answer ``evaluate_test`` with.

    Table fidelity: the key's entry at this seed was recorded without test success (a signal
    check's cell, or a ``--no-test`` build's entry). Surrogate fidelity: fewer than 3 of the
    table's keys have test success. The message names the command that trains them with test.
    """


class TableKeyMissing(KeyError):
    """The table holds no entry for a meta-reward's effective key.

    Attributes:
        canonical: The meta-reward's canonical form.
        key: Its effective key.
    """

    def __init__(self, canonical: str, key: str, message: str) -> None:
        self.canonical = canonical
        self.key = key
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


def table_dir(env_id: str, preset: str, root: str | Path | None = None) -> Path:
    """The folder of the ``(env_id, preset)`` table under ``root`` (default :data:`TABLES_DIR`)."""
    return Path(root or TABLES_DIR) / f"{env_id}-{preset}"


def build_command(
    env_id: str, preset: str, meta_reward: str | None = None, seeds: Iterable[int] = (0, 1)
) -> str:
    """The shell command that builds (or extends) a table, for error messages and docs.

    ``seeds``: those of the command (a table's own seeds when extending it). With
    ``meta_reward``: the command that adds that one meta-reward (``--sample ''``: no designed
    sample, so nothing else is trained and the table's build status is left as it is).
    """
    extra = f" --sample '' --meta-rewards \"{meta_reward}\"" if meta_reward else ""
    listed = ",".join(str(s) for s in seeds)
    return f"derl-bench fidelity build --env {env_id} --preset {preset} --seeds {listed}{extra}"


@dataclass(frozen=True, kw_only=True)
class TableEntry:
    """One recorded live meta-step."""

    key: str
    """Effective key of the meta-reward."""
    canonical: str
    """Canonical form of the meta-reward that was trained."""
    seed: int
    """Inner seed."""
    validation_success: float
    """Validation success in [0, 1]."""
    test_success: float | None
    """Test success in [0, 1] of a fresh policy trained on D_in ∪ V (None if not measured)."""
    n_test: int | None
    """Test tasks scored."""
    primitive_means: dict[str, float]
    """Mean of each primitive over the training rollouts."""
    validation_primitive_means: dict[str, float]
    """Mean of each primitive over the validation rollouts."""
    training_curve: list[dict[str, float]]
    """Per inner step statistics, as ``info["training_curve"]``."""
    n_nonfinite_rewards: int
    """Rewards that were non-finite (set to 0)."""
    cost: dict[str, float]
    """The live cost: ``wall_seconds``, ``inner_steps``, ``rollouts``, ``tokens``."""
    test_wall_seconds: float | None
    """Wall seconds of the test training and evaluation."""


def _entry(row: Mapping[str, Any]) -> TableEntry:
    test = row.get("test_success")
    n_test = row.get("n_test")
    test_wall = row.get("test_wall_seconds")
    return TableEntry(
        key=str(row["key"]),
        canonical=str(row["canonical"]),
        seed=int(row["seed"]),
        validation_success=float(row["validation_success"]),
        test_success=None if test is None or np.isnan(test) else float(test),
        n_test=None if n_test is None or np.isnan(n_test) else int(n_test),
        primitive_means=json.loads(row["primitive_means"]),
        validation_primitive_means=json.loads(row["validation_primitive_means"]),
        training_curve=json.loads(row["training_curve"]),
        n_nonfinite_rewards=int(row["n_nonfinite_rewards"]),
        cost={
            "wall_seconds": float(row["wall_seconds"]),
            "inner_steps": int(row["inner_steps"]),
            "rollouts": int(row["rollouts"]),
            "tokens": int(row["tokens"]),
        },
        test_wall_seconds=None if test_wall is None or np.isnan(test_wall) else float(test_wall),
    )


class FidelityTable:
    """A loaded table: entries by effective key and seed, the key scheme, the probe bank.

    Args:
        folder: A table folder (see the module docstring).

    Raises:
        TableMissing: If ``folder`` has no ``meta.json``.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise TableMissing(f"no table at {self.folder} (no meta.json)")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        self.env_id: str = self.meta["env_id"]
        self.preset: str = self.meta["preset"]
        self.scheme = KeyScheme.from_dict(self.meta["key_scheme"])
        shards = sorted(self.folder.glob("entries-*.parquet"))
        self.sha256: str = _files_sha256([meta_path, self.folder / self._bank_name(), *shards])
        """SHA-256 (64 hex characters) of the files the answers come from: ``meta.json`` (the
        key scheme, the surrogate's recorded model and features), the probe bank and every
        entries shard, each as its name and the SHA-256 of its bytes, in that order. Equal
        digests give equal table and surrogate answers; a new shard or a re-chosen surrogate
        changes it. A missing probe bank counts as empty."""
        self.frame = self._read_shards(shards)
        self._by_key: dict[str, dict[int, TableEntry]] = {}
        for row in self.frame.to_dict(orient="records"):
            entry = _entry(row)
            # Shards are append-only; a later shard's entry for the same (key, seed) wins.
            self._by_key.setdefault(entry.key, {})[entry.seed] = entry

    @classmethod
    def load(cls, env_id: str, preset: str, root: str | Path | None = None) -> FidelityTable:
        """Load the table of ``(env_id, preset)`` from ``root`` (default: the shipped tables).

        Raises:
            TableMissing: If there is none; the message names the folder looked in and the
                command that builds it.
        """
        folder = table_dir(env_id, preset, root)
        try:
            return cls(folder)
        except TableMissing:
            raise TableMissing(
                f"No table for {env_id} at preset {preset!r} (looked in {folder}). Build one "
                f"with: {build_command(env_id, preset)} [--out DIR], or use fidelity='live'."
            ) from None

    def _bank_name(self) -> str:
        return str(self.meta.get("probe_bank", "probe_bank.parquet"))

    def _read_shards(self, shards: list[Path]) -> Any:
        import pandas as pd

        if not shards:
            return pd.DataFrame(columns=list(COLUMNS))
        return pd.concat([pd.read_parquet(p) for p in shards], ignore_index=True)

    # -- queries ---------------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """Every effective key held, sorted."""
        return sorted(self._by_key)

    @property
    def surrogate_heldout(self) -> dict[str, Any] | None:
        """The recorded surrogate's published held-out error, or None if unpublished.

        ``{"spearman_rho": float, "keys": int, "report": str}`` from ``meta.json``, written with
        the choice (``surrogate_model``) by ``derl-bench fidelity report``; None when either is
        missing (the report was not run on this table, or the choice was made by hand).
        """
        heldout = self.meta.get("surrogate_heldout")
        if "surrogate_model" not in self.meta or not isinstance(heldout, dict):
            return None
        return heldout if heldout.get("spearman_rho") is not None else None

    def seeds(self, key: str) -> list[int]:
        """Recorded seeds of ``key``, sorted (empty if the key is not held)."""
        return sorted(self._by_key.get(key, {}))

    def entries(self, key: str) -> list[TableEntry]:
        """Every entry of ``key``, by seed."""
        held = self._by_key.get(key, {})
        return [held[s] for s in sorted(held)]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())

    def lookup(self, key: str, seed: int, *, canonical: str = "") -> TableEntry:
        """The answer for ``key`` at ``seed`` (the rule in the module docstring).

        Raises:
            TableKeyMissing: If the key is not held; the message names the meta-reward, the key
                and the command that adds it.
        """
        held = self._by_key.get(key)
        if not held:
            seeds = sorted({s for by_seed in self._by_key.values() for s in by_seed}) or (0, 1)
            add = build_command(self.env_id, self.preset, canonical, seeds)
            raise TableKeyMissing(
                canonical,
                key,
                f"The {self.env_id} table (preset {self.preset!r}, {len(self._by_key)} keys, "
                f"{self.folder}) holds no entry for {canonical or 'this meta-reward'} (effective "
                f"key {key}). Add it with: {add} "
                f"--out {self.folder.parent}; or use fidelity='surrogate' (predicts) or 'live'.",
            )
        if seed in held:
            return held[seed]
        ordered = sorted(held)
        return held[ordered[seed % len(ordered)]]

    def done(self) -> set[tuple[str, int]]:
        """Every recorded (key, seed) pair (what a resumed build skips)."""
        return {(k, s) for k, v in self._by_key.items() for s in v}

    def probe_bank(self) -> np.ndarray:
        """The recorded probe bank: float64, shape (n_rows, K).

        Raises:
            FileNotFoundError: If the table has none.
        """
        import pandas as pd

        path = self.folder / self._bank_name()
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.folder} has no probe bank ({path.name}); rebuild the table with "
                f"{build_command(self.env_id, self.preset)}"
            )
        frame = pd.read_parquet(path)
        return frame[list(self.scheme.primitive_names)].to_numpy(dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """Per key: mean and sample std of validation and test success over seeds, mean cost.

        Returns:
            ``{key: {"canonical", "n_seeds", "validation_mean", "validation_std", "test_mean",
            "test_std", "wall_seconds"}}``.
        """
        out: dict[str, Any] = {}
        for key in self.keys:
            entries = self.entries(key)
            val = np.array([e.validation_success for e in entries])
            tests = np.array([e.test_success for e in entries if e.test_success is not None])
            out[key] = {
                "canonical": entries[0].canonical,
                "n_seeds": len(entries),
                "validation_mean": float(val.mean()),
                "validation_std": float(val.std(ddof=1)) if len(val) > 1 else 0.0,
                "test_mean": float(tests.mean()) if len(tests) else None,
                "test_std": float(tests.std(ddof=1)) if len(tests) > 1 else 0.0,
                "wall_seconds": float(np.mean([e.cost["wall_seconds"] for e in entries])),
            }
        return out


def table_overview(root: str | Path | None = None) -> list[dict[str, Any]]:
    """One summary per table folder under ``root`` (default: the shipped tables), by name.

    Returns:
        Dicts with ``env_id``, ``preset``, ``keys``, ``entries``, ``seeds`` (sorted, every
        recorded seed), ``with_test`` (entries with test success), ``surrogate`` (``"model on
        features"`` recorded by ``derl-bench fidelity report``, or None), ``heldout_rho`` (its
        published held-out Spearman rho, from :attr:`FidelityTable.surrogate_heldout`, or
        None), ``build`` (``"complete"``, ``"building"`` while the last designed-sample build
        has not finished, or None when the table does not say) and ``sha256``
        (:attr:`FidelityTable.sha256`). Folders without ``meta.json`` are skipped.
    """
    out = []
    base = Path(root or TABLES_DIR)
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        if not (folder / "meta.json").is_file():
            continue
        table = FidelityTable(folder)
        entries = [e for k in table.keys for e in table.entries(k)]
        meta = table.meta
        heldout = table.surrogate_heldout or {}
        build = meta.get("build") or {}
        out.append(
            {
                "env_id": table.env_id,
                "preset": table.preset,
                "keys": len(table.keys),
                "entries": len(entries),
                "seeds": sorted({e.seed for e in entries}),
                "with_test": sum(e.test_success is not None for e in entries),
                "surrogate": (
                    f"{meta['surrogate_model']} on {meta.get('surrogate_features', 'bank')}"
                    if meta.get("surrogate_model")
                    else None
                ),
                "heldout_rho": heldout.get("spearman_rho"),
                "build": (
                    None
                    if "complete" not in build
                    else ("complete" if build["complete"] else "building")
                ),
                "sha256": table.sha256,
            }
        )
    return out


def _files_sha256(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        content = path.read_bytes() if path.is_file() else b""
        digest.update(f"{path.name}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()


def write_shard(folder: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path | None:
    """Append a shard of entries (an atomic write of a new ``entries-NNNNN.parquet``).

    Args:
        folder: The table folder (created if missing).
        rows: Entries with every column of :data:`COLUMNS`.

    Returns:
        The shard's path, or None if ``rows`` is empty.
    """
    import pandas as pd

    rows = list(rows)
    if not rows:
        return None
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.stem.split("-")[1]) for p in target.glob("entries-*.parquet")]
    path = target / f"entries-{(max(numbers) + 1 if numbers else 0):05d}.parquet"
    frame = pd.DataFrame([{c: row[c] for c in COLUMNS} for row in rows], columns=list(COLUMNS))
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path
