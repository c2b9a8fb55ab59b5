"""Task records shared by the inner environments, the primitives and the inner trainers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MathSource = Literal["gsm8k", "math", "arith"]


@dataclass(frozen=True, kw_only=True)
class MathRecord:
    r"""One math word problem with its ground truth.

    Attributes:
        uid: Stable identifier, ``"<source>/<split>/<row index>"`` (e.g. ``"gsm8k/train/17"``).
        source: Which data set the row comes from; decides how answers are compared
            (``"gsm8k"``: numeric after stripping ``,`` and ``$``; ``"math"``: ``math-verify``).
        question: The problem text, without any instruction suffix.
        answer: The ground-truth final answer as a string (GSM8K: the text after ``####``;
            MATH: the content of the last ``\\boxed{}`` of the reference solution).
        solution: The reference step-by-step solution, or ``None`` where the data has none
            (MATH train in the verl layout carries answers only).
    """

    uid: str
    source: MathSource
    question: str
    answer: str
    solution: str | None = None
