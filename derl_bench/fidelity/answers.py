"""Answering meta-steps at the ``table`` and ``surrogate`` fidelities (used by MetaRewardEnv).

:class:`RecordedAnswers` loads a table (and fits the surrogate on first use) and turns a
meta-reward into the same ``info`` fields a live meta-step computes. Costs are *simulated*: the
recorded (table) or predicted (surrogate) live cost, with ``simulated_seconds`` the live wall
seconds and ``wall_seconds`` the (tiny) time the answer really took.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from derl_bench.fidelity.keys import KeyScheme
from derl_bench.fidelity.table import FidelityTable
from derl_bench.meta_reward import MetaReward

__all__ = ["IDENTITY_KWARGS", "FidelitySourceRecord", "RecordedAnswers", "env_id_for"]

IDENTITY_KWARGS = (
    "level",
    "inner",
    "inner_overrides",
    "include_gsm8k_train",
    "data_source",
)
"""Env keyword arguments that change the number a meta-step returns: a table answers only an
env made with the same values as the one it was built with."""


class FidelitySourceRecord(TypedDict):
    """What answered a ``table`` or ``surrogate`` meta-step (a result file's ``fidelity_source``).

    A shipped table grows shard by shard while it is built, and its surrogate refits on every
    key it holds, so the same meta-reward can get another answer from a later version of the
    package: these fields name the table that gave a run its numbers.
    """

    table: str
    """The table folder's name, ``<env id>-<preset>``."""
    keys: int
    """Effective keys the table holds."""
    entries: int
    """(key, seed) entries the table holds."""
    sha256: str
    """:attr:`derl_bench.fidelity.table.FidelityTable.sha256`: equal digests, equal answers."""
    surrogate_model: str | None
    """The surrogate's regressor family (None at the ``table`` fidelity)."""
    surrogate_features: str | None
    """The surrogate's feature set (None at the ``table`` fidelity)."""


def env_id_for(domain: str, level: str | None, version: int | None = None) -> str:
    """The registered id of ``(domain, level, version)`` (the table folder's prefix).

    Args:
        domain: Domain name, e.g. ``"alfworld"``.
        level: Split level (``"L0"``-``"L2"``) or None for domains without levels.
        version: The id's version kwarg (text domains: 1 for ``-v1``); None: an id registered
            without one (the ``-v0`` ids).

    Raises:
        ValueError: If no registered id has that domain, level and version.
    """
    from derl_bench._registration import ENV_SPECS

    for env_id, kwargs in ENV_SPECS:
        if (
            kwargs.get("domain") == domain
            and kwargs.get("level") == level
            and kwargs.get("version") == version
        ):
            return env_id
    raise ValueError(
        f"no registered id has domain={domain!r}, level={level!r}, version={version!r}"
    )


@functools.cache
def _load_table(folder: str) -> FidelityTable:
    return FidelityTable(folder)


@functools.cache
def _load_surrogate(folder: str, model: str | None) -> Any:
    from derl_bench.fidelity.surrogate import Surrogate

    return Surrogate(_load_table(folder), model=model)


def _identity(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in IDENTITY_KWARGS if kwargs.get(k) not in (None, {}, False)}


class RecordedAnswers:
    """Answers from a table (``fidelity="table"``) or its surrogate (``"surrogate"``).

    Args:
        env_id: The env id (table folder prefix).
        preset: The preset.
        fidelity: ``"table"`` or ``"surrogate"``.
        env_kwargs: The env's identity kwargs (:data:`IDENTITY_KWARGS`), checked against the
            table's.
        table_dir: Root of table folders; None: the tables shipped with the package.
        noisy: Surrogate only: draw validation success from the predicted seed spread
            (deterministic in seed and key) instead of answering the mean.

    Raises:
        derl_bench.fidelity.table.TableMissing: If no table exists (names the build command).
        ValueError: If the env's identity kwargs differ from the table's.

    Warns:
        UserWarning: At the surrogate fidelity, if the table has no ``fidelity report`` (no
            published held-out error, e.g. a user's own build before the report is run); at
            both, if the table's last build has not finished (``meta.json`` ``build.complete``
            is False, :func:`derl_bench.fidelity_build.record_build_status`).
    """

    def __init__(
        self,
        env_id: str,
        preset: str,
        fidelity: str,
        env_kwargs: Mapping[str, Any],
        *,
        table_dir: str | None = None,
        noisy: bool = False,
    ) -> None:
        from derl_bench.fidelity.table import table_dir as folder_of

        folder = folder_of(env_id, preset, table_dir)
        if not (folder / "meta.json").is_file():
            FidelityTable.load(env_id, preset, table_dir)  # raises TableMissing with the command
        self.table = _load_table(str(Path(folder).resolve()))
        built = _identity(self.table.meta.get("env_kwargs", {}))
        mine = _identity(env_kwargs)
        if built != mine:
            raise ValueError(
                f"The {env_id} table at {folder} was built with {built or 'no overrides'}; this "
                f"env has {mine or 'no overrides'}. A table answers only the configuration it "
                "recorded: use fidelity='live', or build a table for it with --inner/--out."
            )
        self.fidelity = fidelity
        self.noisy = noisy
        self.scheme: KeyScheme = self.table.scheme
        self._warned_warm_start = False
        build = self.table.meta.get("build")
        if isinstance(build, dict) and build.get("complete") is False:
            warnings.warn(
                f"The {env_id} {preset} table is still being built ({len(self.table.keys)} "
                f"meta-rewards, {len(self.table)} entries so far; `{build.get('command')}` "
                f"resumes it): the {fidelity} fidelity's answers will change as it grows. "
                "Result files record the table that answered (fidelity_source).",
                stacklevel=2,
            )
        if fidelity == "surrogate":
            self.surrogate = _load_surrogate(str(Path(folder).resolve()), None)
            if self.table.surrogate_heldout is None:
                warnings.warn(
                    f"The {env_id} {preset} surrogate has no published held-out error: "
                    f"`derl-bench fidelity report --env {env_id} --preset {preset}` has not been "
                    f"run on its table ({len(self.table.keys)} meta-rewards; the report needs "
                    "at least 10). Its predictions are unchecked; prefer fidelity='table' for the "
                    "meta-rewards the table holds.",
                    stacklevel=2,
                )

    # -- what the env shows ----------------------------------------------------------------------

    def source(self) -> FidelitySourceRecord:
        """The table (and surrogate) that answers (:class:`FidelitySourceRecord`)."""
        surrogate = self.surrogate if self.fidelity == "surrogate" else None
        return FidelitySourceRecord(
            table=self.table.folder.name,
            keys=len(self.table.keys),
            entries=len(self.table),
            sha256=self.table.sha256,
            surrogate_model=None if surrogate is None else str(surrogate.model),
            surrogate_features=None if surrogate is None else str(surrogate.feature_set),
        )

    @property
    def primitive_set_name(self) -> str:
        """Registry name of the table's primitive set."""
        return str(self.table.meta["primitive_set"])

    @property
    def instruction(self) -> str:
        """The instruction of the env the table was built from."""
        return str(self.table.meta["instruction"])

    def note_warm_start(self, checkpoint: str | None) -> None:
        """Warn once: tables hold cold-start meta-steps, so a warm start does not change answers."""
        if checkpoint is not None and not self._warned_warm_start:
            warnings.warn(
                f"fidelity={self.fidelity!r} answers from cold-start live meta-steps; the warm "
                "start is recorded but does not change the answer (use fidelity='live' for "
                "DERL-pop's warm starts)",
                RuntimeWarning,
                stacklevel=3,
            )
            self._warned_warm_start = True

    # -- answers ---------------------------------------------------------------------------------

    def meta_step(self, meta_reward: MetaReward, key: str, seed: int) -> dict[str, Any]:
        """The computed ``info`` fields of a meta-step (as a live training fills them).

        Raises:
            derl_bench.fidelity.table.TableKeyMissing: Table fidelity, key not held.
        """
        start = time.perf_counter()
        if self.fidelity == "table":
            entry = self.table.lookup(key, seed, canonical=meta_reward.canonical)
            computed = {
                "validation_success": entry.validation_success,
                "primitive_means": dict(entry.primitive_means),
                "validation_primitive_means": dict(entry.validation_primitive_means),
                "training_curve": list(entry.training_curve),
                "n_nonfinite_rewards": entry.n_nonfinite_rewards,
                "checkpoint_id": None,
                "answer": {
                    "source": "table",
                    "seed": entry.seed,
                    "canonical": entry.canonical,
                    "table_sha256": self.table.sha256,
                },
            }
            simulated = entry.cost["wall_seconds"]
            cost = dict(entry.cost)
        else:
            prediction = self.surrogate.predict(meta_reward, test=False)
            value = prediction.validation_mean
            if self.noisy:
                from derl_bench.fidelity.surrogate import noisy_draw

                value = noisy_draw(prediction, key, seed)
            neighbour = self.surrogate.neighbour_entry(prediction.neighbour)
            computed = {
                "validation_success": value,
                "primitive_means": dict(neighbour.primitive_means),
                "validation_primitive_means": dict(neighbour.validation_primitive_means),
                "training_curve": [],
                "n_nonfinite_rewards": 0,
                "checkpoint_id": None,
                "answer": {
                    "source": "surrogate",
                    "model": self.surrogate.model,
                    "validation_mean": prediction.validation_mean,
                    "validation_std": prediction.validation_std,
                    "noisy": self.noisy,
                    "neighbour": neighbour.canonical,
                    "table_sha256": self.table.sha256,
                },
            }
            simulated = prediction.wall_seconds
            cost = dict(neighbour.cost)
        cost["wall_seconds"] = time.perf_counter() - start
        cost["simulated_seconds"] = float(simulated)
        computed["cost"] = cost
        return computed

    def test(self, meta_reward: MetaReward, key: str, seed: int) -> dict[str, Any]:
        """``evaluate_test``'s answer: recorded (table) or predicted (surrogate) test success.

        The noisy surrogate answers a draw from the predicted test spread (deterministic in key
        and seed, independent of the validation draw), as it does for validation success.

        Raises:
            derl_bench.fidelity.table.TableKeyMissing: Table fidelity, key not held.
            derl_bench.fidelity.table.TestSuccessMissing: Table fidelity: the entry has no
                test success; surrogate: fewer than 3 of the table's keys have any.
        """
        start = time.perf_counter()
        if self.fidelity == "table":
            entry = self.table.lookup(key, seed, canonical=meta_reward.canonical)
            success, n_test, seconds = entry.test_success, entry.n_test, entry.test_wall_seconds
            base = entry
        else:
            prediction = self.surrogate.predict(meta_reward)
            base = self.surrogate.neighbour_entry(prediction.neighbour)
            if prediction.test_neighbour is not None:  # its test cost and size stand in
                base = next(
                    e
                    for e in self.table.entries(prediction.test_neighbour)
                    if e.test_success is not None
                )
            success, n_test = prediction.test_mean, base.n_test
            if self.noisy and success is not None:
                from derl_bench.fidelity.surrogate import noisy_draw

                success = noisy_draw(prediction, key, seed, target="test")
            seconds = base.test_wall_seconds
        if success is None:
            from derl_bench.fidelity.table import TestSuccessMissing, build_command

            env_id, preset = self.table.env_id, self.table.preset
            if self.fidelity == "table":
                what = (
                    f"{meta_reward.canonical!r} at seed {seed} without test success (a signal "
                    "check's cell or a --no-test build's entry)"
                )
                fix = build_command(env_id, preset, meta_reward.canonical, seeds=[seed])
            else:
                what = (
                    f"test success for {self.surrogate.test_keys} of its "
                    f"{len(self.surrogate.keys)} meta-rewards; its surrogate predicts test "
                    "success from 3 on"
                )
                fix = (self.table.meta.get("build") or {}).get("command") or (
                    f"{build_command(env_id, preset)} --sample panel"
                )
            raise TestSuccessMissing(
                f"The {env_id} {preset} table holds {what}. `{fix}` trains them with test "
                "success (a build without --no-test trains such entries again)."
            )
        return {
            "test_success": float(success),
            "n_test": int(n_test or 0),
            "cost": {
                "wall_seconds": time.perf_counter() - start,
                "inner_steps": int(base.cost["inner_steps"]),
                "rollouts": int(n_test or 0),
                "tokens": 0,
                "simulated_seconds": float(seconds or 0.0),
            },
            "primitive_means": dict(base.validation_primitive_means),
        }
