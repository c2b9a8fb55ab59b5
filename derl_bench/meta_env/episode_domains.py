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
    "cold_start_policy_factory",
    "make_policy_factory",
    "scienceworld_preset_splits",
]

SCIENCEWORLD_PRESET_TASKS: dict[str, tuple[str, int | None]] = {
    "smoke": ("SMOKE_TASKS", 4),
    "cpu": ("CPU_TASKS", 10),
    "paper": ("", None),
}
"""ScienceWorld task subset of each preset: (constant in ``envs/scienceworld.py``, or ``""`` for
all 30 tasks; variations per task and split, ``None`` for all). Part of the preset's identity."""
SCIENCEWORLD_TRAIN_VARIATIONS: dict[int, dict[str, int]] = {v: {"cpu": 40} for v in range(2, 7)}
"""Env version -> preset -> ``max_train_variations`` of :func:`scienceworld_splits
<derl_bench.envs.scienceworld.scienceworld_splits>` (the training pool's cap per task; the test
split keeps the preset's cap): ``-v2`` ``cpu`` splits 40 training variations per task 32:8
into D_in / V instead of 10 (8:2), so that its cold start imitates 108 games (27 per L2
training task, not 8) and one V game is 1/32 of L2's validation success (not 1/8)."""

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
    version: int | None = None,
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
        version: The id's version (``DERL-CartPole-v1``: 1; None or 0: ``-v0``); it picks the
            preset table (:data:`~derl_bench.inner.episode_presets.CARTPOLE_PRESET_VERSIONS`).

    Raises:
        ValueError: On an unknown domain, preset, version, inner trainer or override.
    """
    from derl_bench.envs.classic import ClassicControlInnerEnv, classic_splits
    from derl_bench.inner.episode_presets import episode_preset

    config = episode_preset(domain, preset, inner_overrides, version=version or 0)
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


def cold_start_policy_factory(
    config: Any,
    *,
    domain: str,
    level: str,
    d_in: Any,
    expert_env_factory: Any,
    expert: Any,
    prepare: Any = None,
    data_sha256: str = "",
    env_settings: tuple[tuple[str, Any], ...] = (),
) -> Any:
    """Return ``factory(seed) -> EpisodePolicy``: the preset's policy after its cold start.

    Without a cold start (``config.cold_start_games == 0``) this is
    :func:`make_policy_factory`. Otherwise the cold start
    (:func:`derl_bench.inner.cold_start.cold_start_path`, on the first
    ``config.cold_start_games`` tasks of ``d_in``) is built or found on the first call and
    every call returns a fresh policy holding its weights (hash-checked); the seed then drives
    sampling only, as for the pretrained LM of the ``paper`` preset. The expert plays
    :func:`derl_bench.inner.cold_start.cold_start_tasks` of D_in (round-robin over task types).

    Args:
        config: The :class:`~derl_bench.inner.episode_grpo_config.EpisodeGRPOConfig`.
        domain: ``"alfworld"`` or ``"scienceworld"``.
        level: The split level.
        d_in: The D_in tasks (the expert plays ``cold_start_games`` of them).
        expert_env_factory: Makes an inner env the expert can play (same observations).
        expert: ``expert(env, task, info) -> action | None``.
        prepare: ``prepare(env, task)`` before each expert episode, or None.
        data_sha256: Hash of the data the tasks come from ("" if the lock pins it).
        env_settings: Further JSON-able settings of the expert's env and of the expert that
            shape the recorded steps (enter the cache key beside ``recent_actions``).

    Raises:
        ValueError: If a cold start is asked for a policy other than ``minilm``.
    """
    base = make_policy_factory(config)
    if not config.cold_start_games:
        return base
    if config.policy != "minilm":
        raise ValueError(
            f"cold_start_games={config.cold_start_games} needs policy 'minilm', got "
            f"{config.policy!r} (set cold_start_games=0 and cold_start_epochs=0)"
        )
    from derl_bench.inner.cold_start import (
        BC_SEED,
        ColdStartSpec,
        cold_start_path,
        cold_start_tasks,
        load_cold_start,
    )

    spec = ColdStartSpec(
        domain=domain,
        level=level,
        tasks=cold_start_tasks(d_in, config.cold_start_games),
        epochs=config.cold_start_epochs,
        max_episode_steps=config.max_episode_steps,
        env_settings=(("recent_actions", config.recent_actions), *env_settings),
        policy_settings=tuple(sorted(config.policy_kwargs)),
        data_sha256=data_sha256,
    )
    folder: list[Any] = []

    def factory(seed: int) -> Any:
        if not folder:
            folder.append(
                cold_start_path(
                    spec,
                    env_factory=expert_env_factory,
                    expert=expert,
                    make_policy=lambda: base(BC_SEED),
                    prepare=prepare,
                )
            )
        return load_cold_start(base(BC_SEED), folder[0])

    factory.cold_start_spec = spec  # type: ignore[attr-defined]
    return factory


def _text_domain(
    name: str,
    *,
    splits: Any,
    env_factory: Any,
    preset: str,
    config: Any,
    keep_checkpoints: str | None,
    policy_factory: Any,
) -> Domain:
    from derl_bench.inner.episode_grpo_trainer import EpisodeGRPOTrainer

    trainer = EpisodeGRPOTrainer(
        splits=splits,
        env_factory=env_factory,
        policy_factory=policy_factory,
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
    version: int = 0,
    **_: Any,
) -> Domain:
    """Build ALFWorld at ``level`` (``"L0"``, ``"L1"``, ``"L2"``); see ``envs/alfworld.py``.

    The validation and test tasks of a preset are seeded random subsets of size ``n_val`` and
    ``n_test`` of V and of the level's test split (so that every task type can appear). From
    env version 1 the policy starts from a cold start cloned from TextWorld's planner on D_in
    games (:mod:`derl_bench.inner.cold_start`).

    Raises:
        ValueError: On an unknown level, preset or override.
        derl_bench.envs.alfworld.ALFWorldDataMissing: If the games are not found.
        ImportError: If alfworld is not installed (names the extra).
    """
    from derl_bench.envs.alfworld import ALFWorldInnerEnv, alfworld_splits
    from derl_bench.inner.episode_presets import episode_preset

    config = episode_preset("alfworld", preset, inner_overrides, version=version)
    caps = {k: v for k, v in (("val", config.n_val), ("test", config.n_test)) if v}
    splits = alfworld_splits(level, data_dir=data_dir, max_games=caps or None)
    max_steps, recent = config.max_episode_steps, config.recent_actions
    data_sha256 = ""
    if config.cold_start_games:
        import hashlib

        from derl_bench.envs.alfworld import GAME_FILE, alfworld_root

        root = alfworld_root(data_dir)
        digest = hashlib.sha256()
        from derl_bench.inner.cold_start import cold_start_tasks

        for task in cold_start_tasks(splits.d_in, config.cold_start_games):
            digest.update(hashlib.sha256((root / task.task_id / GAME_FILE).read_bytes()).digest())
        data_sha256 = digest.hexdigest()

    def planner(env: Any, task: Any, info: dict[str, Any]) -> str | None:
        plan = info.get("expert_plan") or []
        return plan[0] if plan else None

    policy_factory = cold_start_policy_factory(
        config,
        domain="alfworld",
        level=level,
        d_in=splits.d_in,
        expert_env_factory=lambda: ALFWorldInnerEnv(
            data_dir=data_dir, max_steps=max_steps, recent_actions=recent, expert="planner"
        ),
        expert=planner,
        data_sha256=data_sha256,
    )
    return _text_domain(
        "alfworld",
        splits=splits,
        env_factory=lambda: ALFWorldInnerEnv(
            data_dir=data_dir,
            max_steps=max_steps,
            recent_actions=recent,
            step_score=config.step_score,
        ),
        preset=preset,
        config=config,
        keep_checkpoints=keep_checkpoints,
        policy_factory=policy_factory,
    )


def scienceworld_preset_splits(level: str, preset: str, version: int = 0) -> Any:
    """The ScienceWorld splits of ``(level, preset, version)`` (tasks, caps; see above).

    Raises:
        ValueError: On an unknown level or preset.
    """
    from derl_bench.envs import scienceworld as sw

    if preset not in SCIENCEWORLD_PRESET_TASKS:
        raise ValueError(f"Unknown preset {preset!r}; known: {list(SCIENCEWORLD_PRESET_TASKS)}")
    subset, max_variations = SCIENCEWORLD_PRESET_TASKS[preset]
    return sw.scienceworld_splits(
        level,
        tasks=getattr(sw, subset) if subset else None,
        max_variations=max_variations,
        max_train_variations=SCIENCEWORLD_TRAIN_VARIATIONS.get(version, {}).get(preset),
    )


def build_scienceworld(
    *,
    level: str = "L2",
    preset: str,
    inner_overrides: dict[str, Any] | None = None,
    keep_checkpoints: str | None = None,
    version: int = 0,
    **_: Any,
) -> Domain:
    """Build ScienceWorld at ``level`` (``"L0"``, ``"L1"``, ``"L2"``); see ``envs/scienceworld.py``.

    The preset picks the task subset (:data:`SCIENCEWORLD_PRESET_TASKS`); validation and test
    use the first ``n_val`` / ``n_test`` tasks of V and of the level's test split. From env
    version 1 the policy starts from a cold start cloned from the simulator's gold action
    sequences of D_in tasks (:mod:`derl_bench.inner.cold_start`). Version 2 changes the
    candidate rule, the expert (``SCIENCEWORLD_VERSIONS`` in ``envs/scienceworld.py``) and the
    ``cpu`` training pool (:data:`SCIENCEWORLD_TRAIN_VARIATIONS`).

    Raises:
        ValueError: On an unknown level, preset or override.
        ImportError: If scienceworld is not installed (names the extra).
        RuntimeError: If Java >= 8 is missing (names what to install).
    """
    from derl_bench.envs import scienceworld as sw
    from derl_bench.inner.episode_presets import episode_preset

    config = episode_preset("scienceworld", preset, inner_overrides, version=version)
    splits = scienceworld_preset_splits(level, preset, version)
    max_steps, recent = config.max_episode_steps, config.recent_actions
    settings = sw.SCIENCEWORLD_VERSIONS[version]
    rules, max_actions = settings["candidate_rules"], settings["max_actions"]

    def make_env() -> Any:
        return sw.ScienceWorldInnerEnv(
            task=splits.d_in[0].task_id,
            max_steps=max_steps,
            recent_actions=recent,
            candidate_rules=rules,
            max_actions=max_actions,
        )

    gold: dict[str, Any] = {}
    teleport = settings["expert"] == "teleport"

    def prepare(env: Any, task: Any) -> None:
        actions = list(env.gold_action_sequence(task))
        gold["actions"] = sw.expert_path(actions) if teleport else actions
        gold["next"] = 0

    def replay_gold(env: Any, task: Any, info: dict[str, Any]) -> str | None:
        if gold["next"] >= len(gold["actions"]):
            return None
        gold["next"] += 1
        action = gold["actions"][gold["next"] - 1]
        return (env.expert_action(action) or action) if teleport else action

    env_settings: tuple[tuple[str, Any], ...] = ()
    if version >= 2:  # v0/v1 keep their cache keys
        env_settings = tuple(sorted(settings.items()))
    policy_factory = cold_start_policy_factory(
        config,
        domain="scienceworld",
        level=level,
        d_in=splits.d_in,
        expert_env_factory=make_env,
        expert=replay_gold,
        prepare=prepare,
        env_settings=env_settings,
    )
    return _text_domain(
        "scienceworld",
        splits=splits,
        env_factory=make_env,
        preset=preset,
        config=config,
        keep_checkpoints=keep_checkpoints,
        policy_factory=policy_factory,
    )
