"""Classic-control inner envs (CartPole, Pendulum) with hidden native reward and step scores.

These are the cheap episode domains of derl_bench (``DERL-CartPole-v0``, ``DERL-Pendulum-v0``):
a meta-step takes seconds on a CPU, and meta-rewards give clearly different validation
success. The wrappers follow the inner-env contract of :mod:`derl_bench.envs.episode`: the
native reward is returned by ``step`` (for logs) but never reaches the policy; learning comes
only from the meta-reward over the episode primitives g1..g4.

**CartPole** (Gymnasium ``CartPole-v1``, 500-step limit):

* success (g1): the episode reaches 500 steps without the pole falling or the cart leaving the
  track (``truncated`` at 500, never ``terminated``).
* step score = mean of two binary checks of the state *after* the action:
  *upright* ``|theta| <= 0.05 rad`` (about 3 degrees) and *centred* ``|x| <= 0.5 m``.
* ``score_horizon = 500``: a failed episode's step scores are padded with 0 up to 500 steps,
  so g2..g4 (thirds of 500 steps) also pay for surviving.

**Pendulum** (Gymnasium ``Pendulum-v1``, 200 steps, no termination):

* success (g1): the pole is upright, ``|theta| <= 0.5 rad`` (theta = 0 up, wrapped to
  [-pi, pi)), at *every* step of the last quarter of the episode (the last 50 of 200 steps).
* step score = mean of two binary checks after the action: *upright* ``|theta| <= 0.5 rad``
  and *raised* ``cos(theta) >= 0`` (the pole is above the horizontal).
* ``score_horizon = 200`` (only matters if a shorter limit is used).

Signal (``derl-bench signal --env DERL-CartPole-v0 --preset cpu --seeds 0,1,2``; measured on
2 shared CPU cores, one meta-step per cell, validation success on 32 validation episodes):

==========================  =====================  ===============  ===================
meta-reward                 per seed               mean ± std       seconds/meta-step
==========================  =====================  ===============  ===================
``g1``                      0.000, 0.000, 0.000    0.000 ± 0.000    3
``g1 + g2``                 0.344, 0.875, 0.438    0.552 ± 0.284    25
``(g1 + g2 + g3 + g4) / 4`` 0.938, 1.000, 0.656    0.865 ± 0.183    31
``-g1``                     0.000, 0.000, 0.000    0.000 ± 0.000    3
==========================  =====================  ===============  ===================

``g1`` alone gives GRPO no signal from a random start (every episode fails, so every group's
rewards are equal); step-score primitives do.

Pendulum (``derl-bench signal --env DERL-Pendulum-v0 --preset cpu --seeds 0,1,2``, one process
on 2 cores; the same numbers came out of two processes of two meta-rewards each with one torch
thread each; 32 validation episodes):

==========================  =====================  ===============  ===================
meta-reward                 per seed               mean ± std       seconds/meta-step
==========================  =====================  ===============  ===================
(untrained policy)          0.000, 0.000, 0.000    0.000 ± 0.000    —
``g1``                      0.000, 0.000, 0.000    0.000 ± 0.000    37
``g1 + g2``                 0.000, 0.000, 0.000    0.000 ± 0.000    72
``(g1 + g2 + g3 + g4) / 4`` 1.000, 1.000, 1.000    1.000 ± 0.000    74
``-g1``                     0.000, 0.000, 0.000    0.000 ± 0.000    38
==========================  =====================  ===============  ===================

With the nine-reward panel (same command since the panel grew; ``--executor process``, two
workers of one torch thread each, partly beside another job; docs/signal/DERL-Pendulum-v0-cpu.md):
``(g1 + g2 + g3 + g4) / 4`` and ``g2 + g3 + g4`` 1.000 on every seed, the unequal mix
``2 * g1 + 0.5 * g2 + 0.25 * g3`` 0.000 / 1.000 / 0.312, ``g4`` 0.083, every other reward
0.000: SNR 2.38, one-way ANOVA p 2.6e-06 over the eight sensible rewards (76-226 s per
meta-step). The untrained policy scores 0, so ``-g1`` cannot fall below it.

Holding the pole needs the last-third step scores (g4): ``g1 + g2`` pays only for raising it early
and never produced an episode upright through the last quarter, so success never appeared to
reward. The Pendulum presets use reward-to-go credit (``credit="reward_to_go"``, discount 0.97)
and 16 minibatches per PPO epoch (``derl_bench/inner/episode_presets.py``): with whole-episode
credit the policy learned to spin the pole (g4 about 0.5) and reached success 0 for every
meta-reward.

Tasks: :class:`~derl_bench.envs.episode.EpisodeTask` with ``task_id`` the Gymnasium id and ``seed``
the reset seed; :func:`classic_splits` draws D_in / V from reset seeds ``[0, 10_000)`` (8:2,
shuffled with seed 0) and test from ``[1_000_000, 1_000_000 + n_test)``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from derl_bench.envs.episode import EpisodeSplits, EpisodeTask

__all__ = ["CLASSIC_IDS", "ClassicControlInnerEnv", "classic_splits"]

CLASSIC_IDS: dict[str, str] = {"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1"}
"""Domain name -> Gymnasium id of the underlying env."""

_LIMITS = {"cartpole": 500, "pendulum": 200}
_UPRIGHT = {"cartpole": 0.05, "pendulum": 0.5}
TRAIN_SEEDS = 10_000
"""Reset seeds [0, TRAIN_SEEDS) form the training pool."""
TEST_SEED_START = 1_000_000
"""Test reset seeds start here (disjoint from the training pool)."""


class ClassicControlInnerEnv(gymnasium.Env):
    """A Gymnasium classic-control env with DERL step scores and success (see module docs).

    Observation and action spaces are those of the wrapped env (CartPole: Box (4,) float32,
    Discrete(2); Pendulum: Box (3,) float32, Box (1,) float32 in [-2, 2]).

    ``info`` after every step: ``step_score`` (float in [0, 1]), ``success`` (bool),
    ``checks`` (dict of the binary checks), ``native_reward`` (float, the hidden reward).

    Args:
        domain: ``"cartpole"`` or ``"pendulum"``.

    Raises:
        ValueError: On an unknown domain.
    """

    metadata = {"render_modes": []}

    def __init__(self, domain: str = "cartpole") -> None:
        if domain not in CLASSIC_IDS:
            raise ValueError(f"Unknown classic domain {domain!r}; known: {sorted(CLASSIC_IDS)}")
        self.domain = domain
        self._env = gymnasium.make(CLASSIC_IDS[domain])
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space
        self.score_horizon = _LIMITS[domain]
        self._limit = _LIMITS[domain]
        self._t = 0
        self._upright_tail: list[bool] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``options={"task": EpisodeTask}`` uses the task's seed."""
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if task is not None:
            seed = int(task.seed)
        obs, _ = self._env.reset(seed=seed)
        self._t = 0
        self._upright_tail = []
        return obs, {"success": False}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action``; return the wrapped env's transition with the DERL ``info`` keys."""
        obs, reward, terminated, truncated, _ = self._env.step(action)
        self._t += 1
        checks = self._checks(obs)
        success = False
        if self.domain == "cartpole":
            success = bool(truncated and not terminated and self._t >= self._limit)
        else:
            quarter = self._limit // 4
            if self._t > self._limit - quarter:
                self._upright_tail.append(checks["upright"])
            success = bool(
                self._t >= self._limit
                and len(self._upright_tail) == quarter
                and all(self._upright_tail)
            )
        info = {
            # Two binary checks: sum / 2 is exactly np.mean of them (0, 0.5 or 1).
            "step_score": sum(checks.values()) / len(checks),
            "success": success,
            "checks": checks,
            "native_reward": float(reward),
        }
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _checks(self, obs: np.ndarray) -> dict[str, bool]:
        if self.domain == "cartpole":
            x, theta = float(obs[0]), float(obs[2])
            return {"upright": abs(theta) <= _UPRIGHT["cartpole"], "centred": abs(x) <= 0.5}
        cos, sin = float(obs[0]), float(obs[1])
        theta = float(np.arctan2(sin, cos))
        return {"upright": abs(theta) <= _UPRIGHT["pendulum"], "raised": cos >= 0.0}

    def close(self) -> None:
        """Close the wrapped env."""
        self._env.close()


def classic_splits(
    domain: str, *, n_train: int = 2000, n_test: int = 100, seed: int = 0
) -> EpisodeSplits:
    """Reset-seed splits of a classic-control domain.

    Args:
        domain: ``"cartpole"`` or ``"pendulum"``.
        n_train: Size of the training pool (seeds drawn from ``[0, TRAIN_SEEDS)``), split
            D_in / V at 8:2.
        n_test: Test tasks, reset seeds ``TEST_SEED_START ..``.
        seed: Shuffle seed of the pool (fixed at 0 for the registered ids).

    Returns:
        The :class:`EpisodeSplits` (``level=""``).

    Raises:
        ValueError: On an unknown domain or sizes out of range.
    """
    if domain not in CLASSIC_IDS:
        raise ValueError(f"Unknown classic domain {domain!r}; known: {sorted(CLASSIC_IDS)}")
    if not 5 <= n_train <= TRAIN_SEEDS:
        raise ValueError(f"n_train must be in [5, {TRAIN_SEEDS}], got {n_train}")
    if n_test < 1:
        raise ValueError(f"n_test must be >= 1, got {n_test}")
    env_id = CLASSIC_IDS[domain]
    pool = np.random.default_rng(seed).permutation(TRAIN_SEEDS)[:n_train]
    cut = int(round(n_train * 0.8))

    def task(s: int) -> EpisodeTask:
        return EpisodeTask(domain=domain, task_id=env_id, seed=int(s), task_type=domain)

    return EpisodeSplits(
        level="",
        d_in=tuple(task(s) for s in pool[:cut]),
        val=tuple(task(s) for s in pool[cut:]),
        test=tuple(task(TEST_SEED_START + i) for i in range(n_test)),
    )
