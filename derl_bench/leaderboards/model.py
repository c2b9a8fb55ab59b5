"""Leaderboard submissions: the typed model, the JSON Schema check and bounded, safe loading.

A submission (``leaderboards/<env id>/<name>.json``) is one method's entry on one *track*: env
id and version, fidelity, preset and budget (DESIGN.md "Words": a number is only compared with
numbers made under the same rules). It carries the runner's per-seed result files, so every
number on the leaderboard is recomputed from them, never copied from the submitter's claims.

The schema is ``derl_bench/schemas/submission.schema.json`` (JSON Schema draft 2020-12); the
dataclasses below mirror it field for field, and the schema is the authority. Loading never
executes anything from the file: it is read with a size limit (:data:`MAX_SUBMISSION_BYTES`,
checked before parsing), parsed by :func:`json.loads` with duplicate keys refused, and every
non-finite number (``NaN``, ``Infinity``, ``1e999``) is reported by its field.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jsonschema

from derl_bench.results import ResultRecord

__all__ = [
    "BUDGETS_META_STEPS",
    "FIDELITIES",
    "MAX_SUBMISSION_BYTES",
    "MIN_SEEDS",
    "PRESETS",
    "ROLES",
    "SUBMISSION_VERSION",
    "Problem",
    "Reported",
    "Submission",
    "SubmissionLoadError",
    "Track",
    "read_submission_json",
    "schema_problems",
    "submission_schema",
]

SUBMISSION_VERSION = 1
"""Value of ``submission_version`` this code reads and writes."""

MAX_SUBMISSION_BYTES = 5 * 1024 * 1024
"""Largest submission file accepted, in bytes (5 MiB), checked before the file is parsed. A
160-meta-step track with 10 seeds takes about 2 MB."""

FIDELITIES: tuple[str, ...] = ("live", "table", "surrogate")
"""How a meta-step is answered (DESIGN.md "Fidelities")."""

PRESETS: tuple[str, ...] = ("smoke", "cpu", "paper")
"""Inner-training presets a track may use."""

BUDGETS_META_STEPS: tuple[int, ...] = (16, 64, 160)
"""Track budgets in meta-steps; 160 is DERL's 20 outer steps x 8 proposals (PAPER_FACTS.md)."""

MIN_SEEDS: dict[str, int] = {"live": 3, "table": 5, "surrogate": 5}
"""Fewest seeds (results) a submission needs, per fidelity: cheap fidelities ask for more."""

ROLES: tuple[str, ...] = ("entry", "outcome_only_baseline")
"""``entry``: a competing method; ``outcome_only_baseline``: the control (every meta-step g1)."""

_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "submission.schema.json"


@dataclass(frozen=True)
class Problem:
    """One reason a submission is not accepted: the field, what is wrong, and the fix."""

    field: str
    """Path of the offending field, e.g. ``"results[2].meta_steps[0].reward"``, or ``"<file>"``."""
    message: str
    """What is wrong, in one sentence (submission text quoted with ``repr``)."""
    fix: str
    """What to do about it."""

    def line(self) -> str:
        """Return the problem as one line: ``"<field>: <message>; fix: <fix>"``."""
        return f"{self.field}: {self.message}; fix: {self.fix}"


class SubmissionLoadError(ValueError):
    """A submission file could not be read as a JSON object (too large, not JSON, NaN, ...).

    Attributes:
        problems: One :class:`Problem` per reason.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.line() for p in problems))


@dataclass(frozen=True, kw_only=True)
class Track:
    """The rules a number was made under (DESIGN.md "Words": *track*)."""

    env_id: str
    """Registered Gymnasium id with its version, e.g. ``"DERL-CartPole-v0"``."""
    fidelity: Literal["live", "table", "surrogate"]
    """How each meta-step was answered."""
    preset: str
    """Inner-training preset: smoke, cpu or paper."""
    budget_meta_steps: int
    """Most meta-steps per run: 16, 64 or 160."""
    budget_simulated_seconds: float | None
    """Most simulated seconds per run (fidelities with a clock); None: no clock limit."""

    @property
    def key(self) -> tuple[str, str, str, int, float]:
        """Sort and grouping key: (env id, fidelity, preset, meta-steps, simulated seconds)."""
        seconds = self.budget_simulated_seconds
        seconds = math.inf if seconds is None else seconds
        return (self.env_id, self.fidelity, self.preset, self.budget_meta_steps, seconds)

    @property
    def title(self) -> str:
        """Human-readable name, e.g. ``"DERL-CartPole-v0 · live · smoke · 16 meta-steps"``."""
        title = f"{self.env_id} · {self.fidelity} · {self.preset} · "
        title += f"{self.budget_meta_steps} meta-steps"
        if self.budget_simulated_seconds is not None:
            title += f" · {self.budget_simulated_seconds:g} simulated s"
        return title

    @property
    def slug(self) -> str:
        """File-name-safe id, e.g. ``"DERL-CartPole-v0--live--smoke--16"`` (HTML anchors too)."""
        parts = [self.env_id, self.fidelity, self.preset, str(self.budget_meta_steps)]
        if self.budget_simulated_seconds is not None:
            parts.append(f"{self.budget_simulated_seconds:g}s")
        return "--".join("".join(c if c.isalnum() or c in "-_." else "_" for c in p) for p in parts)


@dataclass(frozen=True, kw_only=True)
class Reported:
    """The submitter's claimed numbers (each must equal the value recomputed from the results)."""

    n_seeds: int
    """Number of results."""
    test_success_mean: float
    """Mean over seeds of test_success, in [0, 1]."""
    best_validation_mean: float
    """Mean over seeds of the best validation success (0 for a run without a valid one)."""


@dataclass(frozen=True, kw_only=True)
class Submission:
    """A schema-valid submission (see ``schemas/submission.schema.json`` for every field)."""

    method: str
    """Method name as shown (plain text)."""
    authors: tuple[str, ...]
    """Who made the entry."""
    code_url: str
    """An https URL or a path inside the derl_bench repository."""
    role: Literal["entry", "outcome_only_baseline"]
    """A competing entry, or the outcome-only control."""
    agent_name: str
    """Registry name of the outer agent."""
    agent_config: Mapping[str, Any]
    """The agent's JSON configuration."""
    track: Track
    """The track."""
    reported: Reported
    """Claimed numbers."""
    results: tuple[ResultRecord, ...]
    """One result record per seed (result schema version 2)."""
    notes: str = ""
    """Optional remarks."""
    source: str = ""
    """Where it was read from (a path), for messages; not part of the file."""

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, source: str = "") -> Submission:
        """Build the model from a schema-valid submission object (see :func:`schema_problems`).

        Args:
            obj: The parsed submission; results already upgraded to the current result schema.
            source: Where it came from.

        Returns:
            The submission.

        Raises:
            KeyError: If a required field is missing (validate against the schema first).
        """
        track = obj["track"]
        reported = obj["reported"]
        return cls(
            method=obj["method"],
            authors=tuple(obj["authors"]),
            code_url=obj["code_url"],
            role=obj["role"],
            agent_name=obj["agent"]["name"],
            agent_config=dict(obj["agent"]["config"]),
            track=Track(
                env_id=track["env_id"],
                fidelity=track["fidelity"],
                preset=track["preset"],
                budget_meta_steps=int(track["budget_meta_steps"]),
                budget_simulated_seconds=(
                    None
                    if track["budget_simulated_seconds"] is None
                    else float(track["budget_simulated_seconds"])
                ),
            ),
            reported=Reported(
                n_seeds=int(reported["n_seeds"]),
                test_success_mean=float(reported["test_success_mean"]),
                best_validation_mean=float(reported["best_validation_mean"]),
            ),
            results=tuple(obj["results"]),
            notes=obj.get("notes", ""),
            source=source,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the submission as a JSON-able object (the file's content).

        Returns:
            A dict matching ``submission.schema.json``.
        """
        obj: dict[str, Any] = {
            "submission_version": SUBMISSION_VERSION,
            "method": self.method,
            "authors": list(self.authors),
            "code_url": self.code_url,
            "role": self.role,
            "agent": {"name": self.agent_name, "config": dict(self.agent_config)},
            "track": {
                "env_id": self.track.env_id,
                "fidelity": self.track.fidelity,
                "preset": self.track.preset,
                "budget_meta_steps": self.track.budget_meta_steps,
                "budget_simulated_seconds": self.track.budget_simulated_seconds,
            },
            "reported": {
                "n_seeds": self.reported.n_seeds,
                "test_success_mean": self.reported.test_success_mean,
                "best_validation_mean": self.reported.best_validation_mean,
            },
            "results": [dict(r) for r in self.results],
        }
        if self.notes:
            obj["notes"] = self.notes
        return obj


@functools.cache
def submission_schema() -> dict[str, Any]:
    """Return the submission JSON Schema (draft 2020-12), loaded once from the package.

    Returns:
        The schema as a dict. Do not mutate it.
    """
    return json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(submission_schema())


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _join(base: str, name: str) -> str:
    return name if base == "<top level>" else f"{base}.{name}"


_FIXES = {
    "type": "give a value of the type the schema names",
    "enum": "use one of the listed values",
    "const": "use the listed value",
    "minimum": "use a value within the range (budgets and counts are never negative)",
    "maximum": "use a value within the range",
    "exclusiveMinimum": "use a positive value",
    "minLength": "give a non-empty value",
    "maxLength": "shorten it",
    "minItems": "give at least one item",
    "maxItems": "give fewer items",
    "pattern": "use an https:// URL or a derl_bench/... path",
    "oneOf": "use null or a value of the named type",
}


def schema_problems(obj: Any, schema: Mapping[str, Any] | None = None) -> list[Problem]:
    """Check an object against the submission schema (or another schema).

    Args:
        obj: The parsed submission.
        schema: A schema to use instead (default: ``submission.schema.json``).

    Returns:
        One problem per violation, sorted by field; empty when the object matches.
    """
    validator = _validator() if schema is None else jsonschema.Draft202012Validator(schema)
    problems: list[Problem] = []
    for error in validator.iter_errors(obj):
        base = _path(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            for name in error.validator_value:
                if name not in error.instance:
                    problems.append(
                        Problem(_join(base, str(name)), "missing (required)", "add the field")
                    )
        elif error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = set(error.schema.get("properties", {}))
            for name in sorted(str(n) for n in error.instance if n not in known):
                problems.append(
                    Problem(
                        _join(base, repr(name)),
                        "unexpected field",
                        f"remove it (known: {', '.join(sorted(known))})",
                    )
                )
        else:
            message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
            problems.append(
                Problem(base, message, _FIXES.get(str(error.validator), "see the schema"))
            )
    return sorted(problems, key=lambda p: (p.field, p.message))


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r} in one JSON object")
        out[key] = value
    return out


def _non_finite(obj: Any, path: list[str | int], found: list[str]) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        found.append(_path(path) + f" = {obj!r}")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _non_finite(value, [*path, key], found)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            _non_finite(value, [*path, i], found)


def read_submission_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a submission file as a JSON object, safely.

    The size is checked before anything is parsed (and the read itself stops after
    :data:`MAX_SUBMISSION_BYTES` + 1 bytes); the text must be UTF-8 JSON with no duplicate keys;
    ``NaN``, ``Infinity`` and numbers too large for a float are refused with the field they are in.

    Args:
        path: The submission file.

    Returns:
        The parsed top-level object.

    Raises:
        SubmissionLoadError: If the file is too large, unreadable, not UTF-8, not JSON, not an
            object, or holds a non-finite number.
    """
    target = Path(path)
    try:
        size = target.stat().st_size
        if size > MAX_SUBMISSION_BYTES:
            raise _too_large(size)
        with open(target, "rb") as handle:
            raw = handle.read(MAX_SUBMISSION_BYTES + 1)
    except OSError as exc:
        raise SubmissionLoadError(
            [Problem("<file>", f"cannot be read ({exc.strerror or exc})", "check the path")]
        ) from None
    if len(raw) > MAX_SUBMISSION_BYTES:
        raise _too_large(len(raw))
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except UnicodeDecodeError:
        raise SubmissionLoadError(
            [Problem("<file>", "is not UTF-8 text", "save the file as UTF-8 JSON")]
        ) from None
    except RecursionError:
        raise SubmissionLoadError(
            [Problem("<file>", "nests too deeply", "write a flat submission object")]
        ) from None
    except ValueError as exc:  # json.JSONDecodeError, duplicate keys
        raise SubmissionLoadError(
            [Problem("<file>", f"is not valid JSON ({exc})", "write the file with json.dump")]
        ) from None
    if not isinstance(obj, dict):
        raise SubmissionLoadError(
            [
                Problem(
                    "<top level>",
                    f"is a JSON {type(obj).__name__}, not an object",
                    "make the submission one JSON object",
                )
            ]
        )
    found: list[str] = []
    _non_finite(obj, [], found)
    if found:
        raise SubmissionLoadError(
            [
                Problem(
                    where.split(" = ")[0],
                    f"is {where.split(' = ')[1]}, not a finite number (JSON has no NaN or inf)",
                    "report a finite value (a run that produced NaN is not a valid result)",
                )
                for where in found
            ]
        )
    return obj


def _too_large(size: int) -> SubmissionLoadError:
    return SubmissionLoadError(
        [
            Problem(
                "<file>",
                f"is {size:,} bytes, over the limit of {MAX_SUBMISSION_BYTES:,} bytes (not parsed)",
                "submit fewer or shorter result files (one per seed, as `derl-bench run` "
                "writes them)",
            )
        ]
    )
