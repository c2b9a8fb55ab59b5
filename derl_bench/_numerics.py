"""One instruction set for every x86 machine, so the same seed gives the same numbers.

torch's own CPU kernels (``ATEN_CPU_CAPABILITY``), MKL's BLAS (``MKL_ENABLE_INSTRUCTIONS``) and
oneDNN (``ONEDNN_MAX_CPU_ISA``) each pick the widest vector instructions the CPU has. AVX-512
kernels round sums in another order than AVX2 ones, so an inner training drifts apart between
machines: measured on an AVX-512 AMD EPYC, the GSM8K tiny LM's weights (its hash) and the golden
``smoke`` meta-step of 13 ids differed from the ones made on an AVX2 machine; with the three
variables below set to AVX2 the tiny LM and the GSM8K golden meta-step were equal bit for bit.

:func:`pin_instruction_set` sets them (``os.environ.setdefault``: a value the user set wins) when
``derl_bench`` is imported; they take effect if no torch computation ran before in the process
(torch, MKL and oneDNN read them at their first kernel call), and child processes (executor
workers, pytest-xdist) inherit them. AVX2 is what x86 CPUs of the last decade share; a CPU
without it falls back to its own (torch and MKL never use instructions the CPU lacks). Set
``DERL_BENCH_NATIVE_ISA=1`` before importing ``derl_bench`` to let the libraries choose (faster
on AVX-512 machines; numbers then match only machines with the same instruction set).
"""

from __future__ import annotations

import os

PINNED_ISA: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
"""Environment variable -> value that pins torch, MKL and oneDNN to AVX2 kernels."""

NATIVE_ISA_VARIABLE = "DERL_BENCH_NATIVE_ISA"
"""Set to ``1`` to skip the pin."""


def pin_instruction_set() -> dict[str, str]:
    """Set :data:`PINNED_ISA` in ``os.environ`` where unset, unless the opt-out is set.

    Returns:
        The variables this call set (empty when opted out or all were already set).
    """
    if os.environ.get(NATIVE_ISA_VARIABLE) == "1":
        return {}
    changed = {}
    for name, value in PINNED_ISA.items():
        if name not in os.environ:
            os.environ[name] = value
            changed[name] = value
    return changed
