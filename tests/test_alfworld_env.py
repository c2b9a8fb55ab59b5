"""ALFWorld inner env: splits, step score, data errors, and real-engine episodes.

Engine tests (``slow`` + ``data``) play real games of ``../shared/data/alfworld`` through the
TextWorld engine; they share one env per expert kind (module fixtures), so the engine caches
are warm after the first reset.
"""

from __future__ import annotations

import builtins
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from derl_bench.envs.alfworld import (
    ENV_CARD,
    L2_HELD_OUT_TYPES,
    L2_TRAIN_TYPES,
    TASK_TYPES,
    ALFWorldDataMissing,
    ALFWorldInnerEnv,
    StepChecks,
    alfworld_root,
    alfworld_splits,
    goal_words,
    list_games,
    step_checks,
    task_type_of,
)
from derl_bench.envs.data import DataFileMissing
from derl_bench.envs.episode import Trajectory
from derl_bench.primitives.base import EPSILON
from derl_bench.primitives.episode import EPISODE_PRIMITIVES


def _have_data() -> bool:
    try:
        alfworld_root()
    except ALFWorldDataMissing:
        return False
    return True


def _have_engine() -> bool:
    try:
        import alfworld.agents.environment.alfred_tw_env  # noqa: F401
        import textworld  # noqa: F401
    except ImportError:
        return False
    return True


needs_data = pytest.mark.skipif(not _have_data(), reason="ALFWorld games not found")
needs_engine = pytest.mark.skipif(not _have_engine(), reason="alfworld/textworld not installed")

# ---------------------------------------------------------------------------------------------
# Step score on recorded real steps, recorded from the engine on LOOK_GAME (the slow test
# below replays them and checks that the engine still says the same).
LOOK_GAME = (
    "json_2.1.1/valid_seen/look_at_obj_in_light-AlarmClock-None-DeskLamp-323/"
    "trial_T20190909_044715_250790"
)
LOOK_TASK = "look at alarmclock under the desklamp."
LOOK_ENTITIES = ["alarmclock 2", "book 1", "desk 1", "desklamp 1", "drawer 1", "safe 1", "bed 1"]
RECORDED_STEPS = [  # (command, engine feedback, effective, novel, goal_relevant)
    (
        "go to desk 1",
        "You arrive at loc 14. On the desk 1, you see a alarmclock 2, a book 1, a bowl 1, a cd 2, "
        "a desklamp 1, a mug 2, a mug 1, a pen 2, and a pen 1.",
        True,
        True,
        False,
    ),
    ("use desklamp 1", "You turn on the desklamp 1.", True, True, True),
    ("look", "You are facing the desk 1. Next to it, you see nothing.", True, True, False),
    ("go to desk 1", "Nothing happens.", False, False, False),
    ("use desklamp 1", "You turn on the desklamp 1.", True, False, True),
    (
        "take alarmclock 2 from desk 1",
        "You pick up the alarmclock 2 from the desk 1.",
        True,
        True,
        True,
    ),
]


def test_goal_words_are_task_words_naming_game_objects():
    assert goal_words(LOOK_TASK, LOOK_ENTITIES) == {"alarmclock", "desklamp"}
    # Verbs and adjectives of the task line are not goal words; neither are absent objects.
    names = ["mug 1", "coffeemachine 1", "sinkbasin 1", "cup 2"]
    assert goal_words("put a clean mug in coffeemachine.", names) == {"mug", "coffeemachine"}
    assert goal_words("put a clean mug in coffeemachine.", ["cup 1"]) == frozenset()


def test_step_checks_on_recorded_real_steps():
    goals = goal_words(LOOK_TASK, LOOK_ENTITIES)
    previous: set[str] = set()
    scores = []
    for command, feedback, effective, novel, relevant in RECORDED_STEPS:
        checks = step_checks(command, feedback, previous=previous, goals=goals)
        assert checks == StepChecks(effective, novel, relevant), command
        previous.add(command)
        scores.append(checks.score)
    assert scores == pytest.approx([2 / 3, 1.0, 2 / 3, 0.0, 2 / 3, 1.0])


def test_novelty_ignores_case_and_spacing():
    checks = step_checks("Go  to DESK 1", "x", previous={"go to desk 1"}, goals=frozenset())
    assert not checks.novel and checks.effective and not checks.goal_relevant


# ---------------------------------------------------------------------------------------------
# Data folder errors and the engine-missing error (no engine needed).
def test_missing_data_folder_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ALFWorldDataMissing) as err:
        alfworld_root(tmp_path / "nowhere")
    assert isinstance(err.value, DataFileMissing)
    assert str(tmp_path / "nowhere" / "json_2.1.1") in str(err.value)
    assert "alfworld-download" in str(err.value)
    # Default resolution: an empty ALFWORLD_DATA is skipped, the project data folder is named.
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    monkeypatch.setenv("DERL_BENCH_DATA", str(tmp_path / "data"))
    with pytest.raises(ALFWorldDataMissing, match="data/alfworld/json_2.1.1"):
        alfworld_splits("L0")


def test_missing_split_is_a_clear_error(tmp_path):
    (tmp_path / "json_2.1.1" / "valid_train").mkdir(parents=True)
    with pytest.raises(ALFWorldDataMissing, match="split 'valid_seen'"):
        alfworld_splits("L0", data_dir=tmp_path)


def test_missing_engine_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "textworld", None)
    with pytest.raises(ImportError, match=r"pip install 'derl-bench\[alfworld\]'"):
        ALFWorldInnerEnv(data_dir=tmp_path)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="level"):
        alfworld_splits("L3", data_dir=tmp_path)
    with pytest.raises(ValueError, match="max_games"):
        alfworld_splits("L0", data_dir=tmp_path, max_games={"train": 3})
    if _have_engine():
        with pytest.raises(ValueError, match="expert"):
            ALFWorldInnerEnv(data_dir=tmp_path, expert="oracle")
        with pytest.raises(ValueError, match="step_score.*'sum'"):
            ALFWorldInnerEnv(data_dir=tmp_path, step_score="sum")


def test_env_card_names_splits_and_our_l2_choice():
    for word in ("valid_seen", "valid_unseen", "valid_train", "8:2", "our choice", "50"):
        assert word in ENV_CARD


# ---------------------------------------------------------------------------------------------
# Splits (data, no engine).
@needs_data
@pytest.mark.data
@pytest.mark.parametrize("level", ["L0", "L1", "L2"])
def test_splits_are_disjoint_and_sized(level):
    splits = alfworld_splits(level)
    parts = {"d_in": splits.d_in, "val": splits.val, "test": splits.test}
    ids = {name: {t.task_id for t in tasks} for name, tasks in parts.items()}
    assert not ids["d_in"] & ids["val"] and not ids["d_in"] & ids["test"]
    assert not ids["val"] & ids["test"]
    root = alfworld_root()
    for task in splits.d_in[:3] + splits.test[-3:]:
        assert (root / task.task_id / "game.tw-pddl").is_file()
        assert task.domain == "alfworld" and task.task_type in TASK_TYPES
        assert task.task_type == task_type_of(task.task_id)
    pool = len(splits.d_in) + len(splits.val)
    assert len(splits.d_in) == int(0.8 * pool)
    assert all("/valid_train/" in t.task_id for t in splits.train_pool)
    if level == "L0":
        assert pool == 200 and len(splits.test) == 140
        assert all("/valid_seen/" in t.task_id for t in splits.test)
    elif level == "L1":
        assert pool == 200 and len(splits.test) == 134
        assert all("/valid_unseen/" in t.task_id for t in splits.test)
    else:
        assert set(splits.held_out_types) == set(L2_HELD_OUT_TYPES)
        assert {t.task_type for t in splits.test} == set(L2_HELD_OUT_TYPES)
        assert {t.task_type for t in splits.train_pool} == set(L2_TRAIN_TYPES)
        seen = [t for t in splits.test if "/valid_seen/" in t.task_id]
        assert 0 < len(seen) < len(splits.test)  # both valid splits contribute
        held_out = [
            g
            for g in list_games("valid_seen") + list_games("valid_unseen")
            if task_type_of(g) in L2_HELD_OUT_TYPES
        ]
        assert len(splits.test) == len(held_out)


@needs_data
@pytest.mark.data
def test_l0_and_l1_share_d_in_and_v_and_differ_in_test():
    # Why DERL-ALFWorld-L1-v1's signal file equals L0-v1's: the statistic reads V only.
    l0, l1 = alfworld_splits("L0"), alfworld_splits("L1")
    assert (l0.d_in, l0.val) == (l1.d_in, l1.val)
    assert not {t.task_id for t in l0.test} & {t.task_id for t in l1.test}


@needs_data
@pytest.mark.data
def test_splits_are_seeded_and_capped():
    a, b, c = alfworld_splits("L0"), alfworld_splits("L0"), alfworld_splits("L0", seed=1)
    assert a == b and a.d_in != c.d_in
    capped = alfworld_splits("L1", max_games={"d_in": 16, "val": 4, "test": 10})
    assert (len(capped.d_in), len(capped.val), len(capped.test)) == (16, 4, 10)
    full = alfworld_splits("L1")
    assert set(capped.test) <= set(full.test) and set(capped.d_in) <= set(full.d_in)
    assert len({t.task_type for t in capped.test}) > 1  # a random subset, not the first type


# ---------------------------------------------------------------------------------------------
# Real engine.
def _play(env, task, pick, limit=60):
    """Play one episode, choosing each action with ``pick(info)``; return the Trajectory."""
    obs, info = env.reset(options={"task": task})
    assert info["success"] is False and info["valid_actions"]
    scores, actions = [], []
    for _ in range(limit):
        command = pick(info)
        obs, reward, terminated, truncated, info = env.step(info["valid_actions"].index(command))
        scores.append(info["step_score"])
        actions.append(command)
        if terminated or truncated:
            break
    return Trajectory(
        task=env._task,
        step_scores=np.array(scores),
        success=info["success"],
        n_steps=len(actions),
        actions=tuple(actions),
    )


@pytest.fixture(scope="module")
def planner_env():
    env = ALFWorldInnerEnv(expert="planner")
    yield env
    env.close()


# ALFWorld's hand-coded expert is a heuristic ("not guaranteed to succeed", its docstring):
# within 60 steps it solved 8 of 16 first-of-type games we tried (look_at_obj_in_light in
# every split). It is reproducible here (its random fallback is seeded per task and step).
HANDCODED_GAMES = {
    "valid_train": "look_at_obj_in_light",
    "valid_seen": "look_at_obj_in_light",
    "valid_unseen": "look_at_obj_in_light",
}


def _first_game(split: str, task_type: str) -> str:
    return next(g for g in list_games(split) if task_type_of(g) == task_type)


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_planner_expert_solves_a_game_of_every_split_and_g1_is_one(planner_env):
    trajectories = []
    for split, task_type in [
        ("valid_train", "pick_and_place_simple"),
        ("valid_seen", "look_at_obj_in_light"),
        ("valid_unseen", "pick_and_place_simple"),
    ]:
        game = _first_game(split, task_type)
        trajectory = _play(planner_env, game, lambda info: info["expert_plan"][0])
        assert trajectory.success, game
        trajectories.append(trajectory)
    values = EPISODE_PRIMITIVES.compute(trajectories, [None] * len(trajectories))
    np.testing.assert_allclose(values[:, 0], 1.0 + EPSILON)
    assert np.all(values[:, 1:] >= EPSILON) and np.all(values[:, 1:] <= 1.0 + EPSILON)


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_handcoded_expert_solves_games_of_every_split():
    env = ALFWorldInnerEnv(expert="handcoded", max_steps=60)
    try:
        trajectories = [
            _play(env, _first_game(split, task_type), lambda info: info["expert_plan"][0])
            for split, task_type in HANDCODED_GAMES.items()
        ]
    finally:
        env.close()
    assert [t.success for t in trajectories] == [True, True, True]
    values = EPISODE_PRIMITIVES.compute(trajectories, [None] * 3)
    np.testing.assert_allclose(values[:, 0], 1.0 + EPSILON)


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_all_checks_step_score_is_one_only_when_every_check_holds():
    """``step_score="all"`` gives the same checks as the default, scored 1 only when all hold
    (the recorded steps include steps with one check failing)."""
    env = ALFWorldInnerEnv(expert="planner", step_score="all")
    try:
        env.reset(options={"task": LOOK_GAME})
        scores = []
        for command, _, effective, novel, relevant in RECORDED_STEPS:
            *_, info = env.step(command)
            assert info["checks"] == StepChecks(effective, novel, relevant)._asdict()
            scores.append(info["step_score"])
        assert scores == [float(e and n and r) for _, _, e, n, r in RECORDED_STEPS]
        assert 0.0 in scores and 1.0 in scores
    finally:
        env.close()


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_recorded_steps_replay_on_the_engine(planner_env):
    obs, info = planner_env.reset(options={"task": LOOK_GAME})
    assert obs.endswith("Your task is to: " + LOOK_TASK)
    assert "You are in the middle of a room" in obs  # the room description is kept
    for command, feedback, effective, novel, relevant in RECORDED_STEPS:
        obs, reward, terminated, truncated, info = planner_env.step(command)
        assert info["feedback"] == feedback
        assert info["checks"] == StepChecks(effective, novel, relevant)._asdict()
        assert obs == feedback + "\n\nYour task is to: " + LOOK_TASK
    assert terminated and info["success"] and info["won"] and reward == 1.0
    # An index past the valid actions is the empty command: "Nothing happens.", not effective.
    planner_env.reset(options={"task": LOOK_GAME})
    obs, _, _, _, info = planner_env.step(len(info["valid_actions"]) + 3)
    assert info["feedback"] == "Nothing happens." and info["step_score"] == pytest.approx(1 / 3)


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_wrapper_matches_plain_textworld(planner_env):
    """Same commands -> same feedback and admissible commands as textworld.start (no caches)."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler

    game = _first_game("valid_unseen", "pick_and_place_simple")
    _, info = planner_env.reset(options={"task": game})
    plan = info["expert_plan"]
    raw = textworld.start(
        str(alfworld_root() / game / "game.tw-pddl"),
        textworld.EnvInfos(admissible_commands=True, won=True),
        wrappers=[AlfredDemangler()],
    )
    state = raw.reset()
    assert state.feedback.strip() == planner_env.reset(options={"task": game})[0]
    assert state["admissible_commands"] == info["valid_actions"]
    for command in ["go to nowhere"] + plan:
        state, _, _ = raw.step(command)
        _, _, _, _, info = planner_env.step(command)
        assert info["feedback"] == state.feedback
        assert info["valid_actions"] == state["admissible_commands"]
        assert info["won"] == state["won"]
    assert info["won"]
    raw.close()


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_same_task_same_episode_across_envs(planner_env):
    game = _first_game("valid_seen", "pick_two_obj_and_place")
    other = ALFWorldInnerEnv()
    try:
        runs = []
        for env in (planner_env, other, other):
            obs, info = env.reset(seed=7, options={"task": game})
            steps = [(obs, info["valid_actions"])]
            for action in (0, 3, 0):
                obs, reward, term, trunc, info = env.step(action)
                steps.append(
                    (
                        obs,
                        info["valid_actions"],
                        reward,
                        term,
                        trunc,
                        info["step_score"],
                        info["checks"],
                    )
                )
            runs.append(steps)
        assert runs[0] == runs[1] == runs[2]
    finally:
        other.close()


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_resets_do_not_read_game_files(planner_env, monkeypatch):
    from derl_bench.envs import alfworld_data

    game = _first_game("valid_train", "pick_and_place_simple")
    fresh = _first_game("valid_train", "pick_heat_then_place_in_recep")
    planner_env.reset(options={"task": game})
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file).endswith((".tw-pddl", ".json")):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    planner_env.reset(options={"task": game})
    other = ALFWorldInnerEnv()  # a second env in the process reuses the parsed game
    try:
        other.reset(options={"task": game})
        assert opened == []
        # The counter does see reads: once evicted, a game is read exactly once more.
        alfworld_data._JSON.clear()
        other.reset(options={"task": fresh})
        other.reset(options={"task": fresh})
        assert [Path(p).name for p in opened] == ["game.tw-pddl"]
    finally:
        other.close()


@needs_data
@needs_engine
@pytest.mark.slow
@pytest.mark.data
def test_check_env(monkeypatch):
    from gymnasium.utils.env_checker import check_env

    from derl_bench.envs import alfworld

    # Resets without a task draw a default_split game with the seed; two games keep that draw
    # meaningful while sparing check_env a dozen game loads.
    games = list_games("valid_seen")[:2]
    monkeypatch.setattr(alfworld, "list_games", lambda split, data_dir=None: games)
    env = ALFWorldInnerEnv(max_steps=5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any checker warning fails the test
            check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=3)
        assert env.observation_space.contains(obs)
        assert len(info["valid_actions"]) <= env.action_space.n
        for _ in range(5):
            obs, _, _, truncated, info = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs)
        assert truncated  # the step limit
        drawn = {env.reset(seed=s)[1]["task"] for s in range(8)}
        assert len(drawn) == 2 and all("/valid_seen/" in key for key in drawn)
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.data
def test_many_envs_in_one_process_exit_cleanly() -> None:
    # Regression: unloading fast-downward's library copy in close() and loading another made
    # the interpreter segfault at exit after the third env (exit code 139).
    import subprocess
    import sys

    code = (
        "from derl_bench.envs.alfworld import ALFWorldInnerEnv, alfworld_splits\n"
        "task = alfworld_splits('L0', max_games={'d_in': 1, 'val': 1, 'test': 1}).d_in[0]\n"
        "for _ in range(4):\n"
        "    env = ALFWorldInnerEnv(max_steps=3)\n"
        "    env.reset(options={'task': task})\n"
        "    env.step(0)\n"
        "    env.close()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
