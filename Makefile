# Interaction Ledger. go-sqlite3 needs cgo, so every target builds with it.
export CGO_ENABLED := 1
GO        ?= go
DB        ?= ./data/ledger.db
BIN       := bin/ledger
PKGS      := ./...

.PHONY: run build test test-unit test-web web-build fuzz test-short bench lint fmt clean

## run: start the server on an embedded SQLite file (./data/ledger.db).
run: build
	./$(BIN) serve --db $(DB)

## build: compile the ledger binary into bin/.
build:
	$(GO) build -o $(BIN) ./cmd/ledger

## test: the whole test suite, race detector on, nothing cached, then every fuzz target, then
## the front end's tests (web/: Vitest against a real `ledger serve`, Chromium).
test: test-unit fuzz test-web

## test-web: install the front end's npm packages from web/package-lock.json and run its tests:
## typecheck, unit tests of the client and bindings, the generated-files checks (OpenAPI types,
## the committed demo build) and the browser tests (headless /usr/bin/chromium).
test-web:
	cd web && npm ci --no-audit --no-fund && npm test

## web-build: regenerate the OpenAPI types and rebuild the demo into web/demo/dist (commit both).
web-build:
	cd web && npm ci --no-audit --no-fund && npm run gen && npm run build

## test-unit: the unit and end-to-end tests, race detector on, nothing cached (among them the
## OpenAPI 3.1 validation of /openapi.json and of real responses, in adapters/httpapi).
test-unit:
	$(GO) test -race -count=1 -timeout 9m $(PKGS)

## fuzz: run every Fuzz function of the module for FUZZTIME each (seed corpora in testdata/fuzz).
## go1.26's fuzz coordinator can fail a run with a bare "context deadline exceeded" at the end of
## -fuzztime (golang/go#75804, fixed in go1.27): that alone, with no failing input written, is not
## a finding and is reported, not failed.
FUZZTIME ?= 3s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## test-short: the quick subset (skips the long model and crash tests).
test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: Go benchmarks of the store and projections, then a short `ledger bench` of each kind
## (the README's Performance section gives the longer runs behind its figures).
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2x -count 1 ./adapters/sqlite/ ./projections/...
	./$(BIN) bench store --pairs 3 --prefill 20000 --events 30000 --one-per-tx-events 2000
	./$(BIN) bench http --duration 5s
	./$(BIN) bench http --duration 5s --rate 10000 --floor
	./$(BIN) bench baseline --duration 5s
	./$(BIN) bench rebuild --events 300000

## lint: gofmt, go vet, import-direction rules, staticcheck when installed.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	@./scripts/check-imports.sh
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck $(PKGS); fi

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data
