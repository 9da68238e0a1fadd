# Interaction Ledger. go-sqlite3 needs cgo, so every target builds with it.
export CGO_ENABLED := 1
GO        ?= go
DB        ?= ./data/ledger.db
BIN       := bin/ledger
PKGS      := ./...

.PHONY: run build test test-short bench lint fmt clean

## run: start the server on an embedded SQLite file (./data/ledger.db).
run: build
	./$(BIN) serve --db $(DB)

## build: compile the ledger binary into bin/.
build:
	$(GO) build -o $(BIN) ./cmd/ledger

## test: the whole test suite, race detector on, nothing cached.
test:
	$(GO) test -race -count=1 -timeout 9m $(PKGS)

## test-short: the quick subset (skips the long model and crash tests).
test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: Go benchmarks of the store and projections.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x -count 1 ./adapters/sqlite/ ./projections/...

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
