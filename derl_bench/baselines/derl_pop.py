"""DERL-pop: DERL whose inner policies warm-start from the previous round's best checkpoint.

DERL-pop (arXiv 2512.13399, §4; PAPER_FACTS.md §1 "DERL vs DERL-pop"): the first inner loop
starts from the base model, each later one from "the highest-performing checkpoint of the
previous iteration" (official ``find_best_model_path()``). The Meta-Optimizer is the same as
DERL's. Runners honour two attributes:

* ``needs_checkpoints = True`` (class attribute): make the env with
  ``keep_checkpoints=<run dir>/checkpoints`` so that each meta-step's trained policy is saved
  and ``info["checkpoint_id"]`` names it;
* ``next_warm_start`` (``str | None``): before each round, call
  ``env.unwrapped.set_warm_start(agent.next_warm_start)``.
"""

from __future__ import annotations

import math
from typing import Any

from derl_bench.baselines.base import StepResult
from derl_bench.baselines.derl import DERLAgent

__all__ = ["DERLPopAgent"]


class DERLPopAgent(DERLAgent):
    """DERL with population-style warm starts; registry name ``"derl_pop"``.

    Same constructor and Meta-Optimizer as :class:`~derl_bench.baselines.derl.DERLAgent`.
    After each :meth:`update`, :attr:`next_warm_start` is the ``info["checkpoint_id"]`` of the
    round's best valid result by reward (the first one on ties; None if that result has no
    checkpoint). A round without a valid result keeps the previous warm start.

    Attributes:
        needs_checkpoints: True: the env must be made with ``keep_checkpoints``.
        next_warm_start: Checkpoint folder for the next round's inner policies; None before
            the first update (train from the base model).
    """

    name = "derl_pop"
    needs_checkpoints = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.next_warm_start: str | None = None

    def update(self, results: list[StepResult]) -> None:
        """Run DERL's GRPO update, then point :attr:`next_warm_start` at the round's best.

        Args:
            results: The group's meta-step results in proposal order.

        Raises:
            ValueError: As :meth:`DERLAgent.update`.
        """
        super().update(results)
        valid = [r for r in results if r.info.get("valid") is not False and math.isfinite(r.reward)]
        if valid:
            best = max(valid, key=lambda r: r.reward)  # max keeps the first of equal rewards
            checkpoint = best.info.get("checkpoint_id")
            self.next_warm_start = None if checkpoint is None else str(checkpoint)

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files."""
        return {**super().config, "warm_start": "best_checkpoint_of_previous_round"}
