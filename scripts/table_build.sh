#!/usr/bin/env bash
# Run a long table build (`derl-bench fidelity build`) in the background and commit every Parquet
# shard it writes as soon as it is written, so a session that ends (or a machine that is
# replaced) loses at most the meta-steps in flight: the next `start` with the same arguments
# skips every (key, seed) already in the table.
#
#   bash scripts/table_build.sh start DERL-Arith-v2 cpu --seeds 0,1 \
#       --sample panel,sweep:36,corpus:40,random:60 --executor process --workers 2 --flush 4
#   bash scripts/table_build.sh status DERL-Arith-v2 cpu
#   bash scripts/table_build.sh stop DERL-Arith-v2 cpu         # after the next shard is written
#   bash scripts/table_build.sh stop DERL-Arith-v2 cpu --now   # at once (loses the meta-steps in flight)
#
# ENV is the versioned id (the table folder is derl_bench/fidelity/tables/ENV-PRESET); the
# arguments after PRESET go to `derl-bench fidelity build` unchanged (not --out: the shipped
# tables only). The build runs with one BLAS/OpenMP thread per worker (OMP_NUM_THREADS=1), as
# the shipped tables were built. Each shard is committed alone (`git commit -- SHARD`, nothing
# else staged goes with it), its message listing the entries' canonical meta-rewards, seeds,
# validation and test success. Logs and process ids: runs/table-build/ENV-PRESET/.
# Needs the virtual environment (bash scripts/bootstrap.sh) and a git checkout.
set -euo pipefail
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "$SELF")/.."
ROOT="$(pwd)"

usage() {
  sed -n '2,19p' "$SELF" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[[ $# -ge 3 ]] || usage
cmd="$1" ENV="$2" PRESET="$3"
shift 3
TABLE="derl_bench/fidelity/tables/$ENV-$PRESET"
STATE="runs/table-build/$ENV-$PRESET"
mkdir -p "$STATE"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
trained_lines() { grep -c ' trained, ' "$STATE/build.log" 2>/dev/null || true; }

watch_shards() {
  # Runs in the background (`_watch`): every 60 s, commit the table's new (untracked) shards;
  # exits once the build has ended and its last shards are committed.
  while true; do
    running=0
    alive "$STATE/build.pid" && running=1
    mapfile -t new < <(git status --porcelain --untracked-files=all -- "$TABLE" \
      | awk '$1 == "??" {print $2}' | grep -E 'entries-[0-9]+\.parquet$' | sort || true)
    if [[ ${#new[@]} -gt 0 ]]; then
      total=$(find "$TABLE" -maxdepth 1 -name 'entries-*.parquet' | wc -l)
      names=$(for f in "${new[@]}"; do basename "$f"; done | paste -sd' ')
      summary=$(.venv/bin/python - "${new[@]}" <<'PY' || echo "(entries not read)"
import sys

import pandas as pd

parts = []
for path in sys.argv[1:]:
    for row in pd.read_parquet(path).itertuples():
        test = "-" if pd.isna(row.test_success) else f"{row.test_success:.3f}"
        parts.append(f"{row.canonical} s{row.seed} val {row.validation_success:.3f} test {test}")
print("; ".join(parts))
PY
)
      if git add -- "${new[@]}" \
        && git commit -q -m "$ENV $PRESET table: shard(s) $names ($total shards): $summary" \
          -- "${new[@]}"; then
        echo "$(date -u +%FT%TZ) committed $names"
      fi
    elif [[ $running -eq 0 ]]; then
      echo "$(date -u +%FT%TZ) build ended, its shards committed; watcher stops"
      exit 0
    fi
    sleep 60
  done
}

case "$cmd" in
  start)
    if alive "$STATE/build.pid"; then
      echo "a build of $ENV $PRESET is running (pid $(cat "$STATE/build.pid")); stop it first" >&2
      exit 1
    fi
    for a in "$@"; do
      [[ "$a" != --out* ]] || { echo "--out is not for this script (shipped tables only)" >&2; exit 2; }
    done
    [[ -x .venv/bin/derl-bench ]] || { echo "no .venv: run bash scripts/bootstrap.sh" >&2; exit 1; }
    echo "=== start $(date -u +%FT%TZ): derl-bench fidelity build --env $ENV --preset $PRESET $*" \
      >> "$STATE/build.log"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 setsid nohup .venv/bin/derl-bench fidelity build \
      --env "$ENV" --preset "$PRESET" "$@" >> "$STATE/build.log" 2>&1 < /dev/null &
    echo $! > "$STATE/build.pid"
    if ! alive "$STATE/watch.pid"; then
      setsid nohup bash "$SELF" _watch "$ENV" "$PRESET" >> "$STATE/watch.log" 2>&1 \
        < /dev/null &
      echo $! > "$STATE/watch.pid"
    fi
    echo "started (pid $(cat "$STATE/build.pid")); log: $ROOT/$STATE/build.log"
    ;;
  status)
    if alive "$STATE/build.pid"; then echo "running (pid $(cat "$STATE/build.pid"))"; else echo "not running"; fi
    echo "shards: $(find "$TABLE" -maxdepth 1 -name 'entries-*.parquet' 2>/dev/null | wc -l)," \
      "uncommitted: $(git status --porcelain --untracked-files=all -- "$TABLE" | grep -c 'entries-' || true)"
    grep -E ' trained, |^===' "$STATE/build.log" 2>/dev/null | tail -2 || true
    ;;
  stop)
    if ! alive "$STATE/build.pid"; then
      echo "no build of $ENV $PRESET is running"
    else
      if [[ "${1:-}" != "--now" ]]; then
        before=$(trained_lines)
        echo "waiting for the next shard (log: $STATE/build.log) ..."
        while alive "$STATE/build.pid" && [[ "$(trained_lines)" == "$before" ]]; do sleep 10; done
      fi
      if alive "$STATE/build.pid"; then
        pid=$(cat "$STATE/build.pid")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 30); do alive "$STATE/build.pid" || break; sleep 2; done
        echo "=== stopped $(date -u +%FT%TZ)" | tee -a "$STATE/build.log"
      else
        echo "the build ended on its own"
      fi
    fi
    # The watcher commits what is left and exits on its own; wait for it.
    for _ in $(seq 40); do alive "$STATE/watch.pid" || break; sleep 5; done
    if alive "$STATE/watch.pid"; then
      kill "$(cat "$STATE/watch.pid")" 2>/dev/null || true
    fi
    git status --short -- "$TABLE"
    ;;
  _watch) watch_shards ;;
  *) usage ;;
esac
