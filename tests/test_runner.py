"""Runner tests against a FAKE MetaRewardEnv (no inner training, runs in milliseconds)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import gymnasium
import pytest
from gymnasium import spaces

from derl_bench.baselines import StepResult, UnknownAgentError, get_agent, list_agents
from derl_bench.baselines.heuristic import HeuristicAgent, heuristic_meta_rewards
from derl_bench.meta_reward import InvalidMetaReward, parse
from derl_bench.primitives import get_primitive_set
from derl_bench.results import load_result, validate_result
from derl_bench.runner import UnknownEnvError, result_path, run

# FAKE for unit tests only: a MetaRewardEnv stand-in whose validation success is a fixed,
# deterministic function of the canonical meta-reward. It follows the info/evaluate_test
# contract of derl_bench.meta_env but trains nothing.
FAKE_ENV_ID = "DerlBenchTestFakeMeta-v0"
TEST_CALLS: list[str] = []
"""Every meta-reward the FAKE env's evaluate_test was called with (reset per test)."""
ENV_EVENTS: list[tuple[str, Any]] = []
"""("make", keep_checkpoints), ("warm_start", checkpoint) and ("step", action) calls of the
FAKE env, in order (reset per test)."""


def fake_score(canonical: str, scores: dict[str, float]) -> float:
    if canonical in scores:
        return scores[canonical]
    digest = hashlib.sha256(canonical.encode()).digest()
    return digest[0] / 255.0


class FakeMetaEnv(gymnasium.Env):
    """FAKE for unit tests only (see the comment above)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        *,
        preset: str = "smoke",
        budget: int = 3,
        scores: dict[str, float] | None = None,
        crash_at: int | None = None,
        keep_checkpoints: str | None = None,
    ) -> None:
        ENV_EVENTS.append(("make", keep_checkpoints))
        self.preset = preset
        self.budget = budget
        self.scores = dict(scores or {})
        self.crash_at = crash_at
        self.primitive_set = get_primitive_set("math")
        self.instruction = "Design a reward for grade-school math."
        self.action_space = spaces.Text(max_length=512)
        self.observation_space = spaces.Text(max_length=100_000)
        self.closed = False
        self._t = 0
        self._history: list[str] = []

    def _obs(self) -> str:
        return self.instruction + "\n" + "\n".join(self._history)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._history = []
        return self._obs(), {}

    def step(self, action: str):
        ENV_EVENTS.append(("step", action))
        if self.crash_at is not None and self._t == self.crash_at:
            raise RuntimeError(f"inner training exploded at meta-step {self._t}")
        cost = {"wall_seconds": 0.5, "inner_steps": 2, "rollouts": 8, "tokens": 100}
        info: dict[str, Any] = {
            "meta_step": self._t,
            "meta_reward": action,
            "n_nonfinite_rewards": 0,
            "training_curve": [],
            "cache_hit": False,
            "checkpoint_id": None,
        }
        try:
            meta_reward = parse(action, self.primitive_set.names)
        except InvalidMetaReward as exc:
            reward = -1.0
            info.update(
                canonical=None,
                valid=False,
                invalid_reason=exc.reason,
                invalid_message=exc.message,
                validation_success=None,
                primitive_means={},
                validation_primitive_means={},
                cost={"wall_seconds": 0.0, "inner_steps": 0, "rollouts": 0, "tokens": 0},
            )
        else:
            reward = fake_score(meta_reward.canonical, self.scores)
            info.update(
                canonical=meta_reward.canonical,
                valid=True,
                invalid_reason=None,
                invalid_message=None,
                validation_success=reward,
                primitive_means={"g1": 0.25, "g2": float("nan"), "g3": 1.0, "g4": 0.5},
                validation_primitive_means={},
                cost=cost,
            )
        self._t += 1
        self._history.append(f"{action} -> {reward}")
        truncated = self._t >= self.budget
        return self._obs(), reward, False, truncated, info

    def set_warm_start(self, checkpoint: str | None) -> None:
        ENV_EVENTS.append(("warm_start", checkpoint))

    def evaluate_test(self, meta_reward: str) -> dict[str, Any]:
        TEST_CALLS.append(meta_reward)
        canonical = parse(meta_reward, self.primitive_set.names).canonical
        return {
            "test_success": fake_score(canonical, self.scores) / 2,
            "n_test": 40,
            "cost": {"wall_seconds": 1.5, "inner_steps": 4, "rollouts": 16, "tokens": 300},
            "primitive_means": {},
        }

    def close(self) -> None:
        self.closed = True


def register_fake_env() -> None:
    if FAKE_ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=FAKE_ENV_ID,
            entry_point=f"{__name__}:FakeMetaEnv",
            disable_env_checker=True,
        )


@pytest.fixture(autouse=True)
def _fake_env() -> None:
    register_fake_env()
    TEST_CALLS.clear()
    ENV_EVENTS.clear()


def _run(tmp_path, **kwargs: Any):
    options: dict[str, Any] = {
        "budget": 3,
        "seed": 0,
        "preset": "smoke",
        "proposals_per_step": 3,
        "out_dir": tmp_path,
        "progress": False,
    }
    options.update(kwargs)
    return run(FAKE_ENV_ID, "heuristic", **options)


# --- heuristic agent ------------------------------------------------------------------------


def test_heuristic_proposals_are_the_papers_rows_in_order_and_parse():
    names = get_primitive_set("math").names
    agent = get_agent("heuristic", primitive_names=names, seed=0)
    proposals = agent.propose(None, 3)
    assert proposals == ["g1", "g1 + g2", "(g1 + g2 + g3 + g4) / 4"]
    canon = [parse(p, names).canonical for p in proposals]
    assert len(set(canon)) == 3


def test_heuristic_cycles_and_is_deterministic():
    a = HeuristicAgent(primitive_names=("g1", "g2", "g3", "g4"))
    b = HeuristicAgent(primitive_names=("g1", "g2", "g3", "g4"), seed=7)
    first = a.propose(None, 2) + a.propose(None, 3)
    assert first == b.propose(None, 5)
    assert first == ["g1", "g1 + g2", "(g1 + g2 + g3 + g4) / 4", "g2", "g1"]
    a.update([StepResult(meta_reward="g1", reward=0.3, info={})])
    assert a.propose(None, 1) == ["g1 + g2"]


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_heuristic_average_covers_all_k_primitives(k):
    names = tuple(f"g{i}" for i in range(1, k + 1))
    proposals = heuristic_meta_rewards(names)
    for text in proposals:
        parse(text, names)
    if k >= 2:
        assert proposals[2] == f"({' + '.join(names)}) / {k}"
    else:
        assert proposals == ("g1",)


def test_unknown_agent_suggests_close_name():
    assert "heuristic" in list_agents()
    with pytest.raises(UnknownAgentError, match="Did you mean 'heuristic'"):
        get_agent("heuristc")


# --- runner ---------------------------------------------------------------------------------


def test_run_writes_schema_valid_file_and_picks_best_by_validation(tmp_path):
    scores = {"g1": 0.2, "g1 + g2": 0.7, "(g1 + g2 + g3 + g4) / 4": 0.5}
    result = _run(tmp_path, env_kwargs={"scores": scores})
    assert result.path == result_path(tmp_path, FAKE_ENV_ID, "heuristic", 0)
    assert result.path == tmp_path / FAKE_ENV_ID / "heuristic" / "seed0.json"
    on_disk = load_result(result.path)
    validate_result(on_disk)
    assert on_disk == json.loads(json.dumps(result.record))
    assert on_disk["status"] == "finished" and on_disk["error"] is None
    assert [s["meta_reward"] for s in on_disk["meta_steps"]] == list(scores)
    assert [s["validation_success"] for s in on_disk["meta_steps"]] == [0.2, 0.7, 0.5]
    assert on_disk["best"] == {
        "meta_reward": "g1 + g2",
        "canonical": "g1 + g2",
        "validation_success": 0.7,
    }
    assert TEST_CALLS == ["g1 + g2"]
    assert on_disk["test_success"] == pytest.approx(0.35)
    assert on_disk["n_test"] == 40
    # 3 meta-steps at 0.5 s and the test at 1.5 s
    assert on_disk["total_cost"]["wall_seconds"] == pytest.approx(3.0)
    assert on_disk["total_cost"]["inner_steps"] == 10
    assert on_disk["env_spec"]["id"] == FAKE_ENV_ID
    assert on_disk["env_spec"]["kwargs"]["scores"] == scores
    assert on_disk["agent"]["name"] == "heuristic"
    assert on_disk["agent"]["config"]["primitive_names"] == ["g1", "g2", "g3", "g4"]
    # NaN primitive means are stored as null (JSON has no NaN)
    assert on_disk["meta_steps"][0]["primitive_means"]["g2"] is None
    assert result.best_meta_reward == "g1 + g2"
    assert result.validation_success == 0.7


def test_run_ties_go_to_the_earliest(tmp_path):
    scores = {"g1": 0.4, "g1 + g2": 0.6, "(g1 + g2 + g3 + g4) / 4": 0.6}
    result = _run(tmp_path, env_kwargs={"scores": scores})
    assert result.best_meta_reward == "g1 + g2"
    assert TEST_CALLS == ["g1 + g2"]


@pytest.mark.parametrize(("budget", "proposals_per_step"), [(1, 3), (5, 2), (7, 3)])
def test_run_stops_at_budget_and_calls_test_once(tmp_path, budget, proposals_per_step):
    result = _run(tmp_path, budget=budget, proposals_per_step=proposals_per_step)
    steps = result.record["meta_steps"]
    assert [s["index"] for s in steps] == list(range(budget))
    assert len(TEST_CALLS) == 1
    assert result.record["budget"] == budget
    assert result.record["env_spec"]["kwargs"]["budget"] == budget


class _CountingAgent(HeuristicAgent):
    """Records the sizes of the batches it was asked for and was given back."""

    name = "counting"
    asked: list[int] = []
    updated: list[int] = []

    def propose(self, observation, n):
        type(self).asked.append(n)
        return super().propose(observation, n)

    def update(self, results):
        type(self).updated.append(len(results))


def test_run_batches_by_group_size(tmp_path, monkeypatch):
    import derl_bench.baselines.base as base

    monkeypatch.setitem(base._BUILTINS, "counting", f"{__name__}:_CountingAgent")
    _CountingAgent.asked, _CountingAgent.updated = [], []
    run(
        FAKE_ENV_ID,
        "counting",
        budget=5,
        seed=1,
        preset="smoke",
        proposals_per_step=2,
        out_dir=tmp_path,
        progress=False,
    )
    assert _CountingAgent.asked == [2, 2, 1]
    assert _CountingAgent.updated == [2, 2, 1]


def test_run_crash_writes_partial_failed_file_and_reraises(tmp_path):
    with pytest.raises(RuntimeError, match="exploded at meta-step 2"):
        _run(tmp_path, budget=4, env_kwargs={"crash_at": 2})
    partial = load_result(result_path(tmp_path, FAKE_ENV_ID, "heuristic", 0))
    assert partial["status"] == "failed"
    assert "RuntimeError" in partial["error"] and "exploded" in partial["error"]
    assert [s["meta_reward"] for s in partial["meta_steps"]] == ["g1", "g1 + g2"]
    assert partial["best"] is not None
    assert partial["test_success"] is None
    assert TEST_CALLS == []


def test_run_closes_env_on_success_and_crash(tmp_path, monkeypatch):
    closed: list[bool] = []
    original = FakeMetaEnv.close

    def spy(self):
        closed.append(True)
        original(self)

    monkeypatch.setattr(FakeMetaEnv, "close", spy)
    _run(tmp_path / "a")
    with pytest.raises(RuntimeError):
        _run(tmp_path / "b", env_kwargs={"crash_at": 0})
    assert closed == [True, True]


def test_invalid_meta_reward_is_recorded_and_never_best(tmp_path, monkeypatch):
    monkeypatch.setattr(
        HeuristicAgent, "propose", lambda self, obs, n: ["g1 +", "g9", "g1 * 2"][:n]
    )
    result = _run(tmp_path, env_kwargs={"scores": {"g1 * 2": 0.1}})
    steps = result.record["meta_steps"]
    assert [s["valid"] for s in steps] == [False, False, True]
    assert [s["invalid_reason"] for s in steps[:2]] == ["syntax", "unknown_primitive"]
    assert [s["reward"] for s in steps[:2]] == [-1.0, -1.0]
    assert result.record["best"]["meta_reward"] == "g1 * 2"


def test_all_invalid_means_no_best_and_no_test(tmp_path, monkeypatch):
    monkeypatch.setattr(HeuristicAgent, "propose", lambda self, obs, n: ["(g1"] * n)
    result = _run(tmp_path)
    assert result.record["best"] is None
    assert result.record["test_success"] is None
    assert TEST_CALLS == []
    validate_result(load_result(result.path))


def test_same_seed_same_meta_steps(tmp_path):
    a = _run(tmp_path / "a").record
    b = _run(tmp_path / "b").record
    keys = ("meta_reward", "canonical", "validation_success", "reward", "cost")
    assert [[s[k] for k in keys] for s in a["meta_steps"]] == [
        [s[k] for k in keys] for s in b["meta_steps"]
    ]


def test_unknown_env_id_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownEnvError, match="Unknown environment id 'DERL-GSM9K-v0'"):
        run(
            "DERL-GSM9K-v0",
            "heuristic",
            budget=1,
            seed=0,
            preset="smoke",
            proposals_per_step=1,
            out_dir=tmp_path,
            progress=False,
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("budget", "proposals_per_step"), [(0, 1), (1, 0)])
def test_bad_budget_or_group_size_rejected(tmp_path, budget, proposals_per_step):
    with pytest.raises(ValueError, match=">= 1"):
        _run(tmp_path, budget=budget, proposals_per_step=proposals_per_step)


def test_progress_prints_one_line_per_meta_step(tmp_path, capsys):
    result = _run(tmp_path, progress=True, env_kwargs={"scores": {"g1": 0.25}})
    assert result.status == "finished"
    out = capsys.readouterr().out
    assert "meta-step 1/3: g1  ->  val 0.250" in out
    assert "meta-step 3/3" in out


def test_no_progress_prints_nothing(tmp_path, capsys):
    _run(tmp_path, progress=False)
    assert capsys.readouterr().out == ""


# --- warm start (DERL-pop) ------------------------------------------------------------------


class _WarmStartAgent(HeuristicAgent):
    """FAKE DERL-pop-like agent: asks for checkpoints; next_warm_start names the last round."""

    name = "warm"
    needs_checkpoints = True

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.next_warm_start: str | None = None
        self.rounds = 0

    def update(self, results):
        self.rounds += 1
        self.next_warm_start = f"ckpt-after-round-{self.rounds}"


class _NoWarmStartAgent(HeuristicAgent):
    """FAKE agent without next_warm_start: the runner must never call set_warm_start."""

    name = "plain"


def _run_agent(tmp_path, monkeypatch, name: str, cls: type, **kwargs: Any):
    import derl_bench.baselines.base as base

    monkeypatch.setitem(base._BUILTINS, name, f"{__name__}:{cls.__name__}")
    options: dict[str, Any] = {
        "budget": 5,
        "seed": 0,
        "preset": "smoke",
        "proposals_per_step": 2,
        "out_dir": tmp_path,
        "progress": False,
    }
    options.update(kwargs)
    return run(FAKE_ENV_ID, name, **options)


def test_warm_start_is_set_before_each_round_and_checkpoints_kept(tmp_path, monkeypatch):
    result = _run_agent(tmp_path, monkeypatch, "warm", _WarmStartAgent)
    checkpoints = str(tmp_path / FAKE_ENV_ID / "warm" / "checkpoints")
    assert ENV_EVENTS[0] == ("make", checkpoints)
    assert result.record["env_spec"]["kwargs"]["keep_checkpoints"] == checkpoints
    kinds = [kind for kind, _ in ENV_EVENTS[1:]]
    assert kinds == ["warm_start", "step", "step", "warm_start", "step", "step"] + [
        "warm_start",
        "step",
    ]
    assert [value for kind, value in ENV_EVENTS if kind == "warm_start"] == [
        None,
        "ckpt-after-round-1",
        "ckpt-after-round-2",
    ]


def test_keep_checkpoints_from_env_kwargs_wins(tmp_path, monkeypatch):
    mine = str(tmp_path / "elsewhere")
    _run_agent(
        tmp_path, monkeypatch, "warm", _WarmStartAgent, env_kwargs={"keep_checkpoints": mine}
    )
    assert ENV_EVENTS[0] == ("make", mine)


def test_agents_without_the_hook_get_no_warm_start_and_no_checkpoints(tmp_path, monkeypatch):
    _run_agent(tmp_path, monkeypatch, "plain", _NoWarmStartAgent)
    assert ENV_EVENTS[0] == ("make", None)
    assert [kind for kind, _ in ENV_EVENTS].count("warm_start") == 0


def test_resumed_round_gets_the_warm_start_before_its_first_new_meta_step(tmp_path, monkeypatch):
    real_step = FakeMetaEnv.step
    calls = {"n": 0}

    def step_until_interrupt(self, action):
        calls["n"] += 1
        if calls["n"] == 4:  # second meta-step of the second round
            raise KeyboardInterrupt
        return real_step(self, action)

    monkeypatch.setattr(FakeMetaEnv, "step", step_until_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run_agent(tmp_path, monkeypatch, "warm", _WarmStartAgent)
    monkeypatch.setattr(FakeMetaEnv, "step", real_step)
    ENV_EVENTS.clear()
    # This FAKE env's observation is a plain string: passed through, with a warning on resume.
    with pytest.warns(RuntimeWarning, match="not in the MetaRewardEnv format"):
        result = _run_agent(tmp_path, monkeypatch, "warm", _WarmStartAgent)
    assert len(result.record["meta_steps"]) == 5
    # Meta-steps 0-2 are replayed: no env.step and no warm start for the first round; the second
    # round's warm start is set again before its one remaining meta-step.
    assert [e for e in ENV_EVENTS if e[0] != "make"] == [
        ("warm_start", "ckpt-after-round-1"),
        ("step", "g2"),
        ("warm_start", "ckpt-after-round-2"),
        ("step", "g1"),
    ]


@pytest.mark.data
def test_result_lists_the_data_files_of_its_own_env_only(tmp_path):
    from derl_bench.envs.gsm8k import load_gsm8k

    load_gsm8k("train")  # read earlier in this process by something else
    result = run(
        "DERL-CartPole-v0",
        "heuristic",
        budget=2,
        seed=0,
        preset="cpu",
        proposals_per_step=2,
        out_dir=tmp_path,
        env_kwargs={"fidelity": "surrogate"},
        progress=False,
    )
    assert load_result(result.path)["data_hashes"] == {}
