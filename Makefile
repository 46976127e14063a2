# echain-indexer. `make demo` runs everything locally; `make test` is what CI runs.
GO        ?= go
BIN       ?= bin/echain-indexer
# The developer tools (dev chain, demo): a binary of their own, so that BIN links no node.
DEVBIN    ?= bin/echain-dev
PKGS      ?= ./...
# Benchmarks: `make bench BENCH=Backfill BENCHTIME=3x`.
BENCH     ?= .
BENCHTIME ?= 1s
TESTFLAGS ?=

.PHONY: all build build-dev demo test check-generated vet fmt-check fmt unit bench bench-ponder contracts graphiql generate clean

all: build

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/echain-indexer

build-dev:
	$(GO) build -buildvcs=auto -o $(DEVBIN) ./cmd/echain-dev

# The demo prints an echain-indexer command line (status) beside its own binary: build both.
demo: build build-dev
	./$(DEVBIN) demo

# Every check CI makes: generated files current, gofmt, go vet, then every test under the race
# detector (PostgreSQL: $$DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster).
test: check-generated fmt-check vet unit

unit:
	$(GO) test -race -count=1 -timeout 45m $(TESTFLAGS) $(PKGS)

# `go generate` must change nothing: the tree is fingerprinted before and after (this works on a
# clean checkout and on a working tree with uncommitted edits alike).
check-generated:
	@before=$$(git ls-files -co --exclude-standard | sort | xargs sha256sum 2>/dev/null | sha256sum); \
	$(GO) generate ./... || exit 1; \
	after=$$(git ls-files -co --exclude-standard | sort | xargs sha256sum 2>/dev/null | sha256sum); \
	if [ "$$before" != "$$after" ]; then \
		echo "generated files were stale and have been regenerated: review and commit them"; \
		git status --short; exit 1; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt'ed (run make fmt):"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files -co --exclude-standard '*.go')

vet:
	$(GO) vet $(PKGS)

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem -count=1 -timeout 60m $(PKGS)

# BenchmarkBackfillGeth's archive run with the Ponder yardstick after the indexer (needs node and
# npm: installs bench/ponder's locked dependencies first). See bench/ponder/README.md.
bench-ponder:
	cd bench/ponder && npm ci --no-audit --no-fund
	ECHAIN_BENCH_PONDER=$(CURDIR)/bench/ponder $(GO) test -run '^$$' -bench 'BenchmarkBackfillGeth/archive' -benchtime 1x -count=1 -timeout 60m ./indexer/

# Recompiles the dev-chain contracts with the pinned solc into abis/build/ (needs node and npm).
contracts:
	contracts/build.sh

# Re-fetches the GraphiQL page's embedded assets from npm (versions in the script).
graphiql:
	api/graphql/engine/graphiql/fetch.sh

generate:
	$(GO) generate ./...

clean:
	rm -rf bin
