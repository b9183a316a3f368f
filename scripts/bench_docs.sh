#!/usr/bin/env bash
# Regenerates the runs docs/benchmarks.md quotes: a closed run (--repeat 3) and an open-model
# sweep, on SQLite and on the embedded Postgres, and a five-minute endurance run on SQLite,
# into docs/bench-run/. Publishable only when the 1-minute load average is below 0.5 at the
# start (bench.md says which it was). Takes about an hour and a quarter on a quiet 2-core
# machine. Usage: bash scripts/bench_docs.sh [STORE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/bench-run
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
for store in "${@:-sqlite postgres}"; do
  for s in $store; do
    settle
    .venv/bin/saga-compare bench --store "$s" --activities both --orders 300 --concurrency 50 \
      --repeat 3 --report-dir "$OUT/$s-closed"
    settle
    .venv/bin/saga-compare bench --store "$s" --activities both --rate 2,5,10,20,40,80,160 \
      --duration 20 --report-dir "$OUT/$s-sweep"
  done
done
case " ${*:-sqlite postgres} " in
  *" sqlite "*)
    settle
    .venv/bin/saga-compare bench --store sqlite --rate 5 --duration 300 \
      --report-dir "$OUT/sqlite-endurance"
    ;;
esac
