"""ALFWorld's data: where the games are, which are playable, and the L0/L1/L2 splits.

Pure file handling (no TextWorld needed): :func:`alfworld_root` finds the data folder,
:func:`list_games` applies ALFWorld's own filter, :func:`alfworld_splits` builds the splits
described in :data:`derl_bench.envs.alfworld.ENV_CARD`. Parsed game files are kept in a
per-process LRU (:data:`GAME_CACHE_SIZE`) that the env's engine reads too.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.envs.data import (
    DataFileMissing,
    data_root,
    file_sha256,
    files_digest,
    note_data,
    split_pool,
)
from derl_bench.envs.episode import EpisodeSplits, EpisodeTask

__all__ = [
    "ALFWORLD_ENV_VAR",
    "GAME_CACHE_SIZE",
    "GAME_FILE",
    "JSON_DIR",
    "L2_HELD_OUT_TYPES",
    "L2_TRAIN_TYPES",
    "TASK_TYPES",
    "ALFWorldDataMissing",
    "alfworld_root",
    "alfworld_splits",
    "list_games",
    "task_type_of",
]

ALFWORLD_ENV_VAR = "ALFWORLD_DATA"
"""ALFWorld's own variable: the folder holding ``json_2.1.1/`` (as ``alfworld-download`` makes)."""
JSON_DIR = "json_2.1.1"
GAME_FILE = "game.tw-pddl"
TASK_TYPES = (
    "look_at_obj_in_light",
    "pick_and_place_simple",
    "pick_clean_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_two_obj_and_place",
)
"""ALFWorld's six task types (``alfred_tw_env.TASK_TYPES``), the prefix of each task folder."""
L2_TRAIN_TYPES = TASK_TYPES[1:5]
"""L2 trains on these four types (our choice; the paper names none)."""
L2_HELD_OUT_TYPES = (TASK_TYPES[0], TASK_TYPES[5])
"""L2 tests on these two held-out types (our choice; the paper names none)."""
GAME_CACHE_SIZE = 1024
"""Parsed game files kept per process (about 75 kB of JSON each)."""


class ALFWorldDataMissing(DataFileMissing):
    """The ALFWorld data folder (or a game in it) is not where the loader looked."""

    def __init__(self, path: Path, what: str = "ALFWorld data folder") -> None:
        self.path = path
        FileNotFoundError.__init__(
            self,
            f"{what} not found: {path}. Pass data_dir=/path/to/alfworld (the folder holding "
            f"{JSON_DIR}/), set {ALFWORLD_ENV_VAR}, or put it at ../shared/data/alfworld beside "
            f"the checkout. With network access, `pip install 'derl-bench[alfworld]'` and run "
            f"`alfworld-download` (it fills ~/.cache/alfworld; then {ALFWORLD_ENV_VAR}="
            "~/.cache/alfworld).",
        )


class _LRU:
    """A small thread-safe LRU memo."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_JSON = _LRU(GAME_CACHE_SIZE)


def _read_json(path: Path) -> dict[str, Any]:
    def load() -> dict[str, Any]:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    return _JSON.get(str(path), load)


def alfworld_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ALFWorld data folder (the one holding ``json_2.1.1/``).

    Resolution: ``data_dir``; else ``$ALFWORLD_DATA`` if it holds ``json_2.1.1/`` (importing
    ``alfworld`` sets that variable to an empty ``~/.cache/alfworld`` when unset, so an empty
    one is skipped); else ``alfworld/`` in the project data folder
    (:func:`derl_bench.envs.data.data_root`: ``$DERL_BENCH_DATA`` or ``../shared/data``).

    Args:
        data_dir: Explicit folder; ``~`` is expanded.

    Returns:
        The absolute folder path.

    Raises:
        ALFWorldDataMissing: If no candidate folder holds ``json_2.1.1/`` (the message names
            the last one looked at).
    """
    if data_dir is not None:
        root = Path(data_dir).expanduser().resolve()
        if not (root / JSON_DIR).is_dir():
            raise ALFWorldDataMissing(root / JSON_DIR)
        return root
    env = os.environ.get(ALFWORLD_ENV_VAR, "")
    if env and (Path(env).expanduser() / JSON_DIR).is_dir():
        return Path(env).expanduser().resolve()
    root = data_root() / "alfworld"
    if not (root / JSON_DIR).is_dir():
        raise ALFWorldDataMissing(root / JSON_DIR)
    return root


_LISTING_LOCK = threading.Lock()
_LISTINGS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}


def list_games(split: str, *, data_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The playable games of one split, as task ids (game folders relative to the data root).

    Applies ALFWorld's own filter (``AlfredTWEnv.collect_game_files``): a game needs
    ``traj_data.json`` and ``game.tw-pddl`` with ``"solvable": true``, and folders with
    ``movable`` or ``Sliced`` in their path are skipped. Listed once per process. Every call
    notes the split for the result file's ``data_hashes``
    (:func:`derl_bench.envs.data.note_data`): ``alfworld/json_2.1.1/<split>`` with the
    :func:`~derl_bench.envs.data.files_digest` of the listed games' ``game.tw-pddl`` and
    ``traj_data.json`` (not verified: an ALFWorld download may differ from the project's copy;
    the leaderboard checks it against :data:`~derl_bench.envs.data.EXPECTED_SHA256`).

    Args:
        split: ``"train"``, ``"valid_train"``, ``"valid_seen"`` or ``"valid_unseen"``.
        data_dir: ALFWorld data folder (see :func:`alfworld_root`).

    Returns:
        Sorted task ids, e.g. ``"json_2.1.1/valid_seen/look_at_obj_in_light-.../trial_T..."``.

    Raises:
        ALFWorldDataMissing: If the data folder or the split is missing.
    """
    root = alfworld_root(data_dir)
    key = (str(root), split)
    with _LISTING_LOCK:
        listed = _LISTINGS.get(key)
    if listed is None:
        listed = _list_games(root, split)
        with _LISTING_LOCK:
            _LISTINGS[key] = listed
    games, digest = listed
    note_data(f"alfworld/{JSON_DIR}/{split}", digest)
    return games


def _list_games(root: Path, split: str) -> tuple[tuple[str, ...], str]:
    """The playable games of a split and the :func:`files_digest` of their two files each."""
    folder = root / JSON_DIR / split
    if not folder.is_dir():
        raise ALFWorldDataMissing(folder, what=f"ALFWorld split {split!r}")
    games = []
    for game_file in sorted(folder.glob(f"*/*/{GAME_FILE}")):
        rel = game_file.parent.relative_to(root).as_posix()
        if (
            "movable" in rel
            or "Sliced" in rel
            or not (game_file.parent / "traj_data.json").is_file()
        ):
            continue
        if _read_json(game_file).get("solvable"):
            games.append(rel)
    files = {
        f"alfworld/{game}/{name}": file_sha256(root / game / name)
        for game in games
        for name in (GAME_FILE, "traj_data.json")
    }
    return tuple(games), files_digest(files)


def task_type_of(task_id: str) -> str:
    """The task type of a task id: the task folder's name up to its first ``-``."""
    return Path(task_id).parent.name.split("-", 1)[0]


def _subsample(tasks: Sequence[EpisodeTask], n: int | None, seed: int) -> tuple[EpisodeTask, ...]:
    if n is None or n >= len(tasks):
        return tuple(tasks)
    keep = np.sort(np.random.default_rng(seed).permutation(len(tasks))[:n])
    return tuple(tasks[i] for i in keep.tolist())


def alfworld_splits(
    level: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    max_games: dict[str, int] | None = None,
) -> EpisodeSplits:
    """D_in, V and test games of ALFWorld at one generalisation level (see :data:`ENV_CARD`).

    Args:
        level: ``"L0"`` (test on valid_seen), ``"L1"`` (valid_unseen) or ``"L2"`` (train on
            :data:`L2_TRAIN_TYPES`, test on :data:`L2_HELD_OUT_TYPES` of both valid splits).
        data_dir: ALFWorld data folder (see :func:`alfworld_root`).
        seed: Seed of the 8:2 D_in / V cut (:func:`derl_bench.envs.data.split_pool`) and of
            any subsampling.
        max_games: Optional caps ``{"d_in": n, "val": n, "test": n}``; a capped part keeps a
            seeded random subset, in path order.

    Returns:
        The :class:`EpisodeSplits`; task ids are game folders relative to the data root.

    Raises:
        ValueError: On an unknown level or ``max_games`` key.
        ALFWorldDataMissing: If the data folder or a split is missing.
    """
    if level not in ("L0", "L1", "L2"):
        raise ValueError(f"level must be 'L0', 'L1' or 'L2', got {level!r}")
    caps = dict(max_games or {})
    unknown = set(caps) - {"d_in", "val", "test"}
    if unknown:
        raise ValueError(f"unknown max_games keys {sorted(unknown)}; use d_in, val, test")
    root = alfworld_root(data_dir)
    pool_split = "train" if (root / JSON_DIR / "train").is_dir() else "valid_train"

    def tasks(split: str, types: Sequence[str]) -> list[EpisodeTask]:
        return [
            EpisodeTask(domain="alfworld", task_id=t, task_type=task_type_of(t))
            for t in list_games(split, data_dir=root)
            if task_type_of(t) in types
        ]

    train_types = L2_TRAIN_TYPES if level == "L2" else TASK_TYPES
    pool = split_pool(tasks(pool_split, train_types), seed=seed)
    if level == "L2":
        test = tasks("valid_seen", L2_HELD_OUT_TYPES) + tasks("valid_unseen", L2_HELD_OUT_TYPES)
    else:
        test = tasks("valid_seen" if level == "L0" else "valid_unseen", TASK_TYPES)
    return EpisodeSplits(
        level=level,
        d_in=_subsample(pool.d_in, caps.get("d_in"), seed),
        val=_subsample(pool.val, caps.get("val"), seed),
        test=_subsample(test, caps.get("test"), seed),
        held_out_types=L2_HELD_OUT_TYPES if level == "L2" else (),
    )
