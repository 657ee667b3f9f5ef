# fraised: `make run` starts the server on the example schema; `make test`
# runs every check CI runs. Only Go (and Node/npm for the graphql-ws client
# test) are needed.

GO       ?= go
BIN      := bin/fraised
SCHEMA   ?= examples/schema.graphql
SOCK     ?= /tmp/fraised.sock
GOFILES  := $(shell find . -name '*.go' -not -path './perf/gqlgen/*' -not -path '*/node_modules/*')

.PHONY: all build run test fmt-check vet unit e2e-npm fuzz bench clean

all: build

build: $(BIN)

$(BIN): $(GOFILES) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/fraised

run: build
	@echo "fraised: ws://127.0.0.1:4000/graphql (graphql-transport-ws), publish on 127.0.0.1:4001 and $(SOCK)"
	@echo "  publish:   redis-cli -p 4001 PUBLISH events.demo '{\"seq\":1,\"ts\":1.5,\"body\":\"hello\"}'"
	@echo "         or  $(BIN) publish events.demo '{\"seq\":1,\"ts\":1.5,\"body\":\"hello\"}'"
	@echo "  subscribe: npm ci --prefix e2e/npm && node e2e/npm/subscribe.mjs events.demo"
	@echo "         or  any graphql-ws client: subscription { events(topic: \"events.demo\") { seq body } }"
	$(BIN) --schema $(SCHEMA) --publish-unix $(SOCK)

test: fmt-check vet unit e2e-npm

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path '*/node_modules/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

# The real npm clients against the real binary: graphql-ws and ioredis.
# Skipped with a notice on a machine without Node/npm, unless
# FRAISED_REQUIRE_NODE is set (.ci/run sets it). redis-py and go-redis run
# in `unit` (redis-py from Debian's python3-redis, which .ci/run installs).
e2e-npm: build
	@if ! command -v npm >/dev/null 2>&1 && [ -z "$$FRAISED_REQUIRE_NODE" ]; then \
		echo "e2e-npm: node/npm not installed; skipping the graphql-ws and ioredis client tests"; exit 0; fi; \
	set -e; cd e2e/npm && npm ci --no-audit --no-fund --loglevel=error && cd ../.. && \
	FRAISED_BIN=$(CURDIR)/$(BIN) FRAISED_NPM_E2E=1 $(GO) test -count=1 -run 'NPM|IORedis' ./e2e/

FUZZTIME ?= 30s
fuzz:
	$(GO) test ./codec -run XXX -fuzz FuzzParseHeader -fuzztime $(FUZZTIME)
	$(GO) test ./proto -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./resp -run XXX -fuzz FuzzParser -fuzztime $(FUZZTIME)
	$(GO) test ./gql -run XXX -fuzz FuzzCompile -fuzztime $(FUZZTIME)
	$(GO) test ./gql -run XXX -fuzz FuzzProject -fuzztime $(FUZZTIME)
	$(GO) test ./server -run XXX -fuzz FuzzConnInput -fuzztime $(FUZZTIME)
	$(GO) test ./server -run XXX -fuzz FuzzPublisherInput -fuzztime $(FUZZTIME)

bench:
	$(GO) test -run XXX -bench . -benchmem ./codec ./registry ./ring ./resp ./gql ./server

clean:
	rm -rf bin

-include perf.mk
