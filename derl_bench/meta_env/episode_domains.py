"""Builders of the episode domains: classic control (CartPole, Pendulum), ScienceWorld, ALFWorld.

Each builder returns a :class:`~derl_bench.meta_env.domain.Domain` whose trainer is the compact GRPO
(:class:`~derl_bench.inner.episode_grpo_trainer.EpisodeGRPOTrainer`) over the domain's inner env,
with the episode primitive set g1..g4. Heavy parts (simulators, encoders) load lazily.
"""

from __future__ import annotations

from typing import Any

from derl_bench.meta_env.domain import Domain
from derl_bench.primitives import get_primitive_set

__all__ = [
    "EPISODE_INSTRUCTION",
    "SCIENCEWORLD_PRESET_TASKS",
    "build_alfworld",
    "build_classic",
    "build_scienceworld",
    "make_policy_factory",
]

SCIENCEWORLD_PRESET_TASKS: dict[str, tuple[str, int | None]] = {
    "smoke": ("SMOKE_TASKS", 4),
    "cpu": ("CPU_TASKS", 10),
    "paper": ("", None),
}
"""ScienceWorld task subset of each preset: (constant in ``envs/scienceworld.py``, or ``""`` for
all 30 tasks; variations per task and split, ``None`` for all). Part of the preset's identity."""

EPISODE_INSTRUCTION = (
    "Generate a mathematical formula, the reward function used to train an agent with GRPO. "
    "Each training episode is scored by the formula over the primitives listed below: g1 is 1 "
    "if the episode solved its task, else 0; g2, g3 and g4 are the mean step score (0..1) over "
    "the first, middle and last third of the episode (each plus 1e-6). The trained agent's "
    "success rate on held-out validation tasks is your score. Combine the primitives with "
    "numbers, +, -, *, /, and parentheses. Output ONE formula, e.g. g1 + 0.5 * g2."
)
"""Instruction for episode domains (after the official DERL prompt, with our primitives)."""


def make_policy_factory(config: Any, observation_space: Any = None, action_space: Any = None):
    """Return ``factory(seed) -> EpisodePolicy`` for ``config.policy``.

    Args:
        config: An :class:`~derl_bench.inner.episode_grpo_config.EpisodeGRPOConfig`.
        observation_space: The inner env's observation space (``mlp`` only).
        action_space: The inner env's action space (``mlp`` only).

    Raises:
        ValueError: On an unknown policy family.
    """
    kwargs = dict(config.policy_kwargs)
    if config.policy == "mlp":
        from derl_bench.inner.policies.mlp import MLPPolicy

        return lambda seed: MLPPolicy(observation_space, action_space, seed=seed, **kwargs)
    if config.policy == "minilm":
        from derl_bench.inner.policies.action_scoring import (
            ActionScoringConfig,
            ActionScoringPolicy,
        )

        return lambda seed: ActionScoringPolicy(ActionScoringConfig(init_seed=seed, **kwargs))
    if config.policy == "lm":
        import copy

        from derl_bench.inner.policies.lm_action import LMActionConfig, LMActionPolicy

        source = kwargs.pop("model", None)
        if source is None:
            raise ValueError("the 'lm' policy needs policy_kwargs model=<local folder or model id>")
        loaded: list[Any] = []

        def lm_factory(seed: int) -> Any:
            # The initial policy is the pretrained LM (the seed drives sampling only); load it
            # once per process and hand out copies.
            if not loaded:
                loaded.append(LMActionPolicy.from_pretrained(source, LMActionConfig(**kwargs)))
            return copy.deepcopy(loaded[0])

        return lm_factory
    raise ValueError(f"Unknown policy {config.policy!r}; known: 'mlp', 'minilm', 'lm'.")


def build_classic(
    domain: str,
    *,
    preset: str,
    inner_overrides: dict[str, Any] | None = None,
    keep_checkpoints: str | None = None,
    inner: str = "grpo",
    data_dir: str | None = None,
    **_: Any,
) -> Domain:
    """Build ``"cartpole"`` or ``"pendulum"`` (see :mod:`derl_bench.envs.classic`).

    Args:
        domain: ``"cartpole"`` or ``"pendulum"``.
        preset: ``"smoke"``, ``"cpu"`` or ``"paper"`` (:mod:`derl_bench.inner.episode_presets`).
        inner_overrides: Fields of :class:`~derl_bench.inner.episode_grpo_config.EpisodeGRPOConfig`.
        keep_checkpoints: Folder to save trained policies in (DERL-pop), or None.
        inner: ``"grpo"`` (the compact GRPO) or ``"es_rl"`` (the ES+RL hybrid trained on the
            meta-reward, :mod:`derl_bench.inner.es_rl`).
        data_dir: Unused (classic control needs no data files).

    Raises:
        ValueError: On an unknown domain, preset, inner trainer or override.
    """
    from derl_bench.envs.classic import ClassicControlInnerEnv, classic_splits
    from derl_bench.inner.episode_presets import episode_preset

    config = episode_preset(domain, preset, inner_overrides)
    primitive_set = get_primitive_set("episode")
    splits = classic_splits(domain, n_test=config.n_test or 100)
    probe = ClassicControlInnerEnv(domain)
    probe.close()
    if inner == "grpo":
        from derl_bench.inner.episode_grpo_trainer import EpisodeGRPOTrainer

        trainer: Any = EpisodeGRPOTrainer(
            splits=splits,
            env_factory=lambda: ClassicControlInnerEnv(domain),
            policy_factory=make_policy_factory(config, probe.observation_space, probe.action_space),
            primitive_set=primitive_set,
            config=config,
            keep_checkpoints=keep_checkpoints,
        )
    elif inner == "es_rl":
        from derl_bench.inner.es_rl.meta_reward_trainer import ESRLInnerTrainer

        trainer = ESRLInnerTrainer(
            domain=domain,
            splits=splits,
            primitive_set=primitive_set,
            config=config,
            keep_checkpoints=keep_checkpoints,
        )
    else:
        raise ValueError(f"Unknown inner trainer {inner!r}; known: 'grpo', 'es_rl'.")
    return _episode_domain(domain, trainer, config)


def _episode_domain(name: str, trainer: Any, config: Any) -> Domain:
    """The Domain of an episode task whose ``trainer`` is built (success = g1, V and test)."""
    return Domain(
        name=name,
        instruction=EPISODE_INSTRUCTION,
        primitive_set=trainer.primitive_set,
        trainer=trainer,
        config=config,
        n_val=len(trainer.val),
        n_test=len(trainer.test),
    )


def _text_domain(
    name: str,
    *,
    splits: Any,
    env_factory: Any,
    preset: str,
    config: Any,
    keep_checkpoints: str | None,
) -> Domain:
    from derl_bench.inner.episode_grpo_trainer import EpisodeGRPOTrainer

    trainer = EpisodeGRPOTrainer(
        splits=splits,
        env_factory=env_factory,
        policy_factory=make_policy_factory(config),
        primitive_set=get_primitive_set("episode"),
        config=config,
        keep_checkpoints=keep_checkpoints,
    )
    return _episode_domain(name, trainer, config)


def build_alfworld(
    *,
    level: str = "L2",
    preset: str,
    inner_overrides: dict[str, Any] | None = None,
    data_dir: str | None = None,
    keep_checkpoints: str | None = None,
    **_: Any,
) -> Domain:
    """Build ALFWorld at ``level`` (``"L0"``, ``"L1"``, ``"L2"``); see ``envs/alfworld.py``.

    The validation and test tasks of a preset are seeded random subsets of size ``n_val`` and
    ``n_test`` of V and of the level's test split (so that every task type can appear).

    Raises:
        ValueError: On an unknown level, preset or override.
        derl_bench.envs.alfworld.ALFWorldDataMissing: If the games are not found.
        ImportError: If alfworld is not installed (names the extra).
    """
    from derl_bench.envs.alfworld import ALFWorldInnerEnv, alfworld_splits
    from derl_bench.inner.episode_presets import episode_preset

    config = episode_preset("alfworld", preset, inner_overrides)
    caps = {k: v for k, v in (("val", config.n_val), ("test", config.n_test)) if v}
    splits = alfworld_splits(level, data_dir=data_dir, max_games=caps or None)
    max_steps = config.max_episode_steps
    return _text_domain(
        "alfworld",
        splits=splits,
        env_factory=lambda: ALFWorldInnerEnv(data_dir=data_dir, max_steps=max_steps),
        preset=preset,
        config=config,
        keep_checkpoints=keep_checkpoints,
    )


def build_scienceworld(
    *,
    level: str = "L2",
    preset: str,
    inner_overrides: dict[str, Any] | None = None,
    keep_checkpoints: str | None = None,
    **_: Any,
) -> Domain:
    """Build ScienceWorld at ``level`` (``"L0"``, ``"L1"``, ``"L2"``); see ``envs/scienceworld.py``.

    The preset picks the task subset (:data:`SCIENCEWORLD_PRESET_TASKS`); validation and test
    use the first ``n_val`` / ``n_test`` tasks of V and of the level's test split.

    Raises:
        ValueError: On an unknown level, preset or override.
        ImportError: If scienceworld is not installed (names the extra).
        RuntimeError: If Java >= 8 is missing (names what to install).
    """
    from derl_bench.envs import scienceworld as sw
    from derl_bench.inner.episode_presets import episode_preset

    config = episode_preset("scienceworld", preset, inner_overrides)
    subset, max_variations = SCIENCEWORLD_PRESET_TASKS[preset]
    tasks = getattr(sw, subset) if subset else None
    splits = sw.scienceworld_splits(level, tasks=tasks, max_variations=max_variations)
    max_steps = config.max_episode_steps
    return _text_domain(
        "scienceworld",
        splits=splits,
        env_factory=lambda: sw.ScienceWorldInnerEnv(
            task=splits.d_in[0].task_id, max_steps=max_steps
        ),
        preset=preset,
        config=config,
        keep_checkpoints=keep_checkpoints,
    )
