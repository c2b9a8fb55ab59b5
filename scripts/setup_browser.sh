#!/usr/bin/env bash
# Install the browser the leaderboard page test drives (tests/test_leaderboard_browser.py):
# Debian's chromium at /usr/bin/chromium, driven by playwright's Python package from the lock.
# Idempotent: does nothing when /usr/bin/chromium exists. Never runs `playwright install` (that
# downloads a browser build from the internet). Called by scripts/run_tests.sh.
#
#   bash scripts/setup_browser.sh
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: $CHROMIUM is missing and there is no apt-get here; install Chromium so" \
    "that $CHROMIUM exists (the browser test fails without it)." >&2
  exit 0
fi
if [[ "$(id -u)" == 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "setup_browser: $CHROMIUM is missing and installing it needs root; run" \
    "'sudo apt-get install -y chromium' (the browser test fails without it)." >&2
  exit 0
fi
echo "setup_browser: installing Debian's chromium (apt-get) for the leaderboard page test" >&2
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq chromium
