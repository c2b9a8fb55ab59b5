"""Resume replay: the run's meta-steps taken from its store where stored, else from the env.

A resumed run asks its (rebuilt) agent to propose again, round by round, exactly as before.
:class:`ResumableSteps` answers each proposal: a meta-step the store already holds is replayed
(its stored reward and info, after checking the proposal equals the stored meta-reward), any
other is trained by ``env.step`` and committed to the store before the run goes on. So a resumed
run ends with the same meta-steps as an uninterrupted one and no finished meta-step is trained
twice (:mod:`derl_bench.runner` describes the whole contract). :class:`ObservationView` builds
the agent's observation from the run's history, so it is the same whether or not the run was
resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.store import RunStore, StoredStep

__all__ = ["AgentNotDeterministicError", "ObservationView", "ResumableSteps"]


class AgentNotDeterministicError(RuntimeError):
    """On resume, the agent proposed another meta-reward than the stored run at some index."""

    def __init__(self, index: int, proposed: str, stored: str, store: Path) -> None:
        self.index = index
        self.proposed = proposed
        self.stored = stored
        super().__init__(
            f"agent not deterministic: resuming from {store}, the agent proposed {proposed!r} "
            f"for meta-step {index}, but the interrupted run had proposed {stored!r}. Resuming "
            "needs an agent that proposes the same meta-rewards for the same seed and results. "
            "Start the run afresh with --no-resume (or --out elsewhere)."
        )


class ResumableSteps:
    """The meta-steps of one run, replayed from ``store`` or stepped in ``env`` and committed.

    Args:
        store: The run's open store; its meta-steps at opening are the ones to replay.
        env: The env to step for meta-steps the store does not hold.
    """

    def __init__(self, store: RunStore, env: Any) -> None:
        self.store = store
        self.env = env
        self.stored: list[StoredStep] = list(store.steps)
        """The meta-steps stored when the run (re)started, in order."""
        self.last_observation: Any = None
        """The observation of the last ``env.step`` (None while replaying)."""

    def is_stored(self, index: int) -> bool:
        """Whether meta-step ``index`` (0-based) is replayed rather than trained."""
        return index < len(self.stored)

    def step(
        self, index: int, meta_reward: str, *, before_training: Callable[[], None] | None = None
    ) -> StoredStep:
        """Return meta-step ``index`` under ``meta_reward``: replayed if stored, else trained.

        Args:
            index: The run's 0-based meta-step index (the next one).
            meta_reward: The agent's proposal.
            before_training: Called just before ``env.step`` (not when replaying).

        Returns:
            The stored meta-step; its ``info`` is the JSON round trip of the env's ``info``,
            with ``info["meta_step"] == index`` (the env counts from 0 again after a resume).

        Raises:
            AgentNotDeterministicError: If a stored meta-step has another meta-reward.
        """
        if self.is_stored(index):
            done = self.stored[index]
            if done.meta_reward != meta_reward:
                raise AgentNotDeterministicError(
                    index, meta_reward, done.meta_reward, self.store.path
                )
            return done
        if before_training is not None:
            before_training()
        observation, reward, terminated, truncated, info = self.env.step(meta_reward)
        if "meta_step" in info:  # the env counts from 0 after a resume
            info = {**info, "meta_step": index}
        self.last_observation = observation
        return self.store.add_step(
            meta_reward,
            float(reward),
            info,
            terminated=bool(terminated),
            truncated=bool(truncated),
        )


_HISTORY_KEYS = ("history_meta_rewards", "history_rewards", "history_length")


class ObservationView:
    """The agent's observation, built by the runner from the run's history.

    For MetaRewardEnv observations (a mapping with ``history_meta_rewards``,
    ``history_rewards`` and ``history_length``) the history fields are rebuilt from the runner's
    own list of ``(shown text, reward)``, exactly as ``MetaRewardEnv._observation`` builds them,
    on top of the observation ``reset`` returned. Any other observation is passed through.
    """

    def __init__(self, reset_observation: Any) -> None:
        self._template: Mapping[str, Any] | None = None
        if isinstance(reset_observation, Mapping) and all(
            key in reset_observation for key in _HISTORY_KEYS
        ):
            self._template = reset_observation
        self._latest = reset_observation
        self._history: list[tuple[str, float]] = []

    @property
    def builds_history(self) -> bool:
        """Whether the observation is rebuilt by the runner (MetaRewardEnv format)."""
        return self._template is not None

    def append(self, meta_reward: str, reward: float, info: Mapping[str, Any]) -> None:
        """Add a finished meta-step (replayed or trained) to the history."""
        # The env shows the canonical form of a valid meta-reward and its (sanitised) text
        # otherwise; info["meta_reward"] is that sanitised text.
        if info.get("valid") and info.get("canonical") is not None:
            shown = str(info["canonical"])
        else:
            shown = str(info.get("meta_reward", meta_reward))
        self._history.append((shown, float(reward)))

    def env_stepped(self, observation: Any) -> None:
        """Keep the env's latest observation (what non-MetaRewardEnv observations show)."""
        self._latest = observation

    @property
    def observation(self) -> Any:
        """The observation the agent is shown now."""
        if self._template is None:
            return self._latest
        template_rewards = np.asarray(self._template["history_rewards"])
        rewards = np.zeros_like(template_rewards)
        for i, (_, reward) in enumerate(self._history[: rewards.shape[0]]):
            rewards[i] = reward
        return {
            **self._template,
            "history_meta_rewards": tuple(shown for shown, _ in self._history),
            "history_rewards": rewards,
            "history_length": len(self._history),
        }
