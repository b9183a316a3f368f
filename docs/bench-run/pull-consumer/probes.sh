#!/usr/bin/env bash
# The two probes of this folder, interleaved, ROUNDS times; raw lines into fetch_boundary.txt
# and chain_cpu.txt, each run preceded by the time and the load average.
set -euo pipefail
here=$(dirname "$0"); rounds=${1:-3}
py=/work/wt/transport/.venv/bin/python
{ echo "# commit $(git -C "$here" rev-parse --short HEAD); fetch_boundary.py MODE 0.2 300"; } > "$here/fetch_boundary.txt"
{ echo "# commit $(git -C "$here" rev-parse --short HEAD); chain_cpu.py MODE 400"; } > "$here/chain_cpu.txt"
for round in $(seq 1 "$rounds"); do
    for mode in naive puller; do
        echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$here/fetch_boundary.txt"
        "$py" "$here/fetch_boundary.py" "$mode" 0.2 300 2>/dev/null >> "$here/fetch_boundary.txt"
    done
    for mode in old one puller; do
        echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$here/chain_cpu.txt"
        "$py" "$here/chain_cpu.py" "$mode" 400 2>/dev/null | grep -E "^(old|one|puller):" >> "$here/chain_cpu.txt"
    done
done
