#!/usr/bin/env bash
# Run the test suite: set up (or reuse) .venv, then pytest. Arguments go to pytest.
#
#   bash scripts/run_tests.sh              # everything but the `gpu` marker (pyproject addopts)
#   bash scripts/run_tests.sh -m "not slow and not data" -x
#
# pytest's exit code 5 (no test collected) counts as a failure here.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
# Debian's chromium for the leaderboard page test (installed once; see the script).
bash scripts/setup_browser.sh

# The layer contract (.importlinter, DESIGN.md "Layers"): a back-edge fails here, before pytest.
.venv/bin/lint-imports

status=0
# Two pytest workers (pytest-xdist), a test file per worker at a time: the inner trainings pin
# torch to one thread (numbers independent of the core count), so one process uses one core.
.venv/bin/python -m pytest -q -n 2 --dist loadfile --durations=15 "$@" || status=$?
if (( status == 5 )); then
  echo "run_tests: pytest collected no tests (exit code 5); treating that as a failure." >&2
  exit 1
fi
exit "$status"
