#!/usr/bin/env bash
# Produce the leaderboard's seed entries from real runs: the outcome-only baseline (the heuristic
# agent with budget 1: it proposes only g1) and each baseline agent at the track's budget, then
# pack, validate and render. The one documented command for seed entries (issue 17, item 6):
#
#   bash scripts/leaderboard_seed_entries.sh
#   ENV=DERL-Arith-v0 PRESET=cpu SEEDS=0,1,2,3,4 AGENTS="heuristic random evolution" \
#     bash scripts/leaderboard_seed_entries.sh
#
# Settings (environment variables, defaults in brackets): ENV [DERL-CartPole-v0], PRESET [smoke],
# FIDELITY [live] (table / surrogate need `derl-bench run --fidelity`, issue 15, and >= 5 seeds),
# BUDGET [16] (meta-steps: 16, 64 or 160), SEEDS [0,1,2], PROPOSALS [4], AGENTS
# ["heuristic random_tree"], EXECUTOR [sync], RUNS [runs/leaderboard-seed/FIDELITY-PRESET-BUDGET],
# LEADERBOARD [leaderboards]. `derl_pop` is skipped at table/surrogate fidelity: its warm starts
# need the checkpoints of live trainings, and without them it is `derl` (tables hold cold starts).
# Runs resume: rerunning after an interruption continues; finished runs are not retrained.
# Measured (2 shared CPU cores, defaults): outcome-only 3 x 1 meta-step 19 s wall; heuristic
# 3 x 16 meta-steps 2 min 48 s wall (67 s CPU); random 3 x 16 meta-steps: see CHANGELOG.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ENV="${ENV:-DERL-CartPole-v0}"
PRESET="${PRESET:-smoke}"
FIDELITY="${FIDELITY:-live}"
BUDGET="${BUDGET:-16}"
SEEDS="${SEEDS:-0,1,2}"
PROPOSALS="${PROPOSALS:-4}"
AGENTS="${AGENTS:-heuristic random_tree}"
EXECUTOR="${EXECUTOR:-sync}"
RUNS="${RUNS:-runs/leaderboard-seed/$FIDELITY-$PRESET-$BUDGET}"
LEADERBOARD="${LEADERBOARD:-leaderboards}"
BENCH=.venv/bin/derl-bench
AUTHORS="derl_bench maintainers"

# always explicit: `derl-bench run` without --fidelity is the main job (surrogate)
fidelity_args=(--fidelity "$FIDELITY")

method_name() {
  case "$1" in
    heuristic) echo "Heuristic rewards (g1, g1 + g2, average)" ;;
    random) echo "Random search (frozen Meta-Optimizer samples)" ;;
    random_tree) echo "Random expression trees (uniform)" ;;
    evolution) echo "Genetic programming" ;;
    cma) echo "CMA-ES (linear weights)" ;;
    llm_evolution) echo "LLM evolution (SmolLM2-135M)" ;;
    derl) echo "DERL Meta-Optimizer" ;;
    derl_pop) echo "DERL-pop" ;;
    *) echo "$1" ;;
  esac
}

code_path() {
  case "$1" in
    random) echo "derl_bench/baselines/frozen_meta_optimizer.py" ;;
    random_tree) echo "derl_bench/baselines/random_search.py" ;;
    cma) echo "derl_bench/baselines/cma_es.py" ;;
    *) echo "derl_bench/baselines/$1.py" ;;
  esac
}

track="${FIDELITY}-${PRESET}-${BUDGET}"
mkdir -p "$LEADERBOARD/$ENV"

# The outcome-only baseline: GRPO under the paper's outcome reward g1 alone (one meta-step).
"$BENCH" run --env "$ENV" --agent heuristic --budget 1 --proposals 1 --seeds "$SEEDS" \
  --preset "$PRESET" "${fidelity_args[@]}" --out "$RUNS/outcome_only" --executor "$EXECUTOR" \
  --no-progress
IFS=, read -ra seed_list <<<"$SEEDS"
files=()
for seed in "${seed_list[@]}"; do files+=("$RUNS/outcome_only/$ENV/heuristic/seed$seed.json"); done
"$BENCH" leaderboard pack "${files[@]}" --method "Outcome only (g1)" --authors "$AUTHORS" \
  --code-url derl_bench/baselines/heuristic.py --role outcome_only_baseline --budget "$BUDGET" \
  --notes "The heuristic agent with budget 1: GRPO under g1 alone, the control of the track." \
  --out "$LEADERBOARD/$ENV/$track--outcome-only.json"

for agent in $AGENTS; do
  if [[ "$agent" == "derl_pop" && "$FIDELITY" != "live" ]]; then
    echo "skipping derl_pop at fidelity $FIDELITY: its warm starts need live checkpoints" >&2
    continue
  fi
  "$BENCH" run --env "$ENV" --agent "$agent" --budget "$BUDGET" --proposals "$PROPOSALS" \
    --seeds "$SEEDS" --preset "$PRESET" "${fidelity_args[@]}" --out "$RUNS/search" \
    --executor "$EXECUTOR" --no-progress
  files=()
  for seed in "${seed_list[@]}"; do files+=("$RUNS/search/$ENV/$agent/seed$seed.json"); done
  "$BENCH" leaderboard pack "${files[@]}" --method "$(method_name "$agent")" \
    --authors "$AUTHORS" --code-url "$(code_path "$agent")" --budget "$BUDGET" \
    --out "$LEADERBOARD/$ENV/$track--$agent.json"
done

"$BENCH" leaderboard validate "$LEADERBOARD"/*/*.json --against "$LEADERBOARD"
"$BENCH" leaderboard render "$LEADERBOARD"
