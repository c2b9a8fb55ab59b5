# Over 450 lines: the loop, run() and run_many() with the resume and pool contracts in docstrings.
"""The outer episode loop: one agent on one MetaRewardEnv with one seed, to one result file.

:func:`run` is what ``derl-bench run`` calls for each seed. It resets the env, lets the agent
propose meta-rewards in rounds of ``proposals_per_step``, steps the env with each (one inner
training + validation per meta-step), feeds the results back to the agent until the outer budget is
spent, then trains a fresh policy under the best meta-reward and evaluates it on the test split once
(``env.unwrapped.evaluate_test``), as DERL does (arXiv 2512.13399v2 §2: only the held-out test set
is reported). The result JSON (:mod:`derl_bench.results`) is written atomically to
``<out_dir>/<env_id>/<agent>/seed<S>.json``. :func:`run_many` runs several agents and seeds.

Resuming: every finished meta-step is committed at once to a SQLite store beside the result
file (``seed<S>.sqlite``, :mod:`derl_bench.store`), and so is the test result. Run the same
command again after a crash, Ctrl-C or ``kill -9`` and the run continues where it stopped: the
agent is rebuilt and asked to propose again round by round, exactly as before, but every
proposal whose meta-step is stored takes the stored result instead of training (the stored
meta-reward must equal the proposal, else :class:`AgentNotDeterministicError`; the replay is
:class:`derl_bench.resume.ResumableSteps`, a wrapper over the store), and the agent's
``update`` gets the same results in the same rounds. So a resumed run ends with the same
meta-steps as an uninterrupted one, and no finished meta-step is trained twice. A finished run
run again only rewrites its result file from the store.

The agent's observation is built by the runner from the run's history (the meta-steps of both
the stored and the new part), in the MetaRewardEnv's format (``instruction``, ``primitives``,
``history_meta_rewards``, ``history_rewards``, ``history_length``), so it is the same whether
or not the run was resumed. Envs with another observation format are passed through unchanged
(after a resume such an observation lacks the replayed meta-steps; a warning says so).
Agents always get ``info`` after a JSON round trip (as stored), also in uninterrupted runs;
``info["meta_step"]`` is the run's index (the env itself counts from 0 again after a resume).
One difference remains: the env's in-memory cache starts empty after a resume, so a meta-reward
repeated across the restart is trained again (same validation success for the same seed, but a
real cost and ``cache_hit`` False where the uninterrupted run had a free cache hit).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import gymnasium

from derl_bench.baselines.base import StepResult, agent_factory
from derl_bench.progress import progress_bar
from derl_bench.results import (
    AgentRecord,
    ClockRecord,
    MetaStepRecord,
    ResultRecord,
    ResultSchemaError,
    best_meta_step,
    best_step,
    meta_step_record,
    result_record,
    utc_now,
    validate_result,
    write_result,
)
from derl_bench.resume import AgentNotDeterministicError, ObservationView, ResumableSteps
from derl_bench.run_files import (
    RunResult,
    UnknownEnvError,
    check_env_kwargs,
    derl_env_ids,
    make_env,
    result_path,
    store_path,
)
from derl_bench.store import RunConfig, RunStore, TableChangedError, discard_store

__all__ = [
    "AgentNotDeterministicError",
    "RunResult",
    "UnknownEnvError",
    "derl_env_ids",
    "result_path",
    "run",
    "run_many",
    "store_path",
]


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


class _WarmStart:
    """DERL-pop's hook: the agent's ``next_warm_start`` at the start of a round.

    It is set on the env once, before the round's first training (agents without that
    attribute: nothing to do).
    """

    def __init__(self, agent: Any, base: Any) -> None:
        self.base = base
        self.pending = hasattr(agent, "next_warm_start")
        self.value = getattr(agent, "next_warm_start", None)

    def apply(self) -> None:
        """Set the warm start on the env, the first time only."""
        if self.pending:
            self.base.set_warm_start(self.value)
            self.pending = False


def resolve_executor(env_id: str, executor: str | None) -> str:
    """Pick the executor of a run.

    ``"auto"`` (or None) means ``"process"`` when more than one core is free and the id is one
    ``import derl_bench`` registers (workers rebuild the env from its id), else ``"sync"``.

    Raises:
        ValueError: On an unknown executor name (the message lists the known ones).
    """
    from derl_bench._registration import ENV_SPECS
    from derl_bench.meta_env.executors import EXECUTOR_NAMES, default_executor_name

    if executor in (None, "auto"):
        ours = {spec_id for spec_id, _ in ENV_SPECS}
        known = env_id in ours or any(env_id == s.rsplit("-v", 1)[0] for s in ours)
        return default_executor_name() if known else "sync"
    if executor not in EXECUTOR_NAMES:
        raise ValueError(
            f"Unknown executor {executor!r}; choose one of auto, {', '.join(EXECUTOR_NAMES)}."
        )
    return executor


def _print_line(text: str) -> None:
    """A pool worker's ``notify``: print the line at once (module level, so it pickles)."""
    print(text, flush=True)


@contextmanager
def _round_executor(env_id: str, executor: str | None) -> Iterator[Any]:
    """The executor of a run's rounds (None for ``"sync"``: the env trains in this process)."""
    name = resolve_executor(env_id, executor)
    if name == "sync":
        yield None
        return
    from derl_bench.meta_env.executors import make_executor

    built = make_executor(name)
    try:
        yield built
    finally:
        built.close()


def run(
    env_id: str,
    agent_name: str,
    *,
    budget: int,
    seed: int,
    preset: str,
    proposals_per_step: int,
    out_dir: str | Path,
    env_kwargs: Mapping[str, Any] | None = None,
    agent_config: Mapping[str, Any] | None = None,
    progress: bool = True,
    resume: bool = True,
    notify: Callable[[str], None] | None = None,
    executor: str | None = "sync",
    budget_seconds: float | None = None,
) -> RunResult:
    """Run one outer episode (or resume an interrupted one) and write its result file.

    The env is made with ``gymnasium.make(env_id, preset=preset, budget=budget, **env_kwargs)``
    and reset with ``seed``; if the agent class sets ``needs_checkpoints = True``, the env also
    gets ``keep_checkpoints="<out_dir>/<env_id>/<agent>/checkpoints"`` unless ``env_kwargs``
    sets it. The agent is ``get_agent(agent_name, primitive_names=..., seed=seed,
    **agent_config)``. Each round it proposes ``min(proposals_per_step, remaining)``
    meta-rewards; if the agent has an attribute ``next_warm_start`` (DERL-pop), its value at the
    start of the round is passed to ``env.unwrapped.set_warm_start`` before the round's first
    meta-step is trained. The env is stepped with each proposal (the agent sees the observation of
    the round's start), then ``agent.update`` gets the round's results. The loop ends when a step
    reports ``truncated`` (or ``terminated``) or ``budget`` meta-steps were taken. The best
    meta-step is the valid one with the highest validation_success (ties: the earliest); the test is
    run once, on it, by ``env.unwrapped.evaluate_test``. The env is closed at the end,
    also on errors.

    Every finished meta-step and the test result are committed to the run's SQLite store
    (:func:`store_path`) before the run goes on. With ``resume`` (the default) an existing
    store is continued as described in the module docstring; a store of a finished run makes
    this call only rewrite the result file (no env is made). With ``resume=False`` an existing
    store is discarded and the run starts afresh.

    If anything raises after the env was made and the agent built (a crashing meta-step, the
    agent, the test, Ctrl-C), the result file is still written, with ``status: "failed"``, the
    error text and every meta-step finished before it; then the exception propagates. A
    result that breaks the schema is also dumped to ``seed<S>.invalid.json`` beside the target.

    Args:
        env_id: Gymnasium id, e.g. ``"DERL-GSM8K-v0"``.
        agent_name: Agent registry name (see ``derl_bench.baselines.list_agents``).
        budget: Outer budget, number of meta-steps, >= 1.
        seed: Seed for ``env.reset`` and the agent.
        preset: Inner-training preset: ``"smoke"``, ``"cpu"`` or ``"paper"``.
        proposals_per_step: Meta-rewards proposed per agent call, >= 1.
        out_dir: Root folder of result files.
        env_kwargs: Further keyword arguments for ``gymnasium.make`` (JSON-able; recorded in
            ``env_spec``); must not contain ``preset`` or ``budget``.
        agent_config: Further keyword arguments for the agent.
        progress: Show a rich progress bar (one advance per meta-step).
        resume: Continue the run's store if there is one (default); False discards it.
        notify: Called with one-line status messages (``"resuming: 3 of 8 meta-steps done
            (PATH)"``); None prints them when ``progress`` is on.
        executor: How a round's proposals are trained: ``"sync"`` (one after another in this
            process), ``"process"`` (a local pool, :class:`~derl_bench.meta_env.executors.
            ProcessExecutor`), ``"ray"``, or ``"auto"`` (:func:`resolve_executor`). Every
            executor gives the same result file (wall times aside): the round is trained
            concurrently with ``MetaRewardEnv.prefetch``, then stepped in order as usual.
            At the ``table`` and ``surrogate`` fidelities (``env_kwargs["fidelity"]``) nothing
            is trained and ``"sync"`` is used whatever is asked.
        budget_seconds: Stop the run once the simulated clock reaches this many seconds: the
            sum of every meta-step's ``cost.simulated_seconds`` (live seconds; recorded or
            predicted at the table and surrogate fidelities) and the agent's own measured
            ``propose`` / ``update`` seconds (the result's ``clock``). Checked after every
            meta-step; the round's ``update`` still runs. None: only ``budget`` stops the run.

    Returns:
        The written result (``status == "finished"``).

    Raises:
        ValueError: If ``budget`` or ``proposals_per_step`` is < 1, or ``env_kwargs`` sets
            ``preset`` or ``budget``.
        UnknownEnvError: If ``env_id`` is not registered.
        derl_bench.baselines.UnknownAgentError: If ``agent_name`` is not registered.
        derl_bench.store.StoreMismatchError: If the store holds a run with another
            configuration (the message names the field and the fix); its subclass
            ``TableChangedError`` if a table / surrogate run's stored meta-steps were answered
            by another version of the table.
        derl_bench.store.StoreLockedError: If another process is running the same run.
        AgentNotDeterministicError: If, on resume, the agent proposes another meta-reward
            than the stored one.
        ResultSchemaError: If the result breaks the schema (an env contract violation).
        Exception: Whatever the env or the agent raised, after the failed result was written.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1 meta-step, got {budget}")
    if proposals_per_step < 1:
        raise ValueError(f"proposals_per_step must be >= 1, got {proposals_per_step}")
    check_env_kwargs(preset, budget, env_kwargs)
    if budget_seconds is not None and not budget_seconds > 0:
        raise ValueError(f"budget_seconds must be > 0, got {budget_seconds}")
    if (env_kwargs or {}).get("fidelity", "live") != "live":
        executor = "sync"  # nothing to train: a process pool would only cost start-up time
    resolve_executor(env_id, executor)  # an unknown name fails before anything is built
    factory = agent_factory(agent_name)  # unknown names fail before the env is built
    path = result_path(out_dir, env_id, agent_name, seed)
    spath = store_path(out_dir, env_id, agent_name, seed)

    def say(text: str) -> None:
        if notify is not None:
            notify(text)
        elif progress:
            print(text, flush=True)

    config = RunConfig(
        env_id=env_id,
        env_kwargs=_jsonable(dict(env_kwargs or {})),
        preset=preset,
        budget=budget,
        proposals_per_step=proposals_per_step,
        agent=agent_name,
        agent_config=_jsonable(dict(agent_config or {})),
        seed=seed,
    )
    store: RunStore | None = None
    if resume and spath.exists():
        store = RunStore.open(spath, config)
        finished = store.result
        if finished is not None:
            try:
                validate_result(finished, source=str(spath))
                say(
                    f"already finished: {len(store.steps)} meta-steps; result file {path} "
                    f"rewritten from {spath}"
                )
                return RunResult(path=write_result(path, finished), record=finished)
            finally:
                store.close()

    kwargs = dict(env_kwargs or {})
    if getattr(factory, "needs_checkpoints", False) is True and "keep_checkpoints" not in kwargs:
        kwargs["keep_checkpoints"] = str(path.parent / "checkpoints")
    try:
        env = make_env(env_id, preset, budget, kwargs)
    except BaseException:
        if store is not None:
            store.close()
        raise
    try:
        if store is None:
            discard_store(spath)  # --no-resume, or nothing there
            store = RunStore.open(spath, config)
        with _round_executor(env_id, executor) as round_executor:
            return _run_episode(
                config,
                env,
                factory,
                store,
                path,
                agent_config,
                progress=progress,
                say=say,
                executor=round_executor,
                budget_seconds=budget_seconds,
            )
    finally:
        if store is not None:
            store.close()
        try:
            env.close()
        except Exception as close_exc:
            warnings.warn(f"env.close() failed: {close_exc}", RuntimeWarning, stacklevel=2)


def _check_same_table(store: RunStore, base: Any) -> None:
    """Refuse to resume a table / surrogate run on another version of its table.

    Raises:
        derl_bench.store.TableChangedError: If the stored meta-steps were answered by a table
            whose SHA-256 (``info["answer"]["table_sha256"]``) differs from the env's.
    """
    source = getattr(base, "fidelity_source", None)
    if not source:
        return
    stored = {
        step.info["answer"].get("table_sha256")
        for step in store.steps
        if isinstance(step.info.get("answer"), dict)
    } - {None}
    changed = sorted(stored - {source["sha256"]})
    if changed:
        raise TableChangedError(store.path, changed[0], source["sha256"])


def _run_episode(
    run_config: RunConfig,
    env: gymnasium.Env,
    factory: Callable[..., Any],
    store: RunStore,
    path: Path,
    agent_config: Mapping[str, Any] | None,
    *,
    progress: bool,
    say: Callable[[str], None],
    executor: Any = None,
    budget_seconds: float | None = None,
) -> RunResult:
    """The body of :func:`run` once the env is made and the store is open."""
    env_id, agent_name = run_config.env_id, run_config.agent
    budget, seed = run_config.budget, run_config.seed
    # -- the agent, built for the env's primitives ------------------------------------------------
    spec = json.loads(env.spec.to_json()) if env.spec is not None else {}
    base = env.unwrapped
    primitive_names = tuple(base.primitive_set.names)
    config = {**(agent_config or {}), "primitive_names": list(primitive_names), "seed": seed}
    agent = factory(**{**config, "primitive_names": primitive_names})
    agent_record: AgentRecord = {"name": agent_name, "config": _jsonable(config)}
    if isinstance(getattr(agent, "config", None), Mapping):
        agent_record["config"] = _jsonable(dict(agent.config))

    # -- the meta-steps: replayed from the store where stored, else trained ----------------------
    meta_steps = ResumableSteps(store, env)
    if store.existed:
        _check_same_table(store, base)
        store.note_resume()
        say(f"resuming: {len(meta_steps.stored)} of {budget} meta-steps done ({store.path})")
    steps: list[MetaStepRecord] = []
    checkpoints: dict[int, str] = {}  # meta-step index -> info["checkpoint_id"] (DERL-pop)
    test: Mapping[str, Any] | None = None
    clock = {"simulated": 0.0, "agent": 0.0, "update": 0.0, "updates": 0, "stopped": False}

    def clock_record() -> ClockRecord:
        return ClockRecord(
            simulated_seconds=clock["simulated"] + clock["agent"],
            agent_seconds=clock["agent"],
            budget_seconds=budget_seconds,
            stopped_by_budget=bool(clock["stopped"]),
            update_seconds=clock["update"],
            updates=int(clock["updates"]),
            wall_seconds=store.active_seconds(utc_now()),
        )

    def over_budget() -> bool:
        return budget_seconds is not None and clock["simulated"] + clock["agent"] >= budget_seconds

    def record(status: Literal["finished", "failed"], error: str | None) -> ResultRecord:
        return result_record(
            env_id=env_id,
            env_spec=spec,
            preset=str(getattr(base, "preset", run_config.preset)),
            agent=agent_record,
            seed=seed,
            budget=budget,
            proposals_per_step=run_config.proposals_per_step,
            meta_steps=steps,
            test=test,
            started_at=store.started_at,
            torch_threads=getattr(base, "torch_threads", None),
            status=status,
            error=error,
            fidelity=str(getattr(base, "fidelity", "live")),
            clock=clock_record(),
            fidelity_source=getattr(base, "fidelity_source", None),
            data_hashes=getattr(base, "data_hashes", None),
        )

    description = f"{env_id} · {agent_name} · seed {seed}"
    try:
        with progress_bar(progress, budget, description) as bar:
            observation, _ = env.reset(seed=seed)
            view = ObservationView(observation)
            if meta_steps.stored and not view.builds_history:
                warnings.warn(
                    f"{env_id}'s observation is not in the MetaRewardEnv format, so the runner "
                    f"cannot rebuild it; after this resume the agent's observation lacks the "
                    f"{len(meta_steps.stored)} replayed meta-steps",
                    RuntimeWarning,
                    stacklevel=3,
                )

            # -- the outer loop: propose a round, step each proposal, update the agent -------
            stop = False
            while not stop and len(steps) < budget:
                n = min(run_config.proposals_per_step, budget - len(steps))
                warm_start = _WarmStart(agent, base)  # DERL-pop: before the first training
                started = time.perf_counter()
                proposals = list(agent.propose(view.observation, n))[:n]
                clock["agent"] += time.perf_counter() - started
                if not proposals:
                    raise RuntimeError(f"agent {agent_name!r} proposed no meta-reward")
                fresh = [
                    p for i, p in enumerate(proposals) if not meta_steps.is_stored(len(steps) + i)
                ]
                if executor is not None and len(fresh) > 1 and hasattr(base, "prefetch"):
                    warm_start.apply()  # the round's trainings start from it
                    base.prefetch(fresh, executor)  # concurrently; the steps below answer from it
                results: list[StepResult] = []
                for meta_reward in proposals:
                    index = len(steps)
                    replayed = meta_steps.is_stored(index)
                    done = meta_steps.step(index, meta_reward, before_training=warm_start.apply)
                    stop = done.terminated or done.truncated
                    step = meta_step_record(index, meta_reward, done.reward, done.info)
                    steps.append(step)
                    if done.info.get("checkpoint_id"):
                        checkpoints[index] = str(done.info["checkpoint_id"])
                    charged = step["cost"].get("simulated_seconds", step["cost"]["wall_seconds"])
                    clock["simulated"] += float(charged)
                    if over_budget():
                        clock["stopped"] = True
                        stop = True
                    if replayed:
                        bar.replayed(1)
                    else:
                        view.env_stepped(meta_steps.last_observation)
                    view.append(meta_reward, done.reward, done.info)
                    results.append(
                        StepResult(meta_reward=meta_reward, reward=done.reward, info=done.info)
                    )
                    if not replayed:
                        bar.step(
                            meta_reward, step["validation_success"], step["cost"]["wall_seconds"]
                        )
                    if stop:
                        break
                started = time.perf_counter()
                agent.update(results)
                spent = time.perf_counter() - started
                clock["agent"] += spent
                clock["update"] += spent
                clock["updates"] += 1

            # -- the test: a fresh policy under the best meta-reward, once -------------------
            best = best_meta_step(steps)
            if best is not None:
                stored_test = store.test
                if stored_test is not None and stored_test.meta_reward == best["meta_reward"]:
                    test = stored_test.result
                else:
                    bar.note(f"test: training a fresh policy under {best['canonical']}")
                    test = _jsonable(dict(base.evaluate_test(best["meta_reward"])))
                    store.set_test(best["meta_reward"], test)
                # DERL-pop: also the chained policy as it is (the paper's number)
                chosen = best_step(steps)  # the step best_meta_step summarised
                chained = None if chosen is None else checkpoints.get(chosen["index"])
                warm_starts = hasattr(agent, "next_warm_start")
                if chained is not None and warm_starts and "chained" not in test:
                    bar.note("test: scoring the chained (warm-started) policy as it is")
                    scored = _jsonable(dict(base.evaluate_checkpoint_test(chained)))
                    test = {**test, "chained": scored}
                    store.set_test(best["meta_reward"], test)
    except BaseException as exc:
        _record_failure(store, path, record, exc)
        raise
    final = record("finished", None)
    written = _write(path, final)
    store.finish(final)
    return RunResult(path=written, record=final)


def _record_failure(
    store: RunStore,
    path: Path,
    record: Callable[[Literal["finished", "failed"], str | None], ResultRecord],
    exc: BaseException,
) -> None:
    """Mark the store failed and write the failed run's result file (warn if either fails)."""
    error = _error_text(exc)
    try:
        store.mark_failed(error)
    except Exception as store_exc:
        warnings.warn(
            f"could not mark the run failed in {store.path}: {store_exc}",
            RuntimeWarning,
            stacklevel=4,
        )
    try:
        _write(path, record("failed", error))
    except Exception as write_exc:  # keep the original error, report this one
        warnings.warn(
            f"could not write the failed run's result to {path}: {write_exc}",
            RuntimeWarning,
            stacklevel=4,
        )


def run_many(
    env_id: str,
    agent_names: Sequence[str],
    seeds: Sequence[int],
    *,
    budget: int,
    preset: str,
    proposals_per_step: int,
    out_dir: str | Path,
    progress: bool = True,
    resume: bool = True,
    notify: Callable[[str], None] | None = None,
    on_run_start: Callable[[str, int], None] | None = None,
    on_run_end: Callable[[RunResult], None] | None = None,
    executor: str | None = "sync",
    env_kwargs: Mapping[str, Any] | None = None,
    budget_seconds: float | None = None,
    jobs: int = 1,
) -> list[RunResult]:
    """Run every agent on ``env_id`` with every seed (agents outer, seeds inner).

    Each run is :func:`run` with the same arguments. With ``jobs == 1`` they run one by one
    and the first failure propagates (the runs before it are finished and their files written;
    ``on_run_end`` has seen them). With ``jobs > 1`` up to ``jobs`` runs go side by side, each
    in a ``spawn`` worker process (:func:`derl_bench.run_pool.map_in_pool`), and give the same
    result files, wall times aside (tested): a run's numbers depend only on its arguments (inner
    trainings and the LLM agents pin torch to their own thread counts) and each run keeps its
    own store. Workers show no progress bar, print ``notify``'s messages themselves, and use the
    ``"sync"`` executor where ``executor`` is ``"auto"`` or None (the pool is the parallelism,
    about one core per job). ``on_run_start`` is called as each run is handed to the pool (and
    once more for a failed run, before its error is raised), ``on_run_end`` as runs finish.
    On a failure the runs not started are cancelled, those in flight finish, then the failed
    run's own error is raised with a note naming it; the same call resumes the rest. Worth it
    at the ``table`` and ``surrogate`` fidelities, where an LLM agent's run costs minutes of its
    own sampling and updates; the agent time the simulated clock charges grows if the jobs
    share too few cores.

    Args:
        env_id: Gymnasium id.
        agent_names: Agent registry names.
        seeds: Seeds, one run each.
        budget: Outer budget per run.
        preset: Inner-training preset.
        proposals_per_step: Meta-rewards proposed per agent call.
        out_dir: Root folder of result files.
        progress: Show a progress bar per run.
        resume: As for :func:`run`.
        notify: As for :func:`run`.
        on_run_start: Called with ``(agent_name, seed)`` before each run.
        on_run_end: Called with each finished run's :class:`RunResult`.
        executor: As for :func:`run`.
        env_kwargs: As for :func:`run` (e.g. ``{"fidelity": "surrogate"}``).
        budget_seconds: As for :func:`run`.
        jobs: Runs side by side, >= 1 (an LLM agent's worker holds its language model,
            ~1-2 GB for SmolLM2-135M).

    Returns:
        The finished runs, agents outer and seeds inner.

    Raises:
        ValueError: If ``jobs`` is not an int >= 1.
        derl_bench.run_pool.PoolCallFailedError: If a worker's error could not be sent back
            (the message has its type, text and traceback).
        Exception: Whatever :func:`run` raised for the failing run.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an int >= 1 (runs side by side)")
    pairs = [(agent_name, seed) for agent_name in agent_names for seed in seeds]
    if jobs > 1 and len(pairs) > 1:
        from derl_bench.run_pool import map_in_pool

        common: dict[str, Any] = {
            "budget": budget,
            "preset": preset,
            "proposals_per_step": proposals_per_step,
            "out_dir": out_dir,
            "env_kwargs": dict(env_kwargs) if env_kwargs is not None else None,
            "progress": False,
            "resume": resume,
            "notify": _print_line if notify is not None else None,
            "executor": "sync" if executor in (None, "auto") else executor,
            "budget_seconds": budget_seconds,
        }
        return map_in_pool(
            run,
            [((a, s), dict(common, env_id=env_id, agent_name=a, seed=s)) for a, s in pairs],
            jobs=jobs,
            describe=lambda pair: f"the run of agent {pair[0]!r} with seed {pair[1]}",
            on_start=None if on_run_start is None else lambda pair: on_run_start(*pair),
            on_end=on_run_end,
        )
    results: list[RunResult] = []
    for agent_name in agent_names:
        for seed in seeds:
            if on_run_start is not None:
                on_run_start(agent_name, seed)
            result = run(
                env_id,
                agent_name,
                budget=budget,
                seed=seed,
                preset=preset,
                proposals_per_step=proposals_per_step,
                out_dir=out_dir,
                progress=progress,
                resume=resume,
                notify=notify,
                executor=executor,
                env_kwargs=env_kwargs,
                budget_seconds=budget_seconds,
            )
            results.append(result)
            if on_run_end is not None:
                on_run_end(result)
    return results
