"""Checkpoint folders of trained inner policies (DERL-pop's warm starts and chained test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from derl_bench.inner.checkpoints import checkpoint_path, save_checkpoint


def test_the_same_lineage_saves_to_the_same_folder_and_is_found_again(tmp_path: Path) -> None:
    lineage = {"parent": None, "meta_reward": "g1 + g2", "seed": 3, "note": "not in the key"}

    def write(folder: Path) -> None:
        (folder / "policy.pt").write_text("weights")

    first = save_checkpoint(tmp_path, lineage, write)
    again = save_checkpoint(tmp_path, {**lineage, "note": "other"}, write)
    other = save_checkpoint(tmp_path, {**lineage, "seed": 4}, write)
    assert first == again != other
    assert json.loads((Path(first) / "lineage.json").read_text())["note"] == "other"
    assert checkpoint_path(first, "policy.pt") == Path(first) / "policy.pt"
    assert checkpoint_path(first) == Path(first)  # a trainer that saves a whole folder
    with pytest.raises(KeyError):
        save_checkpoint(tmp_path, {"seed": 1}, lambda folder: None)


def test_a_missing_checkpoint_names_where_checkpoints_come_from(tmp_path: Path) -> None:
    saved = save_checkpoint(
        tmp_path, {"parent": None, "meta_reward": "g1", "seed": 0}, lambda folder: None
    )
    with pytest.raises(FileNotFoundError, match=r"policy\.pt.*keep_checkpoints"):
        checkpoint_path(saved, "policy.pt")  # the folder exists, the weights file does not
    with pytest.raises(FileNotFoundError, match="keep_checkpoints"):
        checkpoint_path(tmp_path / "no-such-checkpoint")
