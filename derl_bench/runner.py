"""The outer episode loop: one agent on one MetaRewardEnv with one seed, to one result file.

:func:`run` is what ``derl-bench run`` calls for each seed. It resets the env, lets the agent
propose meta-rewards in groups, steps the env with each (one inner training + validation per
meta-step), feeds the results back to the agent until the outer budget is spent, then trains a
fresh policy under the best meta-reward and evaluates it on the test split once
(``env.unwrapped.evaluate_test``), as DERL does (arXiv 2512.13399v2 §2: only the held-out test
set is reported). The result JSON (:mod:`derl_bench.results`) is written atomically to
``<out_dir>/<env_id>/<agent>/seed<S>.json``.

Resuming: every finished meta-step is committed at once to a SQLite store beside the result
file (``seed<S>.sqlite``, :mod:`derl_bench.store`), and so is the test result. Run the same
command again after a crash, Ctrl-C or ``kill -9`` and the run continues where it stopped: the
agent is rebuilt and asked to propose again round by round, exactly as before, but every
proposal whose meta-step is stored takes the stored result instead of training (the stored
meta-reward must equal the proposal, else :class:`AgentNotDeterministicError`), and the agent's
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

import datetime as _dt
import difflib
import json
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium
import numpy as np

from derl_bench.baselines.base import StepResult, agent_factory
from derl_bench.envs.data import data_hashes
from derl_bench.provenance import provenance
from derl_bench.results import (
    SCHEMA_VERSION,
    MetaStepRecord,
    ResultRecord,
    ResultSchemaError,
    best_meta_step,
    cost_record,
    derl_bench_version,
    finite_or_none,
    git_hash,
    hardware_info,
    meta_step_record,
    sum_costs,
    utc_now,
    validate_result,
    write_result,
)
from derl_bench.store import RunConfig, RunStore, discard_store

__all__ = [
    "AgentNotDeterministicError",
    "RunResult",
    "UnknownEnvError",
    "derl_env_ids",
    "result_path",
    "run",
    "store_path",
]

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


class AgentNotDeterministicError(RuntimeError):
    """On resume, the agent proposed another meta-reward than the stored run at some index."""

    def __init__(self, index: int, proposed: str, stored: str, store: Path) -> None:
        self.index = index
        self.proposed = proposed
        self.stored = stored
        super().__init__(
            f"agent not deterministic: resuming from {store}, the agent proposed {proposed!r} "
            f"for meta-step {index}, but the interrupted run had proposed {stored!r}. Resuming "
            "needs an agent that proposes the same meta-rewards for the same seed and results. "
            "Start the run afresh with --no-resume (or --out elsewhere)."
        )


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


def store_path(out_dir: str | Path, env_id: str, agent_name: str, seed: int) -> Path:
    """Return where :func:`run` keeps the SQLite store of one run (see :mod:`derl_bench.store`).

    Args:
        out_dir: Root folder of result files.
        env_id: Gymnasium id (sanitised as in :func:`result_path`).
        agent_name: Agent registry name (sanitised the same way).
        seed: The run's seed.

    Returns:
        ``<out_dir>/<env_id>/<agent_name>/seed<seed>.sqlite``, beside the result file.
    """
    return result_path(out_dir, env_id, agent_name, seed).with_suffix(".sqlite")


def _check_env_kwargs(preset: str, budget: int, env_kwargs: Mapping[str, Any] | None) -> None:
    clash = sorted({"preset", "budget"} & set(env_kwargs or {}))
    if clash:
        raise ValueError(
            f"env_kwargs must not set {clash}: pass preset={preset!r} and budget={budget!r} "
            "as run() arguments instead"
        )


def _make_env(
    env_id: str, preset: str, budget: int, env_kwargs: Mapping[str, Any] | None
) -> gymnasium.Env:
    import derl_bench  # noqa: F401 - importing the package registers its ids

    _check_env_kwargs(preset, budget, env_kwargs)
    kwargs = dict(env_kwargs or {})
    try:
        return gymnasium.make(env_id, preset=preset, budget=budget, **kwargs)
    except (gymnasium.error.UnregisteredEnv, gymnasium.error.DeprecatedEnv) as exc:
        raise UnknownEnvError(env_id) from exc


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

    def replayed(self, count: int) -> None:
        """Advance over ``count`` meta-steps taken from the store (no line each)."""
        if self._bar is None or count == 0:
            return
        self._done += count
        self._bar.update(self._task, advance=count)

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


_HISTORY_KEYS = ("history_meta_rewards", "history_rewards", "history_length")


class _ObservationView:
    """The agent's observation, built by the runner from the run's history.

    For MetaRewardEnv observations (a mapping with ``history_meta_rewards``,
    ``history_rewards`` and ``history_length``) the history fields are rebuilt from the runner's
    own list of ``(shown text, reward)``, exactly as ``MetaRewardEnv._observation`` builds them,
    on top of the observation ``reset`` returned. Any other observation is passed through.
    """

    def __init__(self, reset_observation: Any) -> None:
        self._template: Mapping[str, Any] | None = None
        if isinstance(reset_observation, Mapping) and all(
            key in reset_observation for key in _HISTORY_KEYS
        ):
            self._template = reset_observation
        self._latest = reset_observation
        self._history: list[tuple[str, float]] = []

    @property
    def builds_history(self) -> bool:
        """Whether the observation is rebuilt by the runner (MetaRewardEnv format)."""
        return self._template is not None

    def append(self, meta_reward: str, reward: float, info: Mapping[str, Any]) -> None:
        # The env shows the canonical form of a valid meta-reward and its (sanitised) text
        # otherwise; info["meta_reward"] is that sanitised text.
        if info.get("valid") and info.get("canonical") is not None:
            shown = str(info["canonical"])
        else:
            shown = str(info.get("meta_reward", meta_reward))
        self._history.append((shown, float(reward)))

    def env_stepped(self, observation: Any) -> None:
        self._latest = observation

    @property
    def observation(self) -> Any:
        if self._template is None:
            return self._latest
        template_rewards = np.asarray(self._template["history_rewards"])
        rewards = np.zeros_like(template_rewards)
        for i, (_, reward) in enumerate(self._history[: rewards.shape[0]]):
            rewards[i] = reward
        return {
            **self._template,
            "history_meta_rewards": tuple(shown for shown, _ in self._history),
            "history_rewards": rewards,
            "history_length": len(self._history),
        }


def _warm_start_hook(agent: Any) -> tuple[bool, Any]:
    """Read ``agent.next_warm_start`` (DERL-pop) if the agent has that attribute."""
    if hasattr(agent, "next_warm_start"):
        return True, agent.next_warm_start
    return False, None


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
    resume: bool = True,
    notify: Callable[[str], None] | None = None,
) -> RunResult:
    """Run one outer episode (or resume an interrupted one) and write its result file.

    The env is made with ``gymnasium.make(env_id, preset=preset, budget=budget, **env_kwargs)``
    and reset with ``seed``; if the agent class sets ``needs_checkpoints = True``, the env also
    gets ``keep_checkpoints="<out_dir>/<env_id>/<agent>/checkpoints"`` unless ``env_kwargs``
    sets it. The agent is ``get_agent(agent_name, primitive_names=..., seed=seed,
    **agent_config)``. Each round it proposes ``min(group_size, remaining)`` meta-rewards; if
    the agent has an attribute ``next_warm_start`` (DERL-pop), its value at the start of the
    round is passed to ``env.unwrapped.set_warm_start`` before the round's first meta-step is
    trained. The env is stepped with each proposal (the agent sees the observation of the
    round's start), then ``agent.update`` gets the round's results. The loop ends when a step
    reports ``truncated`` (or ``terminated``) or ``budget`` meta-steps were taken. The best
    meta-step is the valid one with the highest validation_success (ties: the earliest); the
    test is run once, on it, by ``env.unwrapped.evaluate_test``. The env is closed at the end,
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
        group_size: Meta-rewards proposed per agent call, >= 1.
        out_dir: Root folder of result files.
        env_kwargs: Further keyword arguments for ``gymnasium.make`` (JSON-able; recorded in
            ``env_spec``); must not contain ``preset`` or ``budget``.
        agent_config: Further keyword arguments for the agent.
        progress: Show a rich progress bar (one advance per meta-step).
        resume: Continue the run's store if there is one (default); False discards it.
        notify: Called with one-line status messages (``"resuming: 3 of 8 meta-steps done
            (PATH)"``); None prints them when ``progress`` is on.

    Returns:
        The written result (``status == "finished"``).

    Raises:
        ValueError: If ``budget`` or ``group_size`` is < 1, or ``env_kwargs`` sets ``preset``
            or ``budget``.
        UnknownEnvError: If ``env_id`` is not registered.
        derl_bench.baselines.UnknownAgentError: If ``agent_name`` is not registered.
        derl_bench.store.StoreMismatchError: If the store holds a run with another
            configuration (the message names the field and the fix).
        derl_bench.store.StoreLockedError: If another process is running the same run.
        AgentNotDeterministicError: If, on resume, the agent proposes another meta-reward
            than the stored one.
        ResultSchemaError: If the result breaks the schema (an env contract violation).
        Exception: Whatever the env or the agent raised, after the failed result was written.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1 meta-step, got {budget}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    _check_env_kwargs(preset, budget, env_kwargs)
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
        group_size=group_size,
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
        env = _make_env(env_id, preset, budget, kwargs)
    except BaseException:
        if store is not None:
            store.close()
        raise
    try:
        if store is None:
            discard_store(spath)  # --no-resume, or nothing there
            store = RunStore.open(spath, config)
        return _run_episode(
            env=env,
            factory=factory,
            store=store,
            path=path,
            env_id=env_id,
            agent_name=agent_name,
            budget=budget,
            seed=seed,
            preset=preset,
            group_size=group_size,
            agent_config=agent_config,
            progress=progress,
            say=say,
        )
    finally:
        if store is not None:
            store.close()
        try:
            env.close()
        except Exception as close_exc:
            warnings.warn(f"env.close() failed: {close_exc}", RuntimeWarning, stacklevel=2)


def _run_episode(
    *,
    env: gymnasium.Env,
    factory: Callable[..., Any],
    store: RunStore,
    path: Path,
    env_id: str,
    agent_name: str,
    budget: int,
    seed: int,
    preset: str,
    group_size: int,
    agent_config: Mapping[str, Any] | None,
    progress: bool,
    say: Callable[[str], None],
) -> RunResult:
    """The body of :func:`run` once the env is made and the store is open."""
    spec = json.loads(env.spec.to_json()) if env.spec is not None else {}
    base = env.unwrapped
    primitive_names = tuple(base.primitive_set.names)
    config = {**(agent_config or {}), "primitive_names": list(primitive_names), "seed": seed}
    agent = factory(**{**config, "primitive_names": primitive_names})
    agent_record = {"name": agent_name, "config": _jsonable(config)}
    if isinstance(getattr(agent, "config", None), Mapping):
        agent_record["config"] = _jsonable(dict(agent.config))
    stored = store.steps
    if store.existed:
        store.note_resume()
        say(f"resuming: {len(stored)} of {budget} meta-steps done ({store.path})")
    started_at = store.started_at
    steps: list[MetaStepRecord] = []
    test: Mapping[str, Any] | None = None

    def record(status: Literal["finished", "failed"], error: str | None) -> ResultRecord:
        test_cost = None if test is None else cost_record(test["cost"], "evaluate_test()['cost']")
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
            best=best_meta_step(steps),
            test_success=None if test is None else finite_or_none(test["test_success"]),
            n_test=None if test is None else int(test["n_test"]),
            test_cost=test_cost,
            total_cost=sum_costs(costs),
            hardware=hardware_info(),
            provenance=provenance(torch_threads=getattr(base, "torch_threads", None)),
            started_at=started_at,
            finished_at=utc_now(),
            status=status,
            error=error,
        )

    description = f"{env_id} · {agent_name} · seed {seed}"
    try:
        with _progress(progress, budget, description) as bar:
            observation, _ = env.reset(seed=seed)
            view = _ObservationView(observation)
            if stored and not view.builds_history:
                warnings.warn(
                    f"{env_id}'s observation is not in the MetaRewardEnv format, so the runner "
                    f"cannot rebuild it; after this resume the agent's observation lacks the "
                    f"{len(stored)} replayed meta-steps",
                    RuntimeWarning,
                    stacklevel=3,
                )
            stop = False
            while not stop and len(steps) < budget:
                n = min(group_size, budget - len(steps))
                has_warm_start, warm_start = _warm_start_hook(agent)
                warm_start_pending = has_warm_start
                proposals = list(agent.propose(view.observation, n))[:n]
                if not proposals:
                    raise RuntimeError(f"agent {agent_name!r} proposed no meta-reward")
                results: list[StepResult] = []
                for meta_reward in proposals:
                    index = len(steps)
                    if index < len(stored):
                        done = stored[index]
                        if done.meta_reward != meta_reward:
                            raise AgentNotDeterministicError(
                                index, meta_reward, done.meta_reward, store.path
                            )
                        reward, info = done.reward, done.info
                        stop = done.terminated or done.truncated
                        bar.replayed(1)
                    else:
                        if warm_start_pending:
                            base.set_warm_start(warm_start)
                            warm_start_pending = False
                        observation, reward, terminated, truncated, raw_info = env.step(meta_reward)
                        if "meta_step" in raw_info:  # the env counts from 0 after a resume
                            raw_info = {**raw_info, "meta_step": index}
                        done = store.add_step(
                            meta_reward,
                            float(reward),
                            raw_info,
                            terminated=bool(terminated),
                            truncated=bool(truncated),
                        )
                        reward, info = done.reward, done.info
                        stop = done.terminated or done.truncated
                        view.env_stepped(observation)
                    step = meta_step_record(index, meta_reward, reward, info)
                    steps.append(step)
                    view.append(meta_reward, reward, info)
                    results.append(StepResult(meta_reward=meta_reward, reward=reward, info=info))
                    if index >= len(stored):
                        bar.step(
                            meta_reward, step["validation_success"], step["cost"]["wall_seconds"]
                        )
                    if stop:
                        break
                agent.update(results)
            best = best_meta_step(steps)
            if best is not None:
                stored_test = store.test
                if stored_test is not None and stored_test.meta_reward == best["meta_reward"]:
                    test = stored_test.result
                else:
                    bar.note(f"test: training a fresh policy under {best['canonical']}")
                    test = _jsonable(dict(base.evaluate_test(best["meta_reward"])))
                    store.set_test(best["meta_reward"], test)
    except BaseException as exc:
        error = _error_text(exc)
        try:
            store.mark_failed(error)
        except Exception as store_exc:
            warnings.warn(
                f"could not mark the run failed in {store.path}: {store_exc}",
                RuntimeWarning,
                stacklevel=3,
            )
        try:
            _write(path, record("failed", error))
        except Exception as write_exc:  # keep the original error, report this one
            warnings.warn(
                f"could not write the failed run's result to {path}: {write_exc}",
                RuntimeWarning,
                stacklevel=3,
            )
        raise
    final = record("finished", None)
    written = _write(path, final)
    store.finish(final)
    return RunResult(path=written, record=final)
