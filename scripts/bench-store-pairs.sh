#!/bin/sh
# Paired runs of `ledger bench store`: binary A (before) and B (after)
# alternated, the side that goes first swapped every pair, so that both see
# the same minutes of a shared machine. Each run prints, per appender count,
# the ledger's appends/s and its ratio to the baseline of the same run; at
# the end come, per appender count, the medians of A's and B's ratios and
# of B's rate over A's, pair by pair, with min-max. Each run's full output
# stays in $OUT (default /tmp/store-pair.PID).
# usage: scripts/bench-store-pairs.sh A_BINARY B_BINARY PAIRS [bench store flags...]
# e.g.:  scripts/bench-store-pairs.sh /tmp/before /tmp/after 6 --appenders 256 --events 30000
set -eu
A=$1; B=$2; N=$3; shift 3
out=${OUT:-/tmp/store-pair.$$}; mkdir -p "$out"
for i in $(seq 1 "$N"); do
  if [ $((i % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for side in $order; do
    if [ "$side" = A ]; then bin=$A; else bin=$B; fi
    "$bin" bench store "$@" > "$out/$side$i.txt" 2>&1
    # "ledger append, N appenders  log  appends  rate  min-max  per-commit  ratio  min-max"
    awk -v i="$i" -v s="$side" '/ledger append,/ {print "pair", i, s, "appenders=" $3, "rate=" $7, "ratio=" $10}' "$out/$side$i.txt"
  done
done | tee "$out/summary.txt"
awk "$(cat "$(dirname "$0")/median.awk")"'
  { split($4, a, "="); split($5, r, "="); split($6, q, "="); k = a[2]
    rate[$2, $3, k] = r[2]; ratio[k, $3] = ratio[k, $3] " " q[2]; ks[k] = 1; pairs[$2] = 1 }
  END {
    for (k in ks) {
      rr = ""
      for (p in pairs) if ((p, "A", k) in rate && rate[p, "A", k] > 0) rr = rr " " rate[p, "B", k] / rate[p, "A", k]
      print k ": A ratio " med(ratio[k, "A"]) ", B ratio " med(ratio[k, "B"]) ", B/A appends/s " med(rr)
    }
  }' "$out/summary.txt"
