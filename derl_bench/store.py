# Over 450 lines: one SQLite store class (schema, locking, resume checks), read as a whole.
"""The SQLite store of one run: every finished meta-step, committed at once, so runs resume.

:func:`derl_bench.runner.run` keeps one store per run beside its result file, at
``<out>/<env_id>/<agent>/seed<S>.sqlite``. The store holds the run's configuration (one row),
one row per finished meta-step (index, meta-reward, reward, info as JSON, terminated,
truncated, created_at), the test result once it is known, the final result record once the run
finished, and one row per resume. SQLite runs in WAL mode with ``synchronous=FULL``; each
meta-step is its own transaction and is committed before the runner starts the next one, so a
run killed at any point (``SIGKILL`` included) loses at most the meta-step that was training.

A store belongs to one configuration (:class:`RunConfig`): reopening it with a different one
raises :class:`StoreMismatchError` naming the first differing field. While a process has a store
open it holds an exclusive ``flock`` on ``<store>.lock`` (POSIX only), so two processes never
run the same run at once.

Tables (``STORE_VERSION`` 1)::

    run(id = 1, store_version, config JSON, started_at, status, error, test JSON,
        result JSON, updated_at)          -- status: running | failed | finished
    meta_step(idx PRIMARY KEY, meta_reward, reward, terminated, truncated, info JSON, created_at)
    resume(at, meta_steps_done)
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from derl_bench.results import upgrade_result, utc_now

__all__ = [
    "STORE_VERSION",
    "RunConfig",
    "RunStore",
    "StoreError",
    "StoreLockedError",
    "StoreMismatchError",
    "TableChangedError",
    "StoredStep",
    "StoredTest",
    "discard_store",
    "read_store_steps",
]

STORE_VERSION = 1
"""Layout version of the SQLite store; a store of another version is refused."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    store_version INTEGER NOT NULL,
    config TEXT NOT NULL,
    started_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'failed', 'finished')),
    error TEXT,
    test TEXT,
    result TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta_step (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0),
    meta_reward TEXT NOT NULL,
    reward REAL NOT NULL,
    terminated INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    info TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resume (
    at TEXT NOT NULL,
    meta_steps_done INTEGER NOT NULL
);
"""


class StoreError(RuntimeError):
    """A run store cannot be used (corrupt, another version, inconsistent)."""


class StoreMismatchError(ValueError):
    """The store holds a run with another configuration than the one requested."""

    def __init__(self, path: Path, field: str, stored: Any, requested: Any) -> None:
        self.path = path
        self.field = field
        self.stored = stored
        self.requested = requested
        self.message = (
            f"The run store {path} holds a run with {field}={_show(stored)}, but this command "
            f"asks for {field}={_show(requested)}. A run resumes only with the same command. "
            f"To start a new run, pass --out with another folder, or delete {path} "
            "(or pass --no-resume to discard it)."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class TableChangedError(StoreMismatchError):
    """A table / surrogate run would resume on another version of its table."""

    def __init__(self, path: Path, stored: str, current: str) -> None:
        super().__init__(path, "fidelity_source.sha256", stored, current)
        self.message = (
            f"The run store {path} holds meta-steps answered by a table with SHA-256 "
            f"{stored[:12]}...; this derl_bench's table is {current[:12]}... (it changed since: "
            "shipped tables grow shard by shard while they are built). Resuming would mix the "
            "answers of two tables in one run. Pass --no-resume to run it afresh on this table, "
            f"or --out with another folder to keep {path}."
        )

    def __str__(self) -> str:
        return self.message


class StoreLockedError(StoreError):
    """Another process has the store open (it is running the same run)."""


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _json(value: Any) -> Any:
    """Normalise to plain JSON types (tuples become lists; unknown objects their repr)."""
    return json.loads(json.dumps(value, default=repr))


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that identifies a run; a store resumes only under an equal config."""

    env_id: str
    """Gymnasium id, e.g. ``"DERL-GSM8K-v0"``."""
    env_kwargs: dict[str, Any]
    """The user's extra ``gymnasium.make`` keyword arguments (JSON-able)."""
    preset: str
    """Inner-training preset, e.g. ``"smoke"``."""
    budget: int
    """Outer budget, in meta-steps."""
    proposals_per_step: int
    """Meta-rewards proposed per agent call."""
    agent: str
    """Agent registry name."""
    agent_config: dict[str, Any]
    """The user's agent configuration (JSON-able)."""
    seed: int
    """The run's seed."""

    def to_json(self) -> dict[str, Any]:
        """Return the config as plain JSON types (tuples as lists), as stored.

        Returns:
            A dict with one key per field.
        """
        return _json(asdict(self))

    def first_difference(self, stored: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
        """Compare with a stored config, field by field in declaration order.

        Args:
            stored: A config as returned by :meth:`to_json` (possibly from an older store).

        Returns:
            ``(field, stored value, requested value)`` for the first field that differs, or
            None if all are equal.
        """
        mine = self.to_json()
        if "group_size" in stored and "proposals_per_step" not in stored:  # before schema 2
            stored = {**stored, "proposals_per_step": stored["group_size"]}
        for item in fields(self):
            if stored.get(item.name) != mine[item.name]:
                return item.name, stored.get(item.name), mine[item.name]
        return None


@dataclass(frozen=True, kw_only=True)
class StoredStep:
    """One finished meta-step as stored."""

    index: int
    """0-based position in the run."""
    meta_reward: str
    """The text the agent proposed (exactly as given to ``env.step``)."""
    reward: float
    """The env's reward (validation_success, or the invalid-action penalty)."""
    terminated: bool
    """``terminated`` returned by ``env.step``."""
    truncated: bool
    """``truncated`` returned by ``env.step``."""
    info: dict[str, Any]
    """The step's ``info`` after a JSON round trip (NaN stays NaN)."""
    created_at: str
    """When the meta-step was committed, ISO 8601 UTC."""


@dataclass(frozen=True, kw_only=True)
class StoredTest:
    """The test result of a run, stored once ``evaluate_test`` returned."""

    meta_reward: str
    """The meta-reward that was tested (the best by validation)."""
    result: dict[str, Any]
    """What ``env.unwrapped.evaluate_test`` returned (test_success, n_test, cost, ...)."""


def _lock(path: Path) -> Any | None:
    """Take an exclusive, non-blocking flock on ``<path>.lock``; return its file (or None)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no locking
        return None
    lock_path = path.with_name(path.name + ".lock")
    handle = open(lock_path, "a+b")  # noqa: SIM115 - held until the store closes
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreLockedError(
            f"The run store {path} is in use by another process (lock {lock_path} is held); "
            "wait for that run to finish or stop it first."
        ) from None
    return handle


def _unlock(handle: Any | None) -> None:
    if handle is not None:
        handle.close()  # closing the file releases the flock


def _sidecars(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))]


def discard_store(path: str | os.PathLike[str]) -> None:
    """Delete a run store (the database and its WAL files); the lock file stays.

    Args:
        path: The ``.sqlite`` file; a missing one is fine.

    Raises:
        StoreLockedError: If another process has the store open.
    """
    target = Path(path)
    if not target.exists():
        return
    handle = _lock(target)
    try:
        for file in _sidecars(target):
            file.unlink(missing_ok=True)
    finally:
        _unlock(handle)


def _parse_time(text: str) -> _dt.datetime:
    return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _step_from_row(row: tuple[Any, ...]) -> StoredStep:
    index, meta_reward, reward, terminated, truncated, info, created_at = row
    return StoredStep(
        index=int(index),
        meta_reward=str(meta_reward),
        reward=float(reward),
        terminated=bool(terminated),
        truncated=bool(truncated),
        info=json.loads(info),
        created_at=str(created_at),
    )


_STEP_COLUMNS = "idx, meta_reward, reward, terminated, truncated, info, created_at"


def read_store_steps(path: str | os.PathLike[str]) -> list[StoredStep]:
    """Read the finished meta-steps of a store without taking its lock (for monitoring).

    Safe while a runner writes to the store (WAL readers see the last commit).

    Args:
        path: A ``.sqlite`` run store.

    Returns:
        The stored meta-steps in index order (empty if the store has no tables yet).

    Raises:
        FileNotFoundError: If the store does not exist.
    """
    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"no run store at {target}")
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=30.0)
    try:
        rows = conn.execute(f"SELECT {_STEP_COLUMNS} FROM meta_step ORDER BY idx").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [_step_from_row(row) for row in rows]


class RunStore:
    """An open run store: read the finished meta-steps, append new ones (each committed at once).

    Open it with :meth:`open`; close it with :meth:`close` (or use it as a context manager).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, lock: Any | None, *, existed: bool):
        self.path = path
        """The ``.sqlite`` file."""
        self.existed = existed
        """Whether the store existed before :meth:`open` (the run is being resumed)."""
        self._conn = conn
        self._lock = lock
        self._steps = [
            _step_from_row(row)
            for row in conn.execute(f"SELECT {_STEP_COLUMNS} FROM meta_step ORDER BY idx")
        ]
        for position, step in enumerate(self._steps):
            if step.index != position:
                raise StoreError(
                    f"The run store {path} is inconsistent: meta-step {position} is missing but "
                    f"{step.index} is stored; delete it to start over."
                )

    @classmethod
    def open(cls, path: str | os.PathLike[str], config: RunConfig) -> RunStore:
        """Open the store at ``path`` for ``config``, creating it if it does not exist.

        Args:
            path: The ``.sqlite`` file; parent folders are created.
            config: The run's configuration; an existing store must hold an equal one.

        Returns:
            The open store (holding the lock until :meth:`close`).

        Raises:
            StoreMismatchError: If the store holds another configuration (names the field).
            StoreLockedError: If another process has the store open.
            StoreError: If the file is not a run store of this version.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = _lock(target)
        conn: sqlite3.Connection | None = None
        try:
            existed = target.exists() and target.stat().st_size > 0
            conn = _connect(target)
            with conn:
                conn.executescript(_SCHEMA)
            row = conn.execute("SELECT store_version, config FROM run WHERE id = 1").fetchone()
            if row is None:
                now = utc_now()
                with conn:
                    conn.execute(
                        "INSERT INTO run (id, store_version, config, started_at, status, "
                        "updated_at) VALUES (1, ?, ?, ?, 'running', ?)",
                        (STORE_VERSION, json.dumps(config.to_json()), now, now),
                    )
            else:
                version, stored_config = row
                if version != STORE_VERSION:
                    raise StoreError(
                        f"The run store {target} has layout version {version}; this derl_bench "
                        f"reads version {STORE_VERSION}. Delete it (or pass --no-resume) to "
                        "start over."
                    )
                difference = config.first_difference(json.loads(stored_config))
                if difference is not None:
                    raise StoreMismatchError(target, *difference)
            return cls(target, conn, lock, existed=existed)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            _unlock(lock)
            raise StoreError(
                f"{target} is not a readable run store ({exc}); delete it to start over."
            ) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            _unlock(lock)
            raise

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (checkpointing the WAL) and release the lock."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]
        _unlock(self._lock)
        self._lock = None

    # -- reading --------------------------------------------------------------------------------

    @property
    def steps(self) -> list[StoredStep]:
        """The finished meta-steps, in index order (0, 1, ...); a new list."""
        return list(self._steps)

    def _run_column(self, column: str) -> Any:
        row = self._conn.execute(f"SELECT {column} FROM run WHERE id = 1").fetchone()
        return row[0]

    @property
    def started_at(self) -> str:
        """When the run first started, ISO 8601 UTC."""
        return str(self._run_column("started_at"))

    @property
    def status(self) -> Literal["running", "failed", "finished"]:
        """``running`` (or killed), ``failed`` (an exception stopped it) or ``finished``."""
        return self._run_column("status")

    @property
    def test(self) -> StoredTest | None:
        """The stored test result, or None before ``evaluate_test`` returned."""
        raw = self._run_column("test")
        if raw is None:
            return None
        obj = json.loads(raw)
        return StoredTest(meta_reward=obj["meta_reward"], result=obj["result"])

    @property
    def result(self) -> dict[str, Any] | None:
        """The final result record of a finished run (in the current schema version), or None."""
        raw = self._run_column("result")
        return None if raw is None else upgrade_result(json.loads(raw))

    @property
    def resumes(self) -> list[dict[str, Any]]:
        """Every resume so far: ``{"at": ISO 8601 UTC, "meta_steps_done": int}``, in order."""
        rows = self._conn.execute("SELECT at, meta_steps_done FROM resume ORDER BY rowid")
        return [{"at": at, "meta_steps_done": int(done)} for at, done in rows]

    def active_seconds(self, until: str) -> float:
        """Wall seconds the run was working, summed over its sessions (first start and resumes).

        A session lasts from its start (``started_at`` or a resume's ``at``) to its last stored
        meta-step; the newest session lasts to ``until``. Work an interruption lost (a meta-step
        under way when the process died) is not counted; the replay after a resume is.

        Args:
            until: ISO 8601 UTC end of the current session, e.g. :func:`utc_now`.

        Returns:
            Seconds, >= 0 (float).
        """
        starts = [self.started_at] + [r["at"] for r in self.resumes]
        total = 0.0
        for i, start in enumerate(starts):
            if i + 1 < len(starts):
                inside = [
                    s.created_at for s in self._steps if start <= s.created_at < starts[i + 1]
                ]
                end = max(inside) if inside else start
            else:
                end = until
            total += max(0.0, (_parse_time(end) - _parse_time(start)).total_seconds())
        return total

    # -- writing (each call is one committed transaction) ---------------------------------------

    def add_step(
        self,
        meta_reward: str,
        reward: float,
        info: Mapping[str, Any],
        *,
        terminated: bool,
        truncated: bool,
    ) -> StoredStep:
        """Append the next finished meta-step and commit it before returning.

        Args:
            meta_reward: The proposed text.
            reward: The env's reward (finite, or the invalid-action penalty).
            info: The step's info; stored as JSON (objects JSON cannot hold as their repr).
            terminated: As returned by ``env.step``.
            truncated: As returned by ``env.step``.

        Returns:
            The stored meta-step (its ``info`` is the JSON round trip of ``info``); its index
            is the number of meta-steps stored before.

        Raises:
            ValueError: If ``reward`` is not finite.
        """
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(f"meta-step reward must be finite, got {reward!r}")
        text = json.dumps(dict(info), default=repr)
        step = StoredStep(
            index=len(self._steps),
            meta_reward=meta_reward,
            reward=reward,
            terminated=bool(terminated),
            truncated=bool(truncated),
            info=json.loads(text),
            created_at=utc_now(),
        )
        with self._conn:
            self._conn.execute(
                f"INSERT INTO meta_step ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    step.index,
                    step.meta_reward,
                    step.reward,
                    int(step.terminated),
                    int(step.truncated),
                    text,
                    step.created_at,
                ),
            )
            self._touch()
        self._steps.append(step)
        return step

    def _touch(self, **columns: Any) -> None:
        sets = "".join(f", {name} = ?" for name in columns)
        self._conn.execute(
            f"UPDATE run SET updated_at = ?{sets} WHERE id = 1", (utc_now(), *columns.values())
        )

    def note_resume(self) -> None:
        """Record that the run was resumed now, with the number of meta-steps already done."""
        with self._conn:
            self._conn.execute(
                "INSERT INTO resume (at, meta_steps_done) VALUES (?, ?)",
                (utc_now(), len(self._steps)),
            )
            self._touch(status="running", error=None)

    def set_test(self, meta_reward: str, result: Mapping[str, Any]) -> None:
        """Store the test result (committed at once).

        Args:
            meta_reward: The tested meta-reward.
            result: What ``evaluate_test`` returned (JSON-able).
        """
        payload = json.dumps({"meta_reward": meta_reward, "result": _json(dict(result))})
        with self._conn:
            self._touch(test=payload)

    def mark_failed(self, error: str) -> None:
        """Record that an exception stopped the run.

        Args:
            error: ``"Type: message"`` of the exception.
        """
        with self._conn:
            self._touch(status="failed", error=error)

    def finish(self, record: Mapping[str, Any]) -> None:
        """Store the final result record and mark the run finished.

        Args:
            record: The schema-valid result record that was written.
        """
        with self._conn:
            self._touch(status="finished", error=None, result=json.dumps(dict(record)))
