"""derl_bench: a Gymnasium benchmark for automatic reward design.

The outer problem of DERL (Cheng et al., arXiv 2512.13399) as an environment: the action is a
meta-reward expression over reward primitives, one step trains a policy with GRPO under it, and
the reward is the trained policy's validation success. ``import derl_bench`` registers every env
id and imports nothing heavy (torch, transformers and TRL load lazily). It also pins torch, MKL
and oneDNN to AVX2 kernels (:mod:`derl_bench._numerics`) so every x86 machine computes the same
numbers.
"""

from __future__ import annotations

from derl_bench._numerics import pin_instruction_set

pin_instruction_set()  # before anything loads torch: same numbers on AVX2 and AVX-512 machines

from derl_bench._registration import register_envs  # noqa: E402

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
