# Over 450 lines: one inner env (the TextWorld wrapper, its splits and step score) in one place.
"""ALFWorld inner env (text only) over the real TextWorld engine, and its L0/L1/L2 splits.

The env plays ALFWorld's ``json_2.1.1`` games (``<split>/<task folder>/<trial>/game.tw-pddl``)
with TextWorld's PDDL backend, the way ``alfworld`` 0.4.2 builds its text envs
(``alfworld.agents.environment.alfred_tw_env``): ``PddlEnv`` under ``AlfredDemangler`` (object
names such as ``alarmclock 2``), ``EnvInfos(admissible_commands=True, won=True)``. It follows the
inner-env contract of :mod:`derl_bench.envs.episode`. Data folder, game listing and splits are
in :mod:`derl_bench.envs.alfworld_data` (re-exported here). ``alfworld`` and ``textworld`` are
imported lazily (``pip install 'derl-bench[alfworld]'``).

**Step score** (ours; the paper's RLVMR tag checks are not given, PAPER_FACTS.md §2) = the mean of
three binary checks of one step (:func:`step_checks`), so it is one of 0, 1/3, 2/3, 1:

* *effective* — the engine's feedback is not ``"Nothing happens."`` (TextWorld's reply to a
  command that is not admissible; an out-of-range action index is sent as the empty command);
* *novel* — the command, lower-cased with whitespace collapsed, was not issued before in this
  episode;
* *goal-relevant* — a word of the command is a *goal word*: a word of the task line
  ("Your task is to: ...") that names an object or receptacle class of this game (the first
  word of the engine's entity names of type ``object`` or ``receptacle``, e.g. ``mug`` of
  ``mug 2``). "put a clean mug in coffeemachine." has goal words {mug, coffeemachine}.

**Engine caches.** Game files are parsed once per process (an LRU in
:mod:`derl_bench.envs.alfworld_data`) and handed to the engine as dicts, so ``reset`` never
reads the disk. TextWorld rebuilds the game logic (a grammar parse) on every load and translates
PDDL to SAS twice on every load and reset (about 1 s per translation pair on one core); both are
pure functions of the game text, so while our engine runs they are memoised
(``fast_downward.pddl2sas`` and ``textworld.envs.pddl.logic.GameLogic``, swapped in under a lock
and restored afterwards; LRU of :data:`ENGINE_CACHE_SIZE` games). Every step, TextWorld writes
the feedback and each admissible command from text templates, parsing each template and each
conjunctive query with a PEG parser (tatsu) again; 80-90 % of a step's time went there
(cProfile, 36 steps). Both parses are pure functions of the template string, so they are
memoised the same way (``textgen._parse_and_convert``, returning copies, and
``Rule.parse_conjunctive_query``; LRU of :data:`TEXT_PARSE_CACHE_SIZE` strings); and
``textgen.copy_context`` copies the binding dicts instead of deep-copying their values (which
it never mutates). Together: an engine step 2-4x faster, same texts. Measured on a
loaded 2-core machine before that memo: a reset of a game not seen before in the process about
1.2 s, of a cached game 0.12-0.16 s (raw TextWorld: 0.8 s); a step about 0.1-0.6 s depending on
the room, within a few per cent of raw TextWorld (``benchmarks/test_bench_alfworld.py``). The
tests check that observations and admissible commands equal those of plain ``textworld.start``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium
import numpy as np
from gymnasium import spaces

from derl_bench.envs.alfworld_data import (
    _LRU,
    ALFWORLD_ENV_VAR,
    GAME_FILE,
    L2_HELD_OUT_TYPES,
    L2_TRAIN_TYPES,
    TASK_TYPES,
    ALFWorldDataMissing,
    _read_json,
    alfworld_root,
    alfworld_splits,
    list_games,
    task_type_of,
)
from derl_bench.envs.episode import EpisodeTask

_CLOSE_DOWNWARD_LIB = False
"""Whether ``close()`` also unloads the env's private copy of fast-downward's library. Off:
unloading (``fast_downward.close_lib``) and loading it again in the same process made the
interpreter crash with a segmentation fault at exit after the third env (measured with
textworld 1.7.0). The copy (a few MB) then stays mapped until the process ends."""

__all__ = [
    "ALFWORLD_ENV_VAR",
    "ENV_CARD",
    "L2_HELD_OUT_TYPES",
    "L2_TRAIN_TYPES",
    "TASK_TYPES",
    "ALFWorldDataMissing",
    "ALFWorldInnerEnv",
    "StepChecks",
    "alfworld_root",
    "alfworld_splits",
    "goal_words",
    "list_games",
    "step_checks",
    "task_type_of",
]

DEFAULT_MAX_STEPS = 50
"""Step limit of an episode (ALFWorld's usual evaluation budget; the paper uses 30-50)."""
MAX_ACTIONS = 256
"""Size of the ``Discrete`` action space (an upper bound on admissible commands per state)."""
MAX_OBS_CHARS = 8192
"""``max_length`` of the ``Text`` observation space."""
NOTHING_HAPPENS = "Nothing happens."
ENGINE_CACHE_SIZE = 256
"""Games whose SAS translations and game logic are kept per process (about 2 MB each): more
than D_in + V of any level (L0/L1: 200), so a process resets every training game cheaply."""
TEXT_PARSE_CACHE_SIZE = 65_536
"""Parsed text-generation templates and conjunctive queries kept per process (small ASTs)."""
_TASK_RE = re.compile(r"Your task is to: ([^\n]*)")
_WORD_RE = re.compile(r"[a-z]+")

ENV_CARD = f"""ALFWorld (text, TextWorld engine, games json_2.1.1)
Splits (alfworld_splits): training pool = `train` if present, else `valid_train` (200 games here),
  cut 8:2 into D_in / V with derl_bench.envs.data.split_pool (seeded permutation, seed 0).
  L0 test = valid_seen (140, seen rooms); L1 test = valid_unseen (134, unseen rooms).
  L2: train pool restricted to {", ".join(L2_TRAIN_TYPES)};
  test = {" and ".join(L2_HELD_OUT_TYPES)} games of valid_seen + valid_unseen.
  The L2 held-out pair is our choice; the DERL paper names none.
Episode: observation = game text (reset: room description and task line; after a step: the
  feedback followed by the task line); action = index into info["valid_actions"] (TextWorld's
  sorted admissible commands) or a command string; success = TextWorld `won`;
  terminated at success; truncated at {DEFAULT_MAX_STEPS} steps (default).
Step score = mean of three binary checks: effective (feedback is not "Nothing happens."),
  novel (command not issued before in the episode), goal-relevant (the command names an
  object/receptacle word of the task line).
Version history: v0 initial (random MiniLM scoring head; cpu validates on 8 V games).
  v1 (issue 14): observations start with the task line and the last 3 commands
  (recent_actions=3); smoke/cpu policies start from a behaviour-cloning cold start on the
  planner's trajectories of D_in games (derl_bench/inner/cold_start.py; cpu: 108 games x 40
  epochs, cold-started validation success 0.321 on ALFWorld-L2's 28 V games, 0.286 before
  embeddings were made independent of batching); cpu validates on all of V and tests on 32
  games; the MiniLM head also matches actions against the task and recent-actions lines
  (context_lines=2).
Signal (docs/signal/DERL-ALFWorld-L2-v1-cpu.md; `derl-bench signal --env DERL-ALFWorld-L2-v1
  --preset cpu --seeds 0,1,2 --executor process`): SNR 0.57, ANOVA p 0.47 over the eight
  sensible panel rewards (means 0.190-0.321, seed std 0.072), -g1 0.214 below the untrained
  0.321. At cpu this id does not rank meta-rewards yet; a meta-step takes 73-82 s on 2 cores.
  ALFWorld-L0-v1 (docs/signal/DERL-ALFWorld-L0-v1-cpu.md, same command): untrained 0.175 on its
  40 V games, SNR 0.57, ANOVA p 0.48 (means 0.092-0.175, seed std 0.052), -g1 0.100 below the
  untrained policy; does not rank meta-rewards either. ALFWorld-L1-v1
  (docs/signal/DERL-ALFWorld-L1-v1-cpu.md, same command) gives L0-v1's cells value for value:
  L0 and L1 share D_in and V and differ only in the test games."""
"""Env card: splits, step limit and step score of the ALFWorld domain."""


STEP_SCORES = ("mean", "all")
"""How a step's three checks make its step score (``ALFWorldInnerEnv(step_score=...)``)."""


class StepChecks(NamedTuple):
    """The binary checks whose mean is the ALFWorld step score (see the module docs)."""

    effective: bool
    novel: bool
    goal_relevant: bool

    @property
    def score(self) -> float:
        """The step score: mean of the three checks, in {0, 1/3, 2/3, 1}."""
        return (int(self.effective) + int(self.novel) + int(self.goal_relevant)) / 3.0

    @property
    def all_hold(self) -> float:
        """The binary step score: 1.0 when every check holds, else 0.0.

        Used with ``step_score="all"``: a 0/1 score per step, as in the paper's worked example
        (PAPER_FACTS.md §2).
        """
        return float(self.effective and self.novel and self.goal_relevant)


def _normalise(command: str) -> str:
    return " ".join(command.lower().split())


def goal_words(task_line: str, entity_names: Sequence[str]) -> frozenset[str]:
    """Words of the task line that name an object or receptacle class of the game.

    Args:
        task_line: The task, e.g. ``"put a clean mug in coffeemachine."``.
        entity_names: Names of the game's objects and receptacles, e.g. ``"mug 2"``.

    Returns:
        The goal words, e.g. ``frozenset({"mug", "coffeemachine"})``.
    """
    classes = {name.split()[0].lower() for name in entity_names if name.split()}
    return frozenset(w for w in _WORD_RE.findall(task_line.lower()) if w in classes)


def step_checks(
    command: str, feedback: str, *, previous: set[str] | frozenset[str], goals: frozenset[str]
) -> StepChecks:
    """The three binary checks of one step (module docs give the rules).

    Args:
        command: The command sent to the engine.
        feedback: The engine's feedback to it.
        previous: Normalised commands (lower case, single spaces) issued earlier this episode.
        goals: The episode's goal words (:func:`goal_words`).

    Returns:
        The checks; ``.score`` is the step score.
    """
    norm = _normalise(command)
    return StepChecks(
        effective=feedback.strip() != NOTHING_HAPPENS,
        novel=norm not in previous,
        goal_relevant=any(w in goals for w in _WORD_RE.findall(norm)),
    )


_SAS = _LRU(2 * ENGINE_CACHE_SIZE)
_LOGIC = _LRU(ENGINE_CACHE_SIZE)
_TEXT_PARSES = _LRU(TEXT_PARSE_CACHE_SIZE)
_QUERIES = _LRU(TEXT_PARSE_CACHE_SIZE)
_PATCH_LOCK = threading.RLock()


def _import_engine() -> Any:
    try:
        import fast_downward
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
        from textworld.envs.pddl import pddl as tw_pddl
    except ImportError as exc:
        raise ImportError(
            "The ALFWorld env needs alfworld and textworld[pddl]: "
            "pip install 'derl-bench[alfworld]'"
        ) from exc
    return fast_downward, textworld, AlfredDemangler, tw_pddl


@contextlib.contextmanager
def _engine_caches() -> Iterator[None]:
    """Memoise TextWorld's PDDL->SAS translation and game-logic parse while the engine runs."""
    fast_downward, _, _, tw_pddl = _import_engine()
    logic_module = tw_pddl.pddl_logic
    try:
        from textworld.envs.pddl import textgen
        from textworld.logic import Rule
    except ImportError:  # another textworld layout: run uncached rather than fail
        textgen = Rule = None
    if (
        not hasattr(fast_downward, "pddl2sas")
        or not hasattr(logic_module, "GameLogic")
        or not hasattr(textgen, "_parse_and_convert")
        or not hasattr(Rule, "parse_conjunctive_query")
        or not hasattr(textgen, "copy_context")
    ):
        yield  # another textworld layout: run uncached rather than fail
        return
    with _PATCH_LOCK:
        raw_sas, raw_logic = fast_downward.pddl2sas, logic_module.GameLogic
        raw_text, raw_query = textgen._parse_and_convert, Rule.__dict__["parse_conjunctive_query"]
        raw_copy_context = textgen.copy_context
        if getattr(raw_sas, "_derl_memo", False):  # re-entered: already swapped in
            yield
            return

        def pddl2sas(domain: str, problem: str, verbose: bool = False, optimize: bool = False):
            return _SAS.get(
                (domain, problem, bool(optimize)),
                lambda: raw_sas(domain, problem, verbose=verbose, optimize=optimize),
            )

        def game_logic(domain: str, grammar: str) -> Any:
            return _LOGIC.get((domain, grammar), lambda: raw_logic(domain=domain, grammar=grammar))

        def parse_text(*args: Any, **kwargs: Any) -> Any:
            # Symbols get their context assigned after parsing: hand out copies.
            key = (args, tuple(sorted(kwargs.items())))
            return copy.deepcopy(_TEXT_PARSES.get(key, lambda: raw_text(*args, **kwargs)))

        def parse_query(cls: Any, expr: str) -> Any:
            # Rules are hashable values that the engine never mutates: share them.
            return _QUERIES.get(expr, lambda: raw_query.__func__(cls, expr))

        def copy_context(context: dict[str, Any]) -> dict[str, Any]:
            # TextWorld deep-copies the two binding dicts; their values (entity infos, logic
            # variables) are never mutated, only the dicts are (``update``): copy the dicts.
            return {
                "state": context["state"],
                "facts": context["facts"],
                "variables": dict(context["variables"]),
                "mapping": dict(context["mapping"]),
                "entity_infos": context["entity_infos"],
            }

        pddl2sas._derl_memo = True  # type: ignore[attr-defined]
        fast_downward.pddl2sas, logic_module.GameLogic = pddl2sas, game_logic
        textgen._parse_and_convert = parse_text
        Rule.parse_conjunctive_query = classmethod(parse_query)
        textgen.copy_context = copy_context
        try:
            yield
        finally:
            fast_downward.pddl2sas, logic_module.GameLogic = raw_sas, raw_logic
            textgen._parse_and_convert = raw_text
            Rule.parse_conjunctive_query = raw_query
            textgen.copy_context = raw_copy_context


class ALFWorldInnerEnv(gymnasium.Env):
    """ALFWorld text games as a DERL inner env.

    Description:
        One ALFWorld game (a household task in a TextWorld room) per episode, played through
        TextWorld's PDDL engine as ``alfworld`` 0.4.2 does. See the module docs and
        :data:`ENV_CARD` for the step score and splits.

    Action Space:
        ``Discrete(MAX_ACTIONS)``: an index into ``info["valid_actions"]`` (the engine's
        admissible commands, sorted). A command string is accepted too. An index outside the
        current list is sent to the engine as the empty command (``"Nothing happens."``).

    Observation Space:
        ``Text(MAX_OBS_CHARS)`` over printable ASCII. Reset: the engine's intro (room
        description, then ``"Your task is to: ..."``). Step: the engine's feedback, then (if
        ``task_in_obs``) a blank line and the task line, so a memoryless policy keeps the goal.
        With ``recent_actions`` = k > 0 every observation (reset too) is instead three lines: the
        task line, ``"Recent actions: <c1>; ...; <ck>"`` (the last k commands of the episode, oldest
        first; ``none`` at reset), then the engine's text. A sentence encoder that reads only the
        start of a long text (MiniLM: 256 word pieces) thus always sees the goal and what was just
        done.

    Rewards:
        The engine's score: 1.0 on the winning step, else 0.0 (never used by DERL primitives).

    Starting State:
        ``options={"task": EpisodeTask}`` picks the game (``task_id`` = game folder relative to the
        data root); without it a game of ``default_split`` is drawn with the reset seed. The
        engine is deterministic: the same game always starts in the same state.

    Episode End:
        ``terminated`` when the task is won (ALFWorld has no lost state); ``truncated`` after
        ``max_steps`` steps.

    Info:
        ``valid_actions`` (list[str]), ``success`` and ``won`` (bool), ``task`` (the task's
        ``key``), ``gamefile`` (str), ``feedback`` (the engine text alone); after a step also
        ``step_score`` (float in [0, 1]), ``checks`` (dict of the three checks), ``command``;
        with ``expert`` set, ``expert_plan`` (list[str]; empty when the expert gave up).

    Arguments:
        data_dir: ALFWorld data folder (holding ``json_2.1.1/``); see :func:`alfworld_root`.
        max_steps: Step limit (inner steps) per episode.
        task_in_obs: Append the task line to every step observation (``recent_actions`` = 0).
        recent_actions: Show the task line and the last this many commands at the start of
            every observation (0: the v0 layout above).
        step_score: ``"mean"`` (the step score is the mean of the three checks, every
            registered version) or ``"all"`` (1 when all three hold, else 0; an experiment
            setting, ``EpisodeGRPOConfig.step_score``).
        default_split: Split to draw games from when reset has no task.
        expert: ``None``; ``"handcoded"`` (ALFWorld's ``HandCodedTWAgent``, the next action, as
            ``AlfredExpert`` gives it: ``["look"]`` at reset; heuristic, it does not solve every
            game) or ``"planner"`` (TextWorld's fast-downward plan, the full remaining plan:
            planned at reset and again only after a step that left the plan).

    Version History:
        v0: initial version (alfworld 0.4.2, textworld 1.7).
        v1 (``DERL-ALFWorld-*-v1``): built with ``recent_actions=3``.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        task_in_obs: bool = True,
        default_split: str = "valid_seen",
        expert: str | None = None,
        recent_actions: int = 0,
        step_score: str = "mean",
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if expert not in (None, "handcoded", "planner"):
            raise ValueError(f"expert must be None, 'handcoded' or 'planner', got {expert!r}")
        if recent_actions < 0:
            raise ValueError(f"recent_actions must be >= 0, got {recent_actions}")
        if step_score not in STEP_SCORES:
            raise ValueError(f"step_score must be one of {STEP_SCORES}, got {step_score!r}")
        _import_engine()
        self.root = alfworld_root(data_dir)
        self.max_steps = int(max_steps)
        self.task_in_obs = task_in_obs
        self.default_split = default_split
        self.expert = expert
        self.recent_actions = int(recent_actions)
        self.step_score = step_score
        self.action_space = spaces.Discrete(MAX_ACTIONS)
        self.observation_space = spaces.Text(
            max_length=MAX_OBS_CHARS, charset="".join(chr(c) for c in range(32, 127)) + "\n\t"
        )
        self._engine: Any = None
        self._loaded: str | None = None
        self._state: Any = None
        self._task: EpisodeTask | None = None
        self._task_line = ""
        self._goals: frozenset[str] = frozenset()
        self._previous: set[str] = set()
        self._commands: list[str] = []
        self._t = 0
        self._expert_agent: Any = None
        self._plan: list[str] = []

    # -- engine -----------------------------------------------------------------------------
    def _make_engine(self) -> Any:
        _, textworld, demangler, tw_pddl = _import_engine()
        infos = textworld.EnvInfos(
            admissible_commands=True,
            won=True,
            facts=self.expert == "handcoded",
        )
        return demangler(tw_pddl.PddlEnv(infos), shuffle=False)

    def _resolve_task(self, options: dict[str, Any] | None) -> EpisodeTask:
        task = (options or {}).get("task")
        if task is None:
            games = list_games(self.default_split, data_dir=self.root)
            task_id = games[int(self.np_random.integers(len(games)))]
            return EpisodeTask(domain="alfworld", task_id=task_id, task_type=task_type_of(task_id))
        if isinstance(task, str):
            return EpisodeTask(domain="alfworld", task_id=task, task_type=task_type_of(task))
        if not isinstance(task, EpisodeTask):
            raise TypeError(f"options['task'] must be an EpisodeTask or a task id, got {task!r}")
        return task

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start the game of ``options["task"]`` (or a ``default_split`` game drawn by ``seed``).

        Args:
            seed: Seeds the game draw when no task is given (the engine itself is deterministic).
            options: ``{"task": EpisodeTask | task_id str}``.

        Returns:
            ``(observation, info)``; ``info`` has ``valid_actions`` and ``success=False``.

        Raises:
            ALFWorldDataMissing: If the game folder does not exist.
        """
        super().reset(seed=seed)
        task = self._resolve_task(options)
        game_file = self.root / task.task_id / GAME_FILE
        if not game_file.is_file():
            raise ALFWorldDataMissing(game_file, what=f"ALFWorld game of task {task.task_id!r}")
        game = _read_json(game_file)
        if self._engine is None:
            self._engine = self._make_engine()
        with _engine_caches():
            if self._loaded != str(game_file):
                self._loaded = None
                self._engine.load(game)
                self._loaded = str(game_file)
            self._engine.request_infos.policy_commands = self.expert == "planner"
            self._state = self._engine.reset()
            self._engine.request_infos.policy_commands = False
        self._task, self._t, self._previous, self._commands = task, 0, set(), []
        feedback = self._state.feedback
        match = _TASK_RE.search(feedback)
        self._task_line = match.group(0).strip() if match else ""
        entities = [
            info.name
            for info in self._state["_entity_infos"].values()
            if info.type in ("object", "receptacle")
        ]
        self._goals = goal_words(match.group(1) if match else "", entities)
        self._expert_agent = None
        info = self._info(feedback)
        if self.expert == "handcoded":
            self._expert_agent = self._new_handcoded(game_file)
            self._expert_agent.observe(feedback)
            info["expert_plan"] = ["look"]
        elif self.expert == "planner":
            self._plan = list(self._state["policy_commands"])
            info["expert_plan"] = list(self._plan)
        return self._observation(feedback), info

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Send one command to the engine.

        Args:
            action: An index into the last ``info["valid_actions"]``, or a command string.

        Returns:
            ``(observation, reward, terminated, truncated, info)`` as in the class docs.

        Raises:
            RuntimeError: If called before ``reset``.
            TypeError: If ``action`` is neither an integer nor a string.
        """
        if self._state is None or self._task is None:
            raise RuntimeError("call reset() before step()")
        valid = self._state["admissible_commands"]
        if isinstance(action, str):
            command = action
        elif isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            command = valid[int(action)] if 0 <= int(action) < len(valid) else ""
        else:
            raise TypeError(f"action must be an int index or a command string, got {action!r}")
        replan = self.expert == "planner" and (not self._plan or command != self._plan[0])
        with _engine_caches():
            self._engine.request_infos.policy_commands = replan
            self._state, reward, _ = self._engine.step(command)
            self._engine.request_infos.policy_commands = False
        self._t += 1
        feedback = self._state.feedback
        checks = step_checks(command, feedback, previous=self._previous, goals=self._goals)
        self._previous.add(_normalise(command))
        self._commands.append(command)
        won = bool(self._state["won"])
        info = self._info(feedback)
        score = checks.score if self.step_score == "mean" else checks.all_hold
        info.update(step_score=score, checks=checks._asdict(), command=command)
        if self.expert == "handcoded":
            info["expert_plan"] = self._handcoded_next(command)
        elif self.expert == "planner":
            self._plan = list(self._state["policy_commands"]) if replan else self._plan[1:]
            info["expert_plan"] = list(self._plan)
        obs = self._observation(feedback)
        truncated = not won and self._t >= self.max_steps
        return obs, float(reward), won, truncated, info

    def _observation(self, feedback: str) -> str:
        """The observation text of the class docs (v0 layout, or task + recent actions first)."""
        text = feedback.strip()
        if self.recent_actions:
            recent = "; ".join(self._commands[-self.recent_actions :]) or "none"
            return f"{self._task_line}\nRecent actions: {recent}\n{text}"
        if self.task_in_obs and self._task_line and self._t > 0:
            return f"{text}\n\n{self._task_line}"
        return text

    def _info(self, feedback: str) -> dict[str, Any]:
        won = bool(self._state["won"])
        assert self._task is not None
        return {
            "valid_actions": list(self._state["admissible_commands"]),
            "success": won,
            "won": won,
            "task": self._task.key,
            "gamefile": self._loaded,
            "feedback": feedback,
        }

    # -- ALFWorld's hand-coded expert (AlfredExpert's logic, traj_data.json from the cache) --
    def _new_handcoded(self, game_file: Path) -> Any:
        from alfworld.agents.expert import HandCodedTWAgent
        from alfworld.gen import constants

        agent = HandCodedTWAgent(max_steps=200)
        traj = _read_json(game_file.parent / "traj_data.json")
        params = {**traj["pddl_params"], "task_type": traj["task_type"]}
        agent.task_params = {
            k: v.lower() if v in constants.OBJECTS else v for k, v in params.items()
        }
        agent.policy = agent.get_task_policy(agent.task_params)(
            agent.task_params, max_steps=agent.max_steps
        )
        return agent

    def _handcoded_next(self, command: str) -> list[str]:
        from alfworld.agents.expert import HandCodedAgentFailed, HandCodedAgentTimeout

        assert self._task is not None
        # The expert falls back on random.choice; seed it per (task, step) and restore the
        # global stream, so expert runs are reproducible and leave no trace.
        saved = random.getstate()
        random.seed(zlib.crc32(f"{self._task.key}/{self._t}".encode()))
        try:
            action = self._expert_agent.act(self._state, 0, self._state["won"], command)
        except (HandCodedAgentTimeout, HandCodedAgentFailed):
            return []
        finally:
            random.setstate(saved)
        return [action] if action in self._state["admissible_commands"] else ["look"]

    def close(self) -> None:
        """Release the engine (its private copy of fast-downward's library)."""
        engine, self._engine, self._loaded, self._state = self._engine, None, None, None
        if engine is not None:
            fast_downward = _import_engine()[0]
            lib = getattr(engine, "downward_lib", None)
            engine.close()
            if lib is not None and _CLOSE_DOWNWARD_LIB:
                with contextlib.suppress(Exception):
                    fast_downward.close_lib(lib)
