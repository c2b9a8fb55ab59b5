r"""Arith: procedurally generated grade-school word problems, the cheap math domain.

Each problem is made from one integer *problem seed* (``random.Random(seed)``, stable across
Python versions and platforms): a template (shopping, sharing, ages, travel, savings, boxes), a
number of arithmetic steps (1–3, one binary operation each) and small integers (factors 2–9,
addends mostly 1–9, every value at most 100); every intermediate value and the answer are
integers ≥ 0, and divisions are exact. The reference solution is written step by step and
ends with both ``\boxed{N}`` and ``#### N``::

    Step 1: 4 * 3 = 12
    Step 2: 12 + 7 = 19
    Step 3: The answer is \boxed{19}.
    #### 19

so the math primitives g1–g4 (:mod:`derl_bench.primitives.math`) all pay 1 + ε on it. Records
are :class:`~derl_bench.envs.records.MathRecord` with ``source="arith"`` (g1 compares answers
with ``math-verify``, which handles integers exactly).

Splits are disjoint ranges of problem seeds (:data:`SEED_RANGES`): train ``[0, 10**6)``,
validation ``[10**6, 2*10**6)``, test ``[2*10**6, 3*10**6)``. The tiny policy's supervised
warm-up (``derl_bench.inner.tiny_lm.arith_tiny_lm_path``) draws from the upper half of the train
range (:data:`WARMUP_SEED_START`), so it never sees D_in, V or test.

This module is a pure, dependency-free generator; the ``arith`` domain of the MetaRewardEnv is
assembled by :func:`derl_bench.meta_env.math_domains.build_arith`.

Domain card (``DERL-Arith-v0``):

- Inner task: D_in = the first ``n_train`` train problems, V = the first ``n_val`` validation
  problems, test = the first ``n_test`` test problems (preset fields; 4096 / 1024 / 1024 when
  ``None``). Success = g1 (exact final answer, read after the last ``####``, else from the last
  ``\boxed{}``), greedy pass@1.
- Policy (``smoke``, ``cpu``): ``tiny-arith``, a 2-layer Qwen2 (hidden 128, ~0.5 M parameters,
  digit-level BPE tokenizer trained on the warm-up text) supervised for 1,200 steps of 16 on
  20,000 generated solutions whose format is deliberately mixed: half end with
  ``The answer is \boxed{N}.``, half with ``#### N`` only, and independently half use ``Step i:``
  markers. Built once per cache folder (``$DERL_BENCH_CACHE`` or ``~/.cache/derl_bench``,
  ``tiny_lm_arith/<hash>``), about 2 CPU-minutes with one thread, bit-for-bit by seed.
  Untrained validation success (greedy): 0.49 on the ``cpu`` preset's 128 problems (by number of
  steps on 256 problems: 1 step 0.93, 2 steps 0.42, 3 steps 0.17); g2 0.55, g3 0.43, g4 0.61.
- Presets (``derl_bench.inner.lm_presets``): ``smoke`` 3 inner steps of 4 prompts × 4
  rollouts, V = 32 (a meta-step takes 5–15 s); ``cpu`` 40 inner steps of 8 prompts × 4 rollouts,
  lr 1e-4, no KL, 64 completion tokens, V = 128 (a meta-step takes about 110 s on one core of the
  reference machine, while other jobs shared its 2 cores); ``paper`` as GSM8K's.
- Signal: ``derl-bench signal --env DERL-Arith-v0 --preset cpu --seeds 0,1,2`` scores the
  untrained policy, trains under ``g1``, ``g1 + g2``, ``(g1 + g2 + g3 + g4) / 4`` and the
  deliberately bad ``-g1`` for seeds 0, 1, 2 and prints the table of validation success (mean ±
  sample std over seeds). Measured (V = 128; the command's table, seconds column dropped; one
  cell, ``g1`` seed 0, rerun through it this version: 0.469)::

    | meta-reward               | per seed            | mean ± std    |
    |---------------------------|---------------------|---------------|
    | (untrained policy)        | 0.492, 0.492, 0.492 | 0.492 ± 0.000 |
    | g1                        | 0.469, 0.445, 0.430 | 0.448 ± 0.020 |
    | g1 + g2                   | 0.438, 0.469, 0.422 | 0.443 ± 0.024 |
    | (g1 + g2 + g3 + g4) / 4   | 0.438, 0.422, 0.422 | 0.427 ± 0.009 |
    | -g1                       | 0.234, 0.289, 0.180 | 0.234 ± 0.055 |

  The bad meta-reward is far below the others (beyond 4 seed standard deviations); the three
  sensible ones are within seed noise of each other and slightly below the untrained policy.
  GRPO at this budget does not raise the tiny policy's accuracy: its sampled training success
  stayed flat at about 0.42 over 40 steps, and over 120 steps of 16 prompts (three times the
  ``cpu`` budget); what moves is the format (under ``g1`` the greedy outputs drop the ``Step``
  markers). A policy with more headroom for GRPO is future work.

Version history: v0 initial. v1 (issue 14; ``DERL-Arith-v1``, what the unversioned
``DERL-Arith`` resolves to): ``smoke`` and ``cpu`` train ``tiny-arith-direct``, the same tiny
LM warmed up with half of its targets replaced by the bare final answer
(``ArithTinyLMConfig(direct_fraction=0.5)``), so the untrained policy solves less and has room
to rise; ``cpu`` validates on 512 problems (v0: 128; at 128 one problem is 0.008 and item
noise was most of the spread between rewards). Signal (``derl-bench signal --env
DERL-Arith-v1 --preset cpu --seeds 0,1,2 --executor process``, docs/signal/DERL-Arith-v1-cpu.md):
untrained 0.275; the eight sensible panel rewards 0.233-0.281 (pooled seed std 0.015); SNR
1.20, ANOVA p 0.0076; ``-g1`` 0.161, below the untrained policy; 79-84 s per meta-step with two
side by side. The SNR target (1.5) is not reached: at lr 1e-4 one meta-step barely moves the
policy. Probes (docs/signal/probes/DERL-Arith-v1/, seeds 0-1, panel ``g1``, ``g2 + g3 + g4``,
``-g1``): lr 1e-3 collapses it under every reward (0.000-0.049); lr 3e-4 separates strongly
(``g1`` 0.237, ``g2 + g3 + g4`` 0.047, ``-g1`` 0.029) though every reward ends below the
untrained 0.275. Its nine-reward check (``--inner learning_rate=0.0003``, seeds 0-2,
docs/signal/probes/DERL-Arith-v1/lr3e-4-full/): SNR 1.44, ANOVA p 0.0012, ``g1`` 0.241,
``g2 + g3 + g4`` 0.090, ``-g1`` 0.033, every reward below the untrained 0.275; not made a
version (short of SNR 1.5, and GRPO still never raises the policy). v2 (issue 14, stop 35;
``DERL-Arith-v2``, what the unversioned ``DERL-Arith`` resolves to): v1 with, at ``cpu``, lr 3e-4
and ``restarts=3`` (a meta-step's validation success is the mean of three trainings from the
same initial policy, inner seeds ``3s … 3s + 2``; three times v1's training cost); ``smoke``
and ``paper`` as v1. The lr 3e-4 setting trained at nine inner seeds
(docs/signal/probes/DERL-Arith-v1/lr3e-4-*) has a between-reward std of 0.032 and a
one-training seed std of 0.036; averaged over three trainings, ``derl-bench signal --env
DERL-Arith-v2 --preset cpu --seeds 0,1,2 --executor process`` (docs/signal/DERL-Arith-v2-cpu.md)
gives SNR 1.56, ANOVA p 0.00052, ``-g1`` 0.038 below the untrained 0.275 (two restarts: 1.08).
Every reward ends below the untrained policy (``g1 + g2`` 0.235, ``g1`` 0.232, ``g2 + g3 + g4``
0.140): the ranking is of how much a reward harms it. 176-241 s per meta-step with two side by
side.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from derl_bench.envs.records import MathRecord

if TYPE_CHECKING:
    from derl_bench.envs.math_tasks import MathTaskSplits

__all__ = [
    "ARITH_GENERATOR_VERSION",
    "SEED_RANGES",
    "WARMUP_SEED_START",
    "ArithProblem",
    "arith_record",
    "arith_task_splits",
    "generate_problem",
    "solution_text",
]

ARITH_GENERATOR_VERSION = 1
"""Bump when a template, a number range or the solution layout changes (it keys the tiny LM's
cache and is part of ``DERL-Arith``'s identity: a bump means a new env version)."""

ArithSplit = Literal["train", "val", "test"]

SEED_RANGES: dict[str, tuple[int, int]] = {
    "train": (0, 1_000_000),
    "val": (1_000_000, 2_000_000),
    "test": (2_000_000, 3_000_000),
}
"""Problem-seed range ``[start, stop)`` of each split; the ranges are disjoint."""

WARMUP_SEED_START = 500_000
"""First train-range problem seed of the tiny policy's warm-up problems (D_in uses seeds from 0
up, so the two do not overlap for ``n_train < 500_000``)."""


@dataclass(frozen=True, kw_only=True)
class ArithStep:
    """One arithmetic step of a solution: ``left op right = value``."""

    left: int
    """Left operand."""
    op: Literal["+", "-", "*", "/"]
    """Operation."""
    right: int
    """Right operand."""
    value: int
    """Result (an integer ≥ 0; divisions are exact)."""

    def text(self) -> str:
        """The step as written in solutions, e.g. ``"4 * 3 = 12"``."""
        return f"{self.left} {self.op} {self.right} = {self.value}"


@dataclass(frozen=True, kw_only=True)
class ArithProblem:
    """One generated word problem.

    Attributes:
        seed: The problem seed it was generated from.
        template: Template name (``"shopping"``, ``"sharing"``, ``"ages"``, ``"travel"``,
            ``"savings"``, ``"boxes"``).
        question: The problem text.
        steps: The solution's arithmetic steps, 1 to 3, in order.
        answer: The final answer (the last step's value), an integer ≥ 0.
    """

    seed: int
    template: str
    question: str
    steps: tuple[ArithStep, ...]
    answer: int


def _step(left: int, op: Literal["+", "-", "*", "/"], right: int) -> ArithStep:
    if op == "+":
        value = left + right
    elif op == "-":
        value = left - right
    elif op == "*":
        value = left * right
    else:
        if right == 0 or left % right:
            raise AssertionError(f"inexact division {left} / {right}")  # generator bug
        value = left // right
    if value < 0:
        raise AssertionError(f"negative value {left} {op} {right}")  # generator bug
    return ArithStep(left=left, op=op, right=right, value=value)


_NAMES = (
    "Ana",
    "Ben",
    "Carla",
    "Dev",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kim",
    "Leo",
    "Mia",
    "Noah",
    "Olga",
    "Pavel",
    "Rosa",
    "Sam",
    "Tara",
    "Yuki",
)
_ITEMS = ("apples", "pens", "notebooks", "stickers", "oranges", "cookies", "marbles", "cards")
_THINGS = ("book", "hat", "ball", "kite", "puzzle", "lamp")

_Template = Callable[[random.Random, int], tuple[str, list[ArithStep]]]


def _shopping(rng: random.Random, n: int) -> tuple[str, list[ArithStep]]:
    name, item, thing = rng.choice(_NAMES), rng.choice(_ITEMS), rng.choice(_THINGS)
    count, price = rng.randint(2, 6), rng.randint(2, 5)
    steps = [_step(count, "*", price)]
    text = f"{name} buys {count} {item} that cost {price} dollars each."
    question = "How many dollars does " + name + " spend?"
    if n >= 2:
        extra = rng.randint(1, 9)
        steps.append(_step(steps[-1].value, "+", extra))
        text += f" {name} also buys a {thing} for {extra} dollars."
        question = f"How many dollars does {name} spend in total?"
    if n >= 3:
        bill = rng.choice([b for b in (20, 50) if b >= steps[-1].value])
        steps.append(_step(bill, "-", steps[-1].value))
        text += f" {name} pays with {bill} dollars."
        question = f"How many dollars of change does {name} get?"
    return f"{text} {question}", steps


def _sharing(rng: random.Random, n: int) -> tuple[str, list[ArithStep]]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    friends, each = rng.randint(2, 5), rng.randint(2, 5)
    total = friends * each if n >= 2 else rng.randint(5, 20)
    have = rng.randint(1, total - 1)
    more = total - have
    steps = [_step(have, "+", more)]
    text = f"{name} has {have} {item} and gets {more} more."
    question = f"How many {item} does {name} have now?"
    if n >= 2:
        steps.append(_step(total, "/", friends))
        text += f" {name} shares them equally among {friends} friends."
        question = f"How many {item} does each friend get?"
    if n >= 3:
        eaten = rng.randint(1, each)
        steps.append(_step(each, "-", eaten))
        text += f" Each friend gives away {eaten} of them."
        question = f"How many {item} does each friend keep?"
    return f"{text} {question}", steps


def _ages(rng: random.Random, n: int) -> tuple[str, list[ArithStep]]:
    name = rng.choice(_NAMES)
    age, older = rng.randint(3, 12), rng.randint(1, 9)
    steps = [_step(age, "+", older)]
    text = f"{name} is {age} years old. {name}'s brother is {older} years older."
    question = f"How old is {name}'s brother?"
    if n >= 2:
        later = rng.randint(2, 9)
        steps.append(_step(steps[-1].value, "+", later))
        question = f"How old will {name}'s brother be in {later} years?"
        if n >= 3:
            factor = rng.randint(2, 3)
            steps.append(_step(steps[-1].value, "*", factor))
            question = (
                f"In {later} years, their grandmother will be {factor} times as old as "
                f"{name}'s brother. How old will the grandmother be then?"
            )
    return f"{text} {question}", steps


def _travel(rng: random.Random, n: int) -> tuple[str, list[ArithStep]]:
    vehicle = rng.choice(("boat", "cart", "bike", "horse"))
    speed, hours = rng.randint(2, 9), rng.randint(2, 5)
    steps = [_step(speed, "*", hours)]
    text = f"A {vehicle} travels at {speed} km per hour for {hours} hours."
    question = "How many km does it travel?"
    if n >= 2:
        more = rng.randint(1, 9)
        steps.append(_step(steps[-1].value, "+", more))
        text += f" Then it travels {more} more km."
        question = "How many km does it travel in total?"
    if n >= 3:
        trip = steps[-1].value + rng.randint(1, 20)
        steps.append(_step(trip, "-", steps[-1].value))
        text += f" The whole trip is {trip} km long."
        question = "How many km are still left?"
    return f"{text} {question}", steps


def _savings(rng: random.Random, n: int) -> tuple[str, list[ArithStep]]:
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    weekly, weeks = rng.randint(2, 9), rng.randint(2, 5)
    steps = [_step(weekly, "*", weeks)]
    text = f"{name} saves {weekly} dollars every week for {weeks} weeks."
    question = f"How many dollars does {name} save?"
    if n >= 2:
        spent = rng.randint(1, steps[-1].value)
        steps.append(_step(steps[-1].value, "-", spent))
        text += f" Then {name} spends {spent} dollars on a {thing}."
        question = f"How many dollars does {name} have left?"
    if n >= 3:
        gift = rng.randint(1, 9)
        steps.append(_step(steps[-1].value, "+", gift))
        text += f" A grandparent gives {name} {gift} dollars."
        question = f"How many dollars does {name} have now?"
    return f"{text} {question}", steps


def _boxes(rng: random.Random, n: int) -> tuple[str, list[ArithStep]]:
    item = rng.choice(_ITEMS)
    boxes, per_box = rng.randint(2, 5), rng.randint(2, 9)
    steps = [_step(boxes, "*", per_box)]
    text = f"There are {boxes} boxes with {per_box} {item} in each box."
    question = f"How many {item} are there?"
    if n >= 2:
        total = steps[-1].value
        if n >= 3:
            students = rng.randint(2, min(5, total - 1))
            lost = total - students * rng.randint(1, (total - 1) // students)
        else:
            lost = rng.randint(1, total - 1)
        steps.append(_step(total, "-", lost))
        text += f" {lost} of the {item} are lost."
        question = f"How many {item} are left?"
        if n >= 3:
            steps.append(_step(steps[-1].value, "/", students))
            question = (
                f"The {item} that are left are shared equally among {students} students. "
                f"How many {item} does each student get?"
            )
    return f"{text} {question}", steps


TEMPLATES: dict[str, _Template] = {
    "shopping": _shopping,
    "sharing": _sharing,
    "ages": _ages,
    "travel": _travel,
    "savings": _savings,
    "boxes": _boxes,
}
"""Problem templates by name; each takes ``(rng, n_steps)`` and returns question and steps."""


def generate_problem(seed: int) -> ArithProblem:
    """Generate the problem of one problem seed (deterministic: same seed, same problem).

    Args:
        seed: Problem seed, an integer ≥ 0 (see :data:`SEED_RANGES` for the splits).

    Returns:
        The :class:`ArithProblem`: a uniformly drawn template and 1–3 steps.

    Raises:
        ValueError: If ``seed`` is negative.
    """
    if seed < 0:
        raise ValueError(f"seed={seed} must be >= 0")
    rng = random.Random(seed)
    template = rng.choice(sorted(TEMPLATES))
    n_steps = rng.randint(1, 3)
    question, steps = TEMPLATES[template](rng, n_steps)
    return ArithProblem(
        seed=seed,
        template=template,
        question=question,
        steps=tuple(steps),
        answer=steps[-1].value,
    )


def solution_text(
    problem: ArithProblem,
    *,
    step_markers: bool = True,
    final: Literal["both", "boxed", "hashes"] = "both",
    working: bool = True,
) -> str:
    r"""Write a problem's solution step by step.

    Args:
        problem: The problem.
        step_markers: ``True``: lines ``Step i: …`` and a last line ``Step k: The answer is
            \boxed{N}.`` (so g3 sees at least two markers); ``False``: bare ``a op b = c`` lines.
        final: ``"both"`` (the reference: ``\boxed{N}`` then a ``#### N`` line), ``"boxed"``
            (``The answer is \boxed{N}.`` only) or ``"hashes"`` (``#### N`` only).
        working: ``False``: no ``a op b = c`` lines, only the final line(s) (a direct answer).

    Returns:
        The solution text, lines joined by ``\n``, no trailing newline.
    """
    lines = [s.text() for s in problem.steps] if working else []
    boxed = f"The answer is \\boxed{{{problem.answer}}}."
    if final in ("both", "boxed"):
        lines.append(boxed)
    if step_markers:
        lines = [f"Step {i}: {line}" for i, line in enumerate(lines, start=1)]
    if final in ("both", "hashes"):
        lines.append(f"#### {problem.answer}")
    return "\n".join(lines)


def arith_record(seed: int, split: ArithSplit | None = None) -> MathRecord:
    r"""The :class:`MathRecord` of a problem seed.

    Args:
        seed: Problem seed.
        split: Split name for the uid; ``None``: the split whose seed range holds ``seed``.

    Returns:
        A record with ``uid="arith/<split>/<seed>"``, ``source="arith"``, the question, the
        answer as a decimal string and the reference solution (``solution_text(problem)``).
    """
    if split is None:
        split = next(s for s, (lo, hi) in SEED_RANGES.items() if lo <= seed < hi)  # type: ignore[assignment]
    problem = generate_problem(seed)
    return MathRecord(
        uid=f"arith/{split}/{seed}",
        source="arith",
        question=problem.question,
        answer=str(problem.answer),
        solution=solution_text(problem),
    )


def arith_task_splits(
    n_train: int = 4096, n_val: int = 1024, n_test: int = 1024, *, seed: int = 0
) -> MathTaskSplits:
    """Generate the D_in / V / test splits of the arith domain.

    Split ``s`` holds the problems of seeds ``SEED_RANGES[s][0] + seed + i`` for ``i < n_s``.

    Args:
        n_train: Problems in D_in.
        n_val: Problems in V.
        n_test: Problems in the test split.
        seed: Offset of the first problem seed inside each split's range.

    Returns:
        A :class:`~derl_bench.envs.math_tasks.MathTaskSplits` named ``"arith"``
        (``train_pool`` = D_in + V, as for GSM8K).

    Raises:
        ValueError: If a count is < 1 or the seeds would leave a split's range.
    """
    from derl_bench.envs.math_tasks import MathTaskSplits

    counts = {"train": n_train, "val": n_val, "test": n_test}
    records: dict[str, tuple[MathRecord, ...]] = {}
    for split, n in counts.items():
        start, stop = SEED_RANGES[split]
        if n < 1 or seed < 0 or start + seed + n > stop:
            raise ValueError(
                f"n_{split}={n} with seed={seed} must be >= 1 and fit in the {split} seed range "
                f"[{start}, {stop})"
            )
        records[split] = tuple(
            arith_record(start + seed + i, split)  # type: ignore[arg-type]
            for i in range(n)
        )
    return MathTaskSplits(
        name="arith",
        d_in=records["train"],
        val=records["val"],
        train_pool=records["train"] + records["val"],
        test=records["test"],
    )
