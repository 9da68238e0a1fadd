#!/usr/bin/env bash
# Import-direction rules (README, Architecture, "Packages"): domain imports only the standard
# library and google/uuid; projections never import adapters or cmd.
set -euo pipefail
mod=github.com/interactionledger/ledger
fail=0
deps=$(go list -deps ./domain/...)
for bad in watermill go-sqlite3 net/http "$mod/adapters" "$mod/projections" "$mod/cmd"; do
  if grep -q -- "$bad" <<<"$deps"; then
    echo "import rule: domain depends on $bad"; fail=1
  fi
done
other=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./domain/... | grep -v "^$mod/domain" | grep -v '^github.com/google/uuid$' || true)
if [ -n "$other" ]; then
  echo "import rule: domain may import only the standard library and google/uuid, found:"; echo "$other"; fail=1
fi
if [ -d projections ]; then
  pdeps=$(go list -deps ./projections/... 2>/dev/null || true)
  for bad in "$mod/adapters" "$mod/cmd" net/http; do
    if grep -q -- "$bad" <<<"$pdeps"; then
      echo "import rule: projections depends on $bad"; fail=1
    fi
  done
fi
exit $fail
