"""Checkpoints of an ESRLHybrid: everything needed to continue training bit for bit."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from os import PathLike
from typing import TYPE_CHECKING, Any

import torch

from derl_bench.inner.es_rl.actor_critic import ReplayEpisode
from derl_bench.inner.es_rl.config import ARCHITECTURE_FIELDS

if TYPE_CHECKING:
    from derl_bench.inner.es_rl.hybrid import ESRLHybrid

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = 1
"""Version of the dict written by :func:`save_checkpoint`."""

_NOT_COMPARED = ("tensorboard_dir", "seed")


def save_checkpoint(agent: ESRLHybrid, path: str | PathLike[str]) -> None:
    """Write an agent's full training state with ``torch.save``.

    The file holds a dict: ``format``, ``config`` (:meth:`ESRLConfig.as_dict`), ``continuous``,
    ``iteration``, the ``policy`` and ``value`` state dicts, the ``policy_optimizer``,
    ``value_optimizer`` and ``es_optimizer`` state dicts, ``torch_rng`` (uint8 tensor) and
    ``numpy_rng`` (PCG64 state dict) and ``replay`` (list of episode dicts). It loads with
    ``torch.load(path, weights_only=True)``.

    Args:
        agent: The agent.
        path: File to write.
    """
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "config": agent.config.as_dict(),
            "continuous": agent.continuous,
            "iteration": agent.iteration,
            "policy": agent.policy.state_dict(),
            "value": agent.value.state_dict(),
            "policy_optimizer": agent.policy_optimizer.state_dict(),
            "value_optimizer": agent.value_optimizer.state_dict(),
            "es_optimizer": agent.es_optimizer.state_dict(),
            "torch_rng": agent.generator.get_state(),
            "numpy_rng": agent.np_rng.bit_generator.state,
            "replay": [ep.to_state() for ep in agent.replay],
        },
        path,
    )


def load_checkpoint(agent: ESRLHybrid, path: str | PathLike[str], *, strict: bool = True) -> None:
    """Restore a checkpoint into ``agent`` in place.

    Parameters, optimizer moments, RNG states, replay and iteration are restored exactly, so
    training continues as if it had never stopped. The agent takes over the checkpoint's
    ``seed``.

    Args:
        agent: An agent built for the same env and network shapes.
        path: A file written by :func:`save_checkpoint`.
        strict: Require every config field except ``seed`` and ``tensorboard_dir`` to equal
            the agent's. With ``False`` only the network shapes (``state_dim``, ``action_dim``,
            ``hidden_sizes``) and the action type must match, and the agent keeps its own
            hyperparameters (learning rates included).

    Raises:
        ValueError: On an unknown checkpoint format, or if the checkpoint does not match the
            agent; the message names each differing field with both values.
    """
    ckpt = torch.load(path, weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path}: checkpoint format {ckpt.get('format')!r}, expected {CHECKPOINT_FORMAT}"
        )
    saved = ckpt["config"]
    mine = agent.config.as_dict()
    names = [n for n in mine if n not in _NOT_COMPARED] if strict else list(ARCHITECTURE_FIELDS)
    diffs = [
        f"{n}: checkpoint {saved.get(n)!r} != agent {mine[n]!r}"
        for n in names
        if _normalise(saved.get(n)) != _normalise(mine[n])
    ]
    if ckpt["continuous"] != agent.continuous:
        diffs.insert(
            0, f"continuous actions: checkpoint {ckpt['continuous']} != agent {agent.continuous}"
        )
    if diffs:
        hint = " (strict=False ignores non-architecture fields)" if strict else ""
        raise ValueError(f"{path} does not match this agent's config{hint}: " + "; ".join(diffs))
    agent.policy.load_state_dict(ckpt["policy"])
    agent.value.load_state_dict(ckpt["value"])
    cfg = agent.config
    for key, lr in (
        ("policy_optimizer", cfg.lr_policy),
        ("value_optimizer", cfg.lr_value),
        ("es_optimizer", cfg.lr_es),
    ):
        optimizer = getattr(agent, key)
        optimizer.load_state_dict(ckpt[key])
        for group in optimizer.param_groups:  # keep the agent's own rate (strict=False)
            group["lr"] = lr
    agent.generator.set_state(ckpt["torch_rng"])
    agent.np_rng.bit_generator.state = ckpt["numpy_rng"]
    agent.replay = deque(
        (ReplayEpisode.from_state(s) for s in ckpt["replay"]), maxlen=cfg.replay_episodes
    )
    agent.iteration = int(ckpt["iteration"])
    agent.config = replace(cfg, seed=saved["seed"])


def _normalise(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
