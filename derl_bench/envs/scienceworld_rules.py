"""ScienceWorld's candidate-action and step-score rules (pure functions of text).

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
from collections.abc import Sequence

__all__ = [
    "DEFAULT_MAX_ACTIONS",
    "INEFFECTIVE_PATTERNS",
    "STOPWORDS",
    "TEMPLATE_WORDS",
    "VERB_RANK",
    "action_object",
    "action_words",
    "build_candidates",
    "inventory_items",
    "is_effective",
    "is_goal_relevant",
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


def build_candidates(
    valid: Sequence[str],
    description: str,
    inventory: str,
    max_actions: int = DEFAULT_MAX_ACTIONS,
    handled: Sequence[str] = (),
) -> list[str]:
    """The bounded candidate list of one state (the rule is in the module docstring).

    Args:
        valid: The simulator's valid action-object combinations (any order).
        description: The task description.
        inventory: The simulator's inventory text.
        max_actions: Bound on the result.
        handled: Objects of the episode's earlier single-object actions
            (:func:`action_object`), treated like inventory items for tier 2.

    Returns:
        At most ``max_actions`` distinct action strings, sorted alphabetically.
    """
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
    return sorted(action for *_, action in ranked[:max_actions])
