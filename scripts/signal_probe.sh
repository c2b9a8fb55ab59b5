#!/usr/bin/env bash
# Probe inner-training settings of one id at `cpu` with a short panel on one seed: does GRPO
# under a sensible meta-reward raise the cold-started policy, and does -g1 lower it? Each
# setting is one `derl-bench signal` run with `--inner` overrides; its Markdown/JSON go to
# docs/signal/probes/ENV/NAME/ and its cells to a table folder of their own (not shipped).
#
#   bash scripts/signal_probe.sh "lr1e-3|learning_rate=0.001" "kl0.1|beta=0.1"
#   ENV=DERL-ALFWorld-L2-v1 SEEDS=0,1 bash scripts/signal_probe.sh "base"
#
# Settings (environment variables, defaults in brackets): ENV [DERL-ScienceWorld-L2-v2],
# SEEDS [0], MR ["g1;g2 + g3 + g4;-g1"], EXECUTOR [process],
# TABLES [runs/probe-tables] (the cells; resumable).
# A spec is NAME|FIELD=JSON|FIELD=JSON...; "NAME" alone runs the preset as published.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ENV="${ENV:-DERL-ScienceWorld-L2-v2}"
SEEDS="${SEEDS:-0}"
MR="${MR:-g1;g2 + g3 + g4;-g1}"
EXECUTOR="${EXECUTOR:-process}"
TABLES="${TABLES:-runs/probe-tables}"
for spec in "$@"; do
  IFS='|' read -r -a parts <<< "$spec"
  name="${parts[0]}"
  args=()
  for kv in "${parts[@]:1}"; do args+=(--inner "$kv"); done
  echo "=== $name ${parts[*]:1} ($(date +%T))"
  .venv/bin/derl-bench signal --env "$ENV" --preset cpu --seeds "$SEEDS" --meta-rewards "$MR" \
    --executor "$EXECUTOR" --out "docs/signal/probes/$ENV/$name" --table-dir "$TABLES" \
    ${args[@]+"${args[@]}"}
done
