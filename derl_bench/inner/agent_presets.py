"""Presets of the compact GRPO for the agent domains (part of each env id's identity).

- ``smoke``: seconds to a few minutes per meta-step; for CI and quick checks.
- ``cpu``: the research setting on a 2-core CPU (classic control: about a minute or less
  per meta-step, Pendulum 35-75 s; text agents: frozen MiniLM + trainable scoring head).
  Measured on 2 CPU cores,
  one meta-step (``g1 + g2 + g3 + g4``, level L2): ALFWorld 159 s, ScienceWorld 115 s;
  CartPole 3-36 s (short when the policy does not learn); ``smoke``: ALFWorld 18 s,
  ScienceWorld 15 s, CartPole 7 s (CI).
- ``paper``: classic control — a longer budget of ours (the paper has no classic control);
  ScienceWorld/ALFWorld — the paper's agent setting from RLVMR (PAPER_FACTS.md §1): an LLM
  agent (Qwen2.5-1.5B-Instruct) scoring admissible actions, 16 envs x 8 rollouts, at most 30
  steps, KL 0.01, lr 1e-6. Needs GPUs; its code path is tested with a tiny LM.
"""

from __future__ import annotations

import difflib

from derl_bench.inner.grpo_config import AgentGRPOConfig

__all__ = ["AGENT_PRESETS", "agent_preset"]

_CLASSIC = dict(ppo_epochs=4, learning_rate=3e-3, policy="mlp")
_PENDULUM = dict(
    policy="mlp",
    learning_rate=1e-3,
    ppo_epochs=10,
    minibatches=16,
    credit="reward_to_go",
    credit_gamma=0.97,
)
"""Pendulum needs per-step credit: with whole-episode credit (``_CLASSIC``) the policy learned to
spin the pole (g4 ~0.5) but never held it upright, under every learning rate, epoch count and
budget we tried (40-150 iterations). Reward-to-go credit with a 0.97 discount and 16 minibatches
per PPO epoch reached validation success 1.0 within 40 iterations under
``(g1 + g2 + g3 + g4) / 4``."""
_TEXT_CPU = dict(policy="minilm", learning_rate=3e-2, ppo_epochs=4, beta=0.0)
"""MiniLM head: lr 3e-2 with 4 PPO epochs raised the greedy step score on a training task within
8 iterations (tests/test_text_domains.py); 1e-3 did not move it."""
_PAPER_AGENT = dict(
    policy="lm",
    policy_kwargs=(("model", "Qwen/Qwen2.5-1.5B-Instruct"),),
    inner_steps=100,
    tasks_per_step=16,
    group_size=8,
    max_episode_steps=30,
    learning_rate=1e-6,
    beta=0.01,
    ppo_epochs=1,
    n_envs=16,
)

AGENT_PRESETS: dict[str, dict[str, AgentGRPOConfig]] = {
    "cartpole": {
        "smoke": AgentGRPOConfig(
            inner_steps=10, tasks_per_step=4, group_size=8, max_episode_steps=500, n_val=8,
            n_test=32, n_envs=32, **{**_CLASSIC, "learning_rate": 1e-2},  # type: ignore[arg-type]
        ),
        "cpu": AgentGRPOConfig(
            inner_steps=20, tasks_per_step=8, group_size=8, max_episode_steps=500, n_val=32,
            n_test=100, n_envs=64, **_CLASSIC,  # type: ignore[arg-type]
        ),
        "paper": AgentGRPOConfig(
            inner_steps=50, tasks_per_step=8, group_size=8, max_episode_steps=500, n_val=64,
            n_test=100, n_envs=64, **_CLASSIC,  # type: ignore[arg-type]
        ),
    },
    "pendulum": {
        "smoke": AgentGRPOConfig(
            inner_steps=6, tasks_per_step=4, group_size=8, max_episode_steps=200, n_val=8,
            n_test=32, n_envs=32, **_PENDULUM,  # type: ignore[arg-type]
        ),
        "cpu": AgentGRPOConfig(
            inner_steps=50, tasks_per_step=8, group_size=8, max_episode_steps=200, n_val=32,
            n_test=100, n_envs=64, **_PENDULUM,  # type: ignore[arg-type]
        ),
        "paper": AgentGRPOConfig(
            inner_steps=150, tasks_per_step=8, group_size=8, max_episode_steps=200, n_val=64,
            n_test=100, n_envs=64, **_PENDULUM,  # type: ignore[arg-type]
        ),
    },
    "scienceworld": {
        "smoke": AgentGRPOConfig(
            inner_steps=2, tasks_per_step=2, group_size=2, max_episode_steps=10, n_val=2,
            n_test=4, n_envs=1, **_TEXT_CPU,  # type: ignore[arg-type]
        ),
        "cpu": AgentGRPOConfig(
            inner_steps=6, tasks_per_step=2, group_size=4, max_episode_steps=20, n_val=8,
            n_test=16, n_envs=1, **_TEXT_CPU,  # type: ignore[arg-type]
        ),
        "paper": AgentGRPOConfig(n_val=None, n_test=None, **_PAPER_AGENT),  # type: ignore[arg-type]
    },
    "alfworld": {
        "smoke": AgentGRPOConfig(
            inner_steps=2, tasks_per_step=2, group_size=2, max_episode_steps=10, n_val=2,
            n_test=4, n_envs=1, **_TEXT_CPU,  # type: ignore[arg-type]
        ),
        "cpu": AgentGRPOConfig(
            inner_steps=6, tasks_per_step=2, group_size=4, max_episode_steps=20, n_val=8,
            n_test=16, n_envs=1, **_TEXT_CPU,  # type: ignore[arg-type]
        ),
        "paper": AgentGRPOConfig(n_val=None, n_test=None, **_PAPER_AGENT),  # type: ignore[arg-type]
    },
}
"""domain -> preset name -> config."""


def agent_preset(domain: str, name: str) -> AgentGRPOConfig:
    """Return the compact-GRPO preset ``name`` of agent domain ``domain``.

    Raises:
        ValueError: On an unknown domain or preset (with a did-you-mean suggestion).
    """
    if domain not in AGENT_PRESETS:
        raise ValueError(f"No agent presets for domain {domain!r}; known: {sorted(AGENT_PRESETS)}")
    presets = AGENT_PRESETS[domain]
    if name not in presets:
        close = difflib.get_close_matches(name, presets, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown preset {name!r}.{hint} Known: {', '.join(presets)}.")
    return presets[name]
