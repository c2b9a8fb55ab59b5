"""Configuration of the compact episode GRPO (:mod:`derl_bench.inner.episode_grpo_trainer`).

Field names follow TRL's ``GRPOConfig`` where TRL has one (``max_steps``, ``num_iterations``,
``epsilon``, ``beta``, ``learning_rate``), and the LM GRPO's config where it has one
(``tasks_per_step``, ``group_size``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from derl_bench.envs.alfworld import STEP_SCORES

__all__ = ["EpisodeGRPOConfig"]


@dataclass(frozen=True, kw_only=True)
class EpisodeGRPOConfig:
    """One inner GRPO training of an episode policy (classic control, ScienceWorld, ALFWorld).

    GRPO as in Shao et al. 2024 (DeepSeekMath) applied to whole episodes: a group of
    ``group_size`` episodes starts from the same initial state; each episode's reward is the
    meta-reward of its primitives; advantage = (r - mean) / (std + ``advantage_eps``) within
    the group; PPO-clipped surrogate over the episode's actions; k3 KL to the initial policy.
    Every field is part of a preset's identity.
    """

    max_steps: int
    """GRPO steps per meta-step; each collects one batch of episodes and runs
    ``num_iterations * minibatches`` optimizer steps on it (Cost.inner_steps counts optimizer
    steps). With one iteration and one minibatch this is TRL's ``max_steps``."""
    tasks_per_step: int
    """Distinct initial states (tasks) per iteration; a batch holds
    ``tasks_per_step * group_size`` episodes."""
    group_size: int
    """Episodes per initial state (the GRPO group)."""
    max_episode_steps: int
    """Step limit per episode (actions); episodes are truncated there."""
    learning_rate: float
    """Adam learning rate."""
    num_iterations: int = 1
    """PPO epochs per collected batch (TRL ``num_iterations``, GRPO's mu; ratio = 1 on the
    first)."""
    minibatches: int = 1
    """Adam steps per PPO epoch, each on a random 1/``minibatches`` of the batch's actions
    (1: one full-batch step, no shuffling)."""
    epsilon: float = 0.2
    """PPO clip range: ratios outside [1 - eps, 1 + eps] are clipped."""
    beta: float = 0.0
    """KL coefficient to the initial policy (k3 estimator); 0 turns the term off."""
    advantage_eps: float = 1e-4
    """Added to the group's reward std before dividing (TRL's value)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip per optimizer step."""
    credit: str = "episode"
    """How an episode's reward is credited to its actions. ``"episode"``: every action gets the
    episode's group-normalised reward (GRPO with outcome supervision, the paper's setting).
    ``"reward_to_go"``: the action at step t gets ``R - P(t)`` minus its group mean at t, over
    the group's reward std, where ``P(t)`` is the meta-reward of the trajectory *so far* (steps
    before t, the rest padded with step score 0, success false). ``P(t)`` depends only on what
    happened before the action, so this is the same objective with less variance (a
    history-dependent baseline, as in REINFORCE's reward-to-go); at t = 0 it equals
    ``"episode"``. See :func:`derl_bench.inner.advantages.reward_to_go_advantages`."""
    credit_gamma: float = 1.0
    """``reward_to_go`` only: discount of the meta-reward's increments ``P(t+1) - P(t)`` per
    step (1: the undiscounted, unbiased reward-to-go; < 1 trades bias for variance, as in
    discounted returns)."""
    credit_stride: int = 1
    """``reward_to_go`` only: ``P`` is evaluated every ``credit_stride`` steps (step t uses
    ``P`` at the last multiple of the stride <= t, still history-only); larger is cheaper."""
    n_val: int | None = None
    """Validation tasks scored per meta-step; ``None``: all of V."""
    validation_samples: int = 0
    """How validation and test success are measured. 0: greedy, each task played once with the
    policy's most likely action (pass@1 with greedy decoding, paper Eq. 6). k >= 1: each task
    played k times sampling actions from the policy (as in training), success = the mean over
    the k * n episodes, an estimate of the stochastic policy's expected success. The sampling
    stream is fixed (:data:`~derl_bench.inner.episode_grpo_trainer.VALIDATION_SAMPLING_SEED`),
    the same for every meta-reward and seed: common random numbers, so two policies are
    compared on the same draws as far as their episodes coincide."""
    restarts: int = 1
    """Independent inner trainings per meta-step, from the same initial policy with inner seeds
    :func:`~derl_bench.inner.base.restart_seeds` (``seed * restarts + k``). The meta-step's
    validation success (and ``evaluate_test``'s test success) is their mean: the expected
    outcome of training under the meta-reward, with the training noise averaged down (its
    variance / ``restarts``) at ``restarts`` times the cost. 1: one training (paper §3.1)."""
    n_test: int | None = None
    """Test tasks scored by ``evaluate_test``; ``None``: all."""
    n_envs: int = 1
    """Inner envs stepped in lockstep (one batched policy call per tick). Text simulators with
    a JVM each use 1-2; classic control uses one per episode of a batch."""
    rollout_threads: int = 0
    """How episodes are played. 0: ``n_envs`` engines in lockstep, one batched policy call per
    tick, every action sampled from the training's one random stream (every preset but the
    ``cpu`` of ``DERL-ScienceWorld-*-v5`` and ``-L0-v6``, which play on 2 threads). k >= 1: k
    engines (``n_envs`` is then ignored) and k threads, each owning one, play whole episodes;
    each episode samples from its own stream, seeded from (seed, GRPO step, episode index)
    (:func:`~derl_bench.inner.episode_grpo_trainer.episode_generators`), so the numbers do not
    depend on k nor on which thread played which episode. With k = 2 one thread's engine call
    (a JVM for ScienceWorld) overlaps the other's policy step."""
    policy: str = "mlp"
    """Policy family: ``"mlp"`` (classic control), ``"minilm"`` (frozen MiniLM + trainable
    scoring head), ``"lm"`` (causal-LM action scoring, the paper preset's code path)."""
    policy_kwargs: tuple[tuple[str, Any], ...] = ()
    """Extra policy settings as (name, value) pairs, e.g. ``(("hidden", 64),)``."""
    recent_actions: int = 0
    """Text envs: the last this many actions shown at the start of every observation, after
    the task line (0: the v0 observation layout). Classic control ignores it."""
    step_score: str = "mean"
    """ALFWorld: how a step's binary checks make its step score, ``"mean"`` (every registered
    version) or ``"all"`` (1 when every check holds, else 0: the paper's 0/1 step scores; an
    experiment setting, ``--inner step_score='"all"'``). Other domains reject a value other
    than ``"mean"``."""
    cold_start_games: int = 0
    """Text envs, ``minilm`` policy: behaviour-clone the initial policy on the expert
    trajectories of this many D_in tasks (the first ones in split order) before GRPO
    (:mod:`derl_bench.inner.cold_start`); 0: no cold start (a random head)."""
    cold_start_epochs: int = 0
    """Passes of the behaviour cloning over the expert steps (ignored without cold start)."""

    def __post_init__(self) -> None:
        positive = (
            "max_steps",
            "tasks_per_step",
            "group_size",
            "max_episode_steps",
            "num_iterations",
            "n_envs",
            "credit_stride",
            "minibatches",
            "restarts",
        )
        non_negative = (
            "recent_actions",
            "cold_start_games",
            "cold_start_epochs",
            "validation_samples",
            "rollout_threads",
        )
        for name in non_negative:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.step_score not in STEP_SCORES:
            choices = " or ".join(repr(name) for name in STEP_SCORES)
            raise ValueError(f"step_score must be {choices}, got {self.step_score!r}")
        if (self.cold_start_games > 0) != (self.cold_start_epochs > 0):
            raise ValueError(
                f"cold_start_games={self.cold_start_games} and cold_start_epochs="
                f"{self.cold_start_epochs} must both be 0 (no cold start) or both >= 1"
            )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.group_size < 2:
            raise ValueError(
                f"group_size must be >= 2 (the advantage is normalised within a group), "
                f"got {self.group_size}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon!r}")
        if self.credit not in ("episode", "reward_to_go"):
            raise ValueError(f"credit must be 'episode' or 'reward_to_go', got {self.credit!r}")
        if not 0 < self.credit_gamma <= 1:
            raise ValueError(f"credit_gamma must be in (0, 1], got {self.credit_gamma!r}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")
        for name in ("n_val", "n_test"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or an int >= 1, got {value!r}")

    def with_overrides(self, **overrides: Any) -> EpisodeGRPOConfig:
        """Return a copy with some fields replaced.

        Raises:
            ValueError: If a name is not a field (the message lists the fields) or a value is
                invalid.
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"Unknown inner setting(s) {unknown}; known: {', '.join(sorted(known))}."
            )
        if "policy_kwargs" in overrides and isinstance(overrides["policy_kwargs"], dict):
            overrides["policy_kwargs"] = tuple(sorted(overrides["policy_kwargs"].items()))
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-able dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["policy_kwargs"] = dict(self.policy_kwargs)
        return out
