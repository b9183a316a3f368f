#!/bin/bash
# Interleaved before/after runs of thirty sagas at concurrency 1 (issue 21), spans kept.
# before = choreography/tracker/queries.py as of 8c22cdd (main's), after = ef90d7c's fix;
# the file is swapped between runs (the tree is dirty during the "before" runs).
# Usage, from the repository root: bash docs/bench-run/sqlite-c1-anatomy/ab.sh [PAIRS]
set -u
out=docs/bench-run/sqlite-c1-anatomy
pairs=${1:-7}
file=choreography/tracker/queries.py
git show 8c22cdd:$file > /tmp/c1-queries.before.py
git show ef90d7c:$file > /tmp/c1-queries.after.py
: > $out/runs.txt
for i in $(seq 1 "$pairs"); do
  for v in before after; do
    cp /tmp/c1-queries.$v.py $file
    echo "$v$i start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/runs.txt
    .venv/bin/saga-compare bench --store sqlite --variant choreography --orders 30 \
      --concurrency 1 --no-cold-start --no-calibrate --keep-traces \
      --report-dir $out/$v$i > $out/$v$i.out 2>&1
    rc=$?
    gzip -f $out/$v$i/traces-run1-choreography.jsonl
    echo "$v$i end $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) rc=$rc" >> $out/runs.txt
  done
done
git checkout -- $file
