#!/usr/bin/env bash
# The baseline of the PostgreSQL figures in the README: pgbench running the
# "fixed legacy" design (scripts/pgbench-legacy.sql: physical delete or
# insert plus the target's count row, one durable transaction per toggle,
# Zipf-distributed targets) with CLIENTS clients for SECONDS seconds, in a
# schema of its own that is dropped afterwards.
#   scripts/pgbench-legacy.sh [URL] [CLIENTS] [SECONDS]
set -euo pipefail
url=${1:-postgres://postgres@127.0.0.1:5432/test}
clients=${2:-64}
seconds=${3:-10}
schema="legacy_bench_$$"
sep='?'; [[ "$url" == *\?* ]] && sep='&'
psql -q "$url" -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA $schema;
CREATE TABLE $schema.legacy_likes (user_id int, target_id int, PRIMARY KEY (user_id, target_id));
CREATE TABLE $schema.legacy_counts (target_id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO $schema.legacy_counts SELECT g, 0 FROM generate_series(1, 10000) g;
SQL
trap 'psql -q "$url" -c "DROP SCHEMA $schema CASCADE"' EXIT
PGOPTIONS="-c search_path=$schema -c synchronous_commit=on" \
  pgbench -n -c "$clients" -j 2 -T "$seconds" -f "$(dirname "$0")/pgbench-legacy.sql" "$url" | grep -E 'tps|latency average'
