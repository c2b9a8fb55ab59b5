"""Checkpoint folders of trained inner policies, named by their lineage (DERL-pop)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LINEAGE_KEY", "checkpoint_path", "save_checkpoint"]

LINEAGE_KEY = ("parent", "meta_reward", "seed")
"""Lineage fields that name a checkpoint: the same training saves to the same folder."""


def save_checkpoint(
    root: str | Path,
    lineage: dict[str, Any],
    write: Callable[[Path], None],
    *,
    key: Sequence[str] = LINEAGE_KEY,
) -> str:
    """Save a trained policy under ``root/<id>`` with ``lineage.json``; return the folder.

    Args:
        root: Folder of checkpoints (created if missing).
        lineage: JSON-able facts about the training; must hold every field of ``key``.
        write: ``write(folder)`` stores the policy's weights in the folder.
        key: Lineage fields hashed into the id (the first 12 hex digits of a SHA-256).

    Returns:
        The checkpoint folder, as a string.

    Raises:
        KeyError: If ``lineage`` lacks a field of ``key``.
    """
    text = json.dumps({k: lineage[k] for k in key}, sort_keys=True)
    checkpoint_id = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(root) / checkpoint_id
    path.mkdir(parents=True, exist_ok=True)
    write(path)
    (path / "lineage.json").write_text(json.dumps({"id": checkpoint_id, **lineage}, indent=1))
    return str(path)


def checkpoint_path(checkpoint: str | Path, name: str | None = None) -> Path:
    """The saved policy inside a checkpoint folder (``checkpoint/name``, or the folder itself).

    Args:
        checkpoint: A folder :func:`save_checkpoint` returned (``info["checkpoint_id"]``).
        name: The trainer's weights file in it (e.g. ``"policy.pt"``); None for a trainer that
            saves a whole folder (a Hugging Face model).

    Returns:
        The path, checked to exist.

    Raises:
        FileNotFoundError: If it does not exist; the message says where checkpoints come from.
    """
    path = Path(checkpoint) if name is None else Path(checkpoint) / name
    if not (path.is_dir() if name is None else path.is_file()):
        raise FileNotFoundError(
            f"no saved policy at {path}: pass info['checkpoint_id'] of a meta-step of an env "
            "made with keep_checkpoints=... (a folder this trainer saved)"
        )
    return path
