"""Shared fixtures: an isolated cache for the tiny LM, offline Hugging Face settings."""

from __future__ import annotations

import os

import pytest

import derl_bench  # noqa: F401  (pins the x86 instruction set before any test runs torch)

# No test may reach the Hugging Face Hub (this machine has no access; CI neither).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Build the tiny LM (and anything else cached) under a session temp folder."""
    if "DERL_BENCH_TEST_CACHE" in os.environ:  # opt-in reuse across local runs
        os.environ["DERL_BENCH_CACHE"] = os.environ["DERL_BENCH_TEST_CACHE"]
    else:
        os.environ["DERL_BENCH_CACHE"] = str(tmp_path_factory.mktemp("derl_cache"))
