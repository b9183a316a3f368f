#!/usr/bin/env bash
# Interleaved A/B of the choreography's saga latency: A = the hand-written Puller (main at
# 514617e), B = nats-py's fetch (c381200). Each tree is a `git archive` of its commit in
# /tmp/bench-a and /tmp/bench-b, run with the same .venv; ROUNDS rounds, the order alternating
# (AB, BA, ...). Usage: run.sh OUT ROUNDS BENCH-ARGS...
set -euo pipefail
out=$1; rounds=$2; shift 2
args=("$@")
venv=/work/wt/transport/.venv/bin/python
mkdir -p "$out"
run() {  # $1 = label, $2 = round
    local tree=/tmp/bench-${1,,}
    echo "$(date -u +%FT%TZ) $1 round $2 load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/runs.log"
    (cd "$tree" && PYTHONPATH="$tree" "$venv" -c \
        'import sys; from harness.cli.app import main; sys.argv[0] = "saga-compare"; main()' \
        bench -v choreography "${args[@]}" --json) > "$out/$1-$2.json" 2>> "$out/runs.log"
}
for round in $(seq 1 "$rounds"); do
    if (( round % 2 )); then order="A B"; else order="B A"; fi
    for label in $order; do
        run "$label" "$round"
    done
done
