"""Domains of the MetaRewardEnv: what the inner task is and how a meta-step trains on it.

A domain bundles the inner task's data splits, its primitive set, the instruction shown to
meta-reward agents and the inner trainer for a preset. Builders import their heavy parts lazily.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from derl_bench.primitives import PrimitiveSet, get_primitive_set

MATH_INSTRUCTION = (
    "Generate a mathematical formula, the reward function used to train a language model with "
    "GRPO on grade-school and competition math problems. The formula combines the primitives "
    "listed below (each is 1 or 0 for one completion, plus 1e-6) using numbers, +, -, *, /, and "
    "parentheses. The trained model's success rate on held-out validation problems is your "
    "score. Output ONE formula, e.g. g1 + 0.5 * g2."
)
"""Instruction for the math domains, after the official DERL math prompt (PAPER_FACTS.md §1,
``constrained_rollout.py``), with the primitives described as implemented."""


@dataclass(frozen=True, kw_only=True)
class Domain:
    """A built domain, ready for meta-steps."""

    name: str
    """Domain name (``"gsm8k"``, ``"math"``)."""
    instruction: str
    """Task instruction for meta-reward agents (the paper's fixed ``ins``)."""
    primitive_set: PrimitiveSet
    """The primitives g1..gK the meta-reward may use."""
    trainer: Any
    """An :class:`derl_bench.inner.base.InnerTrainer`."""
    config: Any
    """The resolved inner preset (a frozen dataclass)."""
    n_val: int
    """Validation problems scored per meta-step."""
    n_test: int
    """Test problems scored by ``evaluate_test``."""


def _build_math(
    dataset: str,
    *,
    preset: str,
    inner_overrides: dict[str, Any] | None,
    data_dir: str | None,
    include_gsm8k_train: bool = False,
    keep_checkpoints: str | None = None,
    data_source: str = "local",
) -> Domain:
    from derl_bench.envs.math_tasks import math_task_splits
    from derl_bench.inner.lm_grpo import LMGRPOTrainer
    from derl_bench.inner.presets import math_preset

    config = math_preset(preset)
    if inner_overrides:
        config = config.with_overrides(**inner_overrides)
    splits = math_task_splits(
        dataset,  # type: ignore[arg-type]
        include_gsm8k_train=include_gsm8k_train,
        data_dir=data_dir,
        source=data_source,  # type: ignore[arg-type]
    )
    primitive_set = get_primitive_set("math")
    trainer = LMGRPOTrainer(
        d_in=splits.d_in,
        val=splits.val,
        train_pool=splits.train_pool,
        test=splits.test,
        primitive_set=primitive_set,
        config=config,
        success_primitive="g1",
        data_dir=data_dir,
        keep_checkpoints=keep_checkpoints,
    )
    return Domain(
        name=dataset,
        instruction=MATH_INSTRUCTION,
        primitive_set=primitive_set,
        trainer=trainer,
        config=config,
        n_val=len(trainer.val),
        n_test=len(trainer.test),
    )


def _gsm8k(**kwargs: Any) -> Domain:
    return _build_math("gsm8k", **kwargs)


def _math(**kwargs: Any) -> Domain:
    return _build_math("math", **kwargs)


def _cartpole(**kwargs: Any) -> Domain:
    from derl_bench.meta_env.agent_domains import build_classic

    return build_classic("cartpole", **kwargs)


def _pendulum(**kwargs: Any) -> Domain:
    from derl_bench.meta_env.agent_domains import build_classic

    return build_classic("pendulum", **kwargs)


def _alfworld(**kwargs: Any) -> Domain:
    from derl_bench.meta_env.agent_domains import build_alfworld

    return build_alfworld(**kwargs)


def _scienceworld(**kwargs: Any) -> Domain:
    from derl_bench.meta_env.agent_domains import build_scienceworld

    return build_scienceworld(**kwargs)


def _arith(**kwargs: Any) -> Domain:
    from derl_bench.envs.arith import build_arith_domain

    return build_arith_domain(**kwargs)


DOMAINS: dict[str, Callable[..., Domain]] = {
    "gsm8k": _gsm8k,
    "math": _math,
    "arith": _arith,
    "cartpole": _cartpole,
    "pendulum": _pendulum,
    "alfworld": _alfworld,
    "scienceworld": _scienceworld,
}
"""Domain builders by name."""


def build_domain(name: str, **kwargs: Any) -> Domain:
    """Build domain ``name`` (keyword arguments as the env's).

    Raises:
        ValueError: If the domain is unknown (with a did-you-mean suggestion), the preset is
            unknown, or an inner override is invalid.
        TypeError: If an argument is not accepted by the domain.
        derl_bench.envs.data.DataFileMissing: If a data file is missing.
    """
    try:
        builder = DOMAINS[name]
    except KeyError:
        close = difflib.get_close_matches(name, DOMAINS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown domain {name!r}.{hint} Known: {', '.join(sorted(DOMAINS))}."
        ) from None
    return builder(**kwargs)
