"""FAKE env and agent for the resume tests (unit tests only; nothing here trains anything).

``CountingFakeEnv`` follows the MetaRewardEnv contract (observation format, info keys,
``evaluate_test``) and appends one line per trained meta-reward (and per test) to a counter file
that outlives the process, so a test can check that no meta-step was trained twice across a
kill and a restart. It can sleep per meta-step (for the SIGKILL test) and raise
``KeyboardInterrupt`` when the counter reaches ``$DERL_TEST_INTERRUPT_AT`` lines (environment
variables are not part of a run's configuration, so the restart is the same command).

``HistoryAgent`` proposes meta-rewards that depend on the observation's history and on the
results it was given, and checks that the two agree, so a resume that replays wrongly changes
its proposals.

Run as a script (``python -c "import resume_fakes; resume_fakes.main(...)"``) it registers both
and runs the runner, for the test that kills it.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from derl_bench.baselines import StepResult
from derl_bench.meta_reward import InvalidMetaReward, parse
from derl_bench.primitives import get_primitive_set

ENV_ID = "DerlBenchTestCountingMeta-v0"
AGENT = "test_history"
INTERRUPT_VAR = "DERL_TEST_INTERRUPT_AT"
COUNTER_VAR = "DERL_TEST_COUNTER"


def score(canonical: str) -> float:
    """FAKE validation success: a fixed function of the canonical text, in [0, 1]."""
    return hashlib.sha256(canonical.encode()).digest()[0] / 255.0


def trained(counter: Path) -> list[str]:
    """Lines of a counter file: ``step <meta-reward>`` or ``test <meta-reward>``."""
    if not counter.exists():
        return []
    return counter.read_text(encoding="utf-8").splitlines()


class CountingFakeEnv(gymnasium.Env):
    """FAKE MetaRewardEnv for unit tests only (see the module docstring)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        *,
        preset: str = "smoke",
        budget: int = 4,
        counter: str | None = None,
        sleep: float = 0.0,
        keep_checkpoints: str | None = None,
    ) -> None:
        self.preset = preset
        self.budget = budget
        path = counter or os.environ.get(COUNTER_VAR)
        if path is None:
            raise ValueError(f"pass counter=... or set ${COUNTER_VAR}")
        self.counter = Path(path)
        self.sleep = sleep
        self.keep_checkpoints = keep_checkpoints
        self.primitive_set = get_primitive_set("math")
        self.instruction = "Design a reward (FAKE env)."
        self.action_space = spaces.Text(max_length=512)
        self.observation_space = spaces.Dict({})
        self.warm_starts: list[str | None] = []
        self._seed = 0
        self._t = 0
        self._history: list[tuple[str, float]] = []

    def _observation(self) -> dict[str, Any]:
        rewards = np.zeros(self.budget, dtype=np.float32)
        for i, (_, r) in enumerate(self._history):
            rewards[i] = r
        return {
            "instruction": self.instruction,
            "primitives": self.primitive_set.describe(),
            "history_meta_rewards": tuple(m for m, _ in self._history),
            "history_rewards": rewards,
            "history_length": len(self._history),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._seed = seed or 0
        self._t = 0
        self._history = []
        return self._observation(), {"seed": self._seed, "preset": self.preset}

    def _record(self, line: str) -> None:
        with open(self.counter, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def step(self, action: str):
        stop_at = os.environ.get(INTERRUPT_VAR)
        if stop_at is not None and len(trained(self.counter)) >= int(stop_at):
            raise KeyboardInterrupt
        info: dict[str, Any] = {
            "meta_step": self._t,
            "meta_reward": action,
            "training_curve": [],
            "n_nonfinite_rewards": 0,
            "cache_hit": False,
            "checkpoint_id": None,
            "warm_start": None,
        }
        try:
            parsed = parse(action, self.primitive_set.names)
        except InvalidMetaReward as exc:
            reward = -1.0
            info.update(
                canonical=None,
                valid=False,
                invalid_reason=exc.reason,
                validation_success=None,
                primitive_means={},
                cost={"wall_seconds": 0.0, "inner_steps": 0, "rollouts": 0, "tokens": 0},
            )
        else:
            time.sleep(self.sleep)
            reward = score(f"{parsed.canonical}|{self._seed}")
            info.update(
                canonical=parsed.canonical,
                valid=True,
                invalid_reason=None,
                validation_success=reward,
                primitive_means={"g1": 0.5, "g2": float("nan"), "g3": 0.25, "g4": 1.0},
                cost={"wall_seconds": 0.25, "inner_steps": 2, "rollouts": 8, "tokens": 64},
            )
            self._record(f"step {action}")
        self._t += 1
        self._history.append((info["canonical"] or action, reward))
        return self._observation(), reward, False, self._t >= self.budget, info

    def set_warm_start(self, checkpoint: str | None) -> None:
        self.warm_starts.append(checkpoint)

    def evaluate_test(self, meta_reward: str) -> dict[str, Any]:
        self._record(f"test {meta_reward}")
        canonical = parse(meta_reward, self.primitive_set.names).canonical
        return {
            "test_success": score(f"test|{canonical}"),
            "n_test": 10,
            "cost": {"wall_seconds": 1.0, "inner_steps": 2, "rollouts": 10, "tokens": 80},
            "primitive_means": {},
        }


class HistoryAgent:
    """FAKE agent for unit tests only: proposals depend on the history it observed."""

    name = AGENT
    observations: list[tuple[tuple[str, ...], list[float]]] = []
    """Every observation's history (meta-rewards, rewards) this process saw, in order."""

    def __init__(self, *, primitive_names: tuple[str, ...], seed: int) -> None:
        self.primitive_names = primitive_names
        self.seed = seed
        self.results: list[tuple[str, float]] = []
        self.config = {"primitive_names": list(primitive_names), "seed": seed}

    def propose(self, observation: Any, n: int) -> list[str]:
        history = tuple(observation["history_meta_rewards"])
        rewards = [float(r) for r in observation["history_rewards"][: len(history)]]
        type(self).observations.append((history, rewards))
        if len(history) != len(self.results):
            raise AssertionError(
                f"observation has {len(history)} meta-steps, agent saw {len(self.results)}"
            )
        if not np.allclose(rewards, [r for _, r in self.results]):
            raise AssertionError("observation rewards differ from the updates")
        total = sum(r for _, r in self.results)
        base = int(total * 1000) % 97 + self.seed
        return [f"g1 + {len(history) + i + 1} * g2 + {base} * g3" for i in range(n)]

    def update(self, results: list[StepResult]) -> None:
        for result in results:
            if result.info["meta_step"] != len(self.results):
                raise AssertionError(
                    f"info['meta_step'] is {result.info['meta_step']}, the run's index is "
                    f"{len(self.results)}"
                )
            self.results.append((result.meta_reward, result.reward))


AGENT_ENTRY = f"{__name__}:HistoryAgent"
"""Registry entry of the FAKE agent; tests add it with ``monkeypatch.setitem`` so it never
leaks into other tests' agent lists."""


def register_env() -> None:
    """Register the FAKE env id (idempotent)."""
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID, entry_point=f"{__name__}:CountingFakeEnv", disable_env_checker=True
        )


def main(out_dir: str, counter: str, budget: int, proposals_per_step: int, sleep: float) -> None:
    """Run the FAKE env with the FAKE agent once (the killed subprocess of a test)."""
    import derl_bench.baselines.base as base
    from derl_bench.runner import run

    register_env()
    base._BUILTINS[AGENT] = AGENT_ENTRY  # this process only
    run(
        ENV_ID,
        AGENT,
        budget=budget,
        seed=0,
        preset="smoke",
        proposals_per_step=proposals_per_step,
        out_dir=out_dir,
        env_kwargs={"counter": counter, "sleep": sleep},
        progress=False,
    )
