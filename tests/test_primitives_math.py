from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from derl_bench._lazy_registry import LazyRegistry
from derl_bench.envs.gsm8k import load_gsm8k
from derl_bench.envs.math_data import load_math
from derl_bench.envs.records import MathRecord
from derl_bench.primitives import (
    EPSILON,
    MATH_PRIMITIVES,
    Primitive,
    PrimitiveSet,
    UnknownPrimitiveSetError,
    get_primitive_set,
    list_primitive_sets,
    registry,
)
from derl_bench.primitives.math import extract_predicted_answer

HI = 1.0 + EPSILON
LO = EPSILON


def scores(rollout: str, record: MathRecord) -> list[float]:
    return MATH_PRIMITIVES.compute([rollout], [record])[0].tolist()


def gsm(answer: str) -> MathRecord:
    return MathRecord(uid="t/0", source="gsm8k", question="q", answer=answer)


def mth(answer: str) -> MathRecord:
    return MathRecord(uid="t/0", source="math", question="q", answer=answer)


# --- real rows -------------------------------------------------------------------------------


@pytest.mark.data
def test_gsm8k_reference_solution_as_completion():
    r0 = load_gsm8k("train")[0]
    # "... 24 clips in May.\n... April and May.\n#### 72": no "<digits>. " and no "step N".
    assert scores(r0.solution, r0) == [HI, LO, LO, HI]
    r2 = load_gsm8k("train")[2]
    # "... = $<<100/2=50>>50.\n..." and "... $<<15*2=30>>30.\n": two "\d+\.\s+" matches, so
    # the official g3 pattern fires on this reference solution.
    assert scores(r2.solution, r2) == [HI, LO, HI, HI]


@pytest.mark.data
def test_boxed_answer_on_gsm8k_test_row():
    record = load_gsm8k("test")[0]
    assert record.answer == "18"
    assert scores("The answer is \\boxed{18}", record) == [HI, HI, LO, HI]
    assert scores("The answer is \\boxed{17}", record) == [LO, HI, LO, LO]
    assert scores("She makes $18.00 a day. #### $18.", record) == [HI, LO, LO, HI]


@pytest.mark.data
def test_gsm8k_commas_in_completion():
    record = load_gsm8k("train")[345]
    assert record.answer == "1080"
    assert scores("He earns $1,080 in total.\n#### 1,080", record) == [HI, LO, LO, HI]
    assert scores("#### 1,081", record) == [LO, LO, LO, LO]


@pytest.mark.data
def test_math_fraction_equivalents_via_math_verify():
    record = load_math("math500")[219]
    assert record.answer == "\\frac{1}{2}"
    # math-verify 0.9 judges 0.5, \dfrac12 and 1/2 equal to \frac{1}{2}; g4 is literal.
    assert scores("So $p = \\boxed{0.5}$.", record) == [HI, HI, LO, LO]
    assert scores("So $p = \\boxed{\\dfrac12}$.", record) == [HI, HI, LO, LO]
    assert scores("#### 1/2", record) == [HI, LO, LO, LO]
    assert scores("So $p = \\boxed{\\frac{1}{2}}$.", record) == [HI, HI, LO, HI]
    assert scores("So $p = \\boxed{2}$.", record) == [LO, HI, LO, LO]


@pytest.mark.data
def test_math500_reference_solution_scores_g1():
    record = load_math("math500")[0]
    assert record.solution is not None
    assert scores(record.solution, record) == [HI, HI, LO, HI]
    # Same tuple written differently: math-verify accepts it, the substring test does not.
    assert scores("\\boxed{(3, \\pi/2)}", record) == [HI, HI, LO, LO]


@pytest.mark.data
def test_math_comparison_works_off_the_main_thread():
    record = load_math("math500")[219]
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda s: scores(s, record)[0], ["\\boxed{0.5}", "\\boxed{3}"]))
    assert got == [HI, LO]


@pytest.mark.data
def test_compute_on_real_batch_shape_and_dtype():
    records = load_gsm8k("test")[:5]
    rollouts = [r.solution or "" for r in records]
    out = MATH_PRIMITIVES.compute(rollouts, records)
    assert out.shape == (5, 4)
    assert out.dtype == np.float64
    assert np.all(out[:, 0] == HI)  # reference solutions end with the right "#### N"
    assert set(np.unique(out).tolist()) <= {LO, HI}


# --- g1 details ------------------------------------------------------------------------------


def test_extract_predicted_answer_order():
    assert extract_predicted_answer("x #### 3\n y #### 4\nbye") == "4"
    assert extract_predicted_answer("\\boxed{1} then \\boxed{\\frac{2}{3}}") == "\\frac{2}{3}"
    assert extract_predicted_answer("#### 5\nand \\boxed{6}") == "5"
    assert extract_predicted_answer("#### 5 apples") == "5 apples"  # the rest of the line
    assert extract_predicted_answer("  42 ") == "42"
    assert extract_predicted_answer("\\boxed{7") == ""


def test_g1_without_marker_compares_the_whole_completion():
    assert scores("72", gsm("72")) == [HI, LO, LO, HI]
    assert scores("The answer is 72", gsm("72")) == [LO, LO, LO, HI]


def test_g1_gsm8k_numeric_tolerance_and_strings():
    assert scores("#### 72.0", gsm("72"))[0] == HI
    assert scores("#### 72.000000001", gsm("72"))[0] == LO
    assert scores("#### -3", gsm("-3"))[0] == HI
    assert scores("#### 3", gsm("-3"))[0] == LO
    assert scores("#### ", gsm("3"))[0] == LO


def test_g1_math_wrong_and_unparsable():
    assert scores("\\boxed{x^2+1}", mth("1+x^2"))[0] == HI
    assert scores("\\boxed{x^2-1}", mth("1+x^2"))[0] == LO
    assert scores("\\boxed{}", mth("3"))[0] == LO
    assert scores("\\boxed{3}", mth(""))[0] == LO


# --- g2, g3, g4 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "g3"),
    [
        ("Step 1: add the eggs. Step 2: multiply by 2.", HI),
        ("step1 then STEP 2", HI),
        ("1. foo 2. bar", HI),
        ("1. only one numbered line", LO),
        ("Step 1: only one step.", LO),
        ("pi is 3.14 and e is 2.71", LO),
        ("", LO),
    ],
)
def test_g3_step_markers(text, g3):
    assert scores(text, gsm("0"))[2] == g3


def test_g2_needs_open_brace():
    assert scores("\\boxed{1}", gsm("2"))[1] == HI
    assert scores("\\boxed 1", gsm("2"))[1] == LO
    assert scores("boxed{1}", gsm("2"))[1] == LO


def test_g4_substring():
    assert scores("we get 1,000 apples", gsm("1000"))[3] == HI
    assert scores("we get 10 apples", gsm("1000"))[3] == LO
    assert scores("$x = \\frac{1}{2}$", mth("\\frac{1}{2}"))[3] == HI
    assert scores("anything", mth(""))[3] == LO
    assert scores("", gsm("1"))[3] == LO


# --- PrimitiveSet ----------------------------------------------------------------------------


def test_math_set_metadata():
    assert MATH_PRIMITIVES.name == "math"
    assert MATH_PRIMITIVES.names == ("g1", "g2", "g3", "g4")
    lines = MATH_PRIMITIVES.describe().splitlines()
    assert [line.split(":")[0] for line in lines] == ["g1", "g2", "g3", "g4"]
    for p in MATH_PRIMITIVES.primitives:
        assert isinstance(p, Primitive)
        assert p.value_range == (EPSILON, 1.0 + EPSILON)
        assert "meta_reward_grpo.py" in p.source
        assert "\n" not in p.description and p.description


def test_compute_shape_dtype_and_length_mismatch():
    out = MATH_PRIMITIVES.compute(["#### 1", "\\boxed{2}", "x"], [gsm("1"), gsm("2"), gsm("3")])
    assert out.shape == (3, 4) and out.dtype == np.float64
    assert out[:, 0].tolist() == [HI, HI, LO]
    empty = MATH_PRIMITIVES.compute([], [])
    assert empty.shape == (0, 4) and empty.dtype == np.float64
    with pytest.raises(ValueError, match="2 rollouts and 1 records"):
        MATH_PRIMITIVES.compute(["a", "b"], [gsm("1")])


def test_primitive_set_rejects_duplicate_names():
    g1 = MATH_PRIMITIVES.primitives[0]
    with pytest.raises(ValueError, match="duplicate"):
        PrimitiveSet(name="dup", primitives=(g1, g1))


# --- registry --------------------------------------------------------------------------------


def test_registry_builtin():
    assert "math" in list_primitive_sets()
    assert get_primitive_set("math") is MATH_PRIMITIVES


def test_registry_did_you_mean():
    with pytest.raises(UnknownPrimitiveSetError) as info:
        get_primitive_set("maht")
    assert isinstance(info.value, KeyError)
    assert "Did you mean 'math'?" in str(info.value)
    assert "Available: " in str(info.value) and "math" in str(info.value)
    with pytest.raises(KeyError) as info2:
        get_primitive_set("zzzzzz")
    assert "Did you mean" not in str(info2.value)


class _FakeEntryPoint:
    def __init__(self, name: str, obj: object) -> None:
        self.name = name
        self.value = f"fake:{name}"
        self.loads = 0
        self._obj = obj

    def load(self) -> object:
        self.loads += 1
        return self._obj


def test_registry_loads_plugins_lazily(monkeypatch):
    toy = PrimitiveSet(name="toy", primitives=MATH_PRIMITIVES.primitives[:2])
    good = _FakeEntryPoint("toy", toy)
    bad = _FakeEntryPoint("broken", object())
    clash = _FakeEntryPoint("math", object())
    groups = []

    def fake_entry_points(*, group):
        groups.append(group)
        return [good, bad, clash]

    fresh = LazyRegistry(
        registry.ENTRY_POINT_GROUP,
        registry._BUILTINS,
        registry.UnknownPrimitiveSetError,
        find_entry_points=fake_entry_points,
    )
    monkeypatch.setattr(registry, "_REGISTRY", fresh)
    monkeypatch.setattr(registry, "_LOADED", {})
    assert list_primitive_sets() == ["broken", "episode", "math", "toy"]  # built-ins + plug-ins
    assert groups == ["derl_bench.primitives"]
    assert good.loads == 0  # listing does not import plug-ins
    assert get_primitive_set("toy") is toy
    assert get_primitive_set("toy") is toy
    assert good.loads == 1
    assert get_primitive_set("math") is MATH_PRIMITIVES  # a built-in wins over a plug-in
    assert clash.loads == 0
    with pytest.raises(TypeError, match="not a PrimitiveSet"):
        get_primitive_set("broken")
    with pytest.raises(UnknownPrimitiveSetError, match="Did you mean 'toy'"):
        get_primitive_set("tyo")
