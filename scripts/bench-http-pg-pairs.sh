#!/bin/bash
# Paired `bench http --url` runs against PostgreSQL-backed nodes: binary A
# (before) and B (after) alternated, the side that goes first swapped every
# pair; each run starts its node on a fresh schema (dropped after) and a
# fresh views file. Prints per run the node's CPU ticks (1/100 s, from
# /proc, PostgreSQL's own CPU not included) and the requests it served (the
# mix plus the hot reads), so CPU per request = ticks * 10000 / req µs.
# usage: scripts/bench-http-pg-pairs.sh A_BINARY B_BINARY PAIRS [postgres URL without search_path]
A=$1; B=$2; N=${3:-3}; PG=${4:-postgres://postgres@127.0.0.1:5432/test}
for i in $(seq 1 $N); do
  if [ $((i%2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for side in $order; do
    bin=$A; [ $side = B ] && bin=$B
    sch=pgh_$(echo $side | tr AB ab)${i}_$$
    psql -q "$PG" -c "DROP SCHEMA IF EXISTS $sch CASCADE; CREATE SCHEMA $sch" >/dev/null 2>&1
    d=$(mktemp -d)
    GOGC=400 $bin serve --listen 127.0.0.1:18099 --db "$PG?search_path=$sch" --views $d/v.views --log-level error 2>$d/err &
    pid=$!
    for k in $(seq 1 100); do curl -sf http://127.0.0.1:18099/readyz >/dev/null && break; sleep 0.2; done
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    $bin bench http --url http://127.0.0.1:18099 --duration 10s > $d/out.txt 2>&1
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    kill $pid; wait $pid 2>/dev/null
    req=$(awk '$2=="all"{a=$3} $2=="hot_read"{h=$3} END{print a+h}' $d/out.txt); rps=$(awk '$2=="all"{print $4}' $d/out.txt)
    p99=$(awk '$2=="read_target"{print $7}' $d/out.txt); wp99=$(awk '$2=="write"{print $7}' $d/out.txt)
    echo "pair $i $side ticks=$((t1-t0)) req=$req rps=$rps target_p99=$p99 write_p99=$wp99 load=$(cut -d' ' -f1 /proc/loadavg)"
    psql -q "$PG" -c "DROP SCHEMA $sch CASCADE" >/dev/null 2>&1; rm -rf "$d"
  done
done
