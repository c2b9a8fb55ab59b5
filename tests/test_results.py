"""Result-file schema, validation messages and atomic writing."""

from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest

from derl_bench.results import (
    SCHEMA_VERSION,
    ResultSchemaError,
    hardware_info,
    load_result,
    result_schema,
    utc_now,
    validate_result,
    write_result,
)

COST = {"wall_seconds": 1.25, "inner_steps": 2, "rollouts": 8, "tokens": 512}


def good_result() -> dict:
    step = {
        "index": 0,
        "meta_reward": "g1 + g2",
        "canonical": "g1 + g2",
        "valid": True,
        "invalid_reason": None,
        "validation_success": 0.5,
        "reward": 0.5,
        "cost": dict(COST),
        "primitive_means": {"g1": 0.25, "g2": None},
        "cache_hit": False,
    }
    invalid = {
        **step,
        "index": 1,
        "meta_reward": "g1 +",
        "canonical": None,
        "valid": False,
        "invalid_reason": "syntax",
        "validation_success": None,
        "reward": -1.0,
        "primitive_means": {},
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "derl_bench_version": "0.1.0",
        "git_hash": "0" * 40,
        "env_id": "DERL-GSM8K-v0",
        "env_spec": {"id": "DERL-GSM8K-v0", "kwargs": {"preset": "smoke", "budget": 2}},
        "preset": "smoke",
        "data_hashes": {"gsm8k/train.jsonl": "a" * 64},
        "agent": {"name": "heuristic", "config": {"seed": 0}},
        "seed": 0,
        "budget": 2,
        "proposals_per_step": 2,
        "meta_steps": [step, invalid],
        "best": {"meta_reward": "g1 + g2", "canonical": "g1 + g2", "validation_success": 0.5},
        "test_success": 0.25,
        "n_test": 40,
        "test_cost": dict(COST),
        "total_cost": {**COST, "wall_seconds": 2.5},
        "hardware": hardware_info(),
        "started_at": "2026-01-02T03:04:05.678Z",
        "finished_at": utc_now(),
        "status": "finished",
        "error": None,
    }


def test_schema_is_valid_draft_2020_12():
    schema = result_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    # Every field is required except those files written before they existed lack, the
    # DERL-pop-only chained test and the table/surrogate-only fidelity source.
    optional = {
        "provenance",
        "fidelity",
        "distinct_effective_meta_rewards",
        "clock",
        "chained_test",
        "fidelity_source",
    }
    assert set(schema["required"]) == set(schema["properties"]) - optional


def test_good_result_validates_and_round_trips(tmp_path):
    obj = good_result()
    validate_result(obj)
    path = write_result(tmp_path / "deep" / "seed0.json", obj)
    assert load_result(path) == obj
    assert [p.name for p in path.parent.iterdir()] == ["seed0.json"]  # no temp file left


def _mutated(path: tuple, value=..., delete=False) -> dict:
    obj = good_result()
    target = obj
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "delete", "field"),
    [
        (("seed",), None, True, "seed"),
        (("test_success",), None, True, "test_success"),
        (("seed",), "0", False, "seed"),
        (("budget",), 0, False, "budget"),
        (("status",), "done", False, "status"),
        (("git_hash",), "not-a-hash", False, "git_hash"),
        (("meta_steps", 0, "validation_success"), 1.5, False, "meta_steps[0].validation_success"),
        (("meta_steps", 1, "valid"), "no", False, "meta_steps[1].valid"),
        (("meta_steps", 0, "cost"), None, True, "meta_steps[0].cost"),
        (("total_cost", "tokens"), 1.5, False, "total_cost.tokens"),
        (("hardware", "cuda"), None, True, "hardware.cuda"),
        (("started_at",), "yesterday", False, "started_at"),
        (("extra_field",), 1, False, "extra_field"),
    ],
)
def test_malformed_result_is_rejected_naming_the_field(path, value, delete, field):
    obj = _mutated(path, value, delete)
    with pytest.raises(ResultSchemaError) as info:
        validate_result(obj, source="x.json")
    assert info.value.field == field
    assert field in str(info.value)
    assert "x.json" in str(info.value)


def test_failed_status_needs_error_text_and_finished_needs_none():
    failed = good_result()
    failed["status"] = "failed"
    with pytest.raises(ResultSchemaError, match="error"):
        validate_result(failed)
    failed["error"] = "RuntimeError: boom"
    validate_result(failed)
    finished = good_result()
    finished["error"] = "RuntimeError: boom"
    with pytest.raises(ResultSchemaError, match="error"):
        validate_result(finished)


def test_write_result_refuses_invalid_and_keeps_old_file(tmp_path):
    path = tmp_path / "seed0.json"
    write_result(path, good_result())
    before = path.read_text()
    bad = copy.deepcopy(good_result())
    bad["seed"] = "zero"
    with pytest.raises(ResultSchemaError, match="seed"):
        write_result(path, bad)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["seed0.json"]


def test_write_result_rejects_nan(tmp_path):
    obj = good_result()
    obj["meta_steps"][0]["reward"] = float("nan")
    with pytest.raises(ValueError):
        write_result(tmp_path / "r.json", obj)
    assert not (tmp_path / "r.json").exists()


def test_load_result_validates(tmp_path):
    path = tmp_path / "r.json"
    obj = good_result()
    del obj["hardware"]
    path.write_text(json.dumps(obj))
    with pytest.raises(ResultSchemaError, match="hardware"):
        load_result(path)
    assert load_result(path, validate=False)["seed"] == 0


def old_v1_result() -> dict:
    """A result file as schema version 1 wrote it (``group_size``, before the rename)."""
    obj = good_result()
    obj["schema_version"] = 1
    obj["group_size"] = obj.pop("proposals_per_step")
    return obj


def test_schema_v1_files_still_load_as_the_current_version(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old_v1_result(), indent=2))
    record = load_result(path)
    assert record["schema_version"] == SCHEMA_VERSION == 2
    assert record["proposals_per_step"] == 2 and "group_size" not in record
    assert record["meta_steps"] == good_result()["meta_steps"]
    validate_result(record)


def test_schema_v2_rejects_the_old_field_name():
    obj = good_result()
    obj["group_size"] = obj.pop("proposals_per_step")
    with pytest.raises(ResultSchemaError, match="proposals_per_step"):
        validate_result(obj)
