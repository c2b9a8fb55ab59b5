"""Presets of the compact episode GRPO: classic control, text agents (part of each env id).

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

Each domain's table is a base config (its ``smoke`` preset) and the fields each preset changes;
:func:`episode_preset` looks them up (as :func:`derl_bench.inner.lm_presets.lm_preset` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from derl_bench._names import unknown_name_error
from derl_bench.inner.base import preset_config, version_changes
from derl_bench.inner.episode_grpo_config import EpisodeGRPOConfig

__all__ = [
    "CARTPOLE_PRESET_VERSIONS",
    "EPISODE_PRESETS",
    "LATEST_TEXT_VERSION",
    "SCIENCEWORLD_PRESET_VERSIONS",
    "TEXT_PRESET_VERSIONS",
    "episode_preset",
]

_CARTPOLE_SMOKE = EpisodeGRPOConfig(
    max_steps=10,
    tasks_per_step=4,
    group_size=8,
    max_episode_steps=500,
    n_val=8,
    n_test=32,
    n_envs=32,
    num_iterations=4,
    learning_rate=1e-2,
    policy="mlp",
)
"""CartPole base config: the ``smoke`` preset (an MLP policy, 4 PPO epochs per batch)."""

_CARTPOLE_CHANGES: dict[str, dict[str, Any]] = {
    "smoke": {},
    "cpu": dict(
        max_steps=20, tasks_per_step=8, n_val=32, n_test=100, n_envs=64, learning_rate=3e-3
    ),
    "paper": dict(
        max_steps=50, tasks_per_step=8, n_val=64, n_test=100, n_envs=64, learning_rate=3e-3
    ),
}

_CARTPOLE_CHANGES_V1: dict[str, dict[str, Any]] = {
    **_CARTPOLE_CHANGES,
    "cpu": dict(_CARTPOLE_CHANGES["cpu"], max_steps=40),
}
"""CartPole, env version 1 (``DERL-CartPole-v1``): ``cpu`` trains 40 GRPO iterations (v0: 20), so
that a meta-reward that teaches balancing reaches it on every seed instead of on some (signal
check, seeds 0-2: at v0 ``g1 + g2`` scored 0.344 / 0.875 / 0.438 and the panel's SNR was 1.46;
``docs/signal/probes/DERL-CartPole-v0/steps40/`` has the 40-iteration panel). ``smoke`` and
``paper`` as v0."""

CARTPOLE_PRESET_VERSIONS: dict[int, Mapping[str, Mapping[str, Any]]] = {
    0: _CARTPOLE_CHANGES,
    1: _CARTPOLE_CHANGES_V1,
}
"""Env version -> CartPole's preset changes (``DERL-CartPole-v0``, ``-v1``)."""

_PENDULUM_SMOKE = EpisodeGRPOConfig(
    max_steps=6,
    tasks_per_step=4,
    group_size=8,
    max_episode_steps=200,
    n_val=8,
    n_test=32,
    n_envs=32,
    policy="mlp",
    learning_rate=1e-3,
    num_iterations=10,
    minibatches=16,
    credit="reward_to_go",
    credit_gamma=0.97,
)
"""Pendulum base config: the ``smoke`` preset. Pendulum needs per-step credit: with
whole-episode credit (CartPole's) the policy learned to spin the pole (g4 ~0.5) but never held
it upright, under every learning rate, epoch count and budget we tried (40-150 iterations).
Reward-to-go credit with a 0.97 discount and 16 minibatches per PPO epoch reached validation
success 1.0 within 40 iterations under ``(g1 + g2 + g3 + g4) / 4``."""

_PENDULUM_CHANGES: dict[str, dict[str, Any]] = {
    "smoke": {},
    "cpu": dict(max_steps=50, tasks_per_step=8, n_val=32, n_test=100, n_envs=64),
    "paper": dict(max_steps=150, tasks_per_step=8, n_val=64, n_test=100, n_envs=64),
}

_TEXT_SMOKE = EpisodeGRPOConfig(
    max_steps=2,
    tasks_per_step=2,
    group_size=2,
    max_episode_steps=10,
    n_val=2,
    n_test=4,
    n_envs=1,
    policy="minilm",
    learning_rate=3e-2,
    num_iterations=4,
    beta=0.0,
)
"""Text-agent base config (ScienceWorld, ALFWorld): the ``smoke`` preset. MiniLM head: lr 3e-2
with 4 PPO epochs raised the greedy step score on a training task within 8 iterations
(tests/test_text_domains.py); 1e-3 did not move it."""

_TEXT_CHANGES: dict[str, dict[str, Any]] = {
    "smoke": {},
    "cpu": dict(max_steps=6, group_size=4, max_episode_steps=20, n_val=8, n_test=16),
    "paper": dict(
        policy="lm",
        policy_kwargs=(("model", "Qwen/Qwen2.5-1.5B-Instruct"),),
        max_steps=100,
        tasks_per_step=16,
        group_size=8,
        max_episode_steps=30,
        learning_rate=1e-6,
        beta=0.01,
        num_iterations=1,
        n_envs=16,
        n_val=None,
        n_test=None,
    ),
}
"""``paper``: the paper's agent setting from RLVMR (PAPER_FACTS.md §1)."""

_TEXT_CHANGES_V1: dict[str, dict[str, Any]] = {
    "smoke": dict(
        recent_actions=3,
        cold_start_games=2,
        cold_start_epochs=4,
        policy_kwargs=(("context_lines", 2), ("unbatched_encoder", True)),
    ),
    "cpu": dict(
        policy_kwargs=(("context_lines", 2), ("unbatched_encoder", True)),
        max_steps=6,
        group_size=4,
        max_episode_steps=20,
        n_val=None,
        n_test=32,
        recent_actions=3,
        cold_start_games=108,
        cold_start_epochs=40,
        learning_rate=3e-3,
    ),
    "paper": _TEXT_CHANGES["paper"],
}
"""Text agents, env version 1 (``DERL-ALFWorld-*-v1``, ``DERL-ScienceWorld-*-v1``): the policy
sees the task line and its last 3 actions first (``recent_actions``) and starts from a
behaviour-cloning cold start on expert trajectories of D_in (:mod:`derl_bench.inner.cold_start`,
as the paper's agents start from RLVMR's SFT); ``cpu`` validates on all of V. ``paper`` is
unchanged (its LLM agent's SFT is not built here). ``cpu`` cold start: 108 expert games (all of
ALFWorld-L2's D_in; RLVMR uses about 200 trajectories), 40 epochs: cold-started validation
success on all 28 V games of ALFWorld-L2 0.286 (24 games x 8 or 60 epochs gave 0.000). Learning
rate 3e-3: at the base's 3e-2 GRPO wiped the cold start out under every meta-reward (ALFWorld-L2,
seed 0: 0.000-0.036 for all nine of the signal panel); at 1e-3 ``g1`` 0.286, ``g2 + g3 + g4``
0.393, ``-g1`` 0.286 (no fall); at 3e-3 0.250, 0.321 and 0.214."""

TEXT_PRESET_VERSIONS: dict[int, Mapping[str, Mapping[str, Any]]] = {
    0: _TEXT_CHANGES,
    1: _TEXT_CHANGES_V1,
}
"""Env version -> the text domains' preset changes (the versions of ``DERL-ALFWorld-*`` and
``DERL-ScienceWorld-*``; classic control has only version 0)."""
LATEST_TEXT_VERSION = max(TEXT_PRESET_VERSIONS)
"""The newest env version shared by both text domains."""

_SCIENCEWORLD_CHANGES_V2: dict[str, dict[str, Any]] = dict(_TEXT_CHANGES_V1)
"""ScienceWorld, env version 2 (``DERL-ScienceWorld-*-v2``): v1's presets. What changes is the
env (candidate rule 2 with at most 96 candidates and the cold start's teleporting expert:
``SCIENCEWORLD_VERSIONS`` in ``envs/scienceworld.py``) and, at ``cpu``, the training pool (40
variations per task split 32:8 into D_in / V: ``SCIENCEWORLD_TRAIN_VARIATIONS`` in
``meta_env/episode_domains.py``), so that the cold start imitates 108 games and L2 validates
on 32. The episode cap stays 20: on ``cpu``'s cold-start games the longest gold path has 16
steps and the longest path of the v2 expert 6 (docs/scienceworld/gold-coverage-cpu-L2.md)."""

_SCIENCEWORLD_CHANGES_V3: dict[str, dict[str, Any]] = {
    **_SCIENCEWORLD_CHANGES_V2,
    "cpu": dict(
        _SCIENCEWORLD_CHANGES_V2["cpu"], tasks_per_step=8, num_iterations=1, learning_rate=1e-3
    ),
}
"""ScienceWorld, env version 3 (``DERL-ScienceWorld-*-v3``): v2 with a steadier ``cpu`` inner
GRPO: 8 tasks per step (not 2; 6 x 8 x 4 = 192 episodes per meta-step), one PPO epoch (not 4)
and lr 1e-3 (not 3e-3), i.e. 6 Adam steps each on 32 groups. Why (docs/signal/probes/README.md,
L2, seeds 0-1): at v2's 2 tasks x 4 epochs x lr 3e-3 one meta-step lowered the cold-started
policy under every sensible reward with seed noise as large as any effect (signal SNR 0.68);
with 8 tasks and one epoch at lr 1e-3 `g1` keeps it (0.656 on both seeds), `g2 + g3 + g4`
keeps or lowers it (0.656, 0.594) and `-g1` lowers it to 0.156 on both seeds; at lr 3e-3 the
same batch lowers every reward. Env, cold start and the other presets as v2."""

_SCIENCEWORLD_CHANGES_V4: dict[str, dict[str, Any]] = {
    **_SCIENCEWORLD_CHANGES_V3,
    "cpu": dict(_SCIENCEWORLD_CHANGES_V3["cpu"], cold_start_epochs=10, num_iterations=2),
}
"""ScienceWorld, env version 4 (``DERL-ScienceWorld-*-v4``): v3 with a weaker cold start and
more Adam steps at ``cpu``: behaviour cloning for 10 epochs (not 40) on the same 108 expert
games, and 2 PPO epochs per GRPO step (not 1), i.e. 12 Adam steps on 32 groups each per
meta-step. Why (docs/signal/probes/README.md, L2): v3's strong cold start (0.656 on V) is kept by
every sensible reward and lowered only by ``-g1``, so rewards do not separate (SNR 0.63); with
the weaker cold start (0.344) and 2 PPO epochs ``g1`` raises the policy on two of three seeds
and keeps it on the third while rewards with additive step-score terms lower it, the panel
separates (probe ``cs10-i2-full``: SNR 1.59, ANOVA p 0.0004) and ``-g1`` falls below the
untrained policy. With 4 PPO epochs every reward lowered it (SNR 1.48).
Env, expert games and the other presets as v3."""

_SCIENCEWORLD_CHANGES_V5: dict[str, dict[str, Any]] = {
    **_SCIENCEWORLD_CHANGES_V4,
    "cpu": dict(_SCIENCEWORLD_CHANGES_V4["cpu"], rollout_threads=2, restarts=2),
}
"""ScienceWorld, env version 5 (``DERL-ScienceWorld-*-v5``): v4 with, at ``cpu``, episodes
played by 2 rollout threads (one engine each, a random stream per episode) and 2 restarts (a
meta-step trains two policies from the cold start, at inner seeds ``2 * seed`` and
``2 * seed + 1``, and returns their mean). Why (docs/signal/probes/README.md, L2): v4's SNR
1.59 was one draw of the sampling stream (per-episode streams gave 1.18 with ``-g1`` above
every sensible reward); one training's seed noise (std 0.068) is as large as the spread of
the rewards' means, and the mean of two trainings halves its variance. Computed exactly from
six single trainings on two threads (probes ``threads2`` and ``threads2-s345``) before this
version was registered: SNR 2.18, ANOVA p 8.4e-06, ``-g1`` 0.177 below the untrained 0.344.
Costs two trainings per meta-step. Env, expert games, cold start and the other presets as
v4."""

_SCIENCEWORLD_CHANGES_V6: dict[str, dict[str, Any]] = {
    **_SCIENCEWORLD_CHANGES_V5,
    "cpu": dict(_SCIENCEWORLD_CHANGES_V5["cpu"], restarts=3),
}
"""ScienceWorld, env version 6 (registered for L0 and L1: ``DERL-ScienceWorld-L0-v6``, ``-L1-v6``;
L1 shares L0's D_in and V, only its test split differs): v5 with 3
restarts at ``cpu`` (a meta-step at env seed s returns the mean of the trainings at inner seeds
3s, 3s + 1 and 3s + 2). Why (docs/signal/probes/README.md, L0): on L0 the rewards' means are
closer together than on L2 and one training's seed noise is as large (std 0.048), so v5's two
restarts gave SNR 1.40 (computed from single trainings, seeds 0-5). Computed the same way from
nine single trainings (probes ``threads2-s0-5`` and ``threads2-s678``) before this version was
registered, three restarts give SNR 1.86, ANOVA p 6.6e-05, ``-g1`` 0.220 below the untrained
0.312 (one training, seeds 0-8: SNR 1.00). Costs three trainings per meta-step. L2 stays at v5
(L2-v5 passes with two; L1-v6 was registered one stop after L0-v6). Env, expert games, cold
start and the other presets as v5."""

SCIENCEWORLD_PRESET_VERSIONS: dict[int, Mapping[str, Mapping[str, Any]]] = {
    **TEXT_PRESET_VERSIONS,
    2: _SCIENCEWORLD_CHANGES_V2,
    3: _SCIENCEWORLD_CHANGES_V3,
    4: _SCIENCEWORLD_CHANGES_V4,
    5: _SCIENCEWORLD_CHANGES_V5,
    6: _SCIENCEWORLD_CHANGES_V6,
}
"""Env version -> ScienceWorld's preset changes (``DERL-ScienceWorld-*-v0``..``-v5``,
``DERL-ScienceWorld-L0-v6``)."""

EPISODE_PRESETS: dict[str, tuple[EpisodeGRPOConfig, Mapping[str, Mapping[str, Any]]]] = {
    "cartpole": (_CARTPOLE_SMOKE, _CARTPOLE_CHANGES),
    "pendulum": (_PENDULUM_SMOKE, _PENDULUM_CHANGES),
    "scienceworld": (_TEXT_SMOKE, _TEXT_CHANGES),
    "alfworld": (_TEXT_SMOKE, _TEXT_CHANGES),
}
"""Domain -> (base config, preset name -> the fields it changes), at env version 0."""


_VERSIONED_PRESETS: dict[str, Mapping[int, Mapping[str, Mapping[str, Any]]]] = {
    "cartpole": CARTPOLE_PRESET_VERSIONS,
    "scienceworld": SCIENCEWORLD_PRESET_VERSIONS,
    "alfworld": TEXT_PRESET_VERSIONS,
}
"""Domain -> env version -> its preset changes, for the domains with more than one version."""


def episode_preset(
    domain: str, name: str, overrides: Mapping[str, Any] | None = None, *, version: int = 0
) -> EpisodeGRPOConfig:
    """Return the episode-GRPO preset ``name`` of domain ``domain``, with ``overrides`` applied.

    Args:
        domain: ``"cartpole"``, ``"pendulum"``, ``"scienceworld"`` or ``"alfworld"``.
        name: ``"smoke"``, ``"cpu"`` or ``"paper"``.
        overrides: Fields of :class:`EpisodeGRPOConfig` to replace (the env's
            ``inner_overrides``).
        version: The env id's version (``-v0``, ``-v1``, ...); ALFWorld has
            :data:`TEXT_PRESET_VERSIONS`, ScienceWorld :data:`SCIENCEWORLD_PRESET_VERSIONS`,
            CartPole :data:`CARTPOLE_PRESET_VERSIONS`, Pendulum only 0.

    Raises:
        ValueError: On an unknown domain, preset (with a did-you-mean suggestion), version or
            field, or an invalid value (``step_score`` other than ``"mean"`` outside ALFWorld).
    """
    if domain not in EPISODE_PRESETS:
        raise unknown_name_error("episode-preset domain", domain, EPISODE_PRESETS)
    base, changes = EPISODE_PRESETS[domain]
    changes = version_changes(domain, version, _VERSIONED_PRESETS.get(domain), changes)
    config = preset_config(base, changes, name, overrides)
    if config.step_score != "mean" and domain != "alfworld":
        raise ValueError(
            f"step_score={config.step_score!r} is an ALFWorld setting; {domain} has one step "
            "score (its env card). Drop the step_score override."
        )
    return config
