#!/usr/bin/env bash
# Regenerates the runs docs/benchmarks.md quotes, into docs/bench-run/ (every run's bench.md
# starts with its calibration table: one engine operation at a time, in that run):
#   - on each store (SQLite, the embedded Postgres): a closed run, 300 sagas at concurrency 50,
#     --repeat 3; an open-model sweep, 2 to 160 sagas/s, 20 s each (each style's knee);
#   - with SQLite among the stores: a ten-minute endurance run of each style at its knee in
#     the SQLite sweep just made (issue 21's targets: after two minutes no process grows more
#     than 2 MB/min, p95 drifts less than 10%); in-process the harness's memory includes the
#     services' or the worker's;
#   - with BENCH_DOCS_ATTACHED=1, each variant's endurance run again against a deployment of
#     its own from `saga-compare up` (a temporary state dir, stopped at the end), where every
#     process -- worker, each participant, tracker, servers -- has its own memory series.
# Publishable only when the 1-minute load average is below 0.5 at the start (bench.md says
# which it was). On a quiet 2-core machine: closed runs about 15 (SQLite) and 18 (Postgres)
# minutes, sweeps about 4 each, endurance about 12 per style (three styles), the waits for a
# quiet machine between runs a few minutes each: about an hour and a half in all, 25 minutes
# more with BENCH_DOCS_ATTACHED=1.
# Usage: bash scripts/bench_docs.sh [STORE ...]   (sqlite, postgres; default both)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/bench-run
ENDURANCE_S=600
BENCH=.venv/bin/saga-compare
settle() {
  # A run leaves the load average high for minutes after it ends; the next one waits for the
  # machine to be quiet again (below 0.4, at most ten minutes: the bench itself needs the
  # load under 0.5 when it starts) so that its bench.md can say it was.
  for _ in $(seq 120); do
    awk '{ exit !($1 < 0.4) }' /proc/loadavg && return 0
    sleep 5
  done
  echo "bench_docs: 1-minute load still $(cut -d' ' -f1 /proc/loadavg); going on" >&2
}
knee() {
  # The style's knee in the SQLite sweep (empty when no swept rate held).
  .venv/bin/python -c '
import json, sys
knee = json.load(open(sys.argv[1]))["knees"].get(sys.argv[2], {}).get("rate")
print("" if knee is None else f"{knee:g}")' "$OUT/sqlite-sweep/bench.json" "$1"
}
# "style name in bench.json" "bench options" "report folder suffix"
STYLES=(
  "choreography|--variant choreography|choreography"
  "orchestration/remote|--variant orchestration --activities remote|orchestration-remote"
  "orchestration/local|--variant orchestration --activities local|orchestration-local"
)
STORES="${*:-sqlite postgres}"
for s in $STORES; do
  settle
  $BENCH bench --store "$s" --activities both --orders 300 --concurrency 50 \
    --repeat 3 --report-dir "$OUT/$s-closed"
  settle
  $BENCH bench --store "$s" --activities both --rate 2,5,10,20,40,80,160 \
    --duration 20 --report-dir "$OUT/$s-sweep"
done
case " $STORES " in
  *" sqlite "*) ;;
  *) exit 0 ;;
esac
for entry in "${STYLES[@]}"; do
  IFS='|' read -r style options folder <<<"$entry"
  rate=$(knee "$style")
  if [ -z "$rate" ]; then
    echo "bench_docs: $style has no knee in $OUT/sqlite-sweep; no endurance run" >&2
    continue
  fi
  settle
  # shellcheck disable=SC2086  # the options are words
  $BENCH bench --store sqlite $options --rate "$rate" --duration "$ENDURANCE_S" \
    --no-cold-start --report-dir "$OUT/sqlite-endurance-$folder"
done
[ "${BENCH_DOCS_ATTACHED:-0}" = 1 ] || exit 0
state=$(mktemp -d /tmp/bench-docs-up-XXXXXX)
trap '$BENCH down --state-dir "$state" >/dev/null || true; rm -rf "$state"' EXIT
$BENCH up --store sqlite --state-dir "$state" >/dev/null
for entry in "${STYLES[@]:0:2}"; do
  IFS='|' read -r style options folder <<<"$entry"
  rate=$(knee "$style")
  [ -n "$rate" ] || continue
  settle
  $BENCH bench --attach "$state" --variant "${style%%/*}" --rate "$rate" \
    --duration "$ENDURANCE_S" --report-dir "$OUT/sqlite-endurance-attached-${style%%/*}"
done
