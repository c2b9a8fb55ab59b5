"""The flat list of Gymnasium registrations (string entry points, JSON-able kwargs)."""

from __future__ import annotations

import gymnasium

ENTRY_POINT = "derl_bench.meta_env.meta_reward_env:MetaRewardEnv"

ENV_SPECS: tuple[tuple[str, dict[str, object]], ...] = (
    ("DERL-GSM8K-v0", {"domain": "gsm8k"}),
    ("DERL-MATH-v0", {"domain": "math"}),
    ("DERL-Arith-v0", {"domain": "arith"}),
    # Arith v1: a tiny LM warmed up with direct answers mixed in (inner/lm_presets.py).
    ("DERL-Arith-v1", {"domain": "arith", "version": 1}),
    # Arith v2: cpu lr 3e-4 and three restarts per meta-step (inner/lm_presets.py).
    ("DERL-Arith-v2", {"domain": "arith", "version": 2}),
    ("DERL-CartPole-v0", {"domain": "cartpole"}),
    # CartPole v1: cpu trains 40 GRPO iterations (inner/episode_presets.py).
    ("DERL-CartPole-v1", {"domain": "cartpole", "version": 1}),
    ("DERL-Pendulum-v0", {"domain": "pendulum"}),
    ("DERL-ScienceWorld-L0-v0", {"domain": "scienceworld", "level": "L0"}),
    ("DERL-ScienceWorld-L1-v0", {"domain": "scienceworld", "level": "L1"}),
    ("DERL-ScienceWorld-L2-v0", {"domain": "scienceworld", "level": "L2"}),
    ("DERL-ALFWorld-L0-v0", {"domain": "alfworld", "level": "L0"}),
    ("DERL-ALFWorld-L1-v0", {"domain": "alfworld", "level": "L1"}),
    ("DERL-ALFWorld-L2-v0", {"domain": "alfworld", "level": "L2"}),
    # v1: cold-started text agents (derl_bench/inner/cold_start.py; episode_presets.py).
    ("DERL-ScienceWorld-L0-v1", {"domain": "scienceworld", "level": "L0", "version": 1}),
    ("DERL-ScienceWorld-L1-v1", {"domain": "scienceworld", "level": "L1", "version": 1}),
    ("DERL-ScienceWorld-L2-v1", {"domain": "scienceworld", "level": "L2", "version": 1}),
    ("DERL-ALFWorld-L0-v1", {"domain": "alfworld", "level": "L0", "version": 1}),
    ("DERL-ALFWorld-L1-v1", {"domain": "alfworld", "level": "L1", "version": 1}),
    ("DERL-ALFWorld-L2-v1", {"domain": "alfworld", "level": "L2", "version": 1}),
    # ScienceWorld v2: candidate rule 2 and a teleporting expert (envs/scienceworld.py card).
    ("DERL-ScienceWorld-L0-v2", {"domain": "scienceworld", "level": "L0", "version": 2}),
    ("DERL-ScienceWorld-L1-v2", {"domain": "scienceworld", "level": "L1", "version": 2}),
    ("DERL-ScienceWorld-L2-v2", {"domain": "scienceworld", "level": "L2", "version": 2}),
    # ScienceWorld v3: v2 with a steadier cpu inner GRPO (inner/episode_presets.py).
    ("DERL-ScienceWorld-L0-v3", {"domain": "scienceworld", "level": "L0", "version": 3}),
    ("DERL-ScienceWorld-L1-v3", {"domain": "scienceworld", "level": "L1", "version": 3}),
    ("DERL-ScienceWorld-L2-v3", {"domain": "scienceworld", "level": "L2", "version": 3}),
    # ScienceWorld v4: v3 with a weaker cpu cold start and 2 PPO epochs (inner/episode_presets.py).
    ("DERL-ScienceWorld-L0-v4", {"domain": "scienceworld", "level": "L0", "version": 4}),
    ("DERL-ScienceWorld-L1-v4", {"domain": "scienceworld", "level": "L1", "version": 4}),
    ("DERL-ScienceWorld-L2-v4", {"domain": "scienceworld", "level": "L2", "version": 4}),
    # ScienceWorld v5: v4 with 2 rollout threads and 2 restarts at cpu (inner/episode_presets.py).
    ("DERL-ScienceWorld-L0-v5", {"domain": "scienceworld", "level": "L0", "version": 5}),
    ("DERL-ScienceWorld-L1-v5", {"domain": "scienceworld", "level": "L1", "version": 5}),
    ("DERL-ScienceWorld-L2-v5", {"domain": "scienceworld", "level": "L2", "version": 5}),
    # ScienceWorld v6, L0 and L1 (they share D_in and V): v5 with 3 restarts at cpu (L2 stays
    # at v5).
    ("DERL-ScienceWorld-L0-v6", {"domain": "scienceworld", "level": "L0", "version": 6}),
    ("DERL-ScienceWorld-L1-v6", {"domain": "scienceworld", "level": "L1", "version": 6}),
)
"""(id, kwargs) of every env this package registers."""


def register_envs() -> None:
    """Register every derl_bench env id (idempotent)."""
    for env_id, kwargs in ENV_SPECS:
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(id=env_id, entry_point=ENTRY_POINT, kwargs=dict(kwargs))
