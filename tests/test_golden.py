"""Golden results: every registered id's fixed `smoke` meta-step gives exactly the stored numbers.

See tests/golden_cases.py for what is stored and how to regenerate it. A failure names the
numbers that moved and the lock / package versions that changed since the golden file was made.
"""

from __future__ import annotations

import json

import pytest
from golden_cases import (
    COMPARED,
    differences,
    explain,
    golden_path,
    registered_ids,
    run_case,
)

pytestmark = [pytest.mark.slow, pytest.mark.data]


@pytest.mark.parametrize("env_id", registered_ids())
def test_golden_smoke_meta_step(env_id: str) -> None:
    path = golden_path(env_id)
    assert path.exists(), (
        f"{env_id} has no golden result; make one with "
        f".venv/bin/python tests/golden_cases.py --write {env_id}"
    )
    golden = json.loads(path.read_text())
    now = run_case(env_id)
    assert not differences(golden, now), explain(golden, now)


def test_golden_failure_names_the_lock_and_package_change() -> None:
    # What a user sees when a pinned version moved: the number and the version both named.
    golden = {
        "env_id": "DERL-X-v0",
        "provenance": {
            "lock_sha256": "a" * 64,
            "lock_file": "requirements/lock-py311.txt",
            "packages": {"transformers": "5.22.1", "torch": "2.13.0+cpu"},
            "cpu_model": "cpu",
        },
        **{key: 0 for key in COMPARED},
    }
    now = {
        **golden,
        "validation_success": 0.5,
        "provenance": {
            **golden["provenance"],
            "lock_sha256": "b" * 64,
            "packages": {"transformers": "5.24.0", "torch": "2.13.0+cpu"},
        },
    }
    assert differences(golden, now) == ["validation_success: golden 0, now 0.5"]
    message = explain(golden, now)
    assert "the lock changed" in message
    assert "transformers: golden 5.22.1, now 5.24.0" in message
    assert "torch" not in message.split("package version changed")[1]
    assert "--write DERL-X-v0" in message
