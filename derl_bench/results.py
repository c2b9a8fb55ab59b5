# Over 450 lines: records, IO, the record builder, git-hash and hardware helpers (see provenance).
"""Run result files: the record types, the JSON Schema check, atomic writing and loading.

One JSON file per run (one agent, one env, one seed), validated against
``derl_bench/schemas/result.schema.json`` (JSON Schema draft 2020-12). It carries what is needed
to trust and reproduce the number (STYLE.md "Results"): derl_bench version and git hash, the
``env.spec`` JSON, data hashes, agent name and config, seed, every meta-step's meta-reward,
validation_success and cost, the final test_success, and the hardware.

The record types below (:class:`ResultRecord` and the records it nests) mirror the schema field
for field; the schema is the authority.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from typing_extensions import NotRequired

    from derl_bench.fidelity.answers import FidelitySourceRecord
    from derl_bench.provenance import ProvenanceRecord

import jsonschema

__all__ = [
    "SCHEMA_VERSION",
    "AgentRecord",
    "answered_noisy",
    "BestRecord",
    "ClockRecord",
    "CostRecord",
    "HardwareRecord",
    "MetaStepRecord",
    "ResultRecord",
    "ResultSchemaError",
    "best_meta_step",
    "best_step",
    "ChainedTestRecord",
    "cost_record",
    "derl_bench_version",
    "distinct_effective",
    "finite_or_none",
    "git_hash",
    "hardware_info",
    "load_result",
    "meta_step_record",
    "result_record",
    "result_schema",
    "sum_costs",
    "upgrade_result",
    "utc_now",
    "validate_result",
    "write_result",
]

SCHEMA_VERSION = 2
"""Value of ``schema_version`` written by this code; bumped on any incompatible change.

Version history: 1 — first release; 2 — ``group_size`` renamed ``proposals_per_step`` (it counts
meta-rewards per agent call, not a GRPO group). :func:`upgrade_result` reads version 1."""

_SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "result.schema.json"


class CostRecord(TypedDict):
    """Cost of inner training and evaluation (further numeric keys may follow)."""

    wall_seconds: float
    """Wall-clock seconds, >= 0."""
    inner_steps: int
    """GRPO optimizer steps, >= 0."""
    rollouts: int
    """Sampled completions or trajectories, >= 0."""
    tokens: int
    """Generated tokens, >= 0."""


class MetaStepRecord(TypedDict):
    """One MetaRewardEnv step of a run."""

    index: int
    """0-based position in the run."""
    meta_reward: str
    """The text the agent proposed."""
    canonical: str | None
    """Canonical form of the meta-reward; None if invalid."""
    valid: bool
    """Whether the meta-reward parsed and validated."""
    invalid_reason: str | None
    """``InvalidMetaReward.reason`` code; None if valid."""
    validation_success: float | None
    """Fraction of the validation split solved, in [0, 1]; None if invalid."""
    reward: float
    """The env's reward (validation_success, or the invalid-action penalty)."""
    cost: CostRecord
    """Cost of this meta-step."""
    primitive_means: dict[str, float | None]
    """Mean of each primitive over the training rollouts; None where not finite."""
    cache_hit: bool
    """Whether the result came from the env's cache."""
    error: NotRequired[str]
    """Only on a meta-step whose training failed on a worker twice (``invalid_reason``
    ``"failed"``: killed process, crashed JVM, out of memory): what the worker reported. The
    meta-reward itself was valid; it was not scored (the run went on)."""
    effective_key: NotRequired[str | None]
    """The meta-reward's effective key (:func:`derl_bench.fidelity.keys.effective_key`);
    None if invalid; absent in files written before it existed."""


class ClockRecord(TypedDict):
    """The simulated clock of a run: live seconds charged, to compare agents at equal compute."""

    simulated_seconds: float
    """Sum of the meta-steps' ``cost.simulated_seconds`` (recorded or predicted live seconds at
    the table and surrogate fidelities; wall seconds live) plus ``agent_seconds``."""
    agent_seconds: float
    """Wall seconds the agent spent in ``propose`` and ``update`` (measured)."""
    budget_seconds: float | None
    """The run's ``--budget-seconds``, or None."""
    stopped_by_budget: bool
    """Whether the run stopped because ``simulated_seconds`` reached ``budget_seconds``."""
    update_seconds: NotRequired[float]
    """The part of ``agent_seconds`` spent in ``update`` (the outer learning step; for DERL one
    outer GRPO update per call). Absent in files written before it was recorded."""
    updates: NotRequired[int]
    """Number of ``update`` calls (rounds), replays after a resume included, as in
    ``update_seconds``."""
    wall_seconds: NotRequired[float]
    """Wall seconds the run was working, summed over its sessions
    (:meth:`derl_bench.store.RunStore.active_seconds`): a run resumed after an interruption
    does not count the gap."""


class BestRecord(TypedDict):
    """The best valid meta-step of a run by validation_success (ties: the earliest)."""

    meta_reward: str
    """The text as proposed."""
    canonical: str
    """Its canonical form."""
    validation_success: float
    """Its validation_success, in [0, 1]."""


class ChainedTestRecord(TypedDict):
    """Test success of DERL-pop's chained policy, scored without training.

    arXiv 2512.13399, DERL-pop: each round's trainings warm-start from the previous round's best
    checkpoint, and the paper reports that chained policy.
    """

    test_success: float | None
    """Fraction of the test split the best meta-step's checkpoint solves, in [0, 1]."""
    n_test: int
    """Number of test tasks."""
    cost: CostRecord
    """Cost of the evaluation (``inner_steps`` 0)."""


class AgentRecord(TypedDict):
    """The outer agent of a run."""

    name: str
    """Registry name, e.g. ``"heuristic"``."""
    config: dict[str, Any]
    """The JSON-able configuration the agent was built with."""


class HardwareRecord(TypedDict):
    """The machine a run used."""

    platform: str
    """``platform.platform()``."""
    python: str
    """``platform.python_version()``."""
    cpu_count: int | None
    """``os.cpu_count()``."""
    torch: str | None
    """Installed torch version, or None."""
    cuda: bool
    """``torch.cuda.is_available()`` (False without torch)."""


class ResultRecord(TypedDict):
    """A whole result file (see ``schemas/result.schema.json`` for each field's meaning)."""

    schema_version: int
    """Always :data:`SCHEMA_VERSION` for files written by this code."""
    derl_bench_version: str
    """Version of the derl-bench distribution."""
    git_hash: str | None
    """Commit of the checkout (``-dirty`` suffix if modified), or None outside a checkout."""
    env_id: str
    """Gymnasium id, e.g. ``"DERL-GSM8K-v0"``."""
    env_spec: dict[str, Any]
    """``env.spec.to_json()`` as an object."""
    preset: str
    """Inner-training preset."""
    data_hashes: dict[str, str]
    """SHA-256 of every data file read, keyed by relative path."""
    agent: AgentRecord
    """The outer agent."""
    seed: int
    """The run's seed."""
    budget: int
    """Outer budget in meta-steps, >= 1."""
    proposals_per_step: int
    """Meta-rewards proposed per agent call, >= 1 (schema version 1 called it ``group_size``)."""
    meta_steps: list[MetaStepRecord]
    """Every meta-step, in order."""
    best: BestRecord | None
    """The best valid meta-step, or None if none was valid."""
    test_success: float | None
    """Test-split success of the best meta-reward, in [0, 1]; None if not run."""
    n_test: int | None
    """Number of test tasks; None if not run."""
    test_cost: CostRecord | None
    """Cost of the test training and evaluation; None if not run."""
    chained_test: NotRequired[ChainedTestRecord]
    """DERL-pop only: the chained policy (the best meta-step's warm-started checkpoint) scored
    on test as it is, the paper's DERL-pop number; ``test_success`` is a fresh policy's."""
    total_cost: CostRecord
    """Sum of all meta-step costs and the test cost."""
    hardware: HardwareRecord
    """The machine."""
    fidelity: NotRequired[str]
    """How meta-steps were answered: ``live``, ``table`` or ``surrogate`` (absent in files
    written before fidelities existed: those are ``live``)."""
    fidelity_source: NotRequired[FidelitySourceRecord]
    """``table`` / ``surrogate`` runs: the table that answered (its folder, keys, entries, the
    SHA-256 of its files, the surrogate's model and features); absent live and in files written
    before it existed."""
    distinct_effective_meta_rewards: NotRequired[int]
    """Distinct effective keys among the valid meta-steps (meta-rewards that train differently)."""
    clock: NotRequired[ClockRecord]
    """The simulated clock; absent in files written before it existed."""
    provenance: NotRequired[ProvenanceRecord]
    """Lock file hash, shaping package versions, torch threads, CPU model
    (:mod:`derl_bench.provenance`); absent in files written before it existed."""
    started_at: str
    """ISO 8601 UTC start time."""
    finished_at: str
    """ISO 8601 UTC end time (finish or failure)."""
    status: Literal["finished", "failed"]
    """``"failed"`` if an exception stopped the run."""
    error: str | None
    """``"Type: message"`` of that exception; None if finished."""


class ResultSchemaError(ValueError):
    """A result object does not match the result schema.

    Attributes:
        field: Path of the first offending field, e.g. ``"meta_steps[0].validation_success"``
            (``"<top level>"`` for the object itself).
        problems: One line per violation found, ``"<field>: <what is wrong>"``.
    """

    def __init__(self, field: str, problems: list[str], source: str | None = None) -> None:
        self.field = field
        self.problems = problems
        where = f" ({source})" if source else ""
        listed = "; ".join(problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        super().__init__(
            f"Invalid result{where}: {listed}{more}. "
            "(Schema: derl_bench/schemas/result.schema.json.)"
        )


@functools.cache
def result_schema() -> dict[str, Any]:
    """Return the result JSON Schema (draft 2020-12), loaded once from the package.

    Returns:
        The schema as a dict. Do not mutate it.
    """
    return json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(result_schema())


def _field_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _describe(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """Return (field path, problem line) pairs for one schema error."""
    base = _field_path(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [str(n) for n in error.validator_value if n not in error.instance]
        return [(_join(base, n), f"{_join(base, n)}: missing (required)") for n in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = set(error.schema.get("properties", {}))
        extra = sorted(str(n) for n in error.instance if n not in known)
        return [(_join(base, n), f"{_join(base, n)}: unexpected field") for n in extra]
    return [(base, f"{base or '<top level>'}: {error.message}")]


def validate_result(obj: Any, *, source: str | None = None) -> None:
    """Check a result object against the result schema.

    Args:
        obj: The parsed result (a dict as from ``json.load``).
        source: Where the object came from (e.g. a file path), quoted in the error.

    Raises:
        ResultSchemaError: (a ``ValueError``) if it does not match; the message names the first
            offending field (by the schema's best match) and lists up to five violations.
    """
    errors = sorted(_validator().iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    first = _describe(jsonschema.exceptions.best_match(errors))
    problems = [line for _, line in first]
    for error in errors:
        problems += [line for _, line in _describe(error) if line not in problems]
    field = first[0][0] if first else ""
    raise ResultSchemaError(field or "<top level>", problems, source)


def upgrade_result(obj: Any) -> Any:
    """Return a result object in the current schema version (older versions are converted).

    Version 1 -> 2: ``group_size`` becomes ``proposals_per_step``; nothing else changed. Objects
    of the current (or an unknown) version, and non-dicts, are returned unchanged, so that
    :func:`validate_result` reports what is wrong with them.

    Args:
        obj: A parsed result (a dict as from ``json.load``).

    Returns:
        The upgraded copy, or ``obj`` itself if there was nothing to upgrade.
    """
    if not isinstance(obj, Mapping) or obj.get("schema_version") != 1:
        return obj
    upgraded = {}
    for key, value in obj.items():
        if key == "schema_version":
            value = 2
        upgraded["proposals_per_step" if key == "group_size" else key] = value
    return upgraded


def write_result(path: str | os.PathLike[str], obj: Mapping[str, Any]) -> Path:
    """Validate a result and write it as JSON, atomically.

    The JSON goes to a temporary file in the target folder, which then replaces ``path`` with
    ``os.replace``: readers see the old file or the new one, never half a file.

    Args:
        path: Target file; parent folders are created.
        obj: The result object.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ResultSchemaError: If ``obj`` does not match the schema (nothing is written).
        ValueError: If ``obj`` holds a non-finite float (JSON has no NaN or inf).
        OSError: If the file cannot be written.
    """
    target = Path(path)
    validate_result(obj, source=str(target))
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; result files are for sharing
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def load_result(path: str | os.PathLike[str], *, validate: bool = True) -> ResultRecord:
    """Read a result file; files of an older schema version are upgraded (:func:`upgrade_result`).

    Args:
        path: A result JSON file.
        validate: Check it against the schema (default True).

    Returns:
        The result record, in the current schema version.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not valid JSON (``json.JSONDecodeError``), or, with ``validate``,
            a :class:`ResultSchemaError` naming the offending field.
    """
    with open(path, encoding="utf-8") as handle:
        obj = upgrade_result(json.load(handle))
    if validate:
        validate_result(obj, source=str(path))
    return obj


_COST_KEYS = ("wall_seconds", "inner_steps", "rollouts", "tokens")


def finite_or_none(value: Any) -> float | None:
    """Return ``value`` as a float, or None if it is None, nan or infinite.

    Args:
        value: A number or None.

    Returns:
        The finite float, or None (JSON has no NaN).
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def cost_record(raw: Any, where: str) -> CostRecord:
    """Build a cost record from an env's ``cost`` dict.

    Args:
        raw: A mapping with at least ``wall_seconds``, ``inner_steps``, ``rollouts``, ``tokens``;
            further finite numeric keys are kept, others dropped.
        where: What ``raw`` is, for error messages (e.g. ``"info['cost'] of meta-step 3"``).

    Returns:
        The cost record.

    Raises:
        TypeError: If ``raw`` is not a mapping.
        KeyError: If a required key is missing.
    """
    if not isinstance(raw, Mapping):
        raise TypeError(f"{where} must be a dict with keys {_COST_KEYS}, got {raw!r}")
    missing = [key for key in _COST_KEYS if key not in raw]
    if missing:
        raise KeyError(f"{where} lacks {missing}; it has {sorted(raw)}")
    cost: dict[str, Any] = {
        "wall_seconds": float(raw["wall_seconds"]),
        "inner_steps": int(raw["inner_steps"]),
        "rollouts": int(raw["rollouts"]),
        "tokens": int(raw["tokens"]),
    }
    for key, value in raw.items():
        if key in cost or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            cost[str(key)] = value
    return cost  # type: ignore[return-value]


def sum_costs(costs: Sequence[CostRecord]) -> CostRecord:
    """Add up cost records key by key.

    Args:
        costs: Cost records (may be empty).

    Returns:
        Their sum; the four required keys are present even for no costs.
    """
    total: dict[str, Any] = {"wall_seconds": 0.0, "inner_steps": 0, "rollouts": 0, "tokens": 0}
    for cost in costs:
        for key, value in cost.items():
            total[key] = total.get(key, 0) + value
    return total  # type: ignore[return-value]


def _means(raw: Any) -> dict[str, float | None]:
    if raw is None:
        return {}
    return {str(name): finite_or_none(value) for name, value in dict(raw).items()}


def meta_step_record(
    index: int, meta_reward: str, reward: Any, info: Mapping[str, Any]
) -> MetaStepRecord:
    """Build the record of one meta-step from what ``MetaRewardEnv.step`` returned.

    Args:
        index: 0-based position in the run.
        meta_reward: The proposed text.
        reward: The env's reward.
        info: The step's info (``valid``, ``canonical``, ``invalid_reason``,
            ``validation_success``, ``cost``, ``primitive_means``, ``cache_hit``).

    Returns:
        The meta-step record (non-finite numbers become None).

    Raises:
        KeyError: If ``info`` lacks a required key.
        TypeError: If ``info["cost"]`` is not a mapping.
    """
    record = MetaStepRecord(
        index=index,
        meta_reward=meta_reward,
        canonical=info["canonical"],
        valid=bool(info["valid"]),
        invalid_reason=info["invalid_reason"],
        validation_success=finite_or_none(info["validation_success"]),
        reward=float(reward),
        cost=cost_record(info["cost"], f"info['cost'] of meta-step {index}"),
        primitive_means=_means(info.get("primitive_means")),
        cache_hit=bool(info["cache_hit"]),
        **({"effective_key": info["effective_key"]} if "effective_key" in info else {}),
    )
    if info["invalid_reason"] == "failed":
        record["error"] = str(info.get("invalid_message", "the meta-step failed on a worker"))
    return record


def best_step(steps: Sequence[MetaStepRecord]) -> MetaStepRecord | None:
    """The valid meta-step with the highest validation_success (ties: the earliest), or None.

    The one choice of "best" (:func:`best_meta_step` summarises it; the runner scores its
    checkpoint for DERL-pop's chained test).
    """
    best: MetaStepRecord | None = None
    for step in steps:
        score = step["validation_success"]
        if not step["valid"] or score is None or step["canonical"] is None:
            continue
        if best is None or score > best["validation_success"]:  # type: ignore[operator]
            best = step
    return best


def best_meta_step(steps: Sequence[MetaStepRecord]) -> BestRecord | None:
    """Pick the valid meta-step with the highest validation_success (ties: the earliest).

    Args:
        steps: Meta-step records in run order.

    Returns:
        The best one's meta-reward, canonical form and validation_success; None if no step
        was valid.
    """
    best = best_step(steps)
    if best is None:
        return None
    return BestRecord(
        meta_reward=best["meta_reward"],
        canonical=best["canonical"],  # type: ignore[typeddict-item]
        validation_success=best["validation_success"],  # type: ignore[typeddict-item]
    )


def result_record(
    *,
    env_id: str,
    env_spec: dict[str, Any],
    preset: str,
    agent: AgentRecord,
    seed: int,
    budget: int,
    proposals_per_step: int,
    meta_steps: list[MetaStepRecord],
    test: Mapping[str, Any] | None,
    started_at: str,
    status: Literal["finished", "failed"],
    error: str | None,
    torch_threads: int | None = None,
    fidelity: str = "live",
    clock: ClockRecord | None = None,
    fidelity_source: FidelitySourceRecord | None = None,
    data_hashes: Mapping[str, str] | None = None,
) -> ResultRecord:
    """Build a run's result record (what :func:`write_result` writes), stamped now.

    Args:
        env_id: Gymnasium id.
        env_spec: ``env.spec.to_json()`` as an object.
        preset: The inner preset the env used.
        agent: The agent's name and configuration.
        seed: The run's seed.
        budget: Outer budget in meta-steps.
        proposals_per_step: Meta-rewards proposed per agent call.
        meta_steps: Every meta-step so far, in order.
        test: What ``env.unwrapped.evaluate_test`` returned (``test_success``, ``n_test``,
            ``cost``), or None if the test did not run; DERL-pop runs add ``"chained"``, what
            ``evaluate_checkpoint_test`` returned for the best meta-step's checkpoint.
        started_at: ISO 8601 UTC start of the run.
        status: ``"finished"``, or ``"failed"`` if an exception stopped the run.
        error: ``"Type: message"`` of that exception; None if finished.
        torch_threads: The torch thread count the env pinned its inner trainings to
            (``MetaRewardEnv.torch_threads``), recorded in the provenance; None: this process's.
        fidelity: How the env answered meta-steps (``MetaRewardEnv.fidelity``).
        clock: The simulated clock (:class:`ClockRecord`), or None to leave it out.
        fidelity_source: What answered at the table / surrogate fidelity
            (``MetaRewardEnv.fidelity_source``), or None (live) to leave it out.
        data_hashes: The data files the env read (``MetaRewardEnv.data_hashes``:
            ``{path relative to the data root: sha256 hex}``); None for an env that does not
            say, then every file located in this process so far
            (:func:`derl_bench.envs.data.data_hashes`, which may include other envs' files).

    Returns:
        The record, with the best meta-step, the summed costs, versions, data hashes, the
        hardware and the provenance (:mod:`derl_bench.provenance`) filled in and
        ``finished_at`` set to now.
    """
    from derl_bench.envs.data import data_hashes as process_data_hashes
    from derl_bench.provenance import provenance

    test_cost = None if test is None else cost_record(test["cost"], "evaluate_test()['cost']")
    chained = None if test is None else test.get("chained")
    chained_record = (
        None
        if chained is None
        else ChainedTestRecord(
            test_success=finite_or_none(chained["test_success"]),
            n_test=int(chained["n_test"]),
            cost=cost_record(chained["cost"], "evaluate_checkpoint_test()['cost']"),
        )
    )
    costs = [step["cost"] for step in meta_steps] + ([test_cost] if test_cost else [])
    if chained_record is not None:
        costs.append(chained_record["cost"])
    return ResultRecord(
        schema_version=SCHEMA_VERSION,
        derl_bench_version=derl_bench_version(),
        git_hash=git_hash(),
        env_id=env_id,
        env_spec=env_spec,
        preset=preset,
        data_hashes=dict(
            sorted((process_data_hashes() if data_hashes is None else data_hashes).items())
        ),
        agent=agent,
        seed=seed,
        budget=budget,
        proposals_per_step=proposals_per_step,
        meta_steps=meta_steps,
        best=best_meta_step(meta_steps),
        test_success=None if test is None else finite_or_none(test["test_success"]),
        n_test=None if test is None else int(test["n_test"]),
        test_cost=test_cost,
        **({"chained_test": chained_record} if chained_record is not None else {}),
        total_cost=sum_costs(costs),
        hardware=hardware_info(),
        fidelity=fidelity,
        **({"fidelity_source": fidelity_source} if fidelity_source is not None else {}),
        distinct_effective_meta_rewards=distinct_effective(meta_steps),
        **({"clock": clock} if clock is not None else {}),
        provenance=provenance(torch_threads=torch_threads),
        started_at=started_at,
        finished_at=utc_now(),
        status=status,
        error=error,
    )


def distinct_effective(steps: Sequence[MetaStepRecord]) -> int:
    """Distinct effective meta-rewards among the valid steps (canonical form where no key)."""
    return len(
        {
            step.get("effective_key") or step["canonical"]
            for step in steps
            if step["valid"] and step["canonical"] is not None
        }
    )


def answered_noisy(record: Mapping[str, Any]) -> bool:
    """Whether a result's env answered from the noisy surrogate; False if not recorded.

    Read from ``env_spec.kwargs.noisy``, set by ``gymnasium.make(..., noisy=True)`` or the
    runner's ``--noisy``.
    """
    spec = record.get("env_spec")
    kwargs = spec.get("kwargs") if isinstance(spec, Mapping) else None
    return bool(isinstance(kwargs, Mapping) and kwargs.get("noisy"))


def utc_now() -> str:
    """Return the current time as ISO 8601 UTC with a ``Z`` suffix.

    Returns:
        The timestamp at millisecond resolution, e.g. ``"2026-01-02T03:04:05.678Z"``.
    """
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def derl_bench_version() -> str:
    """Return the installed derl-bench version (``"unknown"`` if not installed as a distribution).

    Returns:
        A version string such as ``"0.1.0"``.
    """
    try:
        return importlib.metadata.version("derl-bench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def git_hash() -> str | None:
    """Return the commit of the derl_bench checkout this code runs from.

    Only a git work tree whose top level holds this package counts (a copy installed in
    site-packages gives None even inside some other repository).

    Returns:
        40 hex digits, with ``-dirty`` appended if tracked files differ from the commit; None if
        the package is not in a git checkout or git is unavailable.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(head) != 40:
        return None
    return head + ("-dirty" if dirty else "")


def hardware_info() -> HardwareRecord:
    """Describe this machine (probed once per process).

    torch is imported if installed (to ask about CUDA); a torch that fails to import is
    reported by version with ``cuda`` False.

    Returns:
        A new hardware record (safe to modify).
    """
    return HardwareRecord(**_probe_hardware())


@functools.cache
def _probe_hardware() -> HardwareRecord:
    torch_version: str | None
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    cuda = False
    if torch_version is not None:
        try:
            import torch

            torch_version = str(torch.__version__)
            cuda = bool(torch.cuda.is_available())
        except Exception:  # a broken torch install must not stop result writing
            cuda = False
    return HardwareRecord(
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        torch=torch_version,
        cuda=cuda,
    )
