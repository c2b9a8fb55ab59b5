r"""Our inner tasks as ``skyrl_gym`` environments whose reward is a given meta-reward.

SkyRL users train LLM policies on ``skyrl_gym`` text environments (``BaseTextEnv``: ``init``
returns the prompt, ``step(action_text)`` returns observations, reward and ``done``). These
adapters let them train on our tasks under any meta-reward over our primitives:

- ``derl_math`` (GSM8K, MATH, Arith; single turn): the completion is scored by the math
  primitives (g1 exact outcome, g2 ``\boxed{}``, g3 step markers, g4 ground truth anywhere;
  ``derl_bench.primitives.math``) and the meta-reward of ``extras["meta_reward"]``.
- ``derl_alfworld`` / ``derl_scienceworld`` (multi-turn): each action is sent to the real engine
  (TextWorld on ALFWorld games; the ScienceWorld simulator); the episode's step scores and
  success form a :class:`~derl_bench.envs.episode.Trajectory`, and at the end the agent
  primitives (g1 success, g2-g4 mean step score per third) are combined by the meta-reward.
  Intermediate steps have reward 0 (outcome-supervised, as the paper's GRPO).

``extras`` (SkyRL's per-example dict) of each env:

- every env: ``meta_reward`` (text; invalid text raises ``InvalidMetaReward`` at ``make``);
- ``derl_math``: ``reward_spec.ground_truth`` (SkyRL's convention), ``source`` (``"gsm8k"``,
  ``"math"`` or ``"arith"``: how answers are compared), optional ``question``;
- ``derl_alfworld``: ``task`` (a game folder relative to the ALFWorld data root, as in our
  splits), optional ``data_dir``, ``max_turns`` (default 20);
- ``derl_scienceworld``: ``task`` (a ScienceWorld task name), ``variation`` (default 0),
  ``max_turns`` (default 20).

Register and make (``skyrl_gym`` must be installed: the ``skyrl`` extra)::

    import skyrl_gym
    from derl_bench.meta_env.skyrl_envs import register_skyrl_envs

    register_skyrl_envs()
    env = skyrl_gym.make("derl_math", extras={"meta_reward": "g1 + 0.5 * g2",
                                              "reward_spec": {"ground_truth": "72"},
                                              "source": "gsm8k"})
    prompt, _ = env.init([{"role": "user", "content": "..."}])
    out = env.step("... so the answer is \\boxed{72}")   # reward = g1 + 0.5 * g2 = 1.5 (+ ε terms)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from derl_bench.envs.episode import EpisodeTask, Trajectory
from derl_bench.envs.records import MathRecord
from derl_bench.meta_reward import MetaReward, parse
from derl_bench.meta_reward.compiler import safe_rewards
from derl_bench.primitives import get_primitive_set

try:
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError(
        "derl_bench.meta_env.skyrl_envs needs skyrl-gym: pip install 'derl-bench[skyrl]'."
    ) from exc

__all__ = [
    "SKYRL_ENV_IDS",
    "MetaRewardEpisodeEnv",
    "MetaRewardMathEnv",
    "register_skyrl_envs",
]

SKYRL_ENV_IDS = {
    "derl_math": "derl_bench.meta_env.skyrl_envs:MetaRewardMathEnv",
    "derl_alfworld": "derl_bench.meta_env.skyrl_envs:ALFWorldSkyRLEnv",
    "derl_scienceworld": "derl_bench.meta_env.skyrl_envs:ScienceWorldSkyRLEnv",
}
"""skyrl_gym id -> entry point of each adapter."""


def register_skyrl_envs() -> None:
    """Register the adapters with ``skyrl_gym`` (idempotent)."""
    import skyrl_gym

    for env_id, entry_point in SKYRL_ENV_IDS.items():
        if env_id not in skyrl_gym.registry:
            skyrl_gym.register(id=env_id, entry_point=entry_point)


def _meta_reward(extras: dict[str, Any], primitive_set: str) -> MetaReward:
    if "meta_reward" not in extras:
        raise ValueError(
            "extras['meta_reward'] is required: the meta-reward text, e.g. 'g1 + 0.5 * g2'."
        )
    return parse(extras["meta_reward"], primitive_names=get_primitive_set(primitive_set).names)


def _score(meta_reward: MetaReward, values: list[float]) -> float:
    return float(safe_rewards(meta_reward, np.asarray([values], dtype=np.float64)).rewards[0])


class MetaRewardMathEnv(BaseTextEnv):
    """Single-turn math under a meta-reward (see the module docstring for ``extras``).

    Raises:
        ValueError: If ``meta_reward``, ``reward_spec.ground_truth`` or a valid ``source`` is
            missing.
        derl_bench.meta_reward.InvalidMetaReward: If the meta-reward is invalid.
    """

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        extras = dict(extras or {})
        self.meta_reward = _meta_reward(extras, "math")
        truth = (extras.get("reward_spec") or {}).get("ground_truth")
        if truth is None:
            raise ValueError("extras['reward_spec']['ground_truth'] is required (the answer).")
        source = extras.get("source", "gsm8k")
        if source not in ("gsm8k", "math", "arith"):
            raise ValueError(f"extras['source']={source!r} must be 'gsm8k', 'math' or 'arith'.")
        self.record = MathRecord(
            uid=str(extras.get("uid", "skyrl/0")),
            source=source,
            question=str(extras.get("question", "")),
            answer=str(truth),
        )
        self.primitive_set = get_primitive_set("math")
        self.primitive_values: dict[str, float] = {}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """Score the completion ``action``: reward = the meta-reward of its primitive values.

        Returns:
            ``done`` True, no observations, metadata ``primitive_values`` (g1..g4).
        """
        values = [float(p(action, self.record)) for p in self.primitive_set.primitives]
        self.primitive_values = dict(zip(self.primitive_set.names, values, strict=True))
        return BaseTextEnvStepOutput(
            observations=[],
            reward=_score(self.meta_reward, values),
            done=True,
            metadata={"primitive_values": self.primitive_values},
        )


class MetaRewardEpisodeEnv(BaseTextEnv):
    """Multi-turn text-agent episode on a real engine under a meta-reward (base class).

    Subclasses set :attr:`domain` and build the engine in :meth:`_make_engine`.
    """

    domain = ""

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.extras = dict(extras or {})
        self.meta_reward = _meta_reward(self.extras, "episode")
        if "task" not in self.extras:
            raise ValueError(f"extras['task'] is required for {self.domain} (see the module).")
        self.max_turns = int(self.extras.get("max_turns", 20))
        if self.max_turns < 1:
            raise ValueError(f"extras['max_turns']={self.max_turns} must be >= 1")
        self.primitive_set = get_primitive_set("episode")
        self._engine: Any = None
        self._task: EpisodeTask | None = None
        self._scores: list[float] = []
        self._actions: list[str] = []
        self._success = False

    def _make_engine(self) -> Any:
        raise NotImplementedError

    def _reset_options(self) -> dict[str, Any]:
        return {"task": self.extras["task"]}

    def _observation(self, text: str, info: dict[str, Any]) -> list[dict[str, str]]:
        actions = info.get("valid_actions") or []
        listing = "\n".join(f"- {a}" for a in actions)
        content = f"{text}\n\nAdmissible actions:\n{listing}" if listing else text
        return [{"role": "user", "content": content}]

    def init(self, prompt: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Start the episode: the prompt followed by the engine's first observation."""
        if self._engine is None:
            self._engine = self._make_engine()
        text, info = self._engine.reset(options=self._reset_options())
        self._task = info.get("task") if isinstance(info.get("task"), EpisodeTask) else None
        self.turns = 0
        self._scores, self._actions, self._success = [], [], False
        return list(prompt) + self._observation(text, info), {"task": str(self.extras["task"])}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """Send ``action`` (a command) to the engine; at the end, reward = the meta-reward.

        Returns:
            The engine's next observation (with the admissible actions), reward 0 before the
            end and the meta-reward of the finished trajectory at the end; metadata
            ``step_score``, and at the end ``primitive_values`` and ``success``.
        """
        command = action.strip().splitlines()[0].strip() if action.strip() else ""
        text, _, terminated, truncated, info = self._engine.step(command)
        self.turns += 1
        self._actions.append(command)
        self._scores.append(float(info.get("step_score", 0.0)))
        self._success = bool(info.get("success", False))
        done = bool(terminated or truncated or self.turns >= self.max_turns)
        metadata: dict[str, Any] = {"step_score": self._scores[-1]}
        reward = 0.0
        if done:
            task = self._task or EpisodeTask(domain=self.domain, task_id=str(self.extras["task"]))
            trajectory = Trajectory(
                task=task,
                step_scores=np.asarray(self._scores),
                success=self._success,
                n_steps=len(self._scores),
                actions=tuple(self._actions),
            )
            values = [float(p(trajectory, None)) for p in self.primitive_set.primitives]
            reward = _score(self.meta_reward, values)
            metadata["primitive_values"] = dict(zip(self.primitive_set.names, values, strict=True))
            metadata["success"] = self._success
        observations = [] if done else self._observation(text, info)
        return BaseTextEnvStepOutput(
            observations=observations, reward=reward, done=done, metadata=metadata
        )

    def close(self) -> None:
        """Close the engine (ScienceWorld: its JVM)."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class ALFWorldSkyRLEnv(MetaRewardEpisodeEnv):
    """ALFWorld games on the real TextWorld engine under a meta-reward."""

    domain = "alfworld"

    def _make_engine(self) -> Any:
        from derl_bench.envs.alfworld import ALFWorldInnerEnv

        return ALFWorldInnerEnv(data_dir=self.extras.get("data_dir"), max_steps=self.max_turns)


class ScienceWorldSkyRLEnv(MetaRewardEpisodeEnv):
    """ScienceWorld tasks on the real simulator (one JVM per env) under a meta-reward."""

    domain = "scienceworld"

    def _make_engine(self) -> Any:
        from derl_bench.envs.scienceworld import ScienceWorldInnerEnv

        return ScienceWorldInnerEnv(
            task=str(self.extras["task"]),
            variation=int(self.extras.get("variation", 0)),
            max_steps=self.max_turns,
        )

    def _reset_options(self) -> dict[str, Any]:
        return {}
