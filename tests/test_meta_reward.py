"""Tests of the meta-reward language (derl_bench.meta_reward)."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import warnings

import lark
import numpy as np
import pytest

from derl_bench.meta_reward import (
    ALPHABET,
    DEFAULT_PRIMITIVES,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    REASONS,
    InvalidMetaReward,
    MetaReward,
    grammar_text,
    parse,
    probe_values,
    safe_rewards,
)

EPS = 1e-6


def reason_of(text, primitive_names=DEFAULT_PRIMITIVES):
    with pytest.raises(InvalidMetaReward) as info:
        parse(text, primitive_names=primitive_names)
    return info.value.reason


def test_constants():
    assert MAX_LENGTH == 512
    assert MAX_DEPTH == 32
    assert MAX_NODES == 256
    assert DEFAULT_PRIMITIVES == ("g1", "g2", "g3", "g4")
    assert isinstance(ALPHABET, str)
    assert set(ALPHABET) == set("0123456789g.eE+-*/() ")
    assert set(REASONS) == {
        "not_a_string", "empty", "too_long", "bad_character", "syntax", "unknown_primitive",
        "no_primitive", "too_deep", "too_many_nodes", "non_finite", "constant",
    }  # fmt: skip


# --- valid expressions, including the ALFWorld meta-rewards quoted in the DERL paper -------------

PAPER_EXPRESSIONS = [
    (
        "g1*(g2-1)/2+(g3+1)*(g4-1)*2/3",
        lambda g1, g2, g3, g4: g1 * (g2 - 1) / 2 + (g3 + 1) * (g4 - 1) * 2 / 3,
    ),
    (
        "g1+0.5*(g2+0.5*(g3+0.5*(g4+0.5)))",
        lambda g1, g2, g3, g4: g1 + 0.5 * (g2 + 0.5 * (g3 + 0.5 * (g4 + 0.5))),
    ),
    (
        "-(g1+0.5*(g2+0.3*(g3-0.2*(g4+0.1*1)))+0.1*1)/1.2",
        lambda g1, g2, g3, g4: (
            -(g1 + 0.5 * (g2 + 0.3 * (g3 - 0.2 * (g4 + 0.1 * 1))) + 0.1 * 1) / 1.2
        ),
    ),
    (
        "g1+(g2*(g3/2))-(g4/3)",
        lambda g1, g2, g3, g4: g1 + (g2 * (g3 / 2)) - (g4 / 3),
    ),
]

ROWS = np.array(
    [
        [1.0, 1.0, EPS, 1.0 + EPS],
        [EPS, EPS, EPS, EPS],
        [1 + EPS, 1 + EPS, 1 + EPS, 1 + EPS],
        [1 + EPS, EPS, 1 + EPS, EPS],
        [0.25, -3.0, 7.5, 2.0],
    ]
)


@pytest.mark.parametrize(("text", "reference"), PAPER_EXPRESSIONS)
def test_paper_expressions_match_python_arithmetic(text, reference):
    mr = parse(text)
    assert mr.primitives_used == ("g1", "g2", "g3", "g4")
    expected = np.array([reference(*row) for row in ROWS.tolist()])
    np.testing.assert_allclose(mr(ROWS), expected, rtol=1e-13, atol=0)


@pytest.mark.parametrize(
    ("text", "row", "expected"),
    [
        # g1*(g2-1)/2 + (g3+1)*(g4-1)*2/3 = 2*2/2 + 2*3*2/3 = 2 + 4
        ("g1*(g2-1)/2+(g3+1)*(g4-1)*2/3", [2, 3, 1, 4], 6.0),
        # 1 + 0.5*(1 + 0.5*(1 + 0.5*1.5)) = 1 + 0.5*1.875
        ("g1+0.5*(g2+0.5*(g3+0.5*(g4+0.5)))", [1, 1, 1, 1], 1.9375),
        # -(0 + 0.5*0.3*(-0.02) + 0.1)/1.2 = -(0.097)/1.2
        ("-(g1+0.5*(g2+0.3*(g3-0.2*(g4+0.1*1)))+0.1*1)/1.2", [0, 0, 0, 0], -0.097 / 1.2),
        # 1 + 2*(4/2) - 3/3
        ("g1+(g2*(g3/2))-(g4/3)", [1, 2, 4, 3], 4.0),
        ("g1 + 0.5*g2", [1, 1, 9, 9], 1.5),
        ("2.5E+2*g1 - .5 + 5. + 1e-3", [1, 0, 0, 0], 250 - 0.5 + 5 + 0.001),
        ("-g1 * +g2", [3, 2, 0, 0], -6.0),
        ("g1 - -g2", [3, 2, 0, 0], 5.0),
        ("g1 / g2 / 2", [8, 2, 0, 0], 2.0),
        ("g1 - g2 - g3", [8, 2, 1, 0], 5.0),
    ],
)
def test_hand_computed_values(text, row, expected):
    assert parse(text)(np.array([row], dtype=float))[0] == pytest.approx(expected, rel=1e-12)


def test_attributes():
    mr = parse("g3 + 0.5*g1", primitive_names=("g1", "g2", "g3", "g4"))
    assert mr.source == "g3 + 0.5*g1"
    assert mr.canonical == "g3 + 0.5 * g1"
    assert mr.primitives_used == ("g1", "g3")
    assert mr.primitive_names == ("g1", "g2", "g3", "g4")
    assert mr.n_nodes == 5
    assert mr.depth == 3
    assert str(mr) == mr.canonical
    assert parse("g2").depth == 1 and parse("g2").n_nodes == 1


# --- hostile and edge inputs ---------------------------------------------------------------------

HOSTILE = [
    ("__import__('os').system('ls')", "bad_character"),
    ("g1.__class__", "bad_character"),
    ("g1**999", "syntax"),
    ("g1 * * 2", "syntax"),
    ("1/0", "no_primitive"),
    ("1e309", "non_finite"),
    ("g1/0", "non_finite"),
    ("1e309*g1", "non_finite"),
    ("g1/(g2-g2)", "non_finite"),
    ("g1 + 1/(1e308*10)", "non_finite"),
    ("g1*1e300*1e300", "non_finite"),
    ("x" * 10_000, "too_long"),
    ("(" * 500 + "g1" + ")" * 500, "too_long"),
    ("(" * 250 + "g1" + ")" * 250, "too_deep"),
    ("(" * 400 + "g1", "too_deep"),
    ("-" * 500 + "g1", "too_deep"),
    ("\uff471", "bad_character"),  # fullwidth g
    ("g\uff11", "bad_character"),  # fullwidth 1
    ("g1 \u2212 g2", "bad_character"),  # MINUS SIGN
    ("1\u04353*g1", "bad_character"),  # Cyrillic ie in an exponent
    ("g1\tg2", "bad_character"),
    ("g1\n", "bad_character"),
    ("g1^2", "bad_character"),
    ("", "empty"),
    ("   ", "empty"),
    (None, "not_a_string"),
    (b"g1", "not_a_string"),
    (1.0, "not_a_string"),
    ("g1 g2", "syntax"),
    ("g1 +", "syntax"),
    ("()", "syntax"),
    ("(g1", "syntax"),
    ("g1)", "syntax"),
    ("1.5.3*g1", "syntax"),
    ("g", "syntax"),
    ("e3*g1", "syntax"),
    ("g1e3", "syntax"),
    ("g1 (g2)", "syntax"),
    ("g5", "unknown_primitive"),
    ("g0", "unknown_primitive"),
    ("g01", "unknown_primitive"),
    ("g1 + g7", "unknown_primitive"),
    ("1+2", "no_primitive"),
    ("-(3)", "no_primitive"),
    ("g1 - g1", "constant"),
    ("0 * g2", "constant"),
    ("g3 / g3 + 1", "constant"),
    ("(g1 + 1e20) - 1e20", "constant"),  # constant in float64: the same reward everywhere
]


@pytest.mark.parametrize(("text", "reason"), HOSTILE)
def test_rejections_have_the_right_reason(text, reason):
    assert reason_of(text) == reason


@pytest.mark.parametrize(
    "text", ["g1 - g2", "g1 * g2 - g2 * g1 + g3", "1e-300 * g4", "g2 - g2 * g2"]
)
def test_expressions_that_vary_are_not_called_constant(text):
    parse(text)  # they vary somewhere in [eps, 1 + eps]^4, though some are 0 on the probe rows


def test_error_type_and_messages():
    with pytest.raises(InvalidMetaReward) as info:
        parse("g1 + g7")
    error = info.value
    assert isinstance(error, ValueError)
    assert error.reason == "unknown_primitive"
    assert str(error) == error.message
    assert "'g7'" in error.message and "g1..g4" in error.message
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.reason, clone.message) == (error.reason, error.message)

    with pytest.raises(
        InvalidMetaReward, match=r"use \* repeatedly.*\*\* is not part of the language"
    ):
        parse("g1**2")
    with pytest.raises(InvalidMetaReward, match="U\\+2212 MINUS SIGN.*ASCII '-'"):
        parse("g1 \u2212 g2")
    with pytest.raises(InvalidMetaReward, match="limit 512"):
        parse("g1" + " " * 600)
    with pytest.raises(InvalidMetaReward, match="g1=1, g2=1, g3=1e-06"):
        parse("g1/(g1-g2)")  # zero divisor on DERL's own validity probe
    with pytest.raises(ValueError, match="unknown InvalidMetaReward reason"):
        InvalidMetaReward("bogus", "x")


def test_parsing_hostile_text_executes_nothing(monkeypatch, tmp_path):
    parse("g1 + g2")  # warm the parser cache so that no import is legitimately needed
    calls = []

    def forbidden(name):
        def hook(*args, **kwargs):
            calls.append((name, args))
            raise AssertionError(f"{name} called while parsing")

        return hook

    real_import = builtins.__import__

    def spy_import(name, *args, **kwargs):
        calls.append(("__import__", name))
        return real_import(name, *args, **kwargs)

    sentinel = tmp_path / "pwned"
    hostile = [
        "__import__('os').system('touch " + str(sentinel) + "')",
        "open('" + str(sentinel) + "', 'w')",
        "g1.__class__.__bases__",
        "(lambda: 1)()",
        "g1 + 1e309",
        "g1 ** 999 ** 999",
        "g1 + g2 * (g3 - g4) / 2",  # a valid one, so the whole pipeline runs under the spies
        "g1 + g9",
        "g1 g2",
    ]
    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden(name))
    monkeypatch.setattr(os, "system", forbidden("os.system"))
    monkeypatch.setattr(subprocess, "Popen", forbidden("subprocess.Popen"))
    monkeypatch.setattr(builtins, "__import__", spy_import)
    del calls[:]  # monkeypatch itself may import while installing the spy
    reasons = []
    for text in hostile:
        try:
            parse(text)
            reasons.append("ok")
        except InvalidMetaReward as error:
            reasons.append(error.reason)
    seen = list(calls)
    monkeypatch.undo()
    assert seen == []
    assert reasons == ["bad_character"] * 4 + [
        "non_finite", "syntax", "ok", "unknown_primitive", "syntax"
    ]  # fmt: skip
    assert not sentinel.exists()


def test_depth_limit_boundaries():
    assert parse("(" * MAX_DEPTH + "g1" + ")" * MAX_DEPTH).canonical == "g1"
    assert reason_of("(" * (MAX_DEPTH + 1) + "g1" + ")" * (MAX_DEPTH + 1)) == "too_deep"
    # a left-associative chain of n terms has depth n
    assert parse("+".join(["g1"] * MAX_DEPTH)).depth == MAX_DEPTH
    assert reason_of("+".join(["g1"] * (MAX_DEPTH + 1))) == "too_deep"
    assert parse("-" * (MAX_DEPTH - 1) + "g1").canonical == "-g1"  # double negations cancel
    assert reason_of("-" * MAX_DEPTH + "g1") == "too_deep"


def test_node_limit():
    group = "(" + "+".join(["1"] * 16) + ")"  # 31 nodes, depth 16
    group15 = "(" + "+".join(["1"] * 15) + ")"  # 29 nodes
    at_limit = "*".join([group] * 7 + [group15]) + "*-g1"  # 7*31 + 29 + 8 muls + neg + g1
    assert len(at_limit) <= MAX_LENGTH
    assert parse(at_limit).canonical == "4026531840 * -g1"  # 16**7 * 15, folded
    over = "*".join([group] * 8) + "*g1"  # 8*31 + 7 muls + mul + g1 = 257 nodes
    assert len(over) <= MAX_LENGTH
    assert reason_of(over) == "too_many_nodes"


def test_length_limit_boundary():
    assert parse("g1" + " " * (MAX_LENGTH - 2)).canonical == "g1"
    assert reason_of("g1" + " " * (MAX_LENGTH - 1)) == "too_long"


def test_canonical_form_that_would_not_fit_is_rejected():
    term = "g1*(1/3)"  # canonical "g1 * 0.3333333333333333"
    group = "(" + "+".join([term] * 4) + ")"
    text = "+".join([group] * 6)
    assert len(text) <= MAX_LENGTH
    with pytest.raises(InvalidMetaReward) as info:
        parse(text)
    assert info.value.reason == "too_long"
    assert "canonical form" in info.value.message


# --- canonical form ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("g1+0.5*g2", "g1 + 0.5 * g2"),
        ("1+2*g1", "1 + 2 * g1"),
        ("(2*3)*g1", "6 * g1"),
        ("2*g1*3", "2 * g1 * 3"),  # never reassociated: float arithmetic is not associative
        ("g1*(2*3)", "g1 * 6"),
        ("-(-(g1))", "g1"),
        ("+-+g1", "-g1"),
        ("-(2)*g1", "-2 * g1"),
        ("g1 - -3", "g1 - -3"),
        ("g1-(-3)", "g1 - -3"),
        ("(((g1)))+((g2))", "g1 + g2"),
        ("(g1+g2)+g3", "g1 + g2 + g3"),
        ("g1+(g2+g3)", "g1 + (g2 + g3)"),
        ("g1-(g2-g3)", "g1 - (g2 - g3)"),
        ("g1/(g2*g3)", "g1 / (g2 * g3)"),
        ("(g1*g2)/g3", "g1 * g2 / g3"),
        ("(g1+g2)*g3", "(g1 + g2) * g3"),
        ("-(g1*g2)", "-(g1 * g2)"),
        ("(-g1)*g2", "-g1 * g2"),
        (".5*g1", "0.5 * g1"),
        ("5.*g1", "5 * g1"),
        ("0.250*g1", "0.25 * g1"),
        ("2.5E+2*g1", "250 * g1"),
        ("1e-3*g1", "0.001 * g1"),
        ("1e-7*g1", "1e-07 * g1"),
        ("1e20*g1", "1e+20 * g1"),
        ("1/3*g1", "0.3333333333333333 * g1"),
        ("-(g1+0.5*(g2+0.3*(g3-0.2*(g4+0.1*1)))+0.1*1)/1.2",
         "-(g1 + 0.5 * (g2 + 0.3 * (g3 - 0.2 * (g4 + 0.1))) + 0.1) / 1.2"),
        ("g1+(g2*(g3/2))-(g4/3)", "g1 + g2 * (g3 / 2) - g4 / 3"),
    ],
)  # fmt: skip
def test_canonical_form(text, canonical):
    mr = parse(text)
    assert mr.canonical == canonical
    again = parse(mr.canonical)
    assert again.canonical == canonical
    assert again == mr


CANONICAL_CASES = [text for text, _ in PAPER_EXPRESSIONS] + [
    "(2*3)*g1 - -(1/3)",
    "g1/(g2+1) - 3*(g3 - g4/7)",
    "-(-(-g1)) * 1e-5 + .5/4",
    "g4 - g4 + 0.1*0.2*g2",
    "(g1*g2*g3*g4)/(1+g1)",
]


@pytest.mark.parametrize("text", CANONICAL_CASES)
def test_canonical_is_idempotent_and_evaluates_identically(text):
    mr = parse(text)
    again = parse(mr.canonical)
    assert again.canonical == mr.canonical
    assert parse(again.canonical).canonical == mr.canonical
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.normal(size=(64, 4)) * 10,
            rng.choice([EPS, 1 + EPS], size=(64, 4)),
        ]
    )
    np.testing.assert_array_equal(mr(values), again(values))


def test_equality_hash_and_pickle():
    a = parse("g1+g2")
    b = parse("((g1) + g2)")
    assert a == b and hash(a) == hash(b)
    assert a.source != b.source
    assert a != parse("g2+g1")
    assert a != parse("g1+g2", primitive_names=("g1", "g2"))
    assert len({a, b, parse("g1 + g2 ")}) == 1
    restored = pickle.loads(pickle.dumps(a))
    assert restored == a and restored.source == a.source
    np.testing.assert_array_equal(restored(ROWS), a(ROWS))
    assert isinstance(a, MetaReward)


# --- evaluation ----------------------------------------------------------------------------------


def test_call_shape_dtype_and_fresh_array():
    mr = parse("g1")
    values = np.arange(12, dtype=np.float64).reshape(3, 4)
    rewards = mr(values)
    assert rewards.shape == (3,) and rewards.dtype == np.float64
    np.testing.assert_array_equal(rewards, [0.0, 4.0, 8.0])
    rewards[0] = 99.0
    assert values[0, 0] == 0.0  # the result does not alias the input
    ints = parse("g2 * 2")(np.array([[1, 2, 3, 4]]))
    assert ints.dtype == np.float64 and ints.tolist() == [4.0]
    assert parse("g1 + 1")(np.empty((0, 4))).shape == (0,)
    big = parse("g1*(g2-1)/2+(g3+1)*(g4-1)*2/3")(np.ones((4096, 4)))
    assert big.shape == (4096,) and np.all(big == 0.0)


@pytest.mark.parametrize("shape", [(4,), (3, 3), (3, 5), (2, 4, 1)])
def test_call_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match=r"shape \(n_rollouts, 4\)"):
        parse("g1")(np.zeros(shape))


def test_column_mapping_with_other_primitive_names():
    two = ("g1", "g2")
    mr = parse("g2 - 10*g1", primitive_names=two)
    assert mr.primitive_names == two
    np.testing.assert_array_equal(mr(np.array([[1.0, 5.0], [0.5, 0.0]])), [-5.0, -5.0])
    with pytest.raises(ValueError):
        mr(np.zeros((2, 4)))
    with pytest.raises(InvalidMetaReward, match="this domain has g1..g2") as info:
        parse("g3", primitive_names=two)
    assert info.value.reason == "unknown_primitive"

    swapped = ("g2", "g1")  # column 0 holds g2
    mr = parse("g1 + 10*g2", primitive_names=swapped)
    assert mr.primitives_used == ("g2", "g1")
    np.testing.assert_array_equal(mr(np.array([[7.0, 3.0]])), [73.0])

    six = tuple(f"g{i}" for i in range(1, 7))
    assert parse("g6 / g5", primitive_names=six)(np.arange(1, 7).reshape(1, 6) * 1.0)[0] == 6 / 5


def test_bad_primitive_names_are_caller_errors():
    with pytest.raises(TypeError):
        parse("g1", primitive_names="g1")
    for names in [(), ("g1", "g1"), ("x",), ("g0",), ("g01",)]:
        with pytest.raises(ValueError) as info:
            parse("g1", primitive_names=names)
        assert not isinstance(info.value, InvalidMetaReward)


def test_nonfinite_values_without_warnings_and_safe_rewards():
    mr = parse("g1 / g2")
    values = np.array([[1.0, 0.0, 0, 0], [0.0, 0.0, 0, 0], [1.0, 2.0, 0, 0], [-1.0, 0.0, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = mr(values)
        rewards, n_nonfinite = safe_rewards(mr, values)
    assert np.isposinf(raw[0]) and np.isnan(raw[1]) and np.isneginf(raw[3])
    np.testing.assert_array_equal(rewards, [0.0, 0.0, 0.5, 0.0])
    assert n_nonfinite == 3 and isinstance(n_nonfinite, int)
    assert rewards.dtype == np.float64
    clean, count = safe_rewards(mr, values[2:3])
    assert count == 0 and clean.tolist() == [0.5]


def test_probe_rows():
    probe = probe_values(4)
    np.testing.assert_array_equal(probe, [[1.0, 1.0, EPS, 1 + EPS], [EPS] * 4, [1 + EPS] * 4])
    assert probe_values(6)[0].tolist() == [1.0, 1.0, EPS, 1 + EPS, 1.0, 1.0]
    # dividing by a binary primitive is fine: it is never exactly zero
    assert parse("g1 / g3")(probe)[0] == pytest.approx(1e6)
    # ... but a divisor that is zero on DERL's probe row is not
    assert reason_of("g2 / (g3 - 0.000001)") == "non_finite"


# --- grammar text --------------------------------------------------------------------------------

GRAMMAR_EXAMPLES = [
    ("g1 + 0.5*g2", True),
    ("g1*(g2-1)/2+(g3+1)*(g4-1)*2/3", True),
    ("-(g1+0.5*(g2+0.3*(g3-0.2*(g4+0.1*1)))+0.1*1)/1.2", True),
    ("  +-g4 / 2.5E+2 - .5 ", True),
    ("g5", False),
    ("g0", False),
    ("g1 g2", False),
    ("g1 +", False),
    ("()", False),
    ("g1**2", False),
    ("g1^2", False),
    ("g1.__class__", False),
    ("(g1", False),
    ("1e*g1", False),
]


@pytest.mark.parametrize(("text", "valid"), GRAMMAR_EXAMPLES)
def test_grammar_text_agrees_with_parse(text, valid):
    grammar = lark.Lark(grammar_text())
    try:
        grammar.parse(text)
        grammar_accepts = True
    except lark.exceptions.LarkError:
        grammar_accepts = False
    try:
        parse(text)
        parse_accepts = True
    except InvalidMetaReward:
        parse_accepts = False
    assert grammar_accepts == parse_accepts == valid


def test_grammar_text_fills_in_primitives():
    text = grammar_text()
    assert 'PRIMITIVE: "g1" | "g2" | "g3" | "g4"' in text
    assert "/g[0-9]+/" not in text
    two = lark.Lark(grammar_text(("g1", "g2")), parser="lalr")
    two.parse("g2 - g1")
    with pytest.raises(lark.exceptions.LarkError):
        two.parse("g3")
    twelve = lark.Lark(grammar_text(tuple(f"g{i}" for i in range(1, 13))), parser="lalr")
    tree = twelve.parse("g10 + g1")
    assert [str(t) for t in tree.scan_values(lambda v: isinstance(v, lark.Token))] == ["g10", "g1"]
