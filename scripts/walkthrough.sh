#!/usr/bin/env bash
# Prints the README's curl walkthrough: starts `ledger serve` on a fresh
# temp file and runs every endpoint once, echoing each command and its real
# output. Usage: scripts/walkthrough.sh [path/to/ledger]
set -euo pipefail
bin=${1:-bin/ledger}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base=http://127.0.0.1:$port
"$bin" serve --listen 127.0.0.1:$port --db "$dir/ledger.db" --log-level error &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "$base/readyz" >/dev/null; do sleep 0.1; done

show() { # show "description" 'curl arguments, $base for the server'
  [ -n "$1" ] && echo "# $1"
  echo "\$ curl ${2//\$base/localhost:8080}"
  { eval "curl -s ${2//\$base/$base}" || true; } | sed "s#$base#localhost:8080#g"
  echo; echo
}
show "u42 likes article a-1 (PUT turns a kind on)" '-X PUT $base/v1/targets/article/a-1/like/u42'
show "and collects it, with metadata and an idempotency key" \
  "-X PUT -H 'Idempotency-Key: req-7' -H 'Content-Type: application/json' -d '{\"metadata\":{\"source\":\"web\"}}' \$base/v1/targets/article/a-1/collect/u42"
show "liking again changes nothing" '-X PUT $base/v1/targets/article/a-1/like/u42'
show "u7 likes it too" '-X PUT $base/v1/targets/article/a-1/like/u7'
show "u42 un-likes (DELETE turns it off), only if the stream is still at version 2" \
  "-X DELETE -H 'If-Match: \"v2\"' \$base/v1/targets/article/a-1/like/u42"
show "a stale If-Match is refused" "-X DELETE -H 'If-Match: \"v1\"' \$base/v1/targets/article/a-1/collect/u42"
show "read one target as u42, not older than position 4 (headers shown)" "-i '\$base/v1/targets/article/a-1?viewer=u42&min_position=4'"
etag=$(curl -s -o /dev/null -D - "$base/v1/targets/article/a-1?viewer=u42" | tr -d '\r' | sed -n 's/^Etag: //Ip')
show "revalidate with that ETag: 304, no body" "-i -H 'If-None-Match: $etag' '\$base/v1/targets/article/a-1?viewer=u42'"
show "a feed page: several targets and one viewer in one call" "'\$base/v1/targets?t=article/a-1&t=article/a-2&viewer=u7'"
show "who liked a-1, newest first" "'\$base/v1/targets/article/a-1/like?limit=1'"
show "what u42 collected" "'\$base/v1/users/u42/collect?type=article'"
show "history as JSON" "'\$base/v1/events?after=0&limit=2'"
show "history as NDJSON, filtered" "-H 'Accept: application/x-ndjson' '\$base/v1/events?user=u7'"
show "history as CSV" "-H 'Accept: text/csv' '\$base/v1/events?kind=collect'"
show "the live stream, replayed from position 3 (curl stops after 1 s)" "-N --max-time 1 '\$base/v1/events/stream?after=3'"
show "a malformed id is a 400 problem" '$base/v1/targets/article/a%20b'
show "an unconfigured kind is 404" '-X PUT $base/v1/targets/article/a-1/follow/u42'
show "liveness and readiness" '$base/healthz'
show "" '$base/readyz'
show "Prometheus metrics (a few of the ledger's own)" "\$base/metrics | grep -E '^ledger_(projection_applied_position|projection_lag_events|store_appended_events_total|sse_clients)'"
show "the OpenAPI document" "\$base/openapi.json | head -c 120"
