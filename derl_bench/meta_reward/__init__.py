"""The meta-reward language: arithmetic over primitives g1..gK, parsed without ``eval``.

A meta-reward (DERL, arXiv 2512.13399) is an expression such as ``g1 + 0.5 * (g2 + g3) / 2``
over a domain's primitives; it is the action of the MetaRewardEnv. :func:`parse` validates the
text and returns a :class:`MetaReward` that maps primitive values of shape (n_rollouts, K) to
rewards of shape (n_rollouts,); every rejection is an :class:`InvalidMetaReward` with a short
``reason`` code. :func:`grammar_text` gives the Lark grammar for constrained decoding.

Example:
    >>> import numpy as np
    >>> from derl_bench.meta_reward import parse
    >>> mr = parse("g1 + 0.5*g2", primitive_names=("g1", "g2"))
    >>> mr.canonical
    'g1 + 0.5 * g2'
    >>> mr(np.array([[1.0, 1.0], [0.0, 1.0]]))
    array([1.5, 0.5])
"""

from __future__ import annotations

from derl_bench.meta_reward.compiler import (
    DERL_PROBE,
    MetaReward,
    SafeRewards,
    probe_values,
    safe_rewards,
)
from derl_bench.meta_reward.errors import REASONS, InvalidMetaReward
from derl_bench.meta_reward.limits import (
    ALPHABET,
    DEFAULT_PRIMITIVES,
    EPSILON,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
)
from derl_bench.meta_reward.parser import grammar_text, parse

__all__ = [
    "ALPHABET",
    "DEFAULT_PRIMITIVES",
    "DERL_PROBE",
    "EPSILON",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "REASONS",
    "InvalidMetaReward",
    "MetaReward",
    "SafeRewards",
    "grammar_text",
    "parse",
    "probe_values",
    "safe_rewards",
]
