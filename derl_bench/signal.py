"""Signal check of a domain: do different meta-rewards give different validation success?

A domain is useful for comparing reward-search methods only if the meta-rewards it is asked to
rank really train policies of different quality, beyond seed noise. :func:`signal_table`
trains each of a fixed set of meta-rewards (the paper's three heuristics and a deliberately bad
one) with several seeds and reports validation success per meta-reward.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SIGNAL_META_REWARDS", "SignalRow", "signal_markdown", "signal_table"]

SIGNAL_META_REWARDS: tuple[str, ...] = ("g1", "g1 + g2", "(g1 + g2 + g3 + g4) / 4", "-g1")
"""Outcome, outcome + second primitive, the average, and a deliberately bad reward."""


@dataclass(frozen=True, kw_only=True)
class SignalRow:
    """Validation success of one meta-reward over seeds."""

    meta_reward: str
    seeds: tuple[int, ...]
    validation_success: tuple[float, ...]
    """Per seed, in [0, 1]."""
    wall_seconds: tuple[float, ...]
    """Per seed, seconds of the meta-step."""

    @property
    def mean(self) -> float:
        """Mean validation success over seeds."""
        return float(np.mean(self.validation_success))

    @property
    def std(self) -> float:
        """Sample std over seeds (0 for one seed)."""
        values = self.validation_success
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def signal_table(
    env_id: str,
    *,
    preset: str,
    seeds: Sequence[int] = (0, 1, 2),
    meta_rewards: Sequence[str] = SIGNAL_META_REWARDS,
    env_kwargs: dict[str, Any] | None = None,
    notify: Callable[[str], None] | None = None,
) -> list[SignalRow]:
    """Run one meta-step per (meta-reward, seed) on ``env_id`` and collect validation success.

    Args:
        env_id: A registered derl_bench id.
        preset: Inner preset.
        seeds: Inner seeds (``env.reset(seed=...)``).
        meta_rewards: The meta-rewards to compare (must be valid for the env).
        env_kwargs: Further ``gymnasium.make`` arguments.
        notify: Called with one line per finished meta-step.

    Returns:
        One :class:`SignalRow` per meta-reward, in the given order.

    Raises:
        ValueError: If a meta-reward is invalid for the env.
    """
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)

    env = gymnasium.make(env_id, preset=preset, budget=len(meta_rewards), **(env_kwargs or {}))
    rows = []
    try:
        results: dict[str, list[tuple[int, float, float]]] = {m: [] for m in meta_rewards}
        for seed in seeds:
            env.reset(seed=seed)
            for meta_reward in meta_rewards:
                start = time.perf_counter()
                _, reward, _, _, info = env.step(meta_reward)
                if not info["valid"]:
                    raise ValueError(f"{meta_reward!r} is invalid: {info['invalid_message']}")
                seconds = time.perf_counter() - start
                results[meta_reward].append((seed, float(reward), seconds))
                if notify is not None:
                    notify(f"seed {seed}: {meta_reward}  ->  {reward:.3f}  ({seconds:.0f} s)")
        for meta_reward, runs in results.items():
            rows.append(
                SignalRow(
                    meta_reward=meta_reward,
                    seeds=tuple(s for s, _, _ in runs),
                    validation_success=tuple(r for _, r, _ in runs),
                    wall_seconds=tuple(t for _, _, t in runs),
                )
            )
    finally:
        env.close()
    return rows


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
        lines.append(
            f"| `{row.meta_reward}` | {per_seed} | {row.mean:.3f} ± {row.std:.3f} "
            f"| {np.mean(row.wall_seconds):.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_signal(path: str | Path, env_id: str, preset: str, rows: Sequence[SignalRow]) -> Path:
    """Write the rows as JSON (``env_id``, ``preset``, ``rows``); return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"env_id": env_id, "preset": preset, "rows": [asdict(r) for r in rows]}
    out.write_text(json.dumps(payload, indent=1))
    return out
