"""Token-level grammar-constrained decoding of meta-rewards for any Hugging Face tokenizer.

DERL's second stabiliser is "token-level constrained decoding" (arXiv 2512.13399 §3.2;
PAPER_FACTS.md §1). The official ``constrained_rollout.py`` only whitelists tokens whose text is
made of formula characters, so its samples can still be unbalanced or empty. Here the mask comes
from the language itself: :func:`derl_bench.meta_reward.grammar_text` (Lark, the domain's
primitives filled in) compiled by **llguidance** against the model's tokenizer, so every
sampled prefix stays a prefix of a syntactically valid meta-reward. The checks of
:func:`~derl_bench.meta_reward.parse` that a context-free grammar does not express (at least one
primitive, length <= 512, depth, node count, finite values on the probe rows) are applied when
EOS becomes possible: EOS is allowed only if the text so far parses. A sample with no allowed
token left (or no valid ending within the token budget) is *stuck*; the sampler redraws it.

Why llguidance (measured on SmolLM2-135M-Instruct's 49,152-token vocabulary; see
``docs/meta_optimizer/constrained_decoding.md``): it reads our Lark grammar unchanged
(``%ignore``, ``?rule``, aliases, regex terminals), it is already in the lock (no extra
dependency, no torch pin), a tokenizer wrapper is built once in about 2 s and a mask costs
0.1-0.3 ms, and vLLM, SGLang and llama.cpp support it as a structured-output backend.
xgrammar's EBNF needs a translation of the grammar and outlines/transformers-cfg pull their own
dependency trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from derl_bench.meta_reward import InvalidMetaReward, grammar_text, parse
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = ["GrammarMatcher", "TokenGrammar", "decoding_grammar"]

_UNARY = '    | "-" unary         -> neg\n    | "+" unary\n'
_NUMBER = "NUMBER: /([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?/"
_NUMBER_SHORT = "NUMBER: /([0-9]{1,4}(\\.[0-9]{0,3})?|\\.[0-9]{1,3})([eE][+-]?[0-9])?/"
_UNARY_ONCE = '    | "-" atom          -> neg\n    | "+" atom\n'

_NEEDS_LLGUIDANCE = (
    "token-level constrained decoding needs llguidance (in the lock; pip install llguidance)"
)


def decoding_grammar(primitive_names: Sequence[str]) -> str:
    """Return the Lark grammar the sampler enforces: ``grammar_text`` with two restrictions.

    Two changes to :func:`~derl_bench.meta_reward.grammar_text`, both shrinking the language:
    a unary ``-`` or ``+`` applies to an atom (``-g2``, ``-(g1 - g2)``, ``-0.5``), not to
    another unary sign (tokenizers hold tokens of up to 64 dashes, and ``--g1`` chains only add
    depth; ``parse`` rejects more than 32 levels); and a number has at most 4 integer digits,
    3 decimals and a one-digit exponent (``0.25``, ``1000``, ``.5``, ``1e-6``; the numbers of
    :data:`.viability.SAMPLED_NUMBER`, so the character-level closing check can follow every
    sample, and ``4e71967760`` cannot overflow). Every text of this language is in the full
    language; the official cold-start formulas that parse are all in it.

    Args:
        primitive_names: The domain's primitives, e.g. ``("g1", "g2", "g3", "g4")``.

    Returns:
        Lark grammar text, start rule ``start``.

    Raises:
        ValueError: If ``primitive_names`` is invalid.
    """
    text = grammar_text(primitive_names)
    assert _UNARY in text, "grammar.lark changed its unary rule; update decoding_grammar"
    assert _NUMBER in text, "grammar.lark changed its NUMBER; update decoding_grammar"
    return text.replace(_UNARY, _UNARY_ONCE).replace(_NUMBER, _NUMBER_SHORT)


class TokenGrammar:
    """The meta-reward grammar of one primitive set, compiled for one tokenizer.

    Args:
        tokenizer: A *fast* Hugging Face tokenizer (``PreTrainedTokenizerFast`` or the
            ``TokenizersBackend`` of transformers 5); its ``eos_token_id`` ends a sample.
        primitive_names: The domain's primitives, e.g. ``("g1", "g2", "g3", "g4")``.
        vocab_size: Width of the model's logits (may exceed the tokenizer's size, e.g.
            Qwen2.5's padded 151,936); defaults to ``len(tokenizer)``.

    Attributes:
        eos_token_id: The id that ends a sample.
        newline_ids: Ids whose text starts with a newline. The official rollout keeps only the
            first line of a reply, so wherever EOS is allowed these are allowed too and end the
            sample like EOS (a chat model often ends a line before its end-of-turn token).
        vocab_size: Length of the masks returned by :meth:`GrammarMatcher.mask`.

    Raises:
        ImportError: If llguidance is not installed.
        ValueError: If the tokenizer is not a fast tokenizer, has no EOS token, or the
            primitive names are invalid.
    """

    def __init__(
        self, tokenizer: Any, primitive_names: Sequence[str], *, vocab_size: int | None = None
    ) -> None:
        try:
            import llguidance
            import llguidance.hf
        except ImportError as error:  # pragma: no cover - llguidance is in the lock
            raise ImportError(_NEEDS_LLGUIDANCE) from error
        self.primitive_names = check_primitive_names(primitive_names)
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos_token_id; a sample could never end")
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.vocab_size = int(vocab_size or len(tokenizer))
        if self.vocab_size < len(tokenizer):
            raise ValueError(
                f"vocab_size={self.vocab_size} is smaller than the tokenizer ({len(tokenizer)})"
            )
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"{type(tokenizer).__name__} is not a fast tokenizer; load it with use_fast=True"
            )
        self._llguidance = llguidance
        self._tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer))
        lark_text = decoding_grammar(self.primitive_names)
        self.grammar = llguidance.LLMatcher.grammar_from_lark(lark_text)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(
            self.grammar, self._tokenizer
        )
        if is_error:  # pragma: no cover - grammar.lark is tested
            raise ValueError(f"llguidance rejects the meta-reward grammar: {messages}")
        self.newline_ids = newline_token_ids(tokenizer)
        self._stop = np.zeros(self.vocab_size, dtype=bool)
        self._stop[[self.eos_token_id, *self.newline_ids]] = True
        self._valid: dict[str, bool] = {}
        from derl_bench.baselines.meta_optimizer.viability import GrammarConstraint
        from derl_bench.meta_reward import ALPHABET

        self.chars = GrammarConstraint(self.primitive_names)
        self.char_token: dict[str, int] = {}
        for char in ALPHABET:
            ids = tokenizer.encode(char, add_special_tokens=False)
            if len(ids) == 1 and tokenizer.decode(ids) == char:
                self.char_token[char] = int(ids[0])

    def matcher(self) -> GrammarMatcher:
        """Return a fresh matcher at the start of a meta-reward."""
        return GrammarMatcher(self)

    def is_valid(self, text: str) -> bool:
        """Return True if ``parse`` accepts ``text.strip()`` for this primitive set (cached)."""
        if text not in self._valid:
            try:
                parse(text.strip(), primitive_names=self.primitive_names)
                ok = True
            except InvalidMetaReward:
                ok = False
            if len(self._valid) > 100_000:
                self._valid.clear()
            self._valid[text] = ok
        return self._valid[text]

    def decode(self, token_ids: Sequence[int]) -> str:
        """Decode token ids (without EOS) to text, as llguidance's byte-level view sees them."""
        return self._tokenizer.decode_str(list(token_ids))


def newline_token_ids(tokenizer: Any) -> frozenset[int]:
    """Return the ids of the tokens whose text starts with a newline (they end a first line).

    Args:
        tokenizer: A Hugging Face tokenizer.

    Returns:
        The ids, e.g. SmolLM2's one-newline and two-newline tokens.
    """
    special = set(getattr(tokenizer, "all_special_ids", []))
    ids = []
    for i in range(len(tokenizer)):
        if i not in special and tokenizer.decode([i]).startswith("\n"):
            ids.append(i)
    return frozenset(ids)


ZONE = 16
"""Closing zone, in tokens: once no more than (tokens needed to close the text) + ZONE tokens
are left, only single-character tokens that keep a valid ending within the budget are allowed
(the character-level closing of :class:`.viability.GrammarConstraint`), so a sample cannot run
out of tokens in the middle of a formula."""


class GrammarMatcher:
    """The grammar state of one sample: which token may come next.

    Use :meth:`mask` before each token and :meth:`consume` after it. The matcher also tracks the
    character-level state of the text (spaces collapsed) to know how many tokens closing it
    takes; near the end of the token budget it allows only tokens that keep a valid ending
    reachable (see :data:`ZONE`).

    Attributes:
        token_ids: The ids consumed so far (EOS included once consumed).
        text: The decoded text of ``token_ids`` without EOS.
        finished: True once EOS was consumed.
    """

    def __init__(self, grammar: TokenGrammar) -> None:
        self._grammar = grammar
        self._matcher = grammar._llguidance.LLMatcher(grammar._tokenizer, grammar.grammar)
        self.token_ids: list[int] = []
        self.text = ""
        self.finished = False
        self._char_state: Any = grammar.chars.initial

    def _walk(self, chars: str) -> None:
        chars_constraint = self._grammar.chars
        for char in chars:
            if self._char_state is None:
                return
            if char == " " and self._char_state.after_space:
                continue
            nxt = chars_constraint.options(self._char_state).next_states.get(char)
            self._char_state = nxt

    def mask(self, tokens_left: int) -> torch.Tensor | None:
        """Return the ids allowed next, or None if the sample is stuck.

        Args:
            tokens_left: Tokens still allowed including this one, >= 1. With 1 left only the
                end ids can be allowed (the sample must end).

        Returns:
            bool, shape (vocab_size,): the grammar's next tokens; EOS and the newline ids only
            where the text so far is a valid meta-reward. None if nothing is allowed.

        Raises:
            RuntimeError: If the matcher is in an error state (a disallowed id was consumed).
        """
        if self._matcher.is_error():
            raise RuntimeError(f"llguidance matcher error: {self._matcher.get_error()}")
        packed = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
        bits = np.unpackbits(packed, bitorder="little").view(bool)
        row = np.zeros(self._grammar.vocab_size, dtype=bool)
        n = min(len(bits), self._grammar.vocab_size)
        row[:n] = bits[:n]
        eos = self._grammar.eos_token_id
        end = bool(row[eos]) and self._grammar.is_valid(self.text)
        if tokens_left <= 1:
            row[:] = False
        elif self._char_state is not None:
            row = self._closing_zone(row, tokens_left)
        row[eos] = False
        if end:
            row |= self._grammar._stop
        return torch.from_numpy(row) if row.any() else None

    def _closing_zone(self, row: np.ndarray, tokens_left: int) -> np.ndarray:
        """Near the budget, keep only single-character tokens that can still be closed."""
        chars = self._grammar.chars
        closing = chars.closing(self._char_state)
        if closing is None or tokens_left > len(closing) + 1 + ZONE:
            return row
        zone = np.zeros_like(row)
        for char, nxt in chars.options(self._char_state).next_states.items():
            token = self._grammar.char_token.get(char)
            if token is None or not row[token]:
                continue
            after = chars.closing(nxt)
            if after is not None and len(after) + 1 <= tokens_left - 1:
                zone[token] = True
        return zone

    def consume(self, token_id: int) -> None:
        """Advance by one sampled id (it must have been allowed by :meth:`mask`).

        EOS and the newline ids finish the sample.

        Raises:
            ValueError: If the grammar rejects the id.
        """
        if int(token_id) in self._grammar.newline_ids:
            self.token_ids.append(int(token_id))
            self.finished = True
            return
        if not self._matcher.consume_token(int(token_id)):
            raise ValueError(
                f"token {token_id} is not allowed after {self.text!r}: {self._matcher.get_error()}"
            )
        self.token_ids.append(int(token_id))
        if int(token_id) == self._grammar.eos_token_id:
            self.finished = True
            return
        text = self._grammar.decode(self.token_ids)
        if text.startswith(self.text):
            self._walk(text[len(self.text) :])
        else:  # a multi-byte character completed differently; walk from the start
            self._char_state = self._grammar.chars.initial
            self._walk(text)
        self.text = text
