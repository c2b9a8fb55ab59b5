"""Random search as the paper runs it: samples of the frozen Meta-Optimizer.

DERL's compute-controlled random-search control (arXiv 2512.13399 v2 App. F; PAPER_FACTS.md
§3) keeps "the outer loop frozen": meta-rewards are sampled from the cold-started
Meta-Optimizer and never learned from, and the best is reported. Comparing DERL with it at
equal budget isolates what outer learning adds. Registry name ``"random"``; the uniform
expression-tree sampler is ``"random_tree"`` (:mod:`.random_search`).
"""

from __future__ import annotations

from typing import Any

from derl_bench.baselines.base import StepResult
from derl_bench.baselines.derl import DERLAgent

__all__ = ["FrozenMetaOptimizerAgent"]


class FrozenMetaOptimizerAgent(DERLAgent):
    """DERL's Meta-Optimizer after its cold start, never updated; registry name ``"random"``.

    Same constructor, settings, prompt, cold start and constrained sampling as
    :class:`~derl_bench.baselines.derl.DERLAgent` (the same seed gives the same first group);
    :meth:`update` only checks the results' order.
    """

    name = "random"

    def update(self, results: list[StepResult]) -> None:
        """Check that ``results`` match the last proposals; learn nothing (frozen).

        Raises:
            ValueError: As :meth:`DERLAgent.update` for results out of order.
        """
        pending, self._pending = self._pending, []
        if len(results) > len(pending):
            raise ValueError(
                f"update got {len(results)} results but only {len(pending)} proposals are pending"
            )
        for i, (sample, result) in enumerate(zip(pending, results, strict=False)):
            if result.meta_reward != sample.text:
                raise ValueError(f"result {i} is for {result.meta_reward!r}, not {sample.text!r}")

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files."""
        return {**super().config, "frozen": True}
