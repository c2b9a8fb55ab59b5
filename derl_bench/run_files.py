"""Where a run's files go and what a finished run returns; which env ids exist and making one.

The runner's bookkeeping, apart from its loop (:mod:`derl_bench.runner`): result and store paths
(``<out_dir>/<env_id>/<agent>/seed<S>.json`` and ``.sqlite``), :class:`RunResult`, and the env
lookup with a did-you-mean error.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium

from derl_bench._names import did_you_mean
from derl_bench.results import ResultRecord

__all__ = [
    "RunResult",
    "UnknownEnvError",
    "check_env_kwargs",
    "derl_env_ids",
    "make_env",
    "result_path",
    "store_path",
]

_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class UnknownEnvError(KeyError):
    """No Gymnasium env is registered under the requested id; the message suggests close ids."""

    def __init__(self, env_id: str) -> None:
        self.env_id = env_id
        ours = derl_env_ids()
        hint = did_you_mean(env_id, gymnasium.registry, cutoff=0.6)
        self.message = (
            f"Unknown environment id {env_id!r}.{hint} derl_bench registers: "
            f"{', '.join(ours) or 'none (is derl_bench installed?)'}. "
            "List them with `derl-bench ls envs`."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """A finished run: where its result file is and what it holds."""

    path: Path
    """The result JSON file."""
    record: ResultRecord
    """The result, as written (schema-valid)."""

    @property
    def status(self) -> Literal["finished", "failed"]:
        """``"finished"`` for a run that :func:`run` returned."""
        return self.record["status"]

    @property
    def best_meta_reward(self) -> str | None:
        """Canonical form of the best meta-reward, or None if no meta-step was valid."""
        best = self.record["best"]
        return None if best is None else best["canonical"]

    @property
    def validation_success(self) -> float | None:
        """validation_success of the best meta-reward, in [0, 1]; None if none was valid."""
        best = self.record["best"]
        return None if best is None else best["validation_success"]

    @property
    def test_success(self) -> float | None:
        """Test-split success of the best meta-reward, in [0, 1]; None if no test was run."""
        return self.record["test_success"]

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds from start to finish of the run (env creation excluded)."""
        start = _dt.datetime.fromisoformat(self.record["started_at"].replace("Z", "+00:00"))
        end = _dt.datetime.fromisoformat(self.record["finished_at"].replace("Z", "+00:00"))
        return (end - start).total_seconds()


def derl_env_ids() -> list[str]:
    """Return the Gymnasium ids registered by derl_bench (entry point in ``derl_bench.*``).

    Returns:
        The ids, sorted, e.g. ``["DERL-GSM8K-v0", "DERL-MATH-v0"]``.
    """
    import derl_bench  # noqa: F401 - importing the package registers its ids

    return sorted(
        env_id
        for env_id, spec in gymnasium.registry.items()
        if isinstance(spec.entry_point, str) and spec.entry_point.startswith("derl_bench.")
    )


def result_path(out_dir: str | Path, env_id: str, agent_name: str, seed: int) -> Path:
    """Return where :func:`run` writes the result of one run.

    Args:
        out_dir: Root folder of result files.
        env_id: Gymnasium id; characters outside ``[A-Za-z0-9._-]`` become ``_``.
        agent_name: Agent registry name; sanitised the same way.
        seed: The run's seed.

    Returns:
        ``<out_dir>/<env_id>/<agent_name>/seed<seed>.json``.
    """
    env_part = _UNSAFE_PATH_CHARS.sub("_", env_id)
    agent_part = _UNSAFE_PATH_CHARS.sub("_", agent_name)
    return Path(out_dir) / env_part / agent_part / f"seed{seed}.json"


def store_path(out_dir: str | Path, env_id: str, agent_name: str, seed: int) -> Path:
    """Return where :func:`run` keeps the SQLite store of one run (see :mod:`derl_bench.store`).

    Args:
        out_dir: Root folder of result files.
        env_id: Gymnasium id (sanitised as in :func:`result_path`).
        agent_name: Agent registry name (sanitised the same way).
        seed: The run's seed.

    Returns:
        ``<out_dir>/<env_id>/<agent_name>/seed<seed>.sqlite``, beside the result file.
    """
    return result_path(out_dir, env_id, agent_name, seed).with_suffix(".sqlite")


def check_env_kwargs(preset: str, budget: int, env_kwargs: Mapping[str, Any] | None) -> None:
    """Reject ``env_kwargs`` that set ``preset`` or ``budget`` (they are run() arguments).

    Raises:
        ValueError: Naming the clashing keys.
    """
    clash = sorted({"preset", "budget"} & set(env_kwargs or {}))
    if clash:
        raise ValueError(
            f"env_kwargs must not set {clash}: pass preset={preset!r} and budget={budget!r} "
            "as run() arguments instead"
        )


def make_env(
    env_id: str, preset: str, budget: int, env_kwargs: Mapping[str, Any] | None
) -> gymnasium.Env:
    """``gymnasium.make(env_id, preset=preset, budget=budget, **env_kwargs)``.

    Raises:
        UnknownEnvError: If ``env_id`` is not registered (with close ids).
        ValueError: If ``env_kwargs`` sets ``preset`` or ``budget``.
    """
    import derl_bench  # noqa: F401 - importing the package registers its ids

    check_env_kwargs(preset, budget, env_kwargs)
    kwargs = dict(env_kwargs or {})
    try:
        return gymnasium.make(env_id, preset=preset, budget=budget, **kwargs)
    except (gymnasium.error.UnregisteredEnv, gymnasium.error.DeprecatedEnv) as exc:
        raise UnknownEnvError(env_id) from exc
