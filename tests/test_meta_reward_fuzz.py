"""Property-based tests of the meta-reward language: no crash on any input, round-trips."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from derl_bench.meta_reward import (
    ALPHABET,
    DEFAULT_PRIMITIVES,
    MAX_LENGTH,
    InvalidMetaReward,
    MetaReward,
    parse,
    probe_values,
)

EPS = 1e-6
FUZZ = settings(max_examples=300, deadline=None)
NAME_SETS = [DEFAULT_PRIMITIVES, ("g1", "g2"), ("g3", "g1", "g2"), ("g1",)]
OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def check_accepted(mr: MetaReward) -> None:
    """Invariants of every accepted meta-reward."""
    again = parse(mr.canonical, primitive_names=mr.primitive_names)
    assert again.canonical == mr.canonical
    assert again == mr and hash(again) == hash(mr)
    assert mr.primitives_used
    probe = probe_values(len(mr.primitive_names))
    assert np.all(np.isfinite(mr(probe)))
    np.testing.assert_array_equal(again(probe), mr(probe))


def parse_or_reason(text, primitive_names=DEFAULT_PRIMITIVES):
    try:
        mr = parse(text, primitive_names=primitive_names)
    except InvalidMetaReward as error:
        assert error.message and str(error) == error.message
        event(f"rejected: {error.reason}")
        return error.reason
    assert isinstance(mr, MetaReward)
    check_accepted(mr)
    event("accepted")
    return "ok"


@FUZZ
@given(st.text())
def test_arbitrary_unicode_text_never_crashes(text):
    parse_or_reason(text)


@FUZZ
@given(st.text(alphabet=ALPHABET, max_size=80))
def test_arbitrary_alphabet_text_never_crashes(text):
    parse_or_reason(text)


TOKENS = ["g1", "g2", "g4", "g5", "g0", "g", "1", "0", ".5", "5.", "2.5E+2", "1e-3", "1e309"]
TOKENS += ["e", ".", "+", "-", "*", "/", "(", ")", " ", "  "]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_token_soup_never_crashes(text):
    parse_or_reason(text)


@FUZZ
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text())))
def test_non_strings_are_rejected(value):
    assert parse_or_reason(value) == "not_a_string"


# --- random valid expression trees ---------------------------------------------------------------
# A generated expression is (text, reference, is_atom, has_primitive): `reference` computes the
# expected rewards with numpy from the tree the strategy built, never from the text.

NUMBER_TEXTS = st.one_of(
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(repr),
    st.tuples(st.integers(0, 999), st.integers(0, 999)).map(lambda t: f"{t[0]}.{t[1]}"),
    st.integers(0, 999).map(lambda i: f".{i}"),
    st.integers(0, 999).map(lambda i: f"{i}."),
    st.tuples(
        st.integers(0, 99),
        st.sampled_from("eE"),
        st.sampled_from(["", "+", "-"]),
        st.integers(0, 400),
    ).map(lambda t: f"{t[0]}{t[1]}{t[2]}{t[3]}"),
)
SPACE = st.sampled_from(["", " ", "  "])


def primitives(names):
    def primitive(i):
        return (names[i], lambda cols: cols[i], True, True)

    return st.integers(0, len(names) - 1).map(primitive)


def numbers():
    def number(text):
        value = np.float64(float(text))
        return (text, lambda cols: value, True, False)

    return NUMBER_TEXTS.map(number)


def leaves(names):
    return st.one_of(primitives(names), numbers())


def wrap(expr, space_a, space_b):
    text, _, is_atom, _ = expr
    return text if is_atom else f"({space_a}{text}{space_b})"


def combine(draw, left, right):
    op = draw(st.sampled_from(sorted(OPS)))
    s = [draw(SPACE) for _ in range(6)]
    text = f"{wrap(left, s[0], s[1])}{s[2]}{op}{s[3]}{wrap(right, s[4], s[5])}"
    fl, fr, ufunc = left[1], right[1], OPS[op]
    return (text, lambda cols: ufunc(fl(cols), fr(cols)), False, left[3] or right[3])


@st.composite
def binary(draw, children):
    return combine(draw, draw(children), draw(children))


@st.composite
def unary(draw, children):
    child = draw(children)
    sign = draw(st.sampled_from(["-", "+"]))
    text = f"{sign}{draw(SPACE)}{wrap(child, draw(SPACE), '')}"
    fc = child[1]
    reference = (lambda cols: np.negative(fc(cols))) if sign == "-" else fc
    return (text, reference, False, child[3])


@st.composite
def redundant_parens(draw, children):
    text, reference, _, has_primitive = draw(children)
    return (f"({draw(SPACE)}{text}{draw(SPACE)})", reference, True, has_primitive)


@st.composite
def expressions(draw):
    names = draw(st.sampled_from(NAME_SETS))
    tree = draw(
        st.recursive(
            leaves(names),
            lambda children: st.one_of(
                binary(children), unary(children), redundant_parens(children)
            ),
            max_leaves=24,
        )
    )
    if not tree[3]:  # make sure a primitive is used
        prim = draw(primitives(names))
        tree = combine(draw, tree, prim) if draw(st.booleans()) else combine(draw, prim, tree)
    return names, tree[0], tree[1]


def sample_values(k: int) -> np.ndarray:
    rng = np.random.default_rng(1234)
    return np.concatenate(
        [
            probe_values(k),
            rng.choice([EPS, 1 + EPS], size=(16, k)),
            rng.normal(scale=5.0, size=(16, k)),
            np.zeros((1, k)),
        ]
    )


@FUZZ
@given(expressions())
def test_generated_expressions_parse_and_evaluate_like_the_tree(generated):
    names, text, reference = generated
    assume(len(text) <= MAX_LENGTH)
    try:
        mr = parse(text, primitive_names=names)
    except InvalidMetaReward as error:
        event(f"rejected: {error.reason}")
        allowed = {"non_finite", "too_deep", "too_many_nodes"}
        # a short text can still have a canonical form longer than MAX_LENGTH (1/3 prints as
        # 0.3333333333333333); parse rejects it so that every canonical form parses again
        if error.reason == "too_long":
            assert "canonical form" in error.message
        elif error.reason == "constant":
            # really the same value everywhere, up to rounding: g1 - (g1 - 1.0) is exactly 1.0
            # on the constancy rows but 0.9999999999999999 at some other g1
            values = sample_values(len(names))
            with np.errstate(all="ignore"):
                got = np.broadcast_to(reference(values.T), (values.shape[0],))
            finite = got[np.isfinite(got)]
            assert finite.size == 0 or np.allclose(finite, finite[0], rtol=1e-9, atol=1e-9), (
                text,
                got,
            )
        else:
            assert error.reason in allowed, (text, error)
        return
    event("accepted")
    check_accepted(mr)
    values = sample_values(len(names))
    with np.errstate(all="ignore"):
        expected = np.broadcast_to(reference(values.T), (values.shape[0],))
    # constant folding and printing keep IEEE 754 results bit for bit (nan positions too)
    np.testing.assert_array_equal(mr(values), expected)
    np.testing.assert_array_equal(parse(mr.canonical, primitive_names=names)(values), expected)
