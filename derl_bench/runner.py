"""The outer episode loop: one agent on one MetaRewardEnv with one seed, to one result file.

:func:`run` is what ``derl-bench run`` calls for each seed. It resets the env, lets the agent
propose meta-rewards in groups, steps the env with each (one inner training + validation per
meta-step), feeds the results back to the agent until the outer budget is spent, then trains a
fresh policy under the best meta-reward and evaluates it on the test split once
(``env.unwrapped.evaluate_test``), as DERL does (arXiv 2512.13399v2 §2: only the held-out test
set is reported). The result JSON (:mod:`derl_bench.results`) is written atomically to
``<out_dir>/<env_id>/<agent>/seed<S>.json``.

Not yet here: resuming an interrupted run (a later issue adds a SQLite store of finished
meta-steps). Today an interrupted or crashed run leaves a result file with ``status: "failed"``
holding the meta-steps finished before the error, and a new run starts from scratch.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium

from derl_bench.baselines.base import StepResult, agent_factory
from derl_bench.envs.data import data_hashes
from derl_bench.results import (
    SCHEMA_VERSION,
    BestRecord,
    CostRecord,
    MetaStepRecord,
    ResultRecord,
    ResultSchemaError,
    derl_bench_version,
    git_hash,
    hardware_info,
    utc_now,
    write_result,
)

__all__ = [
    "RunResult",
    "UnknownEnvError",
    "derl_env_ids",
    "result_path",
    "run",
]

_COST_KEYS = ("wall_seconds", "inner_steps", "rollouts", "tokens")
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class UnknownEnvError(KeyError):
    """No Gymnasium env is registered under the requested id; the message suggests close ids."""

    def __init__(self, env_id: str) -> None:
        self.env_id = env_id
        ours = derl_env_ids()
        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        self.message = (
            f"Unknown environment id {env_id!r}.{hint} derl_bench registers: "
            f"{', '.join(ours) or 'none (is derl_bench installed?)'}. "
            "List them with `derl-bench ls envs`."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """A finished run: where its result file is and what it holds."""

    path: Path
    """The result JSON file."""
    record: ResultRecord
    """The result, as written (schema-valid)."""

    @property
    def status(self) -> Literal["finished", "failed"]:
        """``"finished"`` for a run that :func:`run` returned."""
        return self.record["status"]

    @property
    def best_meta_reward(self) -> str | None:
        """Canonical form of the best meta-reward, or None if no meta-step was valid."""
        best = self.record["best"]
        return None if best is None else best["canonical"]

    @property
    def validation_success(self) -> float | None:
        """validation_success of the best meta-reward, in [0, 1]; None if none was valid."""
        best = self.record["best"]
        return None if best is None else best["validation_success"]

    @property
    def test_success(self) -> float | None:
        """Test-split success of the best meta-reward, in [0, 1]; None if no test was run."""
        return self.record["test_success"]

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds from start to finish of the run (env creation excluded)."""
        start = _dt.datetime.fromisoformat(self.record["started_at"].replace("Z", "+00:00"))
        end = _dt.datetime.fromisoformat(self.record["finished_at"].replace("Z", "+00:00"))
        return (end - start).total_seconds()


def derl_env_ids() -> list[str]:
    """Return the Gymnasium ids registered by derl_bench (entry point in ``derl_bench.*``).

    Returns:
        The ids, sorted, e.g. ``["DERL-GSM8K-v0", "DERL-MATH-v0"]``.
    """
    import derl_bench  # noqa: F401 - importing the package registers its ids

    return sorted(
        env_id
        for env_id, spec in gymnasium.registry.items()
        if isinstance(spec.entry_point, str) and spec.entry_point.startswith("derl_bench.")
    )


def result_path(out_dir: str | Path, env_id: str, agent_name: str, seed: int) -> Path:
    """Return where :func:`run` writes the result of one run.

    Args:
        out_dir: Root folder of result files.
        env_id: Gymnasium id; characters outside ``[A-Za-z0-9._-]`` become ``_``.
        agent_name: Agent registry name; sanitised the same way.
        seed: The run's seed.

    Returns:
        ``<out_dir>/<env_id>/<agent_name>/seed<seed>.json``.
    """
    env_part = _UNSAFE_PATH_CHARS.sub("_", env_id)
    agent_part = _UNSAFE_PATH_CHARS.sub("_", agent_name)
    return Path(out_dir) / env_part / agent_part / f"seed{seed}.json"


def _make_env(
    env_id: str, preset: str, budget: int, env_kwargs: Mapping[str, Any] | None
) -> gymnasium.Env:
    import derl_bench  # noqa: F401 - importing the package registers its ids

    kwargs = dict(env_kwargs or {})
    clash = sorted({"preset", "budget"} & set(kwargs))
    if clash:
        raise ValueError(
            f"env_kwargs must not set {clash}: pass preset={preset!r} and budget={budget!r} "
            "as run() arguments instead"
        )
    try:
        return gymnasium.make(env_id, preset=preset, budget=budget, **kwargs)
    except (gymnasium.error.UnregisteredEnv, gymnasium.error.DeprecatedEnv) as exc:
        raise UnknownEnvError(env_id) from exc


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _cost(raw: Any, where: str) -> CostRecord:
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


def _sum_costs(costs: Sequence[CostRecord]) -> CostRecord:
    total: dict[str, Any] = {"wall_seconds": 0.0, "inner_steps": 0, "rollouts": 0, "tokens": 0}
    for cost in costs:
        for key, value in cost.items():
            total[key] = total.get(key, 0) + value
    return total  # type: ignore[return-value]


def _means(raw: Any) -> dict[str, float | None]:
    if raw is None:
        return {}
    return {str(name): _finite_or_none(value) for name, value in dict(raw).items()}


def _step_record(
    index: int, meta_reward: str, reward: Any, info: Mapping[str, Any]
) -> MetaStepRecord:
    valid = bool(info["valid"])
    return MetaStepRecord(
        index=index,
        meta_reward=meta_reward,
        canonical=info["canonical"],
        valid=valid,
        invalid_reason=info["invalid_reason"],
        validation_success=_finite_or_none(info["validation_success"]),
        reward=float(reward),
        cost=_cost(info["cost"], f"info['cost'] of meta-step {index}"),
        primitive_means=_means(info.get("primitive_means")),
        cache_hit=bool(info["cache_hit"]),
    )


def _best(steps: Sequence[MetaStepRecord]) -> BestRecord | None:
    best: MetaStepRecord | None = None
    for step in steps:
        score = step["validation_success"]
        if not step["valid"] or score is None or step["canonical"] is None:
            continue
        if best is None or score > best["validation_success"]:  # type: ignore[operator]
            best = step
    if best is None:
        return None
    return BestRecord(
        meta_reward=best["meta_reward"],
        canonical=best["canonical"],  # type: ignore[typeddict-item]
        validation_success=best["validation_success"],  # type: ignore[typeddict-item]
    )


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=repr))


def _error_text(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _write(path: Path, record: ResultRecord) -> Path:
    try:
        return write_result(path, record)
    except ResultSchemaError:
        # Keep the run's data for inspection even though it breaks the schema.
        dump = path.with_name(path.stem + ".invalid.json")
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_text(json.dumps(record, indent=2, default=repr) + "\n", encoding="utf-8")
        raise


class _Progress:
    """A rich progress bar with one advance per meta-step, or nothing when disabled.

    Each meta-step is also printed as one line above the bar, so that logs (CI, ``tee``) keep
    the history even where the live bar is not drawn.
    """

    def __init__(self, bar: Any | None, task: Any | None, total: int) -> None:
        self._bar = bar
        self._task = task
        self._total = total
        self._done = 0

    def step(self, meta_reward: str, score: float | None, wall_seconds: float) -> None:
        if self._bar is None:
            return
        self._done += 1
        shown = "invalid" if score is None else f"val {score:.3f}"
        self._bar.update(self._task, advance=1, last=f"last: {meta_reward}  {shown}")
        self._bar.console.print(
            f"meta-step {self._done}/{self._total}: {meta_reward}  ->  {shown}  "
            f"({wall_seconds:.0f} s)",
            markup=False,
            highlight=False,
        )

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, last=text)
            self._bar.console.print(text, markup=False, highlight=False)


@contextmanager
def _progress(enabled: bool, total: int, description: str) -> Iterator[_Progress]:
    if not enabled:
        yield _Progress(None, None, total)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total, last="training under the first meta-reward")
        yield _Progress(bar, task, total)


def run(
    env_id: str,
    agent_name: str,
    *,
    budget: int,
    seed: int,
    preset: str,
    group_size: int,
    out_dir: str | Path,
    env_kwargs: Mapping[str, Any] | None = None,
    agent_config: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> RunResult:
    """Run one outer episode and write its result file.

    The env is made with ``gymnasium.make(env_id, preset=preset, budget=budget, **env_kwargs)``
    and reset with ``seed``. The agent is ``get_agent(agent_name, primitive_names=...,
    seed=seed, **agent_config)``. Each round it proposes ``min(group_size, remaining)``
    meta-rewards; the env is stepped with each (the agent sees the observation of the round's
    start), then ``agent.update`` gets the round's results. The loop ends when the env reports
    ``truncated`` (or ``terminated``) or ``budget`` meta-steps were taken. The best meta-step
    is the valid one with the highest validation_success (ties: the earliest); the test is run
    once, on it, by ``env.unwrapped.evaluate_test``. The env is closed at the end, also on
    errors.

    If anything raises after the env was made and the agent built (a crashing meta-step, the
    agent, the test, Ctrl-C), the result file is still written, with ``status: "failed"``, the
    error text and every meta-step finished before it; then the exception propagates. A
    result that breaks the schema is also dumped to ``seed<S>.invalid.json`` beside the target.
    An existing result file for the same env, agent and seed is replaced.

    Args:
        env_id: Gymnasium id, e.g. ``"DERL-GSM8K-v0"``.
        agent_name: Agent registry name (see ``derl_bench.baselines.list_agents``).
        budget: Outer budget, number of meta-steps, >= 1.
        seed: Seed for ``env.reset`` and the agent.
        preset: Inner-training preset: ``"smoke"``, ``"cpu"`` or ``"paper"``.
        group_size: Meta-rewards proposed per agent call, >= 1.
        out_dir: Root folder of result files.
        env_kwargs: Further keyword arguments for ``gymnasium.make`` (JSON-able; recorded in
            ``env_spec``); must not contain ``preset`` or ``budget``.
        agent_config: Further keyword arguments for the agent.
        progress: Show a rich progress bar (one advance per meta-step).

    Returns:
        The written result (``status == "finished"``).

    Raises:
        ValueError: If ``budget`` or ``group_size`` is < 1, or ``env_kwargs`` sets ``preset``
            or ``budget``.
        UnknownEnvError: If ``env_id`` is not registered.
        derl_bench.baselines.UnknownAgentError: If ``agent_name`` is not registered.
        ResultSchemaError: If the result breaks the schema (an env contract violation).
        Exception: Whatever the env or the agent raised, after the failed result was written.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1 meta-step, got {budget}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    factory = agent_factory(agent_name)  # unknown names fail before the env is built
    path = result_path(out_dir, env_id, agent_name, seed)
    env = _make_env(env_id, preset, budget, env_kwargs)
    try:
        spec = json.loads(env.spec.to_json()) if env.spec is not None else {}
        base = env.unwrapped
        primitive_names = tuple(base.primitive_set.names)
        config = {**(agent_config or {}), "primitive_names": list(primitive_names), "seed": seed}
        agent = factory(**{**config, "primitive_names": primitive_names})
        agent_record = {"name": agent_name, "config": _jsonable(config)}
        if isinstance(getattr(agent, "config", None), Mapping):
            agent_record["config"] = _jsonable(dict(agent.config))
        started_at = utc_now()
        steps: list[MetaStepRecord] = []
        test: Mapping[str, Any] | None = None

        def record(status: Literal["finished", "failed"], error: str | None) -> ResultRecord:
            test_cost = None if test is None else _cost(test["cost"], "evaluate_test()['cost']")
            costs = [step["cost"] for step in steps] + ([test_cost] if test_cost else [])
            return ResultRecord(
                schema_version=SCHEMA_VERSION,
                derl_bench_version=derl_bench_version(),
                git_hash=git_hash(),
                env_id=env_id,
                env_spec=spec,
                preset=str(getattr(base, "preset", preset)),
                data_hashes=dict(data_hashes()),
                agent=agent_record,  # type: ignore[typeddict-item]
                seed=seed,
                budget=budget,
                group_size=group_size,
                meta_steps=steps,
                best=_best(steps),
                test_success=None if test is None else _finite_or_none(test["test_success"]),
                n_test=None if test is None else int(test["n_test"]),
                test_cost=test_cost,
                total_cost=_sum_costs(costs),
                hardware=hardware_info(),
                started_at=started_at,
                finished_at=utc_now(),
                status=status,
                error=error,
            )

        description = f"{env_id} · {agent_name} · seed {seed}"
        try:
            with _progress(progress, budget, description) as bar:
                observation, _ = env.reset(seed=seed)
                stop = False
                while not stop and len(steps) < budget:
                    n = min(group_size, budget - len(steps))
                    proposals = list(agent.propose(observation, n))[:n]
                    if not proposals:
                        raise RuntimeError(f"agent {agent_name!r} proposed no meta-reward")
                    results: list[StepResult] = []
                    for meta_reward in proposals:
                        observation, reward, terminated, truncated, info = env.step(meta_reward)
                        step = _step_record(len(steps), meta_reward, reward, info)
                        steps.append(step)
                        results.append(
                            StepResult(meta_reward=meta_reward, reward=float(reward), info=info)
                        )
                        bar.step(
                            meta_reward, step["validation_success"], step["cost"]["wall_seconds"]
                        )
                        if terminated or truncated:
                            stop = True
                            break
                    agent.update(results)
                best = _best(steps)
                if best is not None:
                    bar.note(f"test: training a fresh policy under {best['canonical']}")
                    test = base.evaluate_test(best["meta_reward"])
        except BaseException as exc:
            try:
                _write(path, record("failed", _error_text(exc)))
            except Exception as write_exc:  # keep the original error, report this one
                warnings.warn(
                    f"could not write the failed run's result to {path}: {write_exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            raise
        final = record("finished", None)
        return RunResult(path=_write(path, final), record=final)
    finally:
        try:
            env.close()
        except Exception as close_exc:
            warnings.warn(f"env.close() failed: {close_exc}", RuntimeWarning, stacklevel=2)
