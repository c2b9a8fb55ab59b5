"""Outer agents that search for meta-rewards: the protocol, the registry and the built-ins.

Built-in agents: ``heuristic`` (the paper's hand-designed meta-rewards). Later issues add
``random``, ``evolution``, ``llm_evolution``, ``derl`` and ``derl_pop``. Agent modules are
imported only when :func:`get_agent` asks for them.
"""

from __future__ import annotations

from derl_bench.baselines.base import (
    ENTRY_POINT_GROUP,
    MetaRewardAgent,
    StepResult,
    UnknownAgentError,
    agent_factory,
    get_agent,
    list_agents,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MetaRewardAgent",
    "StepResult",
    "UnknownAgentError",
    "agent_factory",
    "get_agent",
    "list_agents",
]
