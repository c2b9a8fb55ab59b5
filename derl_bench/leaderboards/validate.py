# Over 400 lines: one check per acceptance rule of issue 17 item 4, each with its own message.
"""``derl-bench leaderboard validate``: accept good submissions, reject bad ones with reasons.

Checks, in order (issue 17, item 4); each failure is one :class:`~derl_bench.leaderboards.model.
Problem` naming the field and the fix:

1. **File**: at most :data:`~derl_bench.leaderboards.model.MAX_SUBMISSION_BYTES` (checked before
   parsing), UTF-8 JSON, no duplicate keys, no ``NaN``/``Infinity``.
2. **Schema**: ``submission.schema.json``; every item of ``results`` against
   ``result.schema.json`` (version-1 result files are upgraded first).
3. **Consistency** of every result with the track: a finished run with a test success; the env
   id registered by derl_bench, its ``env_spec`` equal to the registration (entry point, domain,
   level) with the track's preset, the run's budget and fidelity, and no keyword that changes the
   rules (``inner_overrides``, ``inner``, ``policy``...); data hashes equal to the ones derl_bench
   embeds; the lock hash one derl_bench knows; the budget within the track; the outer agent the
   one named; every meta-reward marked valid parses with derl_bench's parser to the recorded
   canonical form (never ``eval``) and scores its recorded validation success, every one marked
   invalid is refused by it (except ``invalid_reason`` ``"failed"``: a valid meta-reward whose
   training failed on a worker); the recorded best meta-step is the best one; an outcome-only
   baseline proposes only ``g1``.
4. **Seeds**: distinct, at least :data:`~derl_bench.leaderboards.model.MIN_SEEDS` of the fidelity.
5. **Reported numbers** equal the means of the per-seed values.
6. **Re-check** (table and surrogate tracks): each run's meta-rewards are replayed through the
   fidelity (:func:`~derl_bench.leaderboards.recheck.fidelity_scores`) and must give the
   reported per-step rewards.
7. **Duplicates**: a second submission of the same method on the same track, or one that shares
   a result file with another, is refused.

A method name is plain text: markup characters (``<``, ``>``) and control characters are refused.
Nothing in a submission is executed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from derl_bench._names import did_you_mean
from derl_bench._registration import ENTRY_POINT, ENV_SPECS
from derl_bench.envs.data import EXPECTED_SHA256
from derl_bench.leaderboards.model import (
    BUDGETS_META_STEPS,
    MIN_SEEDS,
    Problem,
    Submission,
    SubmissionLoadError,
    read_submission_json,
    schema_problems,
)
from derl_bench.leaderboards.recheck import (
    EnvMaker,
    fidelity_scores,
    installed_source,
    record_fidelity,
)
from derl_bench.meta_reward import DEFAULT_PRIMITIVES, InvalidMetaReward, parse
from derl_bench.provenance import lock_file_sha256
from derl_bench.results import best_meta_step, result_schema, upgrade_result

__all__ = [
    "KNOWN_LOCK_SHA256",
    "ALLOWED_SPEC_KWARGS",
    "FileReport",
    "check_submission",
    "known_lock_hashes",
    "validate_paths",
]

KNOWN_LOCK_SHA256: dict[str, str] = {
    "835f9ea9a2e4a133cc233c7983a04f48525bb36f7b5bdccba3791772399832a3": (
        "requirements/lock-py311.txt of commit 2fe9d84 (scikit-learn, lightgbm, rliable, peft, "
        "llguidance, playwright added)"
    ),
}
"""Lock files (SHA-256 of ``requirements/lock-py311.txt``) whose numbers the leaderboard accepts,
besides the checkout's own lock. Add the old hash here when the lock changes, so that entries
made under it stay valid (their provenance says which lock they used)."""

ALLOWED_SPEC_KWARGS: dict[str, Any] = {
    "preset": None,
    "budget": None,
    "fidelity": None,
    "data_dir": None,
    "data_source": "local",
    "keep_checkpoints": None,
    "torch_threads": 1,
    "invalid_reward": -1.0,
}
"""``env_spec.kwargs`` a submission may carry besides the registered ones. ``None``: any value
(checked elsewhere); otherwise the value must equal the default, since another one changes the
number (e.g. ``torch_threads``). Any other keyword (``inner_overrides``, ``inner``, ``policy``,
...) changes the rules of the track and is refused."""

_REGISTERED: dict[str, dict[str, object]] = {env_id: dict(kw) for env_id, kw in ENV_SPECS}
_TOLERANCE = 1e-9
_REGENERATE = "submit the result file exactly as `derl-bench run` wrote it"


@dataclass
class FileReport:
    """What :func:`validate_paths` found for one file."""

    path: Path
    """The submission file."""
    submission: Submission | None
    """The typed submission if it was at least schema-valid, else None."""
    problems: list[Problem] = field(default_factory=list)
    """Every failure; empty means accepted."""

    @property
    def ok(self) -> bool:
        """Whether the file was accepted."""
        return not self.problems


def known_lock_hashes() -> set[str]:
    """Return the lock hashes the leaderboard accepts.

    Returns:
        :data:`KNOWN_LOCK_SHA256` and this checkout's lock
        (:func:`derl_bench.provenance.lock_file_sha256`).
    """
    known = set(KNOWN_LOCK_SHA256)
    current = lock_file_sha256()
    if current:
        known.add(current)
    return known


def _q(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.0, abs_tol=_TOLERANCE)


def _check_strings(obj: Mapping[str, Any]) -> list[Problem]:
    problems = []
    method = obj.get("method")
    if isinstance(method, str):
        if "<" in method or ">" in method:
            problems.append(
                Problem(
                    "method",
                    f"{_q(method)} contains markup characters '<' or '>'",
                    "give the method name as plain text (it is shown escaped, never as HTML)",
                )
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in method):
            problems.append(
                Problem("method", f"{_q(method)} contains control characters", "use one line")
            )
    return problems


def _check_spec(where: str, record: Mapping[str, Any], track: Mapping[str, Any]) -> list[Problem]:
    env_id = record["env_id"]
    spec = record["env_spec"]
    problems = []
    if spec.get("id") != env_id:
        problems.append(
            Problem(f"{where}.env_spec.id", f"{_q(spec.get('id'))} is not {env_id!r}", _REGENERATE)
        )
    if spec.get("entry_point") != ENTRY_POINT:
        problems.append(
            Problem(
                f"{where}.env_spec.entry_point",
                f"{_q(spec.get('entry_point'))}, but {env_id} registers {ENTRY_POINT!r}",
                _REGENERATE,
            )
        )
    kwargs = spec.get("kwargs")
    if not isinstance(kwargs, dict):
        return [
            *problems,
            Problem(f"{where}.env_spec.kwargs", "missing or not an object", _REGENERATE),
        ]
    for name, value in _REGISTERED[env_id].items():
        if kwargs.get(name) != value:
            problems.append(
                Problem(
                    f"{where}.env_spec.kwargs.{name}",
                    f"{_q(kwargs.get(name))}, but {env_id} registers {value!r}",
                    f"use the registered env (this is another env's spec); {_REGENERATE}",
                )
            )
    expected = {"preset": track["preset"], "budget": record["budget"]}
    for name, value in expected.items():
        if kwargs.get(name) != value:
            problems.append(
                Problem(
                    f"{where}.env_spec.kwargs.{name}",
                    f"{_q(kwargs.get(name))}, but the run says {value!r}",
                    _REGENERATE,
                )
            )
    for name in sorted(set(kwargs) - set(_REGISTERED[env_id]) - set(ALLOWED_SPEC_KWARGS)):
        problems.append(
            Problem(
                f"{where}.env_spec.kwargs.{name}",
                f"{_q(kwargs[name])} changes the rules of the track",
                "run without it (leaderboard runs use the registered env with --preset only)",
            )
        )
    for name, default in ALLOWED_SPEC_KWARGS.items():
        if default is not None and name in kwargs and kwargs[name] != default:
            problems.append(
                Problem(
                    f"{where}.env_spec.kwargs.{name}",
                    f"{_q(kwargs[name])} differs from the default {default!r}, which changes "
                    "the number",
                    "run with the default",
                )
            )
    return problems


def _check_steps(where: str, record: Mapping[str, Any], role: str) -> list[Problem]:
    problems = []
    for j, step in enumerate(record["meta_steps"]):
        at = f"{where}.meta_steps[{j}]"
        text = step["meta_reward"]
        try:
            parsed = parse(text, DEFAULT_PRIMITIVES)
        except InvalidMetaReward as exc:
            if step["valid"]:
                problems.append(
                    Problem(
                        f"{at}.meta_reward",
                        f"{_q(text)} is marked valid but derl_bench's parser refuses it "
                        f"({exc.reason})",
                        _REGENERATE,
                    )
                )
            continue
        if not step["valid"] and step["invalid_reason"] == "failed":
            continue  # a valid meta-reward whose training failed on a worker: spent, not scored
        if not step["valid"]:
            problems.append(
                Problem(
                    f"{at}.valid",
                    f"false, but derl_bench's parser accepts {_q(text)}",
                    _REGENERATE,
                )
            )
            continue
        if parsed.canonical != step["canonical"]:
            problems.append(
                Problem(
                    f"{at}.canonical",
                    f"{_q(step['canonical'])}, but {_q(text)} parses to {parsed.canonical!r}",
                    _REGENERATE,
                )
            )
        score = step["validation_success"]
        if score is None or not _close(float(step["reward"]), float(score)):
            problems.append(
                Problem(
                    f"{at}.reward",
                    f"{_q(step['reward'])} differs from validation_success {_q(score)}",
                    _REGENERATE,
                )
            )
        if role == "outcome_only_baseline" and parsed.canonical != "g1":
            problems.append(
                Problem(
                    f"{at}.meta_reward",
                    f"{_q(text)}: an outcome-only baseline proposes only 'g1'",
                    "submit it with role 'entry', or run the heuristic agent with --budget 1",
                )
            )
    if record["best"] != best_meta_step(record["meta_steps"]):
        problems.append(
            Problem(f"{where}.best", "is not the best valid meta-step of the run", _REGENERATE)
        )
    return problems


def _check_result(
    where: str, raw: Any, obj: Mapping[str, Any], known_locks: set[str]
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Schema and consistency of one result; returns the upgraded record if usable."""
    record = upgrade_result(raw)
    found = schema_problems(record, result_schema())
    if found:
        return None, [
            Problem(f"{where}.{p.field}" if p.field != "<top level>" else where, p.message, p.fix)
            for p in found
        ]
    track = obj["track"]
    problems: list[Problem] = []
    if record["status"] != "finished" or record["test_success"] is None:
        problems.append(
            Problem(
                f"{where}.status",
                f"{record['status']!r} with test_success {record['test_success']!r}: only "
                "finished runs with a test count",
                "finish the run (rerun the same `derl-bench run` command; it resumes)",
            )
        )
    env_id = record["env_id"]
    if env_id not in _REGISTERED:
        hint = did_you_mean(env_id, _REGISTERED)
        problems.append(
            Problem(
                f"{where}.env_id",
                f"unknown env id {_q(env_id)}.{hint}",
                f"use an id registered by derl_bench ({', '.join(_REGISTERED)})",
            )
        )
        return None, problems
    if env_id != track["env_id"]:
        problems.append(
            Problem(
                f"{where}.env_id",
                f"{env_id!r}, but the track is {_q(track['env_id'])}",
                "submit results of the track's env only",
            )
        )
    if record["preset"] != track["preset"]:
        problems.append(
            Problem(
                f"{where}.preset",
                f"{record['preset']!r}, but the track is {track['preset']!r}",
                "submit results of the track's preset only",
            )
        )
    try:
        fidelity = record_fidelity(record)
    except ValueError as exc:
        problems.append(Problem(f"{where}.fidelity", str(exc), _REGENERATE))
    else:
        if fidelity != track["fidelity"]:
            problems.append(
                Problem(
                    f"{where}.env_spec.kwargs.fidelity",
                    f"{fidelity!r}, but the track is {track['fidelity']!r}",
                    "submit results made with the track's fidelity only",
                )
            )
    problems += _check_spec(where, record, track)
    for name, digest in sorted(record["data_hashes"].items()):
        expected = EXPECTED_SHA256.get(name)
        if expected is None:
            problems.append(
                Problem(
                    f"{where}.data_hashes.{name}",
                    "is not a data file derl_bench knows",
                    "use the data files derl_bench checks (derl_bench/envs/data.py)",
                )
            )
        elif digest != expected:
            problems.append(
                Problem(
                    f"{where}.data_hashes.{name}",
                    f"{digest[:12]}… differs from the known {expected[:12]}…",
                    "run on the published data (derl_bench checks each file's SHA-256)",
                )
            )
    lock = (record.get("provenance") or {}).get("lock_sha256")
    if "provenance" not in record or lock is None:
        problems.append(
            Problem(
                f"{where}.provenance.lock_sha256",
                "missing: the run was not made under a lock derl_bench knows",
                "run inside the locked environment (bash scripts/bootstrap.sh)",
            )
        )
    elif lock not in known_locks:
        problems.append(
            Problem(
                f"{where}.provenance.lock_sha256",
                f"{lock[:12]}… is not a lock derl_bench knows",
                "run under requirements/lock-py311.txt of a released derl_bench",
            )
        )
    budget = int(track["budget_meta_steps"])
    if record["budget"] > budget:
        problems.append(
            Problem(
                f"{where}.budget",
                f"{record['budget']} meta-steps is over the track's {budget}",
                f"run with --budget {budget} or less, or submit to a larger track "
                f"({', '.join(map(str, BUDGETS_META_STEPS))})",
            )
        )
    if len(record["meta_steps"]) > record["budget"]:
        problems.append(
            Problem(
                f"{where}.meta_steps",
                f"{len(record['meta_steps'])} meta-steps, over the run's budget {record['budget']}",
                _REGENERATE,
            )
        )
    clock = track["budget_simulated_seconds"]
    if clock is not None:
        spent = [s["cost"].get("simulated_seconds") for s in record["meta_steps"]]
        if any(not isinstance(s, int | float) for s in spent):
            problems.append(
                Problem(
                    f"{where}.meta_steps",
                    "a meta-step's cost has no simulated_seconds, but the track has a clock",
                    "submit to the track without a simulated-seconds budget",
                )
            )
        elif sum(spent) > clock:
            problems.append(
                Problem(
                    f"{where}.meta_steps",
                    f"{sum(spent):g} simulated seconds, over the track's {clock:g}",
                    "stop the search within the clock budget",
                )
            )
    if record["agent"]["name"] != obj["agent"]["name"]:
        problems.append(
            Problem(
                f"{where}.agent.name",
                f"{record['agent']['name']!r}, but the submission names {obj['agent']['name']!r}",
                "submit runs of one agent",
            )
        )
    problems += _check_steps(where, record, obj["role"])
    return record, problems


def _recheck(
    where: str, record: Mapping[str, Any], track: Mapping[str, Any], make: EnvMaker | None
) -> list[Problem]:
    steps = record["meta_steps"]
    try:
        scores = fidelity_scores(
            record["env_id"],
            fidelity=track["fidelity"],
            preset=track["preset"],
            seed=int(record["seed"]),
            budget=int(record["budget"]),
            meta_rewards=[s["meta_reward"] for s in steps],
            make=make,
        )
    except Exception as exc:  # any failure to re-check is a failure to accept
        return [
            Problem(
                f"{where}.meta_steps",
                f"could not be re-checked with the {track['fidelity']} fidelity "
                f"({type(exc).__name__}: {str(exc)[:160]})",
                "validate with a derl_bench that has this fidelity (and its table or model)",
            )
        ]
    problems = []
    fix = "report what the fidelity returns (do not edit result files)"
    for j, (step, score) in enumerate(zip(steps, scores, strict=True)):
        if not _close(float(step["reward"]), score):
            if not problems:
                fix = _changed_table_fix(record, track, make) or fix
            problems.append(
                Problem(
                    f"{where}.meta_steps[{j}].reward",
                    f"reported {step['reward']!r}, but the {track['fidelity']} fidelity returns "
                    f"{score!r} for {_q(step['meta_reward'])} at seed {record['seed']}",
                    fix,
                )
            )
    return problems


def _changed_table_fix(
    record: Mapping[str, Any], track: Mapping[str, Any], make: EnvMaker | None
) -> str | None:
    """The fix when the run names another table than the one installed (it grew or changed)."""
    recorded = record.get("fidelity_source")
    if not isinstance(recorded, Mapping):
        return None
    try:
        here = installed_source(
            record["env_id"], fidelity=track["fidelity"], preset=track["preset"], make=make
        )
    except Exception:  # the re-check itself worked; keep its plain fix
        return None
    if here is None or here.get("sha256") == recorded.get("sha256"):
        return None
    return (
        f"this run was answered by table {_q(str(recorded.get('table')))} with "
        f"{int(recorded.get('keys', 0))} keys, {int(recorded.get('entries', 0))} entries (sha256 "
        f"{str(recorded.get('sha256'))[:12]}...); this derl_bench's has {here['keys']} keys, "
        f"{here['entries']} entries (sha256 {str(here['sha256'])[:12]}...): the table changed "
        "since, so re-run the seeds with this version (or validate with the one that made them)"
    )


def check_submission(
    obj: Mapping[str, Any],
    *,
    source: str = "",
    known_locks: set[str] | None = None,
    make: EnvMaker | None = None,
) -> tuple[Submission | None, list[Problem]]:
    """Check one parsed submission (every rule but duplicates, which need the other files).

    Args:
        obj: The parsed submission (:func:`~derl_bench.leaderboards.model.read_submission_json`).
        source: Where it came from, kept in the model.
        known_locks: Accepted lock hashes (default :func:`known_lock_hashes`).
        make: Env factory for the fidelity re-check (default :func:`gymnasium.make`).

    Returns:
        The typed submission (None if not even schema-valid) and the problems (empty: accepted).
    """
    problems = schema_problems(obj)
    problems += _check_strings(obj)
    if problems:  # the results are checked once the top level is right
        return None, problems
    track = obj["track"]
    if track["env_id"] not in _REGISTERED:
        hint = did_you_mean(track["env_id"], _REGISTERED)
        return None, [
            Problem(
                "track.env_id",
                f"unknown env id {_q(track['env_id'])}.{hint}",
                f"use an id registered by derl_bench ({', '.join(_REGISTERED)})",
            )
        ]
    locks = known_lock_hashes() if known_locks is None else known_locks
    records: list[dict[str, Any]] = []
    usable: list[bool] = []
    for i, raw in enumerate(obj["results"]):
        record, found = _check_result(f"results[{i}]", raw, obj, locks)
        problems += found
        records.append(record if record is not None else {})
        usable.append(record is not None and not found)
    if not all(r for r in records):  # a result off the schema: fix that first
        return None, problems
    seeds = [r.get("seed") for r in records]
    duplicated = sorted({s for s in seeds if seeds.count(s) > 1})
    if duplicated:
        problems.append(
            Problem(
                "results",
                f"seed(s) {duplicated} appear more than once",
                "submit one result per seed",
            )
        )
    fidelity = track["fidelity"]
    need = MIN_SEEDS[fidelity]
    if len(set(seeds)) < need:
        problems.append(
            Problem(
                "results",
                f"{len(set(seeds))} distinct seed(s); a {fidelity} track needs at least {need}",
                f"run at least {need} seeds (e.g. --seeds {','.join(map(str, range(need)))})",
            )
        )
    if obj["reported"]["n_seeds"] != len(obj["results"]):
        problems.append(
            Problem(
                "reported.n_seeds",
                f"{obj['reported']['n_seeds']}, but there are {len(obj['results'])} results",
                "report the number of results",
            )
        )
    if all(usable):
        tests = [float(r["test_success"]) for r in records]
        bests = [float(r["best"]["validation_success"]) if r["best"] else 0.0 for r in records]
        for name, values in (("test_success_mean", tests), ("best_validation_mean", bests)):
            claimed = float(obj["reported"][name])
            mean = math.fsum(values) / len(values)
            if not _close(claimed, mean):
                problems.append(
                    Problem(
                        f"reported.{name}",
                        f"{claimed!r}, but the mean of the {len(values)} per-seed values is "
                        f"{mean!r}",
                        "report the mean of the results' values (derl-bench leaderboard pack "
                        "computes it)",
                    )
                )
        if fidelity in ("table", "surrogate"):
            for i, record in enumerate(records):
                problems += _recheck(f"results[{i}]", record, track, make)
    if problems:
        return None, problems
    upgraded = dict(obj)
    upgraded["results"] = records
    return Submission.from_json(upgraded, source=source), []


def _digest(record: Mapping[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def validate_paths(
    paths: Sequence[str | os.PathLike[str]],
    *,
    against: Iterable[str | os.PathLike[str]] = (),
    make: EnvMaker | None = None,
) -> list[FileReport]:
    """Validate submission files, and refuse duplicates among them and of ``against``.

    A file is a duplicate when an earlier file (every accepted file of ``against`` first, then
    ``paths`` in order) has the same method on the same track, or shares a result file with it.
    Files of ``against`` that are also in ``paths`` are not compared with themselves.

    Args:
        paths: Submission files to check.
        against: Submissions already on the leaderboard (e.g. every ``leaderboards/*/*.json``).
        make: Env factory for the fidelity re-check (default :func:`gymnasium.make`).

    Returns:
        One report per path, in order.
    """
    targets = [Path(p) for p in paths]
    resolved = {p.resolve() for p in targets}
    locks = known_lock_hashes()
    seen_tracks: dict[tuple[Any, str], str] = {}
    seen_results: dict[str, str] = {}

    def remember(submission: Submission, label: str) -> None:
        seen_tracks.setdefault((submission.track.key, submission.method.casefold()), label)
        for record in submission.results:
            seen_results.setdefault(_digest(record), label)

    for other in sorted(Path(p) for p in against):
        if other.resolve() in resolved:
            continue
        try:
            submission, found = check_submission(
                read_submission_json(other), source=str(other), known_locks=locks, make=make
            )
        except SubmissionLoadError:
            continue
        if submission is not None and not found:
            remember(submission, str(other))
    reports = []
    for path in targets:
        try:
            obj = read_submission_json(path)
        except SubmissionLoadError as exc:
            reports.append(FileReport(path=path, submission=None, problems=list(exc.problems)))
            continue
        submission, problems = check_submission(obj, source=str(path), known_locks=locks, make=make)
        report = FileReport(path=path, submission=submission, problems=list(problems))
        if submission is not None:
            key = (submission.track.key, submission.method.casefold())
            if key in seen_tracks:
                report.problems.append(
                    Problem(
                        "method",
                        f"{submission.method!r} is already on this track ({seen_tracks[key]})",
                        "update that file instead of adding a second one",
                    )
                )
            for i, record in enumerate(submission.results):
                digest = _digest(record)
                if digest in seen_results:
                    report.problems.append(
                        Problem(
                            f"results[{i}]",
                            f"the same result file is already submitted in {seen_results[digest]}",
                            "submit each run once",
                        )
                    )
            if report.ok:
                remember(submission, str(path))
            else:
                report.submission = None
        reports.append(report)
    return reports
