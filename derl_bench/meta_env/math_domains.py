"""Builders of the math domains: GSM8K, MATH and the generated Arith problems.

Each builder returns a :class:`~derl_bench.meta_env.domain.Domain` whose trainer is TRL's GRPO
(:class:`~derl_bench.inner.lm_grpo_trainer.LMGRPOTrainer`) over the math primitive set g1..g4.
Heavy parts (torch, transformers, the tiny LMs) load lazily, at the first meta-step.
"""

from __future__ import annotations

from typing import Any

from derl_bench.meta_env.domain import Domain
from derl_bench.primitives import get_primitive_set

__all__ = ["ARITH_INSTRUCTION", "MATH_INSTRUCTION", "build_arith", "build_gsm8k", "build_math"]

MATH_INSTRUCTION = (
    "Generate a mathematical formula, the reward function used to train a language model with "
    "GRPO on grade-school and competition math problems. The formula combines the primitives "
    "listed below (each is 1 or 0 for one completion, plus 1e-6) using numbers, +, -, *, /, and "
    "parentheses. The trained model's success rate on held-out validation problems is your "
    "score. Output ONE formula, e.g. g1 + 0.5 * g2."
)
"""Instruction for the math domains, after the official DERL math prompt (PAPER_FACTS.md §1,
``constrained_rollout.py``), with the primitives described as implemented."""


ARITH_INSTRUCTION = (
    "Generate a mathematical formula, the reward function used to train a small language model "
    "with GRPO on generated grade-school arithmetic word problems (1 to 3 steps). The formula "
    "combines the primitives listed below (each is 1 or 0 for one completion, plus 1e-6) using "
    "numbers, +, -, *, /, and parentheses. The trained model's success rate on held-out "
    "validation problems is your score. Output ONE formula, e.g. g1 + 0.5 * g2."
)
"""Task instruction shown to meta-reward agents in the ``arith`` domain."""


def _lm_domain(
    name: str,
    instruction: str,
    splits: Any,
    config: Any,
    *,
    data_dir: str | None,
    keep_checkpoints: str | None,
) -> Domain:
    """The Domain of a math task: TRL GRPO on ``splits`` under ``config``, success = g1.

    The data files the policy model is built from
    (:data:`~derl_bench.inner.models.MODEL_DATA_FILES`) are located here, so
    :func:`~derl_bench.meta_env.domains.build_domain` records them although the model itself is
    built on the first meta-step.
    """
    from derl_bench.envs.data import data_file
    from derl_bench.inner.lm_grpo_trainer import LMGRPOTrainer
    from derl_bench.inner.models import MODEL_DATA_FILES

    for relpath in MODEL_DATA_FILES.get(str(config.model), ()):
        data_file(relpath, data_dir=data_dir)

    trainer = LMGRPOTrainer(
        d_in=splits.d_in,
        val=splits.val,
        train_pool=splits.train_pool,
        test=splits.test,
        primitive_set=get_primitive_set("math"),
        config=config,
        success_primitive="g1",
        data_dir=data_dir,
        keep_checkpoints=keep_checkpoints,
    )
    return Domain(
        name=name,
        instruction=instruction,
        primitive_set=trainer.primitive_set,
        trainer=trainer,
        config=config,
        n_val=len(trainer.val),
        n_test=len(trainer.test),
    )


def _build_math(
    dataset: str,
    *,
    preset: str,
    inner_overrides: dict[str, Any] | None = None,
    data_dir: str | None = None,
    include_gsm8k_train: bool = False,
    keep_checkpoints: str | None = None,
    data_source: str = "local",
) -> Domain:
    from derl_bench.envs.math_tasks import math_task_splits
    from derl_bench.inner.lm_presets import lm_preset

    config = lm_preset(dataset, preset, inner_overrides)
    splits = math_task_splits(
        dataset,  # type: ignore[arg-type]
        include_gsm8k_train=include_gsm8k_train,
        data_dir=data_dir,
        source=data_source,  # type: ignore[arg-type]
    )
    return _lm_domain(
        dataset,
        MATH_INSTRUCTION,
        splits,
        config,
        data_dir=data_dir,
        keep_checkpoints=keep_checkpoints,
    )


def build_gsm8k(**kwargs: Any) -> Domain:
    """Build the ``gsm8k`` domain (see :mod:`derl_bench.envs.math_tasks` for the splits).

    Keyword arguments as :func:`build_arith`'s, plus ``include_gsm8k_train``.
    """
    return _build_math("gsm8k", **kwargs)


def build_math(**kwargs: Any) -> Domain:
    """Build the ``math`` domain (keyword arguments as :func:`build_gsm8k`'s)."""
    return _build_math("math", **kwargs)


def build_arith(
    *,
    preset: str,
    inner_overrides: dict[str, Any] | None = None,
    data_dir: str | None = None,
    keep_checkpoints: str | None = None,
    data_source: str = "local",
    version: int | None = None,
    **_: Any,
) -> Domain:
    """Build the ``arith`` domain (``DERL-Arith``; the generator is :mod:`derl_bench.envs.arith`).

    The splits are generated (nothing is read from disk): D_in, V and test hold the preset's
    ``n_train`` / ``n_val`` / ``n_test`` problems (defaults 4096 / 1024 / 1024 when ``None``).
    The preset's ``model="tiny-arith"`` is built (about a minute, once per cache folder) or
    loaded only when a meta-step first needs it (:mod:`derl_bench.inner.models`), so
    constructing the env stays cheap.

    Args:
        preset: ``"smoke"``, ``"cpu"`` or ``"paper"`` (:mod:`derl_bench.inner.lm_presets`).
        inner_overrides: Fields of :class:`~derl_bench.inner.lm_grpo_config.LMGRPOConfig` to
            replace.
        data_dir: Unused (the data is generated); accepted for a uniform builder signature.
        keep_checkpoints: Folder to save trained policies in, or ``None``.
        data_source: Must be ``"local"`` (there is nothing to download).
        version: The id's version (``DERL-Arith-v1``: 1, its direct-answer warm-up;
            ``DERL-Arith-v2``: 2, ``cpu`` lr 3e-4 and three restarts; None or 0: ``-v0``),
            :data:`derl_bench.inner.lm_presets.ARITH_PRESET_VERSIONS`.

    Returns:
        The :class:`~derl_bench.meta_env.domain.Domain` named ``"arith"``.

    Raises:
        ValueError: If the preset or version is unknown, an override is invalid, or
            ``data_source`` is not ``"local"``.
    """
    from derl_bench.envs.arith import arith_task_splits
    from derl_bench.inner.lm_presets import lm_preset

    if data_source != "local":
        raise ValueError(
            f"data_source={data_source!r}: the arith domain is generated locally; use 'local'."
        )
    config = lm_preset("arith", preset, inner_overrides, version=version or 0)
    splits = arith_task_splits(
        n_train=config.n_train or 4096, n_val=config.n_val or 1024, n_test=config.n_test or 1024
    )
    return _lm_domain(
        "arith",
        ARITH_INSTRUCTION,
        splits,
        config,
        data_dir=data_dir,
        keep_checkpoints=keep_checkpoints,
    )
