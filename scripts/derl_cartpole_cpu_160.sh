#!/usr/bin/env bash
# Issue 16's acceptance run: the `derl` agent (LLM Meta-Optimizer, cpu preset: SmolLM2-135M-Instruct
# + LoRA) on DERL-CartPole-v0 at the `cpu` inner preset, live, 160 meta-steps = 20 outer iterations
# of 8 proposals, the round's 8 trainings on a 2-process pool. Measured: 17 min wall on 2 cores
# (docs/results/derl-cartpole-cpu-160; 20 outer updates of 14.9 s each).
#
#   bash scripts/derl_cartpole_cpu_160.sh            # start, or resume after an interruption
#   bash scripts/derl_cartpole_cpu_160.sh snapshot   # make the store safe to commit mid-run
#
# Resumable: the run store (OUT/DERL-CartPole-v0/derl/seed0.sqlite) keeps every finished meta-step;
# rerunning continues (the agent replays its outer updates from the stored results; nothing is
# retrained). The result file's clock gives the working wall time over all sessions
# (`wall_seconds`) and the outer-update time (`update_seconds` over `updates`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-docs/results/derl-cartpole-cpu-160}"
STORE="$OUT/DERL-CartPole-v0/derl/seed0.sqlite"

if [[ "${1:-}" == "snapshot" ]]; then
  # fold the write-ahead log into the store file (readers and the running writer are unaffected)
  .venv/bin/python -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
print(c.execute('PRAGMA wal_checkpoint(PASSIVE)').fetchone()); \
print(c.execute('SELECT COUNT(*) FROM meta_step').fetchone()[0], 'meta-steps stored')" "$STORE"
  exit 0
fi

.venv/bin/derl-bench run --agent derl --env DERL-CartPole-v0 --preset cpu --budget 160 \
  --proposals 8 --seeds 0 --fidelity live --executor process --out "$OUT" --no-progress
