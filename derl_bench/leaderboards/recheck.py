"""Re-checking a submission's per-step scores against the fidelity that claims to have made them.

On ``table`` and ``surrogate`` tracks a meta-step costs next to nothing, so the leaderboard does
not trust a reported score: it replays each run's meta-rewards through the same fidelity and
compares (issue 17, item 4). The one function that asks the fidelity is :func:`fidelity_scores`;
it uses the env's public API only (``gymnasium.make(env_id, fidelity=..., preset=...)``, ``reset``,
``step``), so it works with any fidelity that answers through the MetaRewardEnv. Live tracks are
not replayed (a live meta-step is a real training, minutes each).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["EnvMaker", "fidelity_scores", "installed_source", "record_fidelity"]

EnvMaker = Callable[..., Any]
"""Makes an env like :func:`gymnasium.make` (``maker(env_id, **kwargs)``)."""


def record_fidelity(record: dict[str, Any]) -> str:
    """Return the fidelity a result file was made with.

    Read from the result's top-level ``fidelity`` field if present, else from the ``fidelity``
    keyword in ``env_spec.kwargs``; result files made before fidelities existed are ``"live"``.

    Args:
        record: A result record (:class:`derl_bench.results.ResultRecord`).

    Returns:
        ``"live"``, ``"table"``, ``"surrogate"`` or whatever other text the file holds (checked by
        the caller).

    Raises:
        ValueError: If the two places disagree (the file is inconsistent).
    """
    spec = record.get("env_spec") if isinstance(record.get("env_spec"), dict) else {}
    kwargs = spec.get("kwargs") if isinstance(spec.get("kwargs"), dict) else {}
    in_spec = kwargs.get("fidelity")
    top = record.get("fidelity")
    if top is not None and in_spec is not None and top != in_spec:
        raise ValueError(f"fidelity {top!r} but env_spec.kwargs.fidelity {in_spec!r}")
    value = top if top is not None else in_spec
    return "live" if value is None else str(value)


def fidelity_scores(
    env_id: str,
    *,
    fidelity: str,
    preset: str,
    seed: int,
    budget: int,
    meta_rewards: Sequence[str],
    make: EnvMaker | None = None,
) -> list[float]:
    """Replay one run's meta-rewards through a fidelity and return the reward of each meta-step.

    The env is made as the runner made it (same id, preset, budget and seed), then stepped with
    each meta-reward in order; the reward of a valid meta-reward is the fidelity's validation
    success, that of an invalid one the invalid-action penalty. Nothing from the submission is
    executed: a meta-reward is text the env parses with derl_bench's parser.

    Args:
        env_id: Registered Gymnasium id.
        fidelity: ``"table"`` or ``"surrogate"`` (``"live"`` works too but trains for real).
        preset: Inner-training preset.
        seed: The run's seed (passed to ``env.reset``).
        budget: The run's budget in meta-steps (>= ``len(meta_rewards)``).
        meta_rewards: The run's meta-reward texts, in order.
        make: Env factory (default :func:`gymnasium.make`); tests pass a fake.

    Returns:
        One float per meta-reward.

    Raises:
        Exception: Whatever making or stepping the env raises (e.g. a ``TypeError`` from an env
            that has no ``fidelity`` argument); the validator reports it as a failure.
    """
    if make is None:
        import gymnasium

        import derl_bench  # noqa: F401 - registers the DERL-* ids

        make = gymnasium.make
    env = make(env_id, fidelity=fidelity, preset=preset, budget=budget)
    try:
        env.reset(seed=seed)
        return [float(env.step(text)[1]) for text in meta_rewards]
    finally:
        env.close()


def installed_source(
    env_id: str, *, fidelity: str, preset: str, make: EnvMaker | None = None
) -> dict[str, Any] | None:
    """What answers ``env_id`` at ``fidelity`` and ``preset`` in this installation.

    Args:
        env_id: Registered Gymnasium id.
        fidelity: ``"table"`` or ``"surrogate"``.
        preset: Inner-training preset.
        make: Env factory (default :func:`gymnasium.make`); tests pass a fake.

    Returns:
        The env's ``fidelity_source`` (:class:`derl_bench.fidelity.answers.FidelitySourceRecord`
        as a dict: table folder, keys, entries, SHA-256 of its files, surrogate model and
        features), or None if the env does not say (e.g. a live env, or an env without it).

    Raises:
        Exception: Whatever making the env raises.
    """
    if make is None:
        import gymnasium

        import derl_bench  # noqa: F401 - registers the DERL-* ids

        make = gymnasium.make
    env = make(env_id, fidelity=fidelity, preset=preset, budget=1)
    try:
        source = getattr(getattr(env, "unwrapped", env), "fidelity_source", None)
        return dict(source) if isinstance(source, dict) else None
    finally:
        env.close()
