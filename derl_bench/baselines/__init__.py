"""Outer agents that search for meta-rewards: the protocol, the registry and the built-ins.

Built-in agents: ``heuristic`` (the paper's hand-designed meta-rewards), ``random`` (the
paper's random search: samples of the frozen Meta-Optimizer), ``random_tree`` (uniform random
expression trees), ``evolution`` (genetic programming over expression trees),
``cma`` (CMA-ES over linear weights), ``llm_evolution`` (an LLM prompted with earlier
meta-rewards and their scores, the paper's RLAIF/Eureka-like baseline), ``derl`` (the
Meta-Optimizer: an instruction-tuned LLM with grammar-constrained decoding trained by outer
GRPO) and
``derl_pop`` (DERL with warm-started inner policies). Agent modules are imported only when
:func:`get_agent` asks for them.
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
