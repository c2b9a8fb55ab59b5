"""The run store and resumable runs: kill a run anywhere, restart it, lose and redo nothing.

Runs use the FAKE env and agent of resume_fakes.py (unit tests only; no inner training).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import resume_fakes
from resume_fakes import AGENT, ENV_ID, INTERRUPT_VAR, HistoryAgent, trained

import derl_bench.baselines.base as agent_registry
import derl_bench.runner
from derl_bench.results import load_result
from derl_bench.runner import AgentNotDeterministicError, result_path, run, store_path
from derl_bench.store import (
    RunConfig,
    RunStore,
    StoreLockedError,
    StoreMismatchError,
    discard_store,
    read_store_steps,
)

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    resume_fakes.register_env()
    monkeypatch.setitem(agent_registry._BUILTINS, AGENT, resume_fakes.AGENT_ENTRY)
    monkeypatch.delenv(INTERRUPT_VAR, raising=False)
    HistoryAgent.observations = []


def _run(out: Path, counter: Path, **kwargs: Any):
    options: dict[str, Any] = {
        "budget": 7,
        "seed": 3,
        "preset": "smoke",
        "proposals_per_step": 3,
        "out_dir": out,
        "env_kwargs": {"counter": str(counter)},
        "progress": False,
    }
    options.update(kwargs)
    return run(ENV_ID, AGENT, **options)


def _trajectory(record: dict) -> list[tuple[str, float, float | None]]:
    return [(s["meta_reward"], s["reward"], s["validation_success"]) for s in record["meta_steps"]]


def _reference(tmp_path: Path, **kwargs: Any) -> tuple[dict, list[str], list]:
    """An uninterrupted run: its record, its counter lines and the agent's observations."""
    counter = tmp_path / "ref.counter"
    HistoryAgent.observations = []
    record = _run(tmp_path / "ref", counter, **kwargs).record
    observations = list(HistoryAgent.observations)
    HistoryAgent.observations = []
    return record, trained(counter), observations


# --- the store on its own --------------------------------------------------------------------


def _config(**changes: Any) -> RunConfig:
    fields: dict[str, Any] = {
        "env_id": "DERL-GSM8K-v0",
        "env_kwargs": {},
        "preset": "smoke",
        "budget": 4,
        "proposals_per_step": 2,
        "agent": "heuristic",
        "agent_config": {},
        "seed": 0,
    }
    fields.update(changes)
    return RunConfig(**fields)


def test_store_written_before_the_proposals_rename_still_resumes(tmp_path):
    path = tmp_path / "run" / "seed0.sqlite"
    with RunStore.open(path, _config()) as store:
        store.add_step("g1", 0.5, {"valid": True}, terminated=False, truncated=False)
    old = _config().to_json()
    old["group_size"] = old.pop("proposals_per_step")  # as schema 1 stored it
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE run SET config = ? WHERE id = 1", (json.dumps(old),))
    conn.close()
    with RunStore.open(path, _config()) as store:
        assert store.existed and [s.meta_reward for s in store.steps] == ["g1"]
    with pytest.raises(StoreMismatchError, match="proposals_per_step"):
        RunStore.open(path, _config(proposals_per_step=3))


def test_store_uses_wal_and_commits_each_meta_step_at_once(tmp_path):
    path = tmp_path / "run" / "seed0.sqlite"
    with RunStore.open(path, _config()) as store:
        assert not store.existed
        step = store.add_step(
            "g1", 0.5, {"valid": True, "x": float("nan")}, terminated=False, truncated=False
        )
        assert step.index == 0
        # Another connection sees the row while the store is still open: it is committed.
        reader = sqlite3.connect(path)
        try:
            assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert reader.execute("SELECT idx, meta_reward, reward FROM meta_step").fetchall() == [
                (0, "g1", 0.5)
            ]
        finally:
            reader.close()
        assert [s.meta_reward for s in read_store_steps(path)] == ["g1"]
        store.add_step("g2", -1.0, {"valid": False}, terminated=False, truncated=True)
    with RunStore.open(path, _config()) as again:
        assert again.existed
        steps = again.steps
        assert [(s.index, s.meta_reward, s.reward, s.truncated) for s in steps] == [
            (0, "g1", 0.5, False),
            (1, "g2", -1.0, True),
        ]
        assert steps[0].info["valid"] is True and steps[0].info["x"] != steps[0].info["x"]  # NaN


def test_active_seconds_sums_the_sessions_and_skips_the_gap(tmp_path):
    # A run worked 10 min, was killed, resumed 5 h later and worked 2 min more: 12 min.
    path = tmp_path / "run" / "seed0.sqlite"
    with RunStore.open(path, _config()) as store:
        store.add_step("g1", 0.5, {"valid": True}, terminated=False, truncated=False)
        store.add_step("g2", 0.5, {"valid": True}, terminated=False, truncated=False)
    with RunStore.open(path, _config()) as store:
        store.note_resume()
    conn = sqlite3.connect(path)  # set the timestamps (the store writes "now")
    with conn:
        conn.execute("UPDATE run SET started_at = '2026-01-01T10:00:00.000Z'")
        conn.execute("UPDATE meta_step SET created_at = '2026-01-01T10:04:00.000Z' WHERE idx = 0")
        conn.execute("UPDATE meta_step SET created_at = '2026-01-01T10:10:00.000Z' WHERE idx = 1")
        conn.execute("UPDATE resume SET at = '2026-01-01T15:10:00.000Z'")
    conn.close()
    with RunStore.open(path, _config()) as store:
        assert store.active_seconds("2026-01-01T15:12:00.000Z") == pytest.approx(12 * 60)
        assert store.active_seconds("2026-01-01T15:10:00.000Z") == pytest.approx(10 * 60)


def test_run_clock_records_update_time_rounds_and_wall_time(tmp_path):
    record = _run(tmp_path / "out", tmp_path / "c").record
    clock = record["clock"]
    assert clock["updates"] == 3  # 7 meta-steps proposed 3 at a time: 3 rounds, 3 updates
    assert 0.0 <= clock["update_seconds"] <= clock["agent_seconds"]
    assert clock["wall_seconds"] > 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [("budget", 5), ("env_kwargs", {"policy": "x"}), ("agent_config", {"k": 1}), ("seed", 1)],
)
def test_store_refuses_another_config_naming_the_field_and_the_fix(tmp_path, field, value):
    path = tmp_path / "seed0.sqlite"
    RunStore.open(path, _config()).close()
    with pytest.raises(StoreMismatchError) as caught:
        RunStore.open(path, _config(**{field: value}))
    message = str(caught.value)
    assert caught.value.field == field
    assert f"{field}=" in message and "--out" in message and str(path) in message
    assert "delete" in message


def test_store_is_locked_while_open(tmp_path):
    path = tmp_path / "seed0.sqlite"
    with RunStore.open(path, _config()):
        with pytest.raises(StoreLockedError, match="in use by another process"):
            RunStore.open(path, _config())
        with pytest.raises(StoreLockedError):
            discard_store(path)
    discard_store(path)
    assert not path.exists()


# --- resuming runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5])
def test_interrupted_run_resumes_to_exactly_the_uninterrupted_meta_steps(
    tmp_path, k, capsys, monkeypatch
):
    reference, reference_lines, reference_observations = _reference(tmp_path)
    counter = tmp_path / "run.counter"
    out = tmp_path / "out"

    monkeypatch.setenv(INTERRUPT_VAR, str(k))  # the FAKE env raises KeyboardInterrupt at step k
    with pytest.raises(KeyboardInterrupt):
        _run(out, counter)
    monkeypatch.delenv(INTERRUPT_VAR)
    partial = load_result(result_path(out, ENV_ID, AGENT, 3))
    assert partial["status"] == "failed" and partial["error"] == "KeyboardInterrupt"
    assert _trajectory(partial) == _trajectory(reference)[:k]
    assert len(read_store_steps(store_path(out, ENV_ID, AGENT, 3))) == k

    messages: list[str] = []
    resumed = _run(out, counter, notify=messages.append).record
    assert messages == [f"resuming: {k} of 7 meta-steps done ({store_path(out, ENV_ID, AGENT, 3)})"]
    assert resumed["status"] == "finished"
    assert _trajectory(resumed) == _trajectory(reference)
    assert resumed["best"] == reference["best"]
    assert resumed["test_success"] == reference["test_success"]
    # Each meta-step was trained exactly once, in the same order; the test once.
    assert trained(counter) == reference_lines
    assert sum(line.startswith("step ") for line in reference_lines) == 7
    # The agent saw the same observations as in the uninterrupted run (after the restart
    # it is asked again from the start, so the first session's observations come twice).
    first_session = reference_observations[: (k // 3) + 1]
    assert HistoryAgent.observations == first_session + reference_observations
    assert resumed["started_at"] == partial["started_at"]
    assert capsys.readouterr().out == ""


def test_sigkill_mid_run_then_restart_finishes_without_redoing_anything(tmp_path):
    budget, proposals_per_step = 6, 4
    reference, reference_lines, _ = _reference(
        tmp_path, budget=budget, proposals_per_step=proposals_per_step, seed=0
    )
    out = tmp_path / "out"
    counter = tmp_path / "run.counter"
    sleep = 0.4
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r}); import resume_fakes; "
        f"resume_fakes.main({str(out)!r}, {str(counter)!r}, {budget}, {proposals_per_step}, "
        f"{sleep})"
    )
    spath = store_path(out, ENV_ID, AGENT, 0)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and child.poll() is None:
            if spath.exists():
                done = len(read_store_steps(spath))
                if done >= 2:
                    break
            time.sleep(0.01)
        assert child.poll() is None, child.communicate()
        assert done >= 2
        child.send_signal(signal.SIGKILL)  # mid meta-step: it sleeps 0.4 s per meta-step
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    killed_at = len(read_store_steps(spath))
    assert 2 <= killed_at < budget
    assert len(trained(counter)) == killed_at  # the killed meta-step had not finished
    assert not result_path(out, ENV_ID, AGENT, 0).exists()  # SIGKILL leaves no result file

    messages: list[str] = []
    resumed = run(
        ENV_ID,
        AGENT,
        budget=budget,
        seed=0,
        preset="smoke",
        proposals_per_step=proposals_per_step,
        out_dir=out,
        env_kwargs={"counter": str(counter), "sleep": sleep},
        progress=False,
        notify=messages.append,
    ).record
    assert messages[0].startswith(f"resuming: {killed_at} of {budget} meta-steps done")
    assert resumed["status"] == "finished"
    assert _trajectory(resumed) == _trajectory(reference)
    assert trained(counter) == reference_lines  # every meta-step and the test exactly once


def test_finished_run_rerun_is_a_noop_that_rewrites_the_result(tmp_path, monkeypatch):
    counter = tmp_path / "run.counter"
    first = _run(tmp_path / "out", counter)
    text = first.path.read_text()
    lines = trained(counter)
    first.path.unlink()

    made: list[str] = []
    monkeypatch.setattr(derl_bench.runner, "make_env", lambda *a, **k: made.append("env"))
    messages: list[str] = []
    again = _run(tmp_path / "out", counter, notify=messages.append)
    assert made == []  # no env, no agent, no training
    assert trained(counter) == lines
    assert again.path.read_text() == text
    assert again.record == first.record
    assert messages and messages[0].startswith("already finished")


def test_killed_after_the_test_does_not_redo_the_test(tmp_path, monkeypatch):
    counter = tmp_path / "run.counter"
    real_write = derl_bench.runner._write
    calls: list[str] = []

    def interrupt_final_write(path, record):
        calls.append(record["status"])
        if record["status"] == "finished":
            raise KeyboardInterrupt
        return real_write(path, record)

    monkeypatch.setattr(derl_bench.runner, "_write", interrupt_final_write)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "out", counter)
    assert calls == ["finished"]
    monkeypatch.setattr(derl_bench.runner, "_write", real_write)
    record = _run(tmp_path / "out", counter).record
    assert record["status"] == "finished" and record["test_success"] is not None
    lines = trained(counter)
    assert sum(line.startswith("test ") for line in lines) == 1
    assert sum(line.startswith("step ") for line in lines) == 7


def test_restart_with_another_budget_is_refused(tmp_path, monkeypatch):
    counter = tmp_path / "run.counter"
    monkeypatch.setenv(INTERRUPT_VAR, "2")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "out", counter)
    monkeypatch.delenv(INTERRUPT_VAR)
    with pytest.raises(StoreMismatchError, match=r"budget=7.*budget=8.*--out"):
        _run(tmp_path / "out", counter, budget=8)
    assert len(trained(counter)) == 2


def test_no_resume_discards_the_store_and_starts_afresh(tmp_path, monkeypatch):
    counter = tmp_path / "run.counter"
    monkeypatch.setenv(INTERRUPT_VAR, "2")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "out", counter)
    monkeypatch.delenv(INTERRUPT_VAR)
    record = _run(tmp_path / "out", counter, resume=False).record
    assert len(record["meta_steps"]) == 7
    assert len([line for line in trained(counter) if line.startswith("step ")]) == 2 + 7


def test_nondeterministic_agent_is_detected_on_resume(tmp_path, monkeypatch):
    counter = tmp_path / "run.counter"
    monkeypatch.setenv(INTERRUPT_VAR, "4")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "out", counter)
    monkeypatch.delenv(INTERRUPT_VAR)
    real_propose = HistoryAgent.propose

    def drifting(self, observation, n):
        proposals = real_propose(self, observation, n)
        return [p.replace("g1 +", "g4 +") if len(self.results) >= 3 else p for p in proposals]

    monkeypatch.setattr(HistoryAgent, "propose", drifting)
    with pytest.raises(AgentNotDeterministicError, match="agent not deterministic") as caught:
        _run(tmp_path / "out", counter)
    assert caught.value.index == 3
    assert len(trained(counter)) == 4


def test_runner_observation_matches_the_env_observation(tmp_path):
    """The runner-built observation equals the FAKE env's own at every round of a fresh run."""
    from derl_bench.resume import ObservationView

    env = resume_fakes.CountingFakeEnv(budget=5, counter=str(tmp_path / "c"))
    observation, _ = env.reset(seed=0)
    view = ObservationView(observation)
    assert view.builds_history
    for action in ["g1", "g1 +", "2*g2 + g1", "(g1"]:
        observation, reward, _, _, info = env.step(action)
        info = json.loads(json.dumps(info))
        view.append(action, reward, info)
        built = view.observation
        assert built.keys() == observation.keys()
        assert built["history_meta_rewards"] == observation["history_meta_rewards"]
        assert built["history_rewards"].dtype == observation["history_rewards"].dtype
        assert (built["history_rewards"] == observation["history_rewards"]).all()
        assert built["history_length"] == observation["history_length"]


@pytest.mark.data
def test_runner_observation_matches_the_real_meta_reward_env(tmp_path):
    """Same check against the real MetaRewardEnv (its inner trainer FAKED: nothing trains)."""
    import gymnasium

    from derl_bench.inner.base import Cost, EvalResult, InnerResult
    from derl_bench.resume import ObservationView

    class FakeTrainer:  # FAKE inner trainer for unit tests only
        def train(self, meta_reward, *, seed, init=None):
            return InnerResult(
                validation=EvalResult(
                    success=len(meta_reward.canonical) / 100, n=4, primitive_means={}, tokens=1
                ),
                primitive_means={},
                training_curve=[],
                n_nonfinite_rewards=0,
                cost=Cost(wall_seconds=0.1, inner_steps=1, rollouts=4, tokens=8),
            )

    env = gymnasium.make("DERL-GSM8K-v0", preset="smoke", budget=4)
    env.unwrapped.trainer = FakeTrainer()
    observation, _ = env.reset(seed=0)
    view = ObservationView(observation)
    assert view.builds_history
    for action in ["g1 + 0.50 * g2", "g1 + ", "g3*(g1+1)", "bad\x00text"]:
        observation, reward, _, _, info = env.step(action)
        view.append(action, reward, json.loads(json.dumps(info)))
        built = view.observation
        assert built["history_meta_rewards"] == observation["history_meta_rewards"]
        assert (built["history_rewards"] == observation["history_rewards"]).all()
        assert built["history_length"] == observation["history_length"]
        assert built["instruction"] == observation["instruction"]
    env.close()
