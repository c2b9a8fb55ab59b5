"""Speed of the ALFWorld inner env against raw TextWorld (pytest-benchmark; no timing asserts).

Both play the same commands on the same game (the planner's plan for a valid_seen
pick_and_place_simple game, then look/inventory). Compare ``steps`` (wrapper vs raw: the
wrapper's cost is its step score and info) and ``reset`` (raw TextWorld reset vs the wrapper's,
same game, and the wrapper switching between two games).

Run with ``.venv/bin/pytest benchmarks/test_bench_alfworld.py -m slow``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("alfworld")
pytest.importorskip("textworld")

from derl_bench.envs.alfworld import (  # noqa: E402
    ALFWorldDataMissing,
    ALFWorldInnerEnv,
    alfworld_root,
    list_games,
    task_type_of,
)

try:
    ROOT = alfworld_root()
except ALFWorldDataMissing:  # pragma: no cover - data-less machines
    pytest.skip("ALFWorld games not found", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.data]
GAMES = [g for g in list_games("valid_seen") if task_type_of(g) == "pick_and_place_simple"][:2]
ROUNDS = 5


@pytest.fixture(scope="module")
def commands() -> list[str]:
    env = ALFWorldInnerEnv(expert="planner")
    _, info = env.reset(options={"task": GAMES[0]})
    env.close()
    return ["look", "inventory", *info["expert_plan"]]


@pytest.fixture(scope="module")
def wrapper():
    env = ALFWorldInnerEnv()
    yield env
    env.close()


@pytest.fixture(scope="module")
def raw():
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler

    env = textworld.start(
        str(ROOT / GAMES[0] / "game.tw-pddl"),
        textworld.EnvInfos(admissible_commands=True, won=True),
        wrappers=[AlfredDemangler()],
    )
    yield env
    env.close()


@pytest.mark.benchmark(group="alfworld-steps")
def test_bench_steps_wrapper(benchmark, wrapper, commands):
    def reset():
        _, info = wrapper.reset(options={"task": GAMES[0]})
        return (info["valid_actions"],), {}

    def play(valid):
        for command in commands:  # an index into valid_actions, as the GRPO sends
            *_, info = wrapper.step(valid.index(command))
            valid = info["valid_actions"]
        return info["won"]

    assert benchmark.pedantic(play, setup=reset, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["steps_per_round"] = len(commands)


@pytest.mark.benchmark(group="alfworld-steps")
def test_bench_steps_raw_textworld(benchmark, raw, commands):
    def play():
        for command in commands:
            state, _, _ = raw.step(command)
        return state["won"]

    def reset():
        raw.reset()  # pedantic's setup must return None or (args, kwargs)

    assert benchmark.pedantic(play, setup=reset, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["steps_per_round"] = len(commands)


@pytest.mark.benchmark(group="alfworld-reset")
def test_bench_reset_raw_textworld(benchmark, raw):
    benchmark.pedantic(raw.reset, rounds=ROUNDS, iterations=1)


@pytest.mark.benchmark(group="alfworld-reset")
def test_bench_reset_wrapper_same_game(benchmark, wrapper):
    wrapper.reset(options={"task": GAMES[0]})  # warm the caches
    benchmark.pedantic(
        wrapper.reset, kwargs={"options": {"task": GAMES[0]}}, rounds=ROUNDS, iterations=1
    )


@pytest.mark.benchmark(group="alfworld-reset")
def test_bench_reset_wrapper_switching_games(benchmark, wrapper):
    for game in GAMES:  # warm the caches (a GRPO run revisits its games)
        wrapper.reset(options={"task": game})
    turn = iter(range(10**6))

    def reset():
        return wrapper.reset(options={"task": GAMES[next(turn) % 2]})

    benchmark.pedantic(reset, rounds=2 * ROUNDS, iterations=1)
