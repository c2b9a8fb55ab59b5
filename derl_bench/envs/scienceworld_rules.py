"""ScienceWorld's candidate-action, step-score and expert rules (pure functions of text).

Used by :class:`derl_bench.envs.scienceworld.ScienceWorldInnerEnv`; no simulator needed here.

**Candidate actions** (``info["valid_actions"]``, at most ``max_actions``, default 64). The
simulator's valid action-object combinations number 100-1,600 per state. We keep a bounded,
deterministic subset that depends only on that list, the task description and the inventory
(never on the gold path):

1. *Dropped*: duplicates; ``reset task``, ``task`` (re-prints the description), ``wait`` (10
   ticks; ``wait1`` stays); ``go to ...`` when ``teleport to ...`` exists; the verbs
   ``close, eat, flush, dunk, disconnect, look in``; every action that names ``agent``; and
   single-object actions whose object is a room, a door or ``inventory``.
2. *Ranked* into tiers, each sorted by verb rank (:data:`VERB_RANK`), then by the action's
   object text, then by the action:
   (0) ``look around``, ``inventory``, ``wait1`` and every ``teleport to <room>``;
   (1) goal-relevant single-object actions; (2) goal-relevant two-object actions (``move``,
   ``pour``, ``use``, ``connect``) whose first object is in the inventory or was the object
   of an earlier single-object action of the episode (e.g. ``focus on X``); (3) other
   single-object actions; (4) other goal-relevant two-object actions; (5) the rest
   (two-object actions that are not goal-relevant).
3. The first ``max_actions`` of that ranking, sorted alphabetically, are the candidates.

This is *rule 1* (``DERL-ScienceWorld-*-v0``/``-v1``). *Rule 2* (``-v2``, at most 96; chosen
so that every action of the ``-v2`` cold start's expert, :func:`expert_path`, is kept on the
``cpu`` D_in games, measured by ``scripts/scienceworld_gold_coverage.py``) drops only
duplicates, ``reset task``, ``task``, the verbs ``eat, flush, disconnect, dunk``, ``go to``
when ``teleport to`` exists, actions naming ``agent`` and single-object actions on a room, a
door or ``inventory``, and ranks into tiers, each sorted by the number of task-description
words the action names (more first; for tiers 2 and 4 the words of the destination), then
by its own verb order (``focus on``, ``pick up``, ``move``, ``open``/``activate``/
``deactivate``, ``pour``/``use``/``connect``, ``put down``/``read``, ``mix``/``look at``,
the rest), object and action:
(0) ``look around``, ``inventory``, ``wait1``, ``wait`` and every ``teleport to <room>``;
(1) single-object actions naming a task word or on a held object (in the inventory, or the
object of an earlier single-object action); (2) two-object actions whose first object is held
(named ``... in inventory``, or its words a subset or superset of a held object's, as
``flower pot`` and the inventory's ``flower pot 6``) and whose destination names a task word (``move
butterfly to red box``); (3) ``focus on``, ``pick up``, ``open``, ``activate`` and
``deactivate`` of any other object (a find task's answer is named nowhere); (4) other
two-object actions of a held object; (5) other two-object actions naming a task word;
(6) other single-object actions; (7) the rest.

*Goal-relevant* means the action's object words (its words minus the template words of
:data:`TEMPLATE_WORDS` and :data:`STOPWORDS`) share a word with the task description's words
minus :data:`STOPWORDS`.

**Step score** = mean of three binary checks (documented in :func:`step_checks`):
*effective* (the observation is not one of the simulator's failure / no-op messages in
:data:`INEFFECTIVE_PATTERNS`), *novel* (the action string was not taken before in this
episode), *goal-relevant* (as above). The ScienceWorld score (progress) is deliberately not a
check: its delta is the native reward, which the contract keeps away from the primitives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CANDIDATE_RULES",
    "DEFAULT_MAX_ACTIONS",
    "EXPERT_VERB_ALIASES",
    "INEFFECTIVE_PATTERNS",
    "STOPWORDS",
    "TEMPLATE_WORDS",
    "VERB_RANK",
    "action_object",
    "action_words",
    "build_candidates",
    "expert_path",
    "inventory_items",
    "is_effective",
    "is_goal_relevant",
    "match_action",
    "object_parents",
    "step_checks",
    "task_words",
]

DEFAULT_MAX_ACTIONS = 64
"""Default bound on the candidate list ``info["valid_actions"]``."""

STOPWORDS = frozenset(
    "a an n the to of in on at and or for with is it its be by your you task first then next "
    "when are that this will which as from into there these those some any one two called "
    "containing nothing thing things located location around done also should".split()
)
"""Words ignored on both sides of the goal-relevance check."""
TEMPLATE_WORDS = frozenset(
    "activate close deactivate dunk eat flush focus go inventory look mix move open pick up "
    "pour put down read reset teleport use wait wait1 connect disconnect".split()
)
"""Words of ScienceWorld's action templates (not object words)."""
VERB_RANK: dict[str, int] = {
    "focus on": 0, "pick up": 0, "move": 1, "open": 2, "activate": 2, "deactivate": 2,
    "pour": 3, "use": 3, "connect": 3, "put down": 4, "read": 4, "mix": 5, "look at": 5,
}  # fmt: skip
"""Verb rank used to order candidates inside a tier (unknown verbs rank 6); equal ranks are
ordered by object, so e.g. ``focus on X`` and ``pick up X`` are kept or cut together."""
_DROPPED_ACTIONS = frozenset({"reset task", "task", "wait"})
_DROPPED_VERBS = ("close ", "eat ", "flush ", "dunk ", "disconnect ", "look in ")
_TWO_OBJECT = {"move": " to ", "pour": " into ", "use": " on ", "connect": " to "}
_ROOMS = frozenset({
    "art studio", "bathroom", "bedroom", "foundry", "greenhouse", "hallway", "kitchen",
    "living room", "outside", "workshop",
})  # fmt: skip

INEFFECTIVE_PATTERNS: tuple[str, ...] = (
    r"^No known action matches that input\.",
    r"^Unknown action\.",
    r"^Ambiguous request",
    r"^I'm not sure",
    r"^It'?s not clear how to",
    r"^You can't",
    r"^That can't be moved",
    r"^That is not ",
    r"^That is already ",
    r"^That object (already appears|does not appear)",
    r"^That container is empty",
    r"^There is only one thing",
    r"^There is nothing in the",
    r"^Something can't be connected to itself",
    r"^The door doesn't appear to go anywhere",
    r"is already (open|closed|activated|deactivated|connected)",
    r"(isn't|is not) open",
    r"is not (moveable|something that can be)",
    r"does not contain any liquids to dunk into",
    r"is empty, so there's nothing to pour",
    r"can't be poured out",
    r"does not have any text on it",
    r"can't be activated or deactivated",
)
"""Regexes (``re.search`` on the stripped observation) of the simulator's failure and no-op
messages, taken from the strings of ``scienceworld.jar`` 1.2 and observed in real episodes."""
_INEFFECTIVE = re.compile("|".join(f"(?:{p})" for p in INEFFECTIVE_PATTERNS))

_WORD = re.compile(r"[a-z]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - STOPWORDS


def task_words(description: str) -> frozenset[str]:
    """Content words of a task description (lowercase ``[a-z]+`` minus :data:`STOPWORDS`)."""
    return frozenset(_words(description.replace("Task Description:", "")))


def action_words(action: str) -> frozenset[str]:
    """Object words of an action (its words minus :data:`TEMPLATE_WORDS` and stopwords)."""
    return frozenset(_words(action) - TEMPLATE_WORDS)


def is_goal_relevant(action: str, goal_words: frozenset[str]) -> bool:
    """Whether ``action`` names a word of the task description (see module docs)."""
    return bool(action_words(action) & goal_words)


def is_effective(observation: str) -> bool:
    """Whether an observation is *not* a failure / no-op message (:data:`INEFFECTIVE_PATTERNS`)."""
    return _INEFFECTIVE.search(observation.strip()) is None


def step_checks(
    action: str, observation: str, previous_actions: Sequence[str], goal_words: frozenset[str]
) -> dict[str, bool]:
    """The binary checks whose mean is the step score.

    Args:
        action: The action string sent to the simulator.
        observation: The simulator's answer to it.
        previous_actions: Action strings taken earlier in the episode.
        goal_words: :func:`task_words` of the task description.

    Returns:
        ``{"effective": ..., "novel": ..., "goal_relevant": ...}``.
    """
    return {
        "effective": is_effective(observation),
        "novel": action not in previous_actions,
        "goal_relevant": is_goal_relevant(action, goal_words),
    }


def inventory_items(inventory: str) -> list[str]:
    """Item names of the simulator's inventory text, one item per line after the header."""
    items = []
    for line in inventory.splitlines()[1:]:
        item = re.sub(r"^(a|an|the|some)\s+", "", line.strip())
        item = re.sub(r"\s*\(.*$", "", item)  # "(containing ...)" details
        if item:
            items.append(item)
    return items


def _verb(action: str) -> str:
    parts = action.split(" ", 2)
    two = " ".join(parts[:2])
    return two if len(parts) > 2 and two in VERB_RANK else parts[0]


def _single_object(action: str, verb: str) -> str | None:
    if verb in _TWO_OBJECT or " " not in action:
        return None
    return action[len(verb) + 1 :]


def action_object(action: str) -> str | None:
    """The object text of a single-object action (``"focus on red box"`` -> ``"red box"``)."""
    verb = _verb(action)
    if verb == "teleport" or action in ("look around", "inventory", "wait1"):
        return None
    return _single_object(action, verb)


CANDIDATE_RULES = (1, 2)
"""Versions of the candidate rule: 1 (``DERL-ScienceWorld-*-v0``/``-v1``, :func:`build_candidates`
with ``rules=1``) and 2 (``-v2``, see :func:`build_candidates`)."""


def build_candidates(
    valid: Sequence[str],
    description: str,
    inventory: str,
    max_actions: int = DEFAULT_MAX_ACTIONS,
    handled: Sequence[str] = (),
    rules: int = 1,
) -> list[str]:
    """The bounded candidate list of one state (the rule is in the module docstring).

    Args:
        valid: The simulator's valid action-object combinations (any order).
        description: The task description.
        inventory: The simulator's inventory text.
        max_actions: Bound on the result.
        handled: Objects of the episode's earlier single-object actions
            (:func:`action_object`), treated like inventory items for tier 2.
        rules: The rule version (:data:`CANDIDATE_RULES`; both in the module docstring).

    Returns:
        At most ``max_actions`` distinct action strings, sorted alphabetically.

    Raises:
        ValueError: On an unknown ``rules`` version.
    """
    if rules == 1:
        ranked = _ranked_v1(valid, description, inventory, handled)
    elif rules == 2:
        ranked = _ranked_v2(valid, description, inventory, handled)
    else:
        raise ValueError(f"Unknown candidate rules {rules!r}; known: {list(CANDIDATE_RULES)}")
    return sorted(action for *_, action in ranked[:max_actions])


def _ranked_v1(
    valid: Sequence[str], description: str, inventory: str, handled: Sequence[str]
) -> list[tuple[int, int, str, str]]:
    """Rule 1 (the module docstring): ``(tier, verb rank, object, action)``, sorted."""
    goal = task_words(description)
    items = [*inventory_items(inventory), *handled]
    has_teleport = any(a.startswith("teleport to ") for a in valid)
    ranked: list[tuple[int, int, str, str]] = []
    for action in dict.fromkeys(valid):
        if action in _DROPPED_ACTIONS or action.startswith(_DROPPED_VERBS):
            continue
        if has_teleport and action.startswith("go "):
            continue
        if "agent" in action.split():
            continue
        verb = _verb(action)
        relevant = is_goal_relevant(action, goal)
        if action in ("look around", "inventory", "wait1") or verb == "teleport":
            tier = 0
        elif verb in _TWO_OBJECT:
            if not relevant:
                tier = 5
            elif any(action.startswith(f"{verb} {item}{_TWO_OBJECT[verb]}") for item in items):
                tier = 2
            else:
                tier = 4
        else:
            obj = _single_object(action, verb)
            if obj is None:
                tier = 5
            elif obj in _ROOMS or obj == "inventory" or "door" in obj.split():
                continue
            else:
                tier = 1 if relevant else 3
        obj = action[len(verb) :].strip()
        ranked.append((tier, VERB_RANK.get(verb, 6), obj, action))
    ranked.sort()
    return ranked


_V2_DROPPED_VERBS = ("eat ", "flush ", "disconnect ", "dunk ")
_V2_ALWAYS = ("look around", "inventory", "wait1", "wait")
_V2_ANY_OBJECT_VERBS = ("focus on", "pick up", "open", "activate", "deactivate")
_V2_VERB_RANK: dict[str, int] = {
    "focus on": 0, "pick up": 1, "move": 2, "open": 3, "activate": 3, "deactivate": 3,
    "pour": 4, "use": 4, "connect": 4, "put down": 5, "read": 5, "mix": 6, "look at": 6,
}  # fmt: skip


def _held(action: str, verb: str, items: Sequence[frozenset[str]]) -> bool:
    """Whether a two-object action's first object is held (inventory or handled).

    Held means named ``... in inventory``, or its words (:func:`_words`) are a subset or a
    superset of an item's words: the valid actions name ``flower pot 6`` of the inventory
    ``flower pot`` and ``butterfly egg`` ``butterfly``.
    """
    first = action[len(verb) + 1 :].split(_TWO_OBJECT[verb], 1)[0]
    if first.endswith(" in inventory"):
        return True
    words = _words(first)
    return bool(words) and any(words <= item or item <= words for item in items)


def _ranked_v2(
    valid: Sequence[str], description: str, inventory: str, handled: Sequence[str]
) -> list[tuple[int, int, int, str, str]]:
    """Rule 2 (the module docstring): ``(tier, -overlap, verb rank, object, action)``, sorted."""
    goal = task_words(description)
    items = [*inventory_items(inventory), *handled]
    item_words = [w for w in map(frozenset, map(_words, items)) if w]
    has_teleport = any(a.startswith("teleport to ") for a in valid)
    ranked: list[tuple[int, int, int, str, str]] = []
    for action in dict.fromkeys(valid):
        if action in ("reset task", "task") or action.startswith(_V2_DROPPED_VERBS):
            continue
        if has_teleport and action.startswith("go "):
            continue
        if "agent" in action.split():
            continue
        verb = _verb(action)
        overlap = len(action_words(action) & goal)
        if action in _V2_ALWAYS or verb == "teleport":
            tier = 0
        elif verb in _TWO_OBJECT:
            if _held(action, verb, item_words):
                target = action.split(_TWO_OBJECT[verb], 1)[-1]
                overlap = len(action_words(target) & goal)  # rank by where it goes
                tier = 2 if overlap else 4
            else:
                tier = 5 if overlap else 7
        else:
            obj = _single_object(action, verb)
            if obj is None:
                tier = 7
            elif obj in _ROOMS or obj == "inventory" or "door" in obj.split():
                continue
            elif overlap or obj in items:
                tier = 1
            elif verb in _V2_ANY_OBJECT_VERBS:
                tier = 3
            else:
                tier = 6
        obj = action[len(verb) :].strip()
        ranked.append((tier, -overlap, _V2_VERB_RANK.get(verb, 7), obj, action))
    ranked.sort()
    return ranked


EXPERT_VERB_ALIASES: dict[str, str] = {"examine ": "look at ", "drop ": "put down "}
"""Verbs of gold action sequences that the valid-action list spells otherwise."""
_NAVIGATION = ("open door to ", "go to ")


def expert_path(gold: Sequence[str]) -> list[str]:
    """The gold action sequence as the ``-v2`` expert plays it under the "easy" simplifications.

    The simulator's gold paths walk from room to room (``open door to R``, ``go to R``) although
    the "easy" simplifications open every door and allow ``teleport to R``; they answer
    ``Ambiguous request`` prompts with a digit, which :class:`ScienceWorldInnerEnv` answers
    itself (reading 0) within the same step; and they use the verbs ``examine`` and ``drop``,
    which the valid-action list spells ``look at`` and ``put down``. So each maximal run of
    door openings and ``go to`` moves becomes one ``teleport to <the run's last room>`` (a run
    without a move is dropped), digit-only answers are dropped and the two verbs are renamed
    (:data:`EXPERT_VERB_ALIASES`). Object names are left as they are (see :func:`match_action`).

    Args:
        gold: The simulator's gold action sequence.

    Returns:
        The actions to play, in order.
    """
    out: list[str] = []
    room: str | None = None
    in_run = False
    for raw in gold:
        action = raw.strip()
        if action.startswith(_NAVIGATION):
            in_run = True
            if action.startswith("go to "):
                room = action[len("go to ") :]
            continue
        if in_run:
            if room is not None:
                out.append(f"teleport to {room}")
            in_run, room = False, None
        if not action or action.isdigit():
            continue
        for alias, verb in EXPERT_VERB_ALIASES.items():
            if action.startswith(alias):
                action = verb + action[len(alias) :]
        out.append(action)
    if in_run and room is not None:
        out.append(f"teleport to {room}")
    return out


def _frame(text: str, referents: Sequence[Sequence[str]]) -> re.Pattern[str] | None:
    """A regex reading ``text`` with each object slot open to any referent of its object.

    Slot ``k`` (the ``k``-th object of the combination, found left to right in ``text`` by one
    of its referents) becomes ``(?P<rk>referent|...)(?P<qk>( qualifier)?)``; the rest of
    ``text`` stays literal. None if some object is not found.
    """
    parts: list[str] = []
    cursor = 0
    for k, names in enumerate(referents):
        names = sorted({n for n in names if n}, key=lambda n: (-len(n), n))
        if not names:
            return None
        alternation = "|".join(re.escape(n) for n in names)
        found = re.compile(rf"(?<![^ ])(?:{alternation})(?![^ ])").search(text, cursor)
        if found is None:
            return None
        parts.append(re.escape(text[cursor : found.start()]))
        parts.append(rf"(?P<r{k}>{alternation})(?P<q{k}>(?: .+?)?)")
        cursor = found.end()
    parts.append(re.escape(text[cursor:]))
    return re.compile("".join(parts))


def object_parents(tree: dict) -> dict[str, str]:
    """Object id -> the id of the object containing it, from ScienceWorld's object tree.

    Args:
        tree: ``ScienceWorldEnv.getObjectTree()`` (nested ``{"uuid", "contents": {...}}``).

    Returns:
        A dict of string ids (the root has no entry).
    """
    parents: dict[str, str] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in (node.get("contents") or {}).values():
            parents[str(child["uuid"])] = str(node["uuid"])
            stack.append(child)
    return parents


_PLACE = re.compile(r"(?:^| )(?:in|on) ")


def _inside(
    obj: str, qualifier: str, referents: Mapping[str, Sequence[str]], parents: Mapping[str, str]
) -> bool:
    """Whether each place a qualifier names (``in X``, ``on X``) can be a container of ``obj``.

    True without such a place; else some ``in``/``on`` tail of the qualifier must start with a
    referent of one of ``obj``'s containers (not followed by a number: ``flower pot`` is not
    ``flower pot 6``).
    """
    starts = [m.end() for m in _PLACE.finditer(qualifier)]
    if not starts:
        return True
    names: set[str] = set()
    node = parents.get(obj)
    for _ in range(64):  # the tree is shallow; the bound only guards against a cycle
        if node is None:
            break
        names.update(referents.get(node, ()))
        node = parents.get(node)
    for start in starts:
        tail = qualifier[start:]
        for name in names:
            if tail == name or (
                tail.startswith(name + " ") and not tail[len(name) + 1 : len(name) + 2].isdigit()
            ):
                return True
    return False


def match_action(
    action: str,
    combos: Sequence[Mapping[str, Any]],
    referents: Mapping[str, Sequence[str]],
    parents: Mapping[str, str],
) -> str | None:
    """The valid action-object combination an action typed with other object names stands for.

    Gold action sequences name objects by other referents than the valid-action list (``move
    egg butterfly egg in inventory to red box`` for ``move butterfly to red box``; ``focus on
    living thing in flower pot 6`` for ``focus on adult pea plant``). ``action`` matches a
    combination if it reads as the combination's text with each object replaced by any of that
    object's referents, optionally followed by a qualifier (`` in inventory``, `` in flower pot
    6``, `` containing ...``) whose places (``in X``, ``on X``) name a container of the object
    (:func:`_inside`). Among matches the longest referents win, then the shortest qualifiers;
    a tie between different combinations is ambiguous (None).

    Args:
        action: The action string (e.g. from a gold action sequence).
        combos: The simulator's valid combinations
            (``get_valid_action_object_combinations_with_templates()``: dicts with ``action``
            and ``obj_ids``).
        referents: Object id (a string) -> its referents
            (``get_all_object_ids_types_referents_LUTJSON()[id]["referents"]``).
        parents: Object id -> its container's id (:func:`object_parents`).

    Returns:
        ``action`` itself if it is a valid combination's text, else the best unambiguous
        match, else None.
    """
    if any(c["action"] == action for c in combos):
        return action
    verb = action.split(" ", 1)[0]
    scored: list[tuple[int, int, str]] = []
    for combo in combos:
        text = combo["action"]
        if text.split(" ", 1)[0] != verb:
            continue
        ids = [str(i) for i in combo.get("obj_ids", ())]
        pattern = _frame(text, [referents.get(i, ()) for i in ids])
        match = pattern.fullmatch(action) if pattern is not None else None
        if match is None:
            continue
        named = qualified = 0
        for k, obj in enumerate(ids):
            qualifier = match.group(f"q{k}")
            if not _inside(obj, qualifier, referents, parents):
                break
            named += len(match.group(f"r{k}"))
            qualified += len(qualifier)
        else:
            scored.append((-named, qualified, text))
    if not scored:
        return None
    scored.sort()
    if len(scored) > 1 and scored[1][:2] == scored[0][:2] and scored[1][2] != scored[0][2]:
        return None
    return scored[0][2]
