"""Signal check of a domain: do different meta-rewards give different validation success?

A domain is useful for comparing reward-search methods only if the meta-rewards it is asked to
rank really train policies of different quality, beyond seed noise. :func:`signal_table`
trains each of a fixed set of meta-rewards (the paper's three heuristics and a deliberately bad
one) with several seeds and reports validation success per meta-reward, next to the untrained
policy's (the reference a trained policy should beat: a meta-reward that only moves the policy
away from it is worse than none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SIGNAL_META_REWARDS",
    "UNTRAINED",
    "SignalRow",
    "signal_markdown",
    "signal_table",
    "untrained_success",
]

SIGNAL_META_REWARDS: tuple[str, ...] = ("g1", "g1 + g2", "(g1 + g2 + g3 + g4) / 4", "-g1")
"""Outcome, outcome + second primitive, the average, and a deliberately bad reward."""
UNTRAINED = "(untrained policy)"
"""``SignalRow.meta_reward`` of the reference row: the initial policy, scored without training."""


@dataclass(frozen=True, kw_only=True)
class SignalRow:
    """Validation success of one meta-reward over seeds."""

    meta_reward: str
    seeds: tuple[int, ...]
    validation_success: tuple[float, ...]
    """Per seed, in [0, 1]."""
    wall_seconds: tuple[float, ...]
    """Per seed, seconds of the meta-step."""
    primitive_means: tuple[dict[str, float], ...] = ()
    """Per seed, the mean of each primitive over the validation rollouts (what the trained
    policy does, e.g. the format share for math)."""

    @property
    def mean(self) -> float:
        """Mean validation success over seeds."""
        return float(np.mean(self.validation_success))

    @property
    def std(self) -> float:
        """Sample std over seeds (0 for one seed)."""
        values = self.validation_success
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def untrained_success(trainer: Any, seed: int) -> tuple[float, dict[str, float]] | None:
    """Greedy validation success of a trainer's initial policy, or None if it cannot say.

    Args:
        trainer: An inner trainer; used if it has ``evaluate_initial(*, seed=)`` (the compact
            GRPO's returns ``(EvalResult, score)``, the LM trainers' an ``EvalResult``; the
            initial LM does not depend on the seed).
        seed: Seed of the initial policy (classic control: the MLP's initialisation).

    Returns:
        ``(success in [0, 1], primitive means on V)``, or None.
    """
    evaluate = getattr(trainer, "evaluate_initial", None)
    if evaluate is None:
        return None
    result = evaluate(seed=seed)
    if isinstance(result, tuple):
        result = result[0]
    return float(result.success), dict(result.primitive_means)


def signal_table(
    env_id: str,
    *,
    preset: str,
    seeds: Sequence[int] = (0, 1, 2),
    meta_rewards: Sequence[str] = SIGNAL_META_REWARDS,
    env_kwargs: dict[str, Any] | None = None,
    notify: Callable[[str], None] | None = None,
    untrained: bool = True,
) -> list[SignalRow]:
    """Run one meta-step per (meta-reward, seed) on ``env_id`` and collect validation success.

    Args:
        env_id: A registered derl_bench id.
        preset: Inner preset.
        seeds: Inner seeds (``env.reset(seed=...)``).
        meta_rewards: The meta-rewards to compare (must be valid for the env).
        env_kwargs: Further ``gymnasium.make`` arguments (e.g. ``inner_overrides``).
        notify: Called with one line per finished meta-step.
        untrained: Also score the untrained policy per seed (first row, :data:`UNTRAINED`),
            when the env's inner trainer can (:func:`untrained_success`).

    Returns:
        One :class:`SignalRow` per meta-reward, in the given order, after the untrained row.

    Raises:
        ValueError: If a meta-reward is invalid for the env.
    """
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.meta_reward import InvalidMetaReward, parse

    env = gymnasium.make(env_id, preset=preset, budget=len(meta_rewards), **(env_kwargs or {}))
    for meta_reward in meta_rewards:  # before any training, so a typo costs nothing
        try:
            parse(meta_reward, env.unwrapped.primitive_set.names)
        except InvalidMetaReward as exc:
            env.close()
            raise ValueError(f"{meta_reward!r} is invalid: {exc}") from None
    names = ([UNTRAINED] if untrained else []) + list(meta_rewards)
    cells: dict[str, list[tuple[int, float, float, dict[str, float]]]] = {n: [] for n in names}
    try:
        for seed in seeds:
            env.reset(seed=seed)
            if untrained:
                start = time.perf_counter()
                initial = untrained_success(env.unwrapped.trainer, seed)
                seconds = time.perf_counter() - start
                if initial is None:
                    del cells[UNTRAINED]
                    untrained = False
                else:
                    cells[UNTRAINED].append((seed, initial[0], seconds, initial[1]))
                    if notify is not None:
                        notify(f"seed {seed}: {UNTRAINED}  ->  {initial[0]:.3f}")
            for meta_reward in meta_rewards:
                start = time.perf_counter()
                _, reward, _, _, info = env.step(meta_reward)
                if not info["valid"]:
                    raise ValueError(f"{meta_reward!r} is invalid: {info['invalid_message']}")
                seconds = time.perf_counter() - start
                means = dict(info.get("validation_primitive_means") or {})
                cells[meta_reward].append((seed, float(reward), seconds, means))
                if notify is not None:
                    notify(f"seed {seed}: {meta_reward}  ->  {reward:.3f}  ({seconds:.0f} s)")
    finally:
        env.close()
    return [
        SignalRow(
            meta_reward=name,
            seeds=tuple(c[0] for c in runs),
            validation_success=tuple(c[1] for c in runs),
            wall_seconds=tuple(c[2] for c in runs),
            primitive_means=tuple(c[3] for c in runs),
        )
        for name, runs in cells.items()
    ]


def signal_markdown(env_id: str, preset: str, rows: Sequence[SignalRow]) -> str:
    """Markdown table: meta-reward, per-seed validation success, mean ± std, time per step."""
    lines = [
        f"Validation success on `{env_id}`, preset `{preset}` (one meta-step per cell):",
        "",
        "| meta-reward | per seed | mean ± std | seconds / meta-step |",
        "|---|---|---|---|",
    ]
    for row in rows:
        per_seed = ", ".join(f"{v:.3f}" for v in row.validation_success)
        name = row.meta_reward if row.meta_reward == UNTRAINED else f"`{row.meta_reward}`"
        seconds = "—" if row.meta_reward == UNTRAINED else f"{np.mean(row.wall_seconds):.0f}"
        lines.append(f"| {name} | {per_seed} | {row.mean:.3f} ± {row.std:.3f} | {seconds} |")
    return "\n".join(lines) + "\n"


def write_signal(path: str | Path, env_id: str, preset: str, rows: Sequence[SignalRow]) -> Path:
    """Write the rows as JSON (``env_id``, ``preset``, ``rows``); return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"env_id": env_id, "preset": preset, "rows": [asdict(r) for r in rows]}
    out.write_text(json.dumps(payload, indent=1))
    return out
