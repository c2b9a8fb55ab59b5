"""Character-level viability of meta-reward prefixes: the grammar mask of constrained decoding.

The official DERL code masks tokens to an allowed character set (``constrained_rollout.py``),
which does not guarantee a parseable expression. :class:`GrammarConstraint` gives, for every
prefix, exactly the characters that keep it a *viable prefix* of the language of
:func:`derl_bench.meta_reward.grammar_text`:

* completed tokens advance the LALR parser of ``Lark(grammar_text(names), parser="lalr")``
  (the shift/reduce steps of its ``parse_interactive`` parser, run on the state stack only);
  the terminals it accepts next are those of ``InteractiveParser.accepts()``;
* the token still being typed (``partial``) is checked against those terminals' regular
  expressions with a partial full-match (``regex`` module, ``partial=True``); numbers use the
  narrower :data:`SAMPLED_NUMBER` (at most 4 + 3 digits, one-digit exponent). A character
  that extends ``partial`` continues the token (maximal munch, as the lexer does); otherwise,
  if ``partial`` is a complete token, the token is fed and the character starts the next one;
* one space at a time, only between tokens; no leading space;
* length: a character is allowed only if the text can still be closed within the length limit
  (the greedy closing string, e.g. ``"1)"`` after ``"(g1 + 0."``, must fit);
* EOS only when ``parse`` accepts the text (syntax, a primitive used, depth, node count, finite
  on the probe rows).

States are cached by the LALR state stack, so a step costs a few dictionary look-ups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import regex
import torch
from lark import Lark
from lark.parsers.lalr_analysis import Shift

from derl_bench.baselines.meta_optimizer.vocab import CHARS, EOS, VOCAB_SIZE
from derl_bench.meta_reward import InvalidMetaReward, grammar_text, parse
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = ["SAMPLED_NUMBER", "GrammarConstraint", "PrefixState"]

_CLOSING_ORDER = ")g1234567890+"
_CHAR_ID = {char: i for i, char in enumerate(CHARS)}
_MAX_CACHE = 200_000
_DIGITS = str.maketrans("123456789", "000000000")

SAMPLED_NUMBER = regex.compile(r"(?:[0-9]{1,4}(?:\.[0-9]{0,3})?|\.[0-9]{1,3})(?:[eE][+-]?[0-9])?")
"""Numbers the sampler writes: a subset of the grammar's NUMBER with at most 4 integer digits,
3 decimals and a one-digit exponent (``0.25``, ``1000``, ``.5``, ``2e-3``). Long literals such as
``4e71967760`` overflow to inf and make a sample invalid; the official corpus uses none."""


class PrefixState(NamedTuple):
    """Where a viable prefix stands: parser stack, token being typed, last character a space."""

    stack: tuple[int, ...]
    """LALR state stack after the completed tokens."""
    partial: str
    """The current, unfinished token ('' between tokens), with every digit of a number written
    as ``0`` (``12.5e3`` -> ``00.0e0``): numbers that the grammar cannot tell apart share one
    state, which keeps the caches small."""
    after_space: bool
    """True if the prefix is empty or ends with a space (no second space may follow)."""
    has_primitive: bool
    """True once a ``g`` was written: the text will hold a primitive (``parse`` needs one)."""


class _Options(NamedTuple):
    next_states: dict[str, PrefixState]
    can_end: bool
    rows: tuple[torch.Tensor, torch.Tensor]  # bool (VOCAB_SIZE,): the characters, without/with EOS
    slack: int  # room after the next character above which no closing check is needed


class GrammarConstraint:
    """Character-level viability of meta-reward prefixes for one primitive set.

    Args:
        primitive_names: The domain's primitives, e.g. ``("g1", "g2", "g3", "g4")``.

    Raises:
        ValueError: If ``primitive_names`` is empty, has duplicates or a name not ``g<n>``.
    """

    def __init__(self, primitive_names: Sequence[str]) -> None:
        self.primitive_names = check_primitive_names(primitive_names)
        lark = Lark(grammar_text(self.primitive_names), parser="lalr", lexer="contextual")
        self._patterns = {
            t.name: regex.compile(t.pattern.to_regexp())
            for t in lark.terminals
            if t.name != "SPACE"
        }
        self._patterns["NUMBER"] = SAMPLED_NUMBER
        start = lark.parse_interactive("")
        conf = start.parser_state.parse_conf
        # The LALR table as plain data: state -> symbol -> (True, next state) for a shift or
        # goto, (False, (rule length, rule origin)) for a reduction.
        self._table: dict[int, dict[str, tuple[bool, Any]]] = {
            state: {
                symbol: (True, arg)
                if kind is Shift
                else (False, (len(arg.expansion), arg.origin.name))
                for symbol, (kind, arg) in row.items()
            }
            for state, row in conf.states.items()
        }
        self._end_state = conf.end_state
        self.initial = PrefixState(tuple(start.parser_state.state_stack), "", True, False)
        self._max_name = max(len(name) for name in self.primitive_names)
        self._accepts: dict[tuple[int, ...], frozenset[str]] = {}
        self._fed: dict[tuple[tuple[int, ...], str], tuple[int, ...] | None] = {}
        self._viable_cache: dict[tuple[str, str], bool] = {}
        self._lexical_cache: dict[tuple[frozenset[str], str], tuple[str | None, str]] = {}
        self._options: dict[PrefixState, _Options] = {}
        self._closing: dict[PrefixState, str | None] = {}
        self._valid: dict[str, bool] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> GrammarConstraint:
        """Share, not copy: the constraint is a pure function of the primitive set (plus caches)."""
        return self

    # -- parser ---------------------------------------------------------------------------------

    def _feed(self, stack: tuple[int, ...], terminal: str) -> tuple[int, ...] | None:
        """Advance the LALR state stack by one terminal; None if the parser rejects it.

        The same shift/reduce steps as lark's ``InteractiveParser.feed_token`` on the parse
        table of ``parse_interactive``, without building the tree (no values are kept), so
        states can be cached by their stack.
        """
        key = (stack, terminal)
        if key not in self._fed:
            states, result = list(stack), None
            while True:
                action = self._table[states[-1]].get(terminal)
                if action is None:
                    break
                is_shift, arg = action
                if is_shift:
                    if terminal != "$END":
                        result = (*states, arg)
                    break
                size, origin = arg
                if size:
                    del states[-size:]
                states.append(self._table[states[-1]][origin][1])
                if terminal == "$END" and states[-1] == self._end_state:
                    result = tuple(states)
                    break
            if len(self._fed) > _MAX_CACHE:
                self._fed.clear()
            self._fed[key] = result
        return self._fed[key]

    def _accepted(self, stack: tuple[int, ...]) -> frozenset[str]:
        """Terminals the parser accepts next (lark's ``InteractiveParser.accepts``)."""
        if stack not in self._accepts:
            choices = [t for t in self._table[stack[-1]] if t.isupper()]
            accepted = frozenset(t for t in choices if self._feed(stack, t) is not None)
            if len(self._accepts) > _MAX_CACHE:
                self._accepts.clear()
            self._accepts[stack] = accepted
        return self._accepts[stack]

    def _viable(self, terminal: str, text: str) -> bool:
        key = (terminal, text)
        if key not in self._viable_cache:
            match = self._patterns[terminal].fullmatch(text, partial=True)
            self._viable_cache[key] = match is not None
        return self._viable_cache[key]

    # -- characters -----------------------------------------------------------------------------

    def options(self, state: PrefixState) -> _Options:
        """Return the characters allowed after ``state`` and whether the text may end there.

        Args:
            state: A state reached from :attr:`initial` through allowed characters.

        Returns:
            ``(next_states, can_end, rows, slack)``: the allowed characters mapped to their
            next state; whether the prefix is a syntactically complete expression that uses a
            primitive and does not end with a space (the other checks of ``parse``, such as
            finiteness, are left to :meth:`is_valid`); the
            allowed characters as bool rows of shape (VOCAB_SIZE,) without and with EOS; and
            the room above which every allowed character can surely still be closed.
        """
        cached = self._options.get(state)
        if cached is None:
            cached = self._compute_options(state)
            if len(self._options) > _MAX_CACHE:
                self._options.clear()
            self._options[state] = cached
        return cached

    def _lexical(self, accepted: frozenset[str], partial: str) -> tuple[str | None, str]:
        """The terminal ``partial`` completes (or None) and the characters that extend it."""
        key = (accepted, partial)
        if key not in self._lexical_cache:
            terminals = [t for t in accepted if t in self._patterns]
            complete = next((t for t in terminals if self._patterns[t].fullmatch(partial)), None)
            extend = "".join(
                c for c in CHARS if any(self._viable(t, partial + c) for t in terminals)
            )
            self._lexical_cache[key] = (complete if partial else None, extend)
        return self._lexical_cache[key]

    def _compute_options(self, state: PrefixState) -> _Options:
        stack, partial, after_space, has_primitive = state
        complete, extend = self._lexical(self._accepted(stack), partial)
        done: tuple[int, ...] | None = stack
        if partial:
            done = None if complete is None else self._feed(stack, complete)
        next_states = {
            c: PrefixState(stack, _squash(partial + c), False, has_primitive or c == "g")
            for c in extend
        }
        if done is not None:
            if not after_space:
                next_states[" "] = PrefixState(done, "", True, has_primitive)
            if partial:  # the token ends here; a character may start the next one
                for c in self._lexical(self._accepted(done), "")[1]:
                    nxt = PrefixState(done, _squash(c), False, has_primitive or c == "g")
                    next_states.setdefault(c, nxt)
        can_end = (
            has_primitive
            and done is not None
            and not after_space
            and "$END" in self._accepted(done)
        )
        row = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
        row[[_CHAR_ID[char] for char in next_states]] = True
        row_eos = row.clone()
        row_eos[EOS] = True
        # Closing needs at most: finish the token, one operand (or "+g1"), one ')' per open '('.
        deepest = max((len(nxt.stack) for nxt in next_states.values()), default=0)
        return _Options(next_states, can_end, (row, row_eos), deepest + 2 * self._max_name + 4)

    def closing(self, state: PrefixState) -> str | None:
        """Return the greedy shortest-ish string that makes ``state`` a complete expression.

        Tries the characters ``) g 1 2 ... 9 0 +`` in that order at each step, e.g. ``"1)"``
        after ``"(g1 + 0."``, ``"g1))"`` after ``"((g2 * "`` and ``"+g1"`` after ``"g1 "``.

        Args:
            state: A reachable state.

        Returns:
            The closing characters ('' if the prefix is already complete), or None if the
            greedy walk finds none within 600 characters (not known to happen).
        """
        if state in self._closing:
            return self._closing[state]
        path: list[tuple[PrefixState, str]] = []
        current, result = state, None
        while len(path) <= 600:
            if current in self._closing:
                result = self._closing[current]
                break
            next_states, can_end = self.options(current)[:2]
            if can_end:
                result = ""
                break
            char = next((c for c in _CLOSING_ORDER if c in next_states), None)
            if char is None:
                break
            path.append((current, char))
            current = next_states[char]
        if len(self._closing) > _MAX_CACHE:
            self._closing.clear()
        self._closing[current] = result
        for prefix_state, char in reversed(path):
            result = None if result is None else char + result
            self._closing[prefix_state] = result
        return self._closing[state]

    def is_valid(self, text: str) -> bool:
        """Return True if ``parse`` accepts ``text`` for this primitive set (cached)."""
        if text not in self._valid:
            try:
                parse(text, primitive_names=self.primitive_names)
                ok = True
            except InvalidMetaReward:
                ok = False
            if len(self._valid) > _MAX_CACHE:
                self._valid.clear()
            self._valid[text] = ok
        return self._valid[text]

    def allowed_mask(self, state: PrefixState, text: str, remaining: int) -> torch.Tensor | None:
        """Return the mask of ids that may be emitted after ``text``.

        Args:
            state: The state of ``text``.
            text: The prefix emitted so far.
            remaining: Characters still allowed, ``max_chars - len(text)``, >= 0.

        Returns:
            bool, shape (VOCAB_SIZE,), read-only by convention (rows are shared): characters
            whose next state can still be closed within ``remaining - 1`` characters, plus EOS
            if ``text`` is a valid meta-reward not ending with a space. None if nothing is
            allowed (the sample is stuck: complete but invalid, and no room left).
        """
        options = self.options(state)
        end = options.can_end and self.is_valid(text)
        if remaining - 1 >= options.slack:
            return options.rows[1] if end else options.rows[0]
        ids = []
        if remaining > 0:
            for char, nxt in options.next_states.items():
                closing = self.closing(nxt)
                if closing is not None and len(closing) <= remaining - 1:
                    ids.append(_CHAR_ID[char])
        if end:
            ids.append(EOS)
        if not ids:
            return None
        row = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
        row[ids] = True
        return row


def _squash(partial: str) -> str:
    """Write every digit of a number token as ``0`` (not of a primitive such as ``g12``)."""
    if partial.startswith("g"):
        return partial
    return partial.translate(_DIGITS)
