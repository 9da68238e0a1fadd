#!/usr/bin/env bash
# Runs every Fuzz function of the module for FUZZTIME (default 3s) each,
# starting from the seed corpora in each package's testdata/fuzz.
#
# Go 1.26's fuzzer can end a run with a bare "context deadline exceeded"
# when the time runs out (golang/go#75804). That case, and only when no
# failing input was written, is reported and does not fail the run; any
# other failure does.
set -uo pipefail
fuzztime=${FUZZTIME:-3s}
go=${GO:-go}
# fuzzbuild leaves out tests whose dependencies are costly to instrument
# and have no fuzz target (the OpenAPI validation, run by test-unit).
tags=fuzzbuild
# The targets are found in each package's test files under those tags
# (go list, which compiles nothing), not with go test -list: that would
# build every test binary once more, uninstrumented, only to list them
# (~2 minutes of a cold build cache, SQLite's C among it).
files=$($go list -tags "$tags" -f \
  '{{.ImportPath}}{{range .TestGoFiles}} {{$.Dir}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$.Dir}}/{{.}}{{end}}' ./...) ||
  { echo "$files"; exit 1; }
targets=$(while read -r pkg paths; do
  [ -n "$paths" ] || continue
  # shellcheck disable=SC2086 # paths is a list of file names without spaces
  fns=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)([A-Za-z_][A-Za-z0-9_]* \*testing\.F) {$/\1/p' $paths | sort -u)
  # shellcheck disable=SC2086
  if [ "$(grep -c '^func Fuzz' $paths | awk -F: '{n += $NF} END {print n}')" != "$(grep -c . <<<"$fns")" ]; then
    echo "fuzz: $pkg: a func Fuzz... that is not func FuzzName(x *testing.F) {" >&2
    exit 1
  fi
  [ -z "$fns" ] || echo "$pkg $(tr '\n' ' ' <<<"$fns")"
done <<<"$files") || exit 1
[ -n "$targets" ] || { echo "fuzz: no fuzz targets found"; exit 1; }
while read -r pkg fns; do
  for fn in $fns; do
    echo "fuzz $pkg $fn"
    out=$($go test -tags "$tags" -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "$pkg" 2>&1); rc=$?
    grep -v '^fuzz: elapsed' <<<"$out"
    [ $rc -eq 0 ] && continue
    if grep -q 'Failing input written' <<<"$out" || ! grep -qx '    context deadline exceeded' <<<"$out"; then
      exit 1
    fi
    echo "fuzz: $fn: only the go1.26 fuzztime deadline race (golang/go#75804), no failing input"
  done
done <<<"$targets"
