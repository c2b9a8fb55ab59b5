# Over 450 lines: one typer command per subcommand, each with its options, help and examples.
"""The ``derl-bench`` command line: ``run``, ``compare``, ``table``, ``ls``, ``validate``, ``plot``.

``leaderboard validate | render | pack`` handles leaderboard submissions.

``derl-bench run`` with no options is the benchmark's main job: genetic programming over
meta-rewards (agent :data:`DEFAULT_AGENT`) on :data:`DEFAULT_ENV` for DERL's full outer budget
(:data:`DEFAULT_BUDGET` meta-steps), seed 0, preset :data:`MAIN_JOB_PRESET`, at the fidelity
:data:`MAIN_JOB_FIDELITY`, its best meta-reward then confirmed by one live meta-step. Heavy
modules (gymnasium envs, torch) are imported only by the command that needs them, so ``--help``
and ``ls`` stay fast.

Runs are resumable: ``derl-bench run`` continues an interrupted run of the same command from its
SQLite store (``--no-resume`` starts afresh); see :mod:`derl_bench.runner`.

Exit codes: 0 success; 1 ``validate`` found an invalid file; 2 a usage error (unknown env id,
agent, preset or primitive set, a missing or corrupt data file, bad option values, a run store
that belongs to another command or is in use, an agent that cannot be resumed, no result file
to plot); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from derl_bench.runner import RunResult

__all__ = [
    "DEFAULT_AGENT",
    "DEFAULT_BUDGET",
    "DEFAULT_ENV",
    "DEFAULT_OUT",
    "DEFAULT_PROPOSALS_PER_STEP",
    "DEFAULT_SEEDS",
    "MAIN_JOB_FIDELITY",
    "MAIN_JOB_PRESET",
    "app",
]

MAIN_JOB_PRESET = "cpu"
"""Inner-training preset of ``derl-bench run`` without ``--preset``: ``cpu``, the preset an env
made without ``preset=`` uses (:data:`derl_bench.inner.base.DEFAULT_PRESET`), so a run's numbers
are the ones ``gymnasium.make(id)`` gives. The main job stays fast because it answers from the
``DERL-CartPole-v0`` ``cpu`` surrogate and trains only its best meta-reward live (a CartPole
``cpu`` meta-step takes seconds). A live ``cpu`` meta-step of a text or math id takes minutes
(GSM8K: over 14); ``--preset smoke`` is the pipeline check."""
DEFAULT_ENV = "DERL-CartPole-v0"
"""Env id of the main job."""
DEFAULT_AGENT = "evolution"
"""Outer agent of the main job: genetic programming over meta-reward expressions."""
DEFAULT_BUDGET = 160
"""Outer budget of the main job, in meta-steps: DERL's full outer budget (20 iterations x 8)."""
DEFAULT_SEEDS = "0"
"""Seeds of the main job, comma-separated."""
DEFAULT_PROPOSALS_PER_STEP = 8
"""Meta-rewards proposed per agent call (``--proposals``): the paper's 8 per outer step."""
MAIN_JOB_FIDELITY = "auto"
"""Fidelity of ``run`` without ``--fidelity``: ``auto`` is the surrogate where a table of at least
:data:`AUTO_SURROGATE_MIN_KEYS` meta-rewards with a measured surrogate ships for the (env id,
preset) (``derl_bench/fidelity/tables``; the main job's CartPole ``cpu``), so 160 meta-steps take
seconds and the best meta-reward is then confirmed by one live meta-step (``--confirm-live``);
else ``live``."""
AUTO_SURROGATE_MIN_KEYS = 20
"""Distinct effective meta-rewards a shipped table needs before ``--fidelity auto`` answers from
its surrogate. A signal check also leaves a table (its nine panel rewards); a regressor fitted on
nine points is not a stand-in for training, so such ids stay ``live`` unless asked otherwise."""
PAPER_PROPOSALS_PER_STEP = 8
"""``--proposals`` default of ``derl`` and ``derl_pop``: the paper's outer group, n = 8
(official ``constrained_rollout.py``). Full budget: 20 outer iterations (official
``TOTAL_ITERATIONS = 20``), i.e. ``--budget 160``."""
_PAPER_GROUP_AGENTS = frozenset({"derl", "derl_pop"})
DEFAULT_OUT = Path("runs")
"""Root folder of result files (relative to the working directory)."""

_HELP = """\
derl_bench: a Gymnasium benchmark for automatic reward design (after DERL, arXiv 2512.13399).

Examples:

  derl-bench run                               # main job: evolution on CartPole's surrogate

  derl-bench run --seeds 0,1,2                 # the same, three seeds

  derl-bench ls envs ; derl-bench ls primitives ; derl-bench ls agents

  derl-bench validate runs/DERL-CartPole-v0/evolution/seed0.json

  derl-bench plot runs                         # PNGs into runs/plots

  derl-bench compare                           # every agent x seeds 0,1,2 on DERL-CartPole-v0

  derl-bench table runs/DERL-CartPole-v0       # Markdown table from the result files
"""

_RUN_EPILOG = """\
Examples:

  derl-bench run

  derl-bench run --env DERL-MATH-v0 --preset smoke --budget 6 --seeds 0,1

  derl-bench run --data-dir ../shared/data --out results --no-progress

  derl-bench run --budget 8 --seeds 0,1,2   # interrupted? the same command resumes it

Each seed writes OUT/ENV/AGENT/seed<S>.json; check it with `derl-bench validate`. Finished
meta-steps are kept in OUT/ENV/AGENT/seed<S>.sqlite, so rerunning an interrupted command
continues where it stopped (--no-resume starts afresh).
"""

app = typer.Typer(
    name="derl-bench",
    help=_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
ls_app = typer.Typer(
    help="List what derl_bench offers: env ids, primitive sets, outer agents.",
    no_args_is_help=True,
)
app.add_typer(ls_app, name="ls")


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and console.width < 120:
        # Logs and pipes: room for the results table instead of rich's 80-column default.
        console = Console(highlight=False, width=120)
    return console


def _stderr(message: str) -> None:
    """Print one message to stderr without rich's line wrapping.

    A wrapped message breaks the commands it suggests (a user copies them) and their paths.
    """
    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


def _fail(message: str, code: int = 2) -> NoReturn:
    _stderr(f"Error: {message}")
    raise typer.Exit(code)


def _require_env(env_id: str) -> None:
    """Exit 2 with the close ids and the registered ones if ``env_id`` is not registered."""
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.run_files import UnknownEnvError

    if env_id not in gymnasium.registry:
        _fail(UnknownEnvError(env_id).message)


def _check_preset(value: str) -> str:
    from derl_bench.inner.base import check_preset_name

    try:
        return check_preset_name(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _proposals(
    proposals: int | None, group_size: int | None, agents: list[str], default: int
) -> int:
    """``--proposals``, or the deprecated ``--group-size`` if that was given (with a warning).

    Unset: 8 (the paper's group) when an agent is ``derl`` or ``derl_pop``, else ``default``.
    """
    if group_size is None:
        if proposals is not None:
            return proposals
        return PAPER_PROPOSALS_PER_STEP if _PAPER_GROUP_AGENTS & set(agents) else default
    _stderr("Warning: --group-size is deprecated (it is not a GRPO group size); use --proposals.")
    return group_size


_GROUP_SIZE_OPTION = typer.Option(
    "--group-size", min=1, hidden=True, help="Deprecated alias of --proposals."
)


def _check_executor(value: str) -> str:
    if value not in ("auto", "sync", "process", "ray"):
        raise typer.BadParameter(
            f"{value!r} is not an executor; choose auto, sync, process or ray."
        )
    return value


_EXECUTOR_OPTION = typer.Option(
    callback=_check_executor,
    help="How a round's proposals train: auto (a process pool when more than one core is free), "
    "sync, process or ray. Every executor gives the same numbers.",
)

_JOBS_OPTION = typer.Option(
    "--jobs",
    min=1,
    help="Runs (agent, seed) side by side in worker processes, about one core each; the "
    "same result files as one by one. Worth it at the table and surrogate fidelities, where "
    "the LLM agents' own sampling and updates are the cost.",
)


def _parse_seeds(value: str) -> list[int]:
    seeds: list[int] = []
    for part in value.split(","):
        part = part.strip()
        try:
            low, dash, high = part.partition("-") if part[1:].find("-") >= 0 else (part, "", "")
            span = range(int(low), int(high) + 1) if dash else [int(part)]
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a comma-separated list of integers or ranges (e.g. 0,1,2 or 0-9)"
            ) from None
        for seed in span:
            if seed not in seeds:
                seeds.append(seed)
    return seeds


def _check_fidelity(value: str) -> str:
    from derl_bench.fidelity import FIDELITIES

    if value not in FIDELITIES:
        raise typer.BadParameter(f"{value!r} is not a fidelity; choose {', '.join(FIDELITIES)}.")
    return value


_FIDELITY_OPTION = typer.Option(
    callback=_check_fidelity,
    help="How meta-steps are answered: live (train), table (recorded live runs, "
    "derl_bench/fidelity/tables) or surrogate (a regressor fitted on the table).",
)
_NOISY_OPTION = typer.Option(
    "--noisy/--no-noisy",
    help="Surrogate fidelity only: answer each (meta-reward, seed) with a draw from the "
    "predicted seed spread, N(mean, std) clipped to [0, 1], instead of the predicted mean "
    "(live meta-steps vary over seeds; the mean does not).",
)
_BUDGET_SECONDS_OPTION = typer.Option(
    min=0.001,
    help="Stop a run when its simulated clock (live seconds charged per meta-step, plus the "
    "agent's own propose/update time) reaches this many seconds.",
)


@contextmanager
def _data_dir(path: Path | None) -> Iterator[None]:
    """Set ``DERL_BENCH_DATA`` to ``path`` for the block (no-op for None)."""
    from derl_bench.envs.data import DATA_ENV_VAR

    if path is None:
        yield
        return
    old = os.environ.get(DATA_ENV_VAR)
    os.environ[DATA_ENV_VAR] = str(path.expanduser().resolve())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(DATA_ENV_VAR, None)
        else:
            os.environ[DATA_ENV_VAR] = old


def _fmt_fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _fmt_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _results_table(results: list[RunResult]) -> Table:
    table = Table(title="derl-bench results")
    table.add_column("env", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    table.add_column("seed", justify="right")
    table.add_column("best meta-reward", overflow="fold", min_width=16)
    table.add_column("validation", justify="right")
    table.add_column("test success", justify="right")
    table.add_column("wall time", justify="right", no_wrap=True)
    table.add_column("distinct", justify="right")
    table.add_column("simulated", justify="right", no_wrap=True)
    for result in results:
        record = result.record
        table.add_row(
            record["env_id"],
            record["agent"]["name"],
            str(record["seed"]),
            result.best_meta_reward or "(no valid meta-reward)",
            _fmt_fraction(result.validation_success),
            _fmt_fraction(result.test_success),
            _fmt_seconds(result.wall_seconds),
            str(record.get("distinct_effective_meta_rewards", "")),
            _fmt_seconds(record["clock"]["simulated_seconds"]) if "clock" in record else "",
        )
    return table


@app.command(epilog=_RUN_EPILOG)
def run(
    env: Annotated[str, typer.Option(help="Gymnasium env id (see `ls envs`).")] = DEFAULT_ENV,
    agent: Annotated[str, typer.Option(help="Outer agent (see `ls agents`).")] = DEFAULT_AGENT,
    budget: Annotated[
        int, typer.Option(min=1, help="Outer budget: meta-steps per run.")
    ] = DEFAULT_BUDGET,
    seeds: Annotated[
        str, typer.Option("--seeds", "--seed", help="Comma-separated seeds; one run per seed.")
    ] = DEFAULT_SEEDS,
    preset: Annotated[
        str,
        typer.Option(
            callback=_check_preset,
            help="Inner-training preset: smoke (seconds), cpu (minutes), paper (GPUs).",
        ),
    ] = MAIN_JOB_PRESET,
    proposals: Annotated[
        int | None,
        typer.Option(
            "--proposals",
            min=1,
            help="Meta-rewards proposed per agent call [default: 8, the paper's group of "
            "meta-rewards per outer step].",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Root folder of result files.")] = DEFAULT_OUT,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="Data folder holding gsm8k/ and math/ (sets DERL_BENCH_DATA for the run).",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="Continue an interrupted run of the same command from its store "
            "(OUT/ENV/AGENT/seed<S>.sqlite); --no-resume discards the store and starts afresh.",
        ),
    ] = True,
    group_size: Annotated[int | None, _GROUP_SIZE_OPTION] = None,
    executor: Annotated[str, _EXECUTOR_OPTION] = "auto",
    fidelity: Annotated[
        str,
        typer.Option(
            help="How meta-steps are answered: live (train), table (recorded live runs), "
            "surrogate (a regressor fitted on the table), or auto: surrogate where a table "
            f"of at least {AUTO_SURROGATE_MIN_KEYS} meta-rewards ships for the env id and "
            "preset, else live.",
        ),
    ] = MAIN_JOB_FIDELITY,
    budget_seconds: Annotated[float | None, _BUDGET_SECONDS_OPTION] = None,
    noisy: Annotated[bool, _NOISY_OPTION] = False,
    confirm_live: Annotated[
        bool,
        typer.Option(
            "--confirm-live/--no-confirm-live",
            help="At the table or surrogate fidelity, train each run's best meta-reward once "
            "live (one real meta-step, same preset and seed) and print both numbers.",
        ),
    ] = True,
    jobs: Annotated[int, _JOBS_OPTION] = 1,
) -> None:
    """Run an outer agent on a MetaRewardEnv (one run per seed); print a results table.

    The table's "distinct" column counts the distinct effective meta-rewards a run tried
    (translations of one meta-reward count once where the inner trainer ignores them);
    "simulated" is its simulated clock (live seconds charged plus the agent's own time).

    Without options this is the main job (about a minute on 2 CPU cores): genetic
    programming over meta-reward expressions on CartPole for DERL's full outer budget
    (160 meta-steps, 8 per round) at the surrogate fidelity (a regressor fitted on recorded
    live GRPO trainings, preset cpu); its best-so-far trajectory is printed and plotted,
    and its best meta-reward is trained once for real (a live meta-step) to confirm it.
    ``--fidelity live --env DERL-GSM8K-v0 --preset smoke --agent heuristic --budget 3`` trains
    every meta-step for real instead.

    Every finished meta-step is saved at once; run the same command again after an
    interruption and it resumes ("resuming: k of N meta-steps done").
    """
    if env == DEFAULT_ENV:
        # The main job's id is v0 on purpose (its tables ship under v0; v1 trains 40 instead of
        # 20 iterations at `cpu`, 6x slower): gymnasium's "out of date, consider v1" would read
        # as a fault to a newcomer.
        warnings.filterwarnings("ignore", message=f".*{DEFAULT_ENV} is out of date")
    fidelity = _resolve_fidelity(fidelity, env, preset)
    per_round = _proposals(proposals, group_size, [agent], DEFAULT_PROPOSALS_PER_STEP)
    results = _run_many(
        env,
        [agent],
        _parse_seeds(seeds),
        budget=budget,
        preset=preset,
        proposals_per_step=per_round,
        out=out,
        data_dir=data_dir,
        progress=progress,
        resume=resume,
        executor=executor,
        fidelity=fidelity,
        budget_seconds=budget_seconds,
        noisy=noisy,
        jobs=jobs,
    )
    console = _stdout()
    for result in results:
        _print_trajectory(console, result, per_round)
    console.print(_results_table(results))
    console.print("Result files:")
    for result in results:
        console.print(f"  {result.path}", markup=False)
    if fidelity != "live":
        _plot_runs(console, out / env / agent)
    if fidelity != "live" and confirm_live:
        for result in results:
            _confirm_live(console, result, env=env, preset=preset, data_dir=data_dir)


def _resolve_fidelity(value: str, env: str, preset: str) -> str:
    """Resolve ``--fidelity``; ``auto`` -> surrogate or live, said on stderr.

    ``auto`` is ``surrogate`` if a table of at least :data:`AUTO_SURROGATE_MIN_KEYS` distinct
    meta-rewards ships for (env, preset) and its surrogate's held-out error is recorded
    (``meta.json``'s ``surrogate_heldout``, written by ``derl-bench fidelity report``), else
    ``live``: a table being built crosses the key count before anyone has measured its surrogate.
    """
    if value != "auto":
        return _check_fidelity(value)
    from derl_bench.fidelity.table import FidelityTable, TableMissing

    try:
        table = FidelityTable.load(env, preset)
        n_keys: int | None = len(table.keys)
    except TableMissing:
        n_keys = None
    heldout = None if n_keys is None else table.surrogate_heldout
    enough = n_keys is not None and n_keys >= AUTO_SURROGATE_MIN_KEYS
    chosen = "surrogate" if enough and heldout is not None else "live"
    if n_keys is None:
        reason = "no table ships for it"
    elif not enough:
        reason = (
            f"its shipped table holds {n_keys} meta-rewards, fewer than {AUTO_SURROGATE_MIN_KEYS}"
        )
    elif heldout is None:
        reason = (
            f"its shipped table holds {n_keys} meta-rewards, but its surrogate's held-out error "
            f"is not measured yet: `derl-bench fidelity report --env {env} --preset {preset}` "
            "measures and records it"
        )
    else:
        on = heldout.get("keys")
        reason = (
            f"its shipped table holds {n_keys} meta-rewards, and its surrogate ranks held-out "
            f"ones with Spearman rho {heldout['spearman_rho']:.3f}"
            + ("" if on == n_keys else f" (measured on {on} of them)")
            + f", see {heldout.get('report')}"
        )
    _stderr(
        f"fidelity: {chosen} ({env}, preset {preset}: {reason}; --fidelity live|table|surrogate "
        "to choose)"
    )
    return chosen


def _print_trajectory(console: Console, result: RunResult, per_round: int) -> None:
    """Print a run's best-so-far validation success after each round of proposals."""
    steps = result.record["meta_steps"]
    if not steps:
        return
    console.print(
        f"{result.record['agent']['name']} on {result.record['env_id']}, seed "
        f"{result.record['seed']}: best-so-far validation success per round of {per_round}",
        markup=False,
    )
    best, best_text = None, ""
    for step in steps:
        value = step["validation_success"]
        if value is not None and (best is None or value > best):
            best, best_text = value, step["canonical"] or step["meta_reward"]
        if (step["index"] + 1) % per_round == 0 or step is steps[-1]:
            bar = "#" * round(20 * (best or 0.0))
            console.print(
                f"  meta-step {step['index'] + 1:>4}  {_fmt_fraction(best)}  {bar:<20}  "
                f"{best_text}",
                markup=False,
                soft_wrap=True,
            )


def _plot_runs(console: Console, run_dir: Path) -> None:
    """Write the trajectory plots of the runs under ``run_dir`` (``derl-bench plot``)."""
    from derl_bench.report.plots import plot_run_dir

    for path in plot_run_dir(run_dir):
        console.print(f"plot: {path}", markup=False)


def _confirm_live(
    console: Console, result: RunResult, *, env: str, preset: str, data_dir: Path | None
) -> None:
    """Train a run's best meta-reward in one live meta-step (same preset, seed); print both."""
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)

    best = result.best_meta_reward
    if best is None:
        return
    seed = result.record["seed"]
    with _data_dir(data_dir):
        live = gymnasium.make(env, preset=preset, budget=1)
        try:
            live.reset(seed=seed)
            _, reward, _, _, info = live.step(best)
        finally:
            live.close()
    console.print(
        f"live check of the best meta-reward {best!r} (seed {seed}, preset {preset}): "
        f"{result.record.get('fidelity', 'live')} validation success "
        f"{_fmt_fraction(result.validation_success)}, live {_fmt_fraction(float(reward))} "
        f"(one real GRPO training, {_fmt_seconds(info['cost']['wall_seconds'])})",
        markup=False,
        soft_wrap=True,
    )


def _run_many(
    env: str,
    agents: list[str],
    seed_list: list[int],
    *,
    budget: int,
    preset: str,
    proposals_per_step: int,
    out: Path,
    data_dir: Path | None,
    progress: bool,
    resume: bool,
    executor: str = "auto",
    fidelity: str = "live",
    budget_seconds: float | None = None,
    noisy: bool = False,
    jobs: int = 1,
) -> list[RunResult]:
    """Run every (agent, seed); on a failure print what finished and exit with its code.

    The runs are :func:`derl_bench.runner.run_many`'s (``jobs`` side by side); its callbacks
    track what finished.
    """
    if noisy and fidelity != "surrogate":
        _fail(
            f"--noisy draws from the surrogate's predicted seed spread; the fidelity here is "
            f"{fidelity}. Add --fidelity surrogate, or drop --noisy."
        )
    env_kwargs: dict[str, Any] | None = None
    if fidelity != "live":
        env_kwargs = {"fidelity": fidelity, **({"noisy": True} if noisy else {})}
    from derl_bench.baselines import UnknownAgentError
    from derl_bench.envs.data import ChecksumMismatch, DataFileMissing
    from derl_bench.fidelity.table import TableKeyMissing, TableMissing, TestSuccessMissing
    from derl_bench.runner import AgentNotDeterministicError, UnknownEnvError, result_path, run_many
    from derl_bench.store import StoreError, StoreMismatchError

    console = _stdout()
    results: list[RunResult] = []
    current = [(agents[0], seed_list[0])]

    def partial_note() -> None:
        if results:
            console.print(_results_table(results))
        path = result_path(out, env, *current[0])
        if path.exists():
            _stderr(f"The failed run's result (finished meta-steps) is in {path}")

    with _data_dir(data_dir):
        try:
            run_many(
                env,
                agents,
                seed_list,
                jobs=jobs,
                budget=budget,
                preset=preset,
                proposals_per_step=proposals_per_step,
                out_dir=out,
                progress=progress,
                resume=resume,
                notify=lambda text: console.print(text, markup=False),
                on_run_start=lambda agent, seed: current.__setitem__(0, (agent, seed)),
                on_run_end=results.append,
                executor=executor,
                env_kwargs=env_kwargs,
                budget_seconds=budget_seconds,
            )
        except (UnknownEnvError, UnknownAgentError, TableMissing) as exc:
            _fail(str(exc))
        except (TableKeyMissing, TestSuccessMissing) as exc:
            partial_note()
            _fail(str(exc))
        except (StoreMismatchError, StoreError) as exc:  # nothing of this seed ran
            if results:
                console.print(_results_table(results))
            _fail(str(exc))
        except AgentNotDeterministicError as exc:
            partial_note()
            _fail(str(exc))
        except (DataFileMissing, ChecksumMismatch) as exc:
            partial_note()
            _fail(str(exc))
        except KeyboardInterrupt:
            partial_note()
            _fail("interrupted", code=130)
        except BaseException:
            partial_note()
            raise
    return results


_COMPARE_EPILOG = """Examples:

  derl-bench compare                      # every agent, DERL-CartPole-v0, smoke, seeds 0,1,2

  derl-bench compare --agents heuristic,random,derl --budget 6 --seeds 0,1

  derl-bench compare --fidelity surrogate --preset cpu --budget 160 --seeds 0-9 --jobs 8

Writes OUT/ENV/AGENT/seed<S>.json per run, then OUT/ENV/table.md (mean ± std over seeds) and
the plots in OUT/ENV/plots. Interrupted? The same command resumes every unfinished run.
"""


@app.command(epilog=_COMPARE_EPILOG)
def compare(
    env: Annotated[
        str, typer.Option(help="Gymnasium env id (see `ls envs`).")
    ] = "DERL-CartPole-v0",
    agents: Annotated[
        str, typer.Option(help="Comma-separated agents, or 'all' (see `ls agents`).")
    ] = "all",
    budget: Annotated[int, typer.Option(min=1, help="Outer budget: meta-steps per run.")] = 8,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    preset: Annotated[
        str, typer.Option(callback=_check_preset, help="Inner-training preset.")
    ] = "smoke",
    proposals: Annotated[
        int | None,
        typer.Option(
            "--proposals",
            min=1,
            help="Meta-rewards proposed per agent call [default: 8 if an agent is derl or "
            "derl_pop, else 4].",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Root folder of result files.")] = DEFAULT_OUT,
    data_dir: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="Data folder.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = False,
    group_size: Annotated[int | None, _GROUP_SIZE_OPTION] = None,
    executor: Annotated[str, _EXECUTOR_OPTION] = "auto",
    fidelity: Annotated[str, _FIDELITY_OPTION] = "live",
    budget_seconds: Annotated[float | None, _BUDGET_SECONDS_OPTION] = None,
    noisy: Annotated[bool, _NOISY_OPTION] = False,
    jobs: Annotated[int, _JOBS_OPTION] = 1,
) -> None:
    """Compare outer agents at equal budget over several seeds: runs, table, plots.

    Every agent gets the same env, preset, budget, proposals per step and seeds; the table gives the
    best validation success and the test success of the best meta-reward, mean ± std over
    seeds, generated from the result files.
    """
    from derl_bench.baselines import list_agents
    from derl_bench.report.plots import plot_run_dir
    from derl_bench.report.tables import table_for_run_dir

    names = list_agents() if agents.strip() == "all" else [a.strip() for a in agents.split(",")]
    names = list(dict.fromkeys(n for n in names if n))  # each agent once, in the order given
    if not names:
        _fail("--agents is empty; give agent names or 'all'")
    _run_many(
        env,
        names,
        _parse_seeds(seeds),
        budget=budget,
        preset=preset,
        proposals_per_step=_proposals(proposals, group_size, names, 4),
        out=out,
        data_dir=data_dir,
        progress=progress,
        resume=True,
        executor=executor,
        fidelity=fidelity,
        budget_seconds=budget_seconds,
        noisy=noisy,
        jobs=jobs,
    )
    env_dir = out / env
    table = table_for_run_dir(env_dir)
    (env_dir / "table.md").write_text(table)
    written = plot_run_dir(env_dir, env_dir / "plots")
    console = _stdout()
    typer.echo(table)  # plain text: rich would wrap the Markdown rows
    console.print(f"wrote {env_dir / 'table.md'}", markup=False)
    for path in written:
        console.print(f"wrote {path}", markup=False)


@app.command()
def signal(
    env: Annotated[str, typer.Option(help="Gymnasium env id.")] = "DERL-CartPole-v0",
    preset: Annotated[
        str, typer.Option(callback=_check_preset, help="Inner-training preset.")
    ] = "cpu",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    meta_rewards: Annotated[
        str | None,
        typer.Option(
            help="Semicolon-separated meta-rewards (default: the 9-reward panel, "
            "derl_bench.signal_check.SIGNAL_META_REWARDS, ending with the bad -g1)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder; writes OUT/ENV-PRESET.md and .json")] = Path(
        "docs/signal"
    ),
    executor: Annotated[
        str,
        typer.Option(
            help="sync | process | ray: how each seed's batch of meta-steps runs (same numbers)."
        ),
    ] = "sync",
    inner: Annotated[
        list[str] | None,
        typer.Option(
            help="Inner setting override FIELD=JSON, repeatable (e.g. --inner max_steps=2); "
            "the table then no longer describes the preset as published."
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Train every cell again (default: reuse the table's entries made under this "
            "lock).",
        ),
    ] = False,
    table_dir: Annotated[
        Path | None,
        typer.Option(
            help="Root of table folders the cells are kept in (default: the shipped tables, "
            "derl_bench/fidelity/tables, as `fidelity build`)."
        ),
    ] = None,
) -> None:
    """Check that a domain separates meta-rewards: validation success per meta-reward and seed.

    Scores the untrained policy, then trains each meta-reward of the panel (outcome only,
    outcome + format, the average, step scores only, one step-score third, a product, a ratio,
    an unequal linear mix, and the deliberately bad -g1), one meta-step each per seed, and
    prints a Markdown table (mean ± std over seeds) with the SNR, a one-way ANOVA and whether
    -g1 falls below the untrained policy; also writes it with a JSON copy (statistics, lock hash,
    validation primitive means) to OUT/ENV-PRESET.md and .json (default OUT: docs/signal).
    Each finished cell is at once an entry of the (env id, preset) fidelity table (family
    "panel", no test success; with --inner overrides a folder of its own): running the same
    command again resumes from it, and `fidelity build` / the table and surrogate fidelities use
    it. Only entries made under the current lock are reused.

    Example: derl-bench signal --env DERL-CartPole-v0 --preset cpu --seeds 0,1,2 --executor process
    """
    from derl_bench.signal_check import (
        SIGNAL_META_REWARDS,
        signal_markdown,
        signal_table,
        write_signal,
    )

    _require_env(env)
    overrides: dict[str, object] = {}
    for item in inner or []:
        field, sep, value = item.partition("=")
        try:
            if not sep or not field.strip():
                raise ValueError
            overrides[field.strip()] = json.loads(value)
        except ValueError:
            raise typer.BadParameter(
                f"--inner {item!r} is not FIELD=JSON (e.g. --inner max_steps=2 or "
                "--inner policy_kwargs='{\"hidden\": 32}')",
                param_hint="--inner",
            ) from None
    chosen = (
        [m.strip() for m in meta_rewards.split(";") if m.strip()]
        if meta_rewards
        else list(SIGNAL_META_REWARDS)
    )
    if executor not in ("sync", "process", "ray"):
        raise typer.BadParameter(
            f"{executor!r} is not an executor; choose sync, process or ray.",
            param_hint="--executor",
        )
    console = _stdout()
    started = time.perf_counter()
    from derl_bench.fidelity_build import SignalCells

    env_kwargs = {"inner_overrides": overrides} if overrides else None
    try:
        cells = SignalCells(env, preset, env_kwargs, root=table_dir, fresh=fresh)
        rows = signal_table(
            env,
            preset=preset,
            seeds=_parse_seeds(seeds),
            meta_rewards=chosen,
            env_kwargs=env_kwargs,
            notify=lambda line: console.print(line, markup=False),
            executor=executor,
            store=cells,
            batch_size=2 if executor == "process" else None,
        )
    except ValueError as exc:
        _fail(str(exc))
    text = signal_markdown(env, preset, rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{env}-{preset}.md").write_text(text)
    write_signal(
        out / f"{env}-{preset}.json",
        env,
        preset,
        rows,
        wall_seconds=time.perf_counter() - started,
        env_kwargs={"inner_overrides": overrides} if overrides else None,
    )
    typer.echo(text)
    console.print(f"wrote {out / f'{env}-{preset}.md'}", markup=False)


@app.command()
def table(
    run_dir: Annotated[
        Path, typer.Argument(file_okay=False, help="Folder of result files (searched recursively).")
    ],
) -> None:
    """Print a Markdown table of every finished run under RUN_DIR (mean ± std over seeds).

    Example: derl-bench table runs/DERL-CartPole-v0
    """
    from derl_bench.report.tables import table_for_run_dir

    try:
        text = table_for_run_dir(run_dir)
    except NotADirectoryError as exc:
        _fail(str(exc))
    typer.echo(text)


@ls_app.command("envs")
def ls_envs() -> None:
    """List the Gymnasium env ids registered by derl_bench, with their registered kwargs."""
    import gymnasium

    from derl_bench.runner import derl_env_ids

    ids = derl_env_ids()
    table = Table(title="derl_bench environments")
    table.add_column("id", no_wrap=True)
    table.add_column("kwargs", overflow="fold")
    for env_id in ids:
        spec = gymnasium.registry[env_id]
        table.add_row(env_id, json.dumps(spec.kwargs, sort_keys=True))
    console = _stdout()
    if not ids:
        console.print("No derl_bench environments are registered (is derl_bench installed?).")
        return
    console.print(table)


@ls_app.command("tables")
def ls_tables(
    root: Annotated[
        Path | None, typer.Option(help="Root of table folders (default: the shipped tables).")
    ] = None,
) -> None:
    """List the fidelity tables: what the table and surrogate fidelities can answer.

    One row per (env id, preset): meta-rewards (effective keys), entries and seeds, entries
    with test success, the surrogate ``derl-bench fidelity report`` chose and its held-out
    Spearman rho, and whether the table's build is complete. Tables of a few keys are a signal
    check's cells (``derl-bench signal``).
    """
    from derl_bench.fidelity.table import table_overview

    rows = table_overview(root)
    console = _stdout()
    if not rows:
        console.print(f"No tables under {root or 'the package'}.", markup=False)
        return
    table = Table(title="derl_bench fidelity tables")
    for name in ("env id", "preset", "meta-rewards", "entries", "seeds", "with test"):
        table.add_column(name, no_wrap=True)
    table.add_column("surrogate", overflow="fold", min_width=11)  # "correlation" unbroken
    table.add_column("held-out rho", no_wrap=True)
    table.add_column("build", no_wrap=True)
    for row in rows:
        table.add_row(
            row["env_id"],
            row["preset"],
            str(row["keys"]),
            str(row["entries"]),
            ",".join(str(s) for s in row["seeds"]),
            str(row["with_test"]),
            row["surrogate"] or "-",
            "-" if row["heldout_rho"] is None else f"{row['heldout_rho']:.3f}",
            row["build"] or "-",
        )
    console.print(table)


@ls_app.command("primitives")
def ls_primitives(
    set_name: Annotated[
        str | None, typer.Option("--set", help="Primitive set to list (default: every set).")
    ] = None,
) -> None:
    """List primitive sets: each primitive's name, description and value range."""
    from derl_bench.primitives import (
        UnknownPrimitiveSetError,
        get_primitive_set,
        list_primitive_sets,
    )

    names = [set_name] if set_name is not None else list_primitive_sets()
    console = _stdout()
    for name in names:
        try:
            primitive_set = get_primitive_set(name)
        except UnknownPrimitiveSetError as exc:
            _fail(str(exc))
        table = Table(title=f"primitive set {name!r}")
        table.add_column("name", no_wrap=True)
        table.add_column("description", overflow="fold")
        table.add_column("range", no_wrap=True)
        for primitive in primitive_set.primitives:
            low, high = primitive.value_range
            table.add_row(primitive.name, primitive.description, f"[{low:g}, {high:g}]")
        console.print(table)


@ls_app.command("agents")
def ls_agents() -> None:
    """List the outer agents (built-in and plug-ins of the ``derl_bench.baselines`` group)."""
    from derl_bench.baselines import agent_factory, list_agents

    table = Table(title="derl_bench agents")
    table.add_column("name", no_wrap=True)
    table.add_column("description", overflow="fold")
    for name in list_agents():
        try:
            doc = (agent_factory(name).__doc__ or "").strip().splitlines()
            summary = doc[0] if doc else ""
        except Exception as exc:  # a broken plug-in must not hide the others
            summary = f"(failed to load: {type(exc).__name__}: {exc})"
        table.add_row(name, summary)
    _stdout().print(table)


@app.command()
def validate(
    paths: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Result JSON files.")
    ],
) -> None:
    """Check result files against the result schema; exit 1 if any is invalid.

    A valid file made under another lock than this checkout's (requirements/lock-py311.txt),
    or outside any lock, gets a WARNING line (exit code unchanged): its number may not
    reproduce here.

    Example: derl-bench validate runs/DERL-GSM8K-v0/heuristic/seed*.json
    """
    from derl_bench.provenance import lock_file_sha256, lock_warning
    from derl_bench.results import load_result

    console = _stdout()
    current_lock_sha = lock_file_sha256()
    invalid = 0
    for path in paths:
        try:
            record = load_result(path)
        except ValueError as exc:  # ResultSchemaError and json.JSONDecodeError
            invalid += 1
            console.print(f"INVALID {path}: {exc}", markup=False)
            continue
        console.print(
            f"ok      {path} ({record['env_id']}, {record['agent']['name']}, "
            f"seed {record['seed']}, {record['status']})",
            markup=False,
        )
        warning = lock_warning(record.get("provenance"), current_lock_sha)
        if warning:
            console.print(f"WARNING {path}: {warning}", markup=False)
    if invalid:
        raise typer.Exit(1)


@app.command()
def plot(
    run_dir: Annotated[
        Path, typer.Argument(file_okay=False, help="Folder of result files (searched recursively).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the PNGs (default: RUN_DIR/plots).")
    ] = None,
) -> None:
    """Plot every result under RUN_DIR: validation success, primitive usage, structure.

    Three PNGs per env id: best-so-far and mean validation success per outer iteration (one
    line per agent, mean over seeds; best-so-far with its 95 % bootstrap interval over seeds,
    the per-iteration mean with its min-max band), primitive usage per iteration, and the
    paper's structure taxonomy (stable / unstable / invalid shares) per iteration.

    Example: derl-bench plot runs
    """
    from derl_bench.report.load import load_run_dir
    from derl_bench.report.plots import plot_run_dir

    console = _stdout()
    try:
        written = plot_run_dir(run_dir, out)
    except (FileNotFoundError, NotADirectoryError) as exc:
        _fail(str(exc))
    for skipped in load_run_dir(run_dir).skipped:
        console.print(f"skipped {skipped.path}: {skipped.reason}", markup=False)
    for path in written:
        console.print(f"wrote {path}", markup=False)


leaderboard_app = typer.Typer(
    help="Leaderboards: validate submissions, render the tables and page, pack result files.",
    no_args_is_help=True,
)
app.add_typer(leaderboard_app, name="leaderboard")


@leaderboard_app.command("validate")
def leaderboard_validate(
    paths: Annotated[list[Path], typer.Argument(dir_okay=False, help="Submission JSON files.")],
    against: Annotated[
        Path,
        typer.Option(help="Leaderboard folder whose submissions count for duplicates."),
    ] = Path("leaderboards"),
) -> None:
    """Check submissions: schema, consistency, seeds, means, fidelity re-check, duplicates.

    One line per failure, naming the field and the fix; exit 1 if any file is refused.

    Example: derl-bench leaderboard validate leaderboards/DERL-CartPole-v0/*.json
    """
    from derl_bench.leaderboards import validate_paths
    from derl_bench.leaderboards.render import submission_files

    others = submission_files(against) if against.is_dir() else []
    reports = validate_paths(paths, against=others)
    console = _stdout()
    for report in reports:
        if report.ok and report.submission is not None:
            console.print(
                f"ok      {report.path} ({report.submission.method!r}, "
                f"{report.submission.track.title})",
                markup=False,
                soft_wrap=True,
            )
        for problem in report.problems:
            console.print(f"INVALID {report.path}: {problem.line()}", markup=False, soft_wrap=True)
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


@leaderboard_app.command("render")
def leaderboard_render(
    folder: Annotated[
        Path, typer.Argument(file_okay=False, help="Leaderboard folder (<env id>/*.json).")
    ] = Path("leaderboards"),
) -> None:
    """Validate every submission, then write FOLDER/README.md and FOLDER/index.html.

    Deterministic: rendering twice gives identical files.

    Example: derl-bench leaderboard render leaderboards
    """
    from derl_bench.leaderboards import render_leaderboard

    if not folder.is_dir():
        _fail(f"{folder} is not a folder of submissions (<env id>/*.json)")
    try:
        render_leaderboard(str(folder))
    except ValueError as exc:
        _fail(str(exc), code=1)
    for name in ("README.md", "index.html"):
        _stdout().print(f"wrote {folder / name}", markup=False)


@leaderboard_app.command("pack")
def leaderboard_pack(
    results: Annotated[list[Path], typer.Argument(dir_okay=False, help="seed<S>.json files.")],
    method: Annotated[str, typer.Option(help="Method name (plain text).")],
    authors: Annotated[str, typer.Option(help="Comma-separated author names.")],
    code_url: Annotated[str, typer.Option(help="https URL, or a derl_bench/... path.")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="Submission file to write.")],
    role: Annotated[
        str, typer.Option(help="entry, or outcome_only_baseline (every meta-step g1).")
    ] = "entry",
    budget: Annotated[
        int | None, typer.Option(help="Track budget in meta-steps (16, 64, 160).")
    ] = None,
    notes: Annotated[str, typer.Option(help="Optional remarks.")] = "",
) -> None:
    """Make a submission file from one agent's per-seed result files (means computed here).

    Example: derl-bench leaderboard pack runs/DERL-CartPole-v0/random/seed*.json
    --method "Random search" --authors "A. Author" --code-url https://example.org/code
    --out leaderboards/DERL-CartPole-v0/random.json
    """
    from derl_bench.leaderboards.pack import load_results, pack_results, write_submission

    try:
        submission = pack_results(
            load_results(results),
            method=method,
            authors=[a.strip() for a in authors.split(",") if a.strip()],
            code_url=code_url,
            role=role,
            budget_meta_steps=budget,
            notes=notes,
        )
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    write_submission(out, submission)
    _stdout().print(f"wrote {out}; check it with `derl-bench leaderboard validate`", markup=False)


fidelity_app = typer.Typer(
    help="Tables and surrogates: build a table from live meta-steps, check it, report the "
    "surrogate's held-out error.",
    no_args_is_help=True,
)
app.add_typer(fidelity_app, name="fidelity")


@fidelity_app.command("build")
def fidelity_build(
    env: Annotated[str, typer.Option(help="Gymnasium env id.")] = "DERL-CartPole-v0",
    preset: Annotated[str, typer.Option(callback=_check_preset, help="Preset.")] = "cpu",
    seeds: Annotated[str, typer.Option(help="Seeds of every meta-reward (0,1,2 or 0-2).")] = "0,1",
    sample: Annotated[
        str,
        typer.Option(
            help="Design: families panel, sweep, corpus, random, evolution with counts, e.g. "
            "'panel,sweep:12,corpus:12,random:12,evolution:8' (the default); '' with "
            "--meta-rewards for those only."
        ),
    ] = "panel,sweep:12,corpus:12,random:12,evolution:8",
    meta_rewards: Annotated[
        str, typer.Option(help="Extra meta-rewards, ';'-separated, trained first.")
    ] = "",
    out: Annotated[
        Path | None,
        typer.Option(help="Root of table folders (default: the package's fidelity/tables)."),
    ] = None,
    executor: Annotated[str, typer.Option(help="sync, process or ray.")] = "sync",
    workers: Annotated[int | None, typer.Option(min=1, help="Process executor workers.")] = None,
    test: Annotated[
        bool, typer.Option("--test/--no-test", help="Also record test success per entry.")
    ] = True,
    flush: Annotated[int, typer.Option(min=1, help="Meta-steps per Parquet shard.")] = 8,
    sample_seed: Annotated[int, typer.Option(help="Seed of the random families.")] = 0,
    inner: Annotated[
        list[str] | None, typer.Option(help="Inner setting FIELD=JSON (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Train and write nothing: print what the build would train, by family, and "
            "its cost estimated from the entries held.",
        ),
    ] = False,
) -> None:
    """Build (or extend, or resume) a table from live meta-steps.

    Every (effective key, seed) already in the table is skipped, so the same command resumes
    an interrupted build; --dry-run says what it has left to train and how long that takes.
    Example: derl-bench fidelity build --env DERL-CartPole-v0 --preset smoke --seeds 0,1
    --sample panel,random:8
    """
    from derl_bench.fidelity_build import TableConfigMismatch, build_table, parse_sample

    _require_env(env)
    if executor not in ("sync", "process", "ray"):
        _fail(f"{executor!r} is not an executor; choose sync, process or ray.")
    try:
        if sample:
            parse_sample(sample)
    except ValueError as exc:
        _fail(str(exc))
    overrides = {}
    for item in inner or []:
        field, _, value = item.partition("=")
        try:
            overrides[field] = json.loads(value)
        except json.JSONDecodeError:
            overrides[field] = value
    console = _stdout()
    try:
        summary = build_table(
            env,
            preset,
            _parse_seeds(seeds),
            sample=sample,
            meta_rewards=[m.strip() for m in meta_rewards.split(";") if m.strip()],
            out=out,
            executor=executor,
            max_workers=workers,
            with_test=test,
            flush=flush,
            sample_seed=sample_seed,
            env_kwargs={"inner_overrides": overrides} if overrides else None,
            say=lambda text: console.print(text, markup=False),
            dry_run=dry_run,
        )
    except TableConfigMismatch as exc:
        _fail(str(exc))
    if dry_run:
        return
    console.print(
        f"{summary.folder}: {summary.keys} keys, {summary.entries} entries; this call trained "
        f"{summary.trained}, skipped {summary.skipped}, {len(summary.failed)} failed, "
        f"{summary.wall_seconds:.0f} s",
        markup=False,
    )
    for line in summary.failed:
        console.print(f"  failed: {line}", markup=False)


@fidelity_app.command("check")
def fidelity_check(
    env: Annotated[str, typer.Option(help="Gymnasium env id.")] = "DERL-CartPole-v0",
    preset: Annotated[
        str, typer.Option(callback=_check_preset, help="Preset (as `build` and `run`: cpu).")
    ] = "cpu",
    n: Annotated[int, typer.Option(min=1, help="Entries to re-run (the cheapest).")] = 3,
    root: Annotated[Path | None, typer.Option(help="Root of table folders.")] = None,
) -> None:
    """Re-run the cheapest stored entries live; exit 1 unless they equal the table exactly."""
    from derl_bench.fidelity.table import TableMissing
    from derl_bench.fidelity_report import integrity_check

    _require_env(env)
    try:
        rows = integrity_check(env, preset, n=n, root=root)
    except TableMissing as exc:
        _fail(str(exc))
    console = _stdout()
    for row in rows:
        verdict = "equal" if row["equal"] else f"DIFFERS in {', '.join(row['differences'])}"
        console.print(
            f"{row['canonical']} @ seed {row['seed']}: stored {row['stored']:.4f}, live "
            f"{row['live']:.4f}: {verdict}",
            markup=False,
        )
    if not all(row["equal"] for row in rows):
        raise typer.Exit(1)


@fidelity_app.command("report")
def fidelity_report(
    env: Annotated[str, typer.Option(help="Gymnasium env id.")] = "DERL-CartPole-v0",
    preset: Annotated[
        str, typer.Option(callback=_check_preset, help="Preset (as `build` and `run`: cpu).")
    ] = "cpu",
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds over keys.")] = 5,
    root: Annotated[Path | None, typer.Option(help="Root of table folders.")] = None,
    out: Annotated[Path, typer.Option(help="Folder of the report files.")] = Path("docs/fidelity"),
    rechoose: Annotated[
        bool,
        typer.Option(
            help="Record the best candidate even if the table already has a surrogate choice "
            "(changes the surrogate's answers; results made with the old one no longer check)."
        ),
    ] = False,
) -> None:
    """Held-out error of the surrogates (feature set x family); records the chosen one."""
    from derl_bench.fidelity.table import TableMissing
    from derl_bench.fidelity_report import surrogate_report

    _require_env(env)
    try:
        report = surrogate_report(env, preset, root=root, folds=folds, out=out, rechoose=rechoose)
    except (TableMissing, ValueError) as exc:
        _fail(str(exc))
    typer.echo((out / f"{env}-{preset}.md").read_text())
    _stdout().print(
        f"chosen: {report['chosen']} on {report['chosen_features']} features ({report['why']})",
        markup=False,
    )


def main() -> None:
    """Run the ``derl-bench`` app (for ``python -m derl_bench.cli``)."""
    app()


if __name__ == "__main__":
    main()
