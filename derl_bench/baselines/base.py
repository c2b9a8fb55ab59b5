"""The outer-agent protocol, the record of one meta-step, and a lazy registry of agents.

An outer agent searches the space of meta-rewards: it proposes expressions over the primitives
g1..gK, the runner steps the MetaRewardEnv with each, and the agent sees the results
(:class:`StepResult`). Agents are looked up by name with :func:`get_agent`; built-ins are listed
here as ``"module:attribute"`` strings and imported on first lookup, and other packages add agents
through the entry-point group ``derl_bench.baselines``, e.g. in their ``pyproject.toml``::

    [project.entry-points."derl_bench.baselines"]
    my_agent = "my_package.agent:MyAgent"

Constructor convention: a registered factory (usually the agent class) is called with keyword
arguments only. The runner always passes ``primitive_names`` (tuple of str, the env's primitive
set in order, e.g. ``("g1", "g2", "g3", "g4")``) and ``seed`` (int, the run's seed), plus any
user configuration; every factory must accept these two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from derl_bench._lazy_registry import LazyRegistry, UnknownNameError

__all__ = [
    "ENTRY_POINT_GROUP",
    "MetaRewardAgent",
    "StepResult",
    "UnknownAgentError",
    "agent_factory",
    "get_agent",
    "list_agents",
]

ENTRY_POINT_GROUP = "derl_bench.baselines"
"""Entry-point group whose entries each resolve to an agent factory (usually a class)."""

_BUILTINS: dict[str, str] = {
    "heuristic": "derl_bench.baselines.heuristic:HeuristicAgent",
    "random": "derl_bench.baselines.frozen_meta_optimizer:FrozenMetaOptimizerAgent",
    "random_tree": "derl_bench.baselines.random_search:RandomSearchAgent",
    "evolution": "derl_bench.baselines.evolution:EvolutionAgent",
    "cma": "derl_bench.baselines.cma_es:CMAESAgent",
    "derl": "derl_bench.baselines.derl:DERLAgent",
    "derl_pop": "derl_bench.baselines.derl_pop:DERLPopAgent",
    "llm_evolution": "derl_bench.baselines.llm_evolution:LLMEvolutionAgent",
}


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What one meta-step returned, as handed to :meth:`MetaRewardAgent.update`."""

    meta_reward: str
    """The meta-reward text the agent proposed, exactly as given to ``env.step``."""
    reward: float
    """The env's reward: validation_success in [0, 1], or ``invalid_reward`` (default -1.0)."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """The step's ``info`` dict (canonical form, validity, per-primitive means, cost, ...)."""


@runtime_checkable
class MetaRewardAgent(Protocol):
    """An outer agent that searches for a good meta-reward.

    The runner alternates ``propose`` and ``update`` until the outer budget is spent: it steps
    the env once per proposed expression and then hands the agent all results of that batch.

    Attributes:
        name: Registry name of the agent, e.g. ``"heuristic"``; used in result paths.
    """

    name: str

    def propose(self, observation: Any, n: int) -> list[str]:
        """Propose up to ``n`` meta-rewards to try next.

        Args:
            observation: The MetaRewardEnv's latest observation (task instruction, primitive
                descriptions, this episode's history of meta-rewards and validation success).
            n: How many proposals the runner wants, >= 1 (the group size, or fewer when the
                budget is nearly spent).

        Returns:
            Between 1 and ``n`` meta-reward texts over the env's primitives. The runner uses at
            most the first ``n``.
        """
        ...

    def update(self, results: list[StepResult]) -> None:
        """Learn from the meta-steps of the last batch.

        Args:
            results: One :class:`StepResult` per stepped proposal, in proposal order. It may be
                shorter than the batch if the budget ran out in the middle of it.
        """
        ...


class UnknownAgentError(UnknownNameError):
    """No agent is registered under the requested name; the message suggests close names."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(name, available, "agent")


_REGISTRY = LazyRegistry(ENTRY_POINT_GROUP, _BUILTINS, UnknownAgentError)


def list_agents() -> list[str]:
    """Return the names of all agents, built-in and plug-in, sorted.

    Returns:
        The names, e.g. ``["heuristic"]``. Plug-ins are listed without being imported.
    """
    return _REGISTRY.names()


def agent_factory(name: str) -> Callable[..., MetaRewardAgent]:
    """Return the factory (usually the class) registered under ``name``, imported on first use.

    Args:
        name: A name from :func:`list_agents`.

    Returns:
        A callable taking keyword arguments only (see the module docstring) and returning an
        agent.

    Raises:
        UnknownAgentError: (a ``KeyError``) if no agent has that name.
        TypeError: If the registered object is not callable.
    """
    obj, origin = _REGISTRY.load(name)
    if not callable(obj):
        raise TypeError(f"agent {name!r} from {origin} is a {type(obj).__name__}, not callable")
    return obj


def get_agent(name: str, **config: Any) -> MetaRewardAgent:
    """Create the agent registered under ``name``.

    Args:
        name: A name from :func:`list_agents`, e.g. ``"heuristic"``.
        **config: Keyword arguments for the agent's factory; the runner passes
            ``primitive_names`` and ``seed`` plus the user's agent configuration.

    Returns:
        A new agent.

    Raises:
        UnknownAgentError: (a ``KeyError``) if no agent has that name; the message suggests close
            names and lists the available ones.
        TypeError: If the registered object is not callable, or rejects the configuration.
    """
    return agent_factory(name)(**config)
