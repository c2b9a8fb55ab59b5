"""Fidelities of a meta-step: ``live`` (train), ``table`` (recorded live runs), ``surrogate``.

Light to import (no torch): canonical keys (:mod:`~derl_bench.fidelity.keys`), the table reader
(:mod:`~derl_bench.fidelity.table`) and the surrogate (:mod:`~derl_bench.fidelity.surrogate`,
which imports scikit-learn / LightGBM when first fitted). Tables are built from live meta-steps
by ``derl-bench fidelity build`` (:mod:`derl_bench.fidelity_build`).
"""

from __future__ import annotations

from derl_bench.fidelity.keys import (
    Invariance,
    KeyScheme,
    effective_key,
    key_scheme,
    trainer_invariance,
)

FIDELITIES = ("live", "table", "surrogate")
"""How a meta-step is answered: train for real, look up a recorded live run, or predict."""

__all__ = [
    "FIDELITIES",
    "Invariance",
    "KeyScheme",
    "effective_key",
    "key_scheme",
    "trainer_invariance",
]
