"""The policy contract of the compact GRPO (:mod:`derl_bench.inner.episode_grpo_trainer`).

A policy is a ``torch.nn.Module`` that acts in a batch of inner envs (no gradient) and later
re-scores the recorded steps (with gradient) for the clipped surrogate and the KL term.
Whatever a policy needs to re-score a step it keeps in an opaque *step record* it returns
from :meth:`EpisodePolicy.act`; the trainer stores these records and hands them back unchanged.

Optional fast path: a policy may also define ``stack_records(records) -> batch``, a batch
object with ``batch.take(index)`` (``index``: int64 tensor of record positions) that its
``log_prob`` accepts in place of a list of records. The trainer then stacks a GRPO batch's
records once per update instead of once per minibatch (:class:`~derl_bench.inner.policies.mlp.
MLPPolicy` does; the log-probabilities are the same numbers either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["EpisodePolicy"]


@runtime_checkable
class EpisodePolicy(Protocol):
    """A stochastic policy over an inner env's actions (implemented by ``torch.nn.Module`` s).

    Implementations: :class:`derl_bench.inner.policies.mlp.MLPPolicy` (classic control) and
    :class:`derl_bench.inner.policies.action_scoring.ActionScoringPolicy` (text envs).
    """

    def act(
        self,
        observations: Sequence[Any],
        infos: Sequence[dict[str, Any]],
        *,
        generator: torch.Generator,
        greedy: bool = False,
    ) -> tuple[list[Any], list[Any]]:
        """Choose one action per env, without gradient.

        Args:
            observations: n_envs observations as the inner envs return them.
            infos: The matching ``info`` dicts (text envs: ``info["valid_actions"]``).
            generator: Source of randomness for sampling (CPU ``torch.Generator``).
            greedy: Take the most likely action instead of sampling (validation and test).

        Returns:
            ``(actions, step_records)``: n_envs actions to pass to ``env.step`` and n_envs
            opaque records for :meth:`log_prob`.
        """
        ...

    def log_prob(self, step_records: Sequence[Any]) -> torch.Tensor:
        """Log-probability of each recorded action under the current parameters.

        Args:
            step_records: Records returned by :meth:`act` (any mix of envs and episodes).

        Returns:
            float32 tensor, shape (n_records,), differentiable w.r.t. the trainable parameters.
        """
        ...
