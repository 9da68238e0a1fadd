#!/bin/sh
# Paired runs of `ledger bench http --duration 10s`: binary A (before) and
# B (after) alternated, the side that goes first swapped every pair, so
# that both see the same minutes of a shared machine. Prints one line per
# run (server CPU per request, req/s, p99s, load average), the ratio B/A
# of server CPU per request pair by pair, then for CPU and each p99 the
# median (min-max) of A's runs, of B's, and of B/A pair by pair. Each
# run's full output stays in $OUT (default /tmp/http-pair.PID).
# usage: scripts/bench-http-pairs.sh A_BINARY B_BINARY PAIRS [bench http flags...]
A=$1; B=$2; N=$3; shift 3
out=${OUT:-/tmp/http-pair.$$}; mkdir -p "$out"
for i in $(seq 1 "$N"); do
  if [ $((i % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for side in $order; do
    if [ "$side" = A ]; then bin=$A; else bin=$B; fi
    "$bin" bench http --duration 10s "$@" > "$out/$side$i.txt" 2>&1
    cpu=$(grep -o 'CPU [0-9.]*µs per request' "$out/$side$i.txt" | grep -o '[0-9.]*')
    rps=$(awk '$2=="all"{print $4}' "$out/$side$i.txt")
    p99=$(awk '$2=="read_target"{print $7}' "$out/$side$i.txt")
    fp99=$(awk '$2=="read_feed"{print $7}' "$out/$side$i.txt")
    wp99=$(awk '$2=="write"{print $7}' "$out/$side$i.txt")
    echo "pair $i $side cpu_us=$cpu req_s=$rps target_p99=$p99 feed_p99=$fp99 write_p99=$wp99 load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done | tee "$out/summary.txt"
awk '{split($4,a,"="); c[$2" "$3]=a[2]} END {for (k in c) {split(k,p," "); if (p[2]=="A") print "pair " p[1] " B/A cpu ratio " c[p[1]" B"]/c[k]}}' "$out/summary.txt" | sort
# Medians (min-max) of each side's figures and of B/A pair by pair.
awk "$(cat "$(dirname "$0")/median.awk")"'
  { for (f = 4; f <= 8; f++) { split($f, kv, "="); v = kv[2]; sub(/ms$/, "", v); name[f] = kv[1]
      val[$2, $3, f] = v; side[$3, f] = side[$3, f] " " v } ; pairs[$2] = 1 }
  END {
    for (f = 4; f <= 8; f++) {
      if (f == 5) continue
      r = ""
      for (p in pairs) if (val[p, "A", f] > 0) r = r " " val[p, "B", f] / val[p, "A", f]
      print name[f] ": A " med(side["A", f]) ", B " med(side["B", f]) ", B/A " med(r)
    }
  }' "$out/summary.txt"
