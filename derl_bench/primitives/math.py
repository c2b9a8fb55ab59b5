r"""The four math primitives g1..g4 for GSM8K and MATH (DERL, arXiv 2512.13399).

Paper: g1 strict answer match, g2 answer inside ``\boxed{}``, g3 step-by-step markers present,
g4 soft match (the ground truth appears anywhere in the output); all 0/1. Official code
(``verl/utils/reward_score/meta_reward_grpo.py``) returns ``1 + 1e-6`` or ``1e-6`` for each, so
every primitive here returns ``1.0 + EPSILON`` or ``EPSILON``.

Deliberate differences from the official code, all in g1/g4's answer handling:

- g1 compares answers by value, not by plain string equality: GSM8K answers as numbers after
  stripping ``,``, ``$``, a trailing ``.`` and whitespace; MATH (and any other source) answers
  with ``math-verify`` (so ``\boxed{0.5}`` matches ``\frac{1}{2}``).
- The predicted answer is taken after the *last* ``####`` (official: the first), up to the end of
  that line.
- g4 removes thousands separators from a GSM8K output before the substring test.

``math_verify`` is imported lazily, on the first MATH comparison.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from typing import Any

from derl_bench.envs.math_data import last_boxed_content
from derl_bench.envs.records import MathRecord
from derl_bench.primitives.base import BinaryPrimitive, PrimitiveSet

__all__ = [
    "MATH_PRIMITIVES",
    "answers_match",
    "boxed_format",
    "exact_outcome",
    "extract_predicted_answer",
    "has_step_markers",
    "soft_outcome",
]

_SOURCE = "DERL (arXiv 2512.13399), math primitives; verl/utils/reward_score/meta_reward_grpo.py"

_STEP_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b\d+\.\s+"),
    re.compile(r"\bstep\s*\d+", re.IGNORECASE),
    re.compile(r"\bstep\s*\d+\s*[:.]", re.IGNORECASE),
)
"""g3's patterns, verbatim from ``g3_cot_reward`` in ``meta_reward_grpo.py``."""

_NUMERIC_TOLERANCE = 1e-9


def extract_predicted_answer(completion: str) -> str:
    r"""Return the final answer a completion states.

    Order (official ``extract_answer`` in ``meta_reward_grpo.py``): the text after the last
    ``####`` up to the end of its line; else the content of the last ``\boxed{}``
    (:func:`~derl_bench.envs.math_data.last_boxed_content`); else the whole completion.

    Args:
        completion: A model completion.

    Returns:
        The predicted answer, stripped; ``""`` if a ``####`` or ``\boxed`` marker is present
        but empty or unclosed.
    """
    if "####" in completion:
        after = completion.rsplit("####", 1)[1].strip()
        return after.splitlines()[0].strip() if after else ""
    if "\\boxed" in completion or "\\fbox" in completion:
        boxed = last_boxed_content(completion)
        return "" if boxed is None else boxed.strip()
    return completion.strip()


def _normalise_gsm8k(text: str) -> str:
    return text.replace(",", "").replace("$", "").strip().rstrip(".").strip()


def _gsm8k_match(pred: str, gold: str) -> bool:
    p, g = _normalise_gsm8k(pred), _normalise_gsm8k(gold)
    try:
        return abs(float(p) - float(g)) <= _NUMERIC_TOLERANCE
    except ValueError:
        return p == g


@functools.cache
def _math_verify_api() -> tuple[Any, Any, type[BaseException], bool, bool]:
    try:
        import math_verify
    except ImportError as exc:  # pragma: no cover - math-verify is part of the llm extra
        raise ImportError(
            "MATH answer comparison needs math-verify: pip install 'derl-bench[llm]' "
            "(or pip install math-verify)"
        ) from exc
    try:
        from math_verify.errors import TimeoutException
    except ImportError:  # pragma: no cover - older math-verify
        TimeoutException = Exception  # noqa: N806
    parse_takes_timeout = "parsing_timeout" in inspect.signature(math_verify.parse).parameters
    verify_takes_timeout = "timeout_seconds" in inspect.signature(math_verify.verify).parameters
    return (
        math_verify.parse,
        math_verify.verify,
        TimeoutException,
        parse_takes_timeout,
        verify_takes_timeout,
    )


def _math_verify_match(pred: str, gold: str) -> bool:
    parse, verify, timeout_exc, parse_timeout, verify_timeout = _math_verify_api()
    # math-verify times out with SIGALRM, which only the main thread may set: elsewhere, run
    # without timeouts.
    in_main = threading.current_thread() is threading.main_thread()
    parse_kwargs: dict[str, Any] = {} if in_main or not parse_timeout else {"parsing_timeout": None}
    verify_kwargs: dict[str, Any] = (
        {} if in_main or not verify_timeout else {"timeout_seconds": None}
    )
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", **parse_kwargs)
        pred_parsed = parse(f"\\boxed{{{pred}}}", **parse_kwargs)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, **verify_kwargs))
    except (Exception, timeout_exc):
        return False


def answers_match(pred: str, gold: str, source: str) -> bool:
    r"""Whether a predicted answer equals the ground truth (g1's comparison).

    Args:
        pred: The predicted answer (see :func:`extract_predicted_answer`).
        gold: The ground-truth answer (``MathRecord.answer``).
        source: ``"gsm8k"``: compare as numbers within 1e-9 after stripping ``,``, ``$``, a
            trailing ``.`` and whitespace, falling back to string equality when either side is
            not a number. Anything else (``"math"``, ``"arith"``): ``math_verify.verify`` on both
            answers wrapped in ``\boxed{}``; any math-verify error or timeout counts as no match.

    Returns:
        True if the answers match; False for an empty prediction.

    Raises:
        ImportError: If a non-GSM8K comparison is needed and math-verify is not installed.
    """
    if not pred.strip():
        return False
    if source == "gsm8k":
        return _gsm8k_match(pred, gold)
    return _math_verify_match(pred, gold)


def exact_outcome(rollout: str, record: MathRecord) -> bool:
    """g1's predicate: the completion's final answer matches ``record.answer``.

    Args:
        rollout: The completion.
        record: The problem answered.

    Returns:
        ``answers_match(extract_predicted_answer(rollout), record.answer, record.source)``.
    """
    return answers_match(extract_predicted_answer(rollout), record.answer, record.source)


def boxed_format(rollout: str, record: MathRecord) -> bool:
    r"""g2's predicate: ``"\boxed{"`` occurs in the completion (official ``g2_format_reward``).

    Args:
        rollout: The completion.
        record: The problem answered (unused).

    Returns:
        True if the completion contains ``\boxed{``.
    """
    del record
    return "\\boxed{" in rollout


def has_step_markers(rollout: str, record: MathRecord) -> bool:
    r"""g3's predicate: at least 2 matches of one step-marker pattern (official ``g3_cot_reward``).

    The patterns are ``\b\d+\.\s+`` (numbered list), ``\bstep\s*\d+`` and
    ``\bstep\s*\d+\s*[:.]`` (both case-insensitive).

    Args:
        rollout: The completion.
        record: The problem answered (unused).

    Returns:
        True if any single pattern matches at least twice.
    """
    del record
    return any(len(pattern.findall(rollout)) >= 2 for pattern in _STEP_PATTERNS)


def soft_outcome(rollout: str, record: MathRecord) -> bool:
    """g4's predicate: the ground-truth answer string occurs anywhere in the completion.

    Official ``g4_loose_outcome_reward``; for GSM8K records, commas are removed from the
    completion first (the ground truth has none), so ``"1,000"`` contains ``"1000"``.

    Args:
        rollout: The completion.
        record: The problem answered.

    Returns:
        True if ``record.answer`` (stripped, non-empty) is a substring of the completion.
    """
    gold = record.answer.strip()
    if not gold or not rollout:
        return False
    if record.source == "gsm8k":
        return gold.replace(",", "") in rollout.replace(",", "")
    return gold in rollout


MATH_PRIMITIVES = PrimitiveSet(
    name="math",
    primitives=(
        BinaryPrimitive(
            name="g1",
            description=(
                "exact outcome: 1 if the final answer (after the last '####', else in the last "
                "\\boxed{}) equals the ground truth, else 0"
            ),
            source=_SOURCE + " (g1_outcome_reward)",
            test=exact_outcome,
        ),
        BinaryPrimitive(
            name="g2",
            description="format: 1 if the output contains \\boxed{...}, else 0",
            source=_SOURCE + " (g2_format_reward)",
            test=boxed_format,
        ),
        BinaryPrimitive(
            name="g3",
            description=(
                "reasoning steps: 1 if the output has at least two step markers such as "
                "'Step 1' or '1. ', else 0"
            ),
            source=_SOURCE + " (g3_cot_reward)",
            test=has_step_markers,
        ),
        BinaryPrimitive(
            name="g4",
            description=(
                "soft outcome: 1 if the ground-truth answer appears anywhere in the output, else 0"
            ),
            source=_SOURCE + " (g4_loose_outcome_reward)",
            test=soft_outcome,
        ),
    ),
)
"""The math primitive set g1..g4; every value is ``1.0 + EPSILON`` or ``EPSILON``."""
