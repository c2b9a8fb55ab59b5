"""Grammar-constrained sampling of the DERL Meta-Optimizer: every sample parses."""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Lark

from derl_bench.baselines.meta_optimizer import (
    ConstrainedSample,
    GrammarConstraint,
    PrefixState,
    build_model,
    config_for_preset,
    generate_corpus,
    sample_constrained,
    torch_threads,
    train_sft,
)
from derl_bench.baselines.meta_optimizer.vocab import CHARS, EOS, VOCAB_SIZE, decode
from derl_bench.meta_reward import grammar_text, parse

NAMES = ("g1", "g2", "g3", "g4")
CPU = config_for_preset("cpu", backbone="char-gru")


@functools.cache
def _constraint(names: tuple[str, ...]) -> GrammarConstraint:
    return GrammarConstraint(names)


def _sample(model, names, n, *, seed=0, temperature=0.7, max_chars=128):  # noqa: ANN001, ANN202
    with torch_threads(1):
        return sample_constrained(
            model,
            _constraint(names),
            n,
            temperature=temperature,
            max_chars=max_chars,
            generator=torch.Generator().manual_seed(seed),
        )


def _assert_well_formed(samples: list[ConstrainedSample], names, max_chars: int) -> None:  # noqa: ANN001
    for sample in samples:
        parse(sample.text, primitive_names=names)  # raises InvalidMetaReward if not
        assert len(sample.text) <= max_chars
        assert sample.text == sample.text.strip()
        assert decode(sample.targets) == sample.text and int(sample.targets[-1]) == EOS
        assert sample.masks.shape == (len(sample.targets), VOCAB_SIZE)
        assert sample.masks[torch.arange(len(sample.targets)), sample.targets].all()


def _walk(constraint: GrammarConstraint, text: str) -> list[PrefixState]:
    """States after each prefix of ``text``; fails if a character is not allowed."""
    states = [constraint.initial]
    for char in text:
        next_states = constraint.options(states[-1]).next_states
        assert char in next_states, (text, len(states) - 1, sorted(next_states))
        states.append(next_states[char])
    return states


def test_untrained_model_1000_of_1000_samples_parse() -> None:
    model = build_model(CPU, seed=0)
    samples = _sample(model, NAMES, 1000)
    assert len(samples) == 1000
    _assert_well_formed(samples, NAMES, 128)
    assert len({s.text for s in samples}) > 900  # an untrained model writes all kinds of text


def test_sft_model_1000_of_1000_samples_parse() -> None:
    model = build_model(CPU, seed=1)
    corpus = generate_corpus(NAMES, 300, seed=1)
    with torch_threads(1):
        generator = torch.Generator().manual_seed(1)
        train_sft(model, corpus, steps=100, batch_size=32, lr=3e-3, generator=generator)
    samples = _sample(model, NAMES, 1000, seed=1)
    assert len(samples) == 1000
    _assert_well_formed(samples, NAMES, 128)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    temperature=st.floats(0.2, 2.0),
    max_chars=st.integers(4, 96),
    k=st.integers(1, 12),
)
def test_samples_parse_for_any_seed_temperature_length_and_primitive_set(
    seed: int, temperature: float, max_chars: int, k: int
) -> None:
    # k >= 10 gives primitives that are prefixes of others (g1, g10, g11, g12).
    names = tuple(f"g{i}" for i in range(1, k + 1))
    model = build_model(CPU, seed=seed % 7)
    samples = _sample(model, names, 8, seed=seed, temperature=temperature, max_chars=max_chars)
    assert len(samples) == 8
    _assert_well_formed(samples, names, max_chars)


def test_the_cold_start_corpus_is_inside_the_constrained_language() -> None:
    constraint = _constraint(NAMES)
    for text in generate_corpus(NAMES, 300, seed=0):
        states = _walk(constraint, text)
        assert constraint.options(states[-1]).can_end and constraint.is_valid(text)


def test_accepted_terminals_match_lark_interactive_parser() -> None:
    constraint = _constraint(NAMES)
    lark = Lark(grammar_text(NAMES), parser="lalr")
    texts = [*generate_corpus(NAMES, 30, seed=2), "-(g1 / (2.5e-3 - -g2)) * +g3", "((g4))"]
    checked = 0
    for text in texts:
        for i, state in enumerate(_walk(constraint, text)):
            if state.partial == "":  # between tokens: compare with lark on the same prefix
                interactive = lark.parse_interactive(text[:i])
                interactive.exhaust_lexer()
                assert constraint._accepted(state.stack) == interactive.accepts(), text[:i]
                checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("prefix", "allowed", "can_end", "closing"),
    [
        ("", set("0123456789g.(+-"), False, "g1"),
        ("g1 ", set("+-*/"), False, "+g1"),
        ("g1", set(" +-*/"), True, ""),
        ("(g1 + 0.", set(" )+-*/0123456789eE"), False, ")"),
        ("((g2 * ", set("0123456789g.(+-"), False, "g1))"),
        ("2e", set("+-0123456789"), False, "1+g1"),  # a primitive is needed
        ("g", set("1234"), False, "1"),
    ],
)
def test_mask_examples(prefix: str, allowed: set[str], can_end: bool, closing: str) -> None:
    constraint = _constraint(NAMES)
    state = _walk(constraint, prefix)[-1]
    options = constraint.options(state)
    assert set(options.next_states) == allowed
    assert options.can_end is can_end
    assert constraint.closing(state) == closing


def test_eos_only_after_a_valid_meta_reward_and_length_is_respected() -> None:
    constraint = _constraint(NAMES)
    state = _walk(constraint, "g1 / (g2 - g2)")[-1]
    assert constraint.options(state).can_end  # syntactically complete ...
    mask = constraint.allowed_mask(state, "g1 / (g2 - g2)", remaining=50)
    assert mask is not None and not mask[EOS]  # ... but inf on the probe rows: no EOS
    state = _walk(constraint, "1 + 2")[-1]
    assert not constraint.allowed_mask(state, "1 + 2", remaining=50)[EOS]  # no primitive
    # Near the limit only characters whose prefix can still be closed in time remain.
    state = _walk(constraint, "(g1 + (")[-1]
    digits = set("0123456789")
    assert _chars(constraint.allowed_mask(state, "(g1 + (", remaining=4)) == digits | set("g.")
    assert _chars(constraint.allowed_mask(state, "(g1 + (", remaining=3)) == digits  # "1))"
    assert constraint.allowed_mask(state, "(g1 + (", remaining=2) is None  # stuck


def _chars(mask: torch.Tensor | None) -> set[str]:
    assert mask is not None and not mask[EOS]
    return {CHARS[int(i)] for i in mask.nonzero().flatten()}
