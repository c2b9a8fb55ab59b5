"""The Domain record: what one MetaRewardEnv domain trains on and how (built by ``domains.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from derl_bench.primitives import PrimitiveSet

__all__ = ["Domain"]


@dataclass(frozen=True, kw_only=True)
class Domain:
    """A built domain, ready for meta-steps.

    A domain bundles the inner task's data splits (inside ``trainer``), its primitive set, the
    instruction shown to meta-reward agents and the inner trainer for a preset.
    """

    name: str
    """Domain name (``"gsm8k"``, ``"math"``, ``"arith"``, ``"cartpole"``, …)."""
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
    data_files: dict[str, str] = field(default_factory=dict)
    """``{path relative to the data root: sha256 hex}`` of the data files the domain reads (its
    splits, and the data its policy model is warmed up on), as located by
    :func:`derl_bench.envs.data.note_data`: GSM8K's and MATH's files, ALFWorld's splits (one
    digest per split folder). Filled by :func:`derl_bench.meta_env.domains.build_domain`."""
