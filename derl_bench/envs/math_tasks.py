"""Train / validation / test splits of the math domains (GSM8K, MATH).

Following DERL v2 (arXiv 2512.13399v2, §2 and App. B): the original training set is split at
random 8:2 into D_in (inner training) and V (validation, the outer reward); the test set is
separate and only used by ``evaluate_test``.

- ``gsm8k``: pool = GSM8K train (7,473), test = GSM8K test (1,319).
- ``math``: pool = MATH train (7,500), V drawn from it; test = MATH-500. With
  ``include_gsm8k_train=True`` (the paper's "MATH+GSM8k" setting) GSM8K train's D_in part is
  added to D_in; V stays MATH-only, as in the official code whose outer reward is the MATH
  validation accuracy only (PAPER_FACTS.md §1, "Validation metric").

Signal on a CPU (issue 14): these ids do not rank meta-rewards on 2 cores. ``smoke`` (a tiny LM,
for pipeline checks): untrained 0.000, the nine-reward panel 0.000-0.021 on 32 V problems over
seeds 0-2, SNR 0.61, ANOVA p 0.40 (docs/signal/DERL-GSM8K-v0-smoke.md; ``derl-bench signal
--env DERL-GSM8K-v0 --preset smoke --seeds 0,1,2``). ``cpu`` (SmolLM2-135M): a meta-step took
over 14 minutes, so no panel was run. ``paper`` (Qwen2.5, GPUs) is the research setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from derl_bench.envs.data import split_pool
from derl_bench.envs.gsm8k import load_gsm8k
from derl_bench.envs.math_data import load_math
from derl_bench.envs.records import MathRecord

SPLIT_SEED = 0
"""Seed of the 8:2 D_in / V split (part of the env id's identity)."""


@dataclass(frozen=True, kw_only=True)
class MathTaskSplits:
    """The record splits of one math domain."""

    name: str
    """``"gsm8k"`` or ``"math"``."""
    d_in: tuple[MathRecord, ...]
    """Inner training problems D_in."""
    val: tuple[MathRecord, ...]
    """Validation problems V (outer reward)."""
    train_pool: tuple[MathRecord, ...]
    """D_in ∪ V: what ``evaluate_test`` trains on."""
    test: tuple[MathRecord, ...]
    """Held-out test problems (leaderboards)."""


def math_task_splits(
    dataset: Literal["gsm8k", "math"],
    *,
    include_gsm8k_train: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    source: Literal["local", "hf"] = "local",
) -> MathTaskSplits:
    """Build the splits of a math domain from the local data files.

    Args:
        dataset: ``"gsm8k"`` or ``"math"``.
        include_gsm8k_train: For ``"math"``: add GSM8K train's D_in part to D_in.
        data_dir: Data folder (see :func:`derl_bench.envs.data.data_root`).
        source: ``"local"`` (files under the data folder) or ``"hf"`` (Hugging Face Hub data
            sets ``openai/gsm8k``, ``DigitalLearningGmbH/MATH-lighteval``,
            ``HuggingFaceH4/MATH-500``; needs hub access).

    Raises:
        ValueError: If ``dataset`` is unknown.
        derl_bench.envs.data.DataFileMissing: If a data file is missing.
    """
    if dataset == "gsm8k":
        pool = load_gsm8k("train", data_dir=data_dir, source=source)
        split = split_pool(pool, seed=SPLIT_SEED)
        return MathTaskSplits(
            name="gsm8k",
            d_in=split.d_in,
            val=split.val,
            train_pool=pool,
            test=load_gsm8k("test", data_dir=data_dir, source=source),
        )
    if dataset == "math":
        pool = tuple(r for r in load_math("train", data_dir=data_dir, source=source) if r.answer)
        split = split_pool(pool, seed=SPLIT_SEED)
        d_in = split.d_in
        if include_gsm8k_train:
            d_in = (
                d_in
                + split_pool(
                    load_gsm8k("train", data_dir=data_dir, source=source), seed=SPLIT_SEED
                ).d_in
            )
        return MathTaskSplits(
            name="math",
            d_in=d_in,
            val=split.val,
            train_pool=d_in + split.val,
            test=load_math("math500", data_dir=data_dir, source=source),
        )
    raise ValueError(f"Unknown math dataset {dataset!r}; choose 'gsm8k' or 'math'.")
