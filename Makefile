# fraised: `make run` starts the server on the example schema; `make test`
# runs every check CI runs. Only Go (and Node/npm for the graphql-ws client
# test) are needed.

GO       ?= go
BIN      := bin/fraised
SCHEMA   ?= examples/schema.graphql
SOCK     ?= /tmp/fraised.sock
# VERSION is what `fraised --version` prints; without git (a source
# tarball) the build information's module version or revision is used.
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null)
LDFLAGS  := $(if $(VERSION),-X github.com/fraised/fraised/app.version=$(VERSION))
GOFILES  := $(shell find . -name '*.go' -not -path './perf/gqlgen/*' -not -path '*/node_modules/*')

.PHONY: all build build-dyn plugin-example run cluster test fmt-check vet unit e2e-npm e2e-browser e2e-plugin graphiql-assets fuzz bench clean

all: build

build: $(BIN)

$(BIN): $(GOFILES) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fraised

# fraised-dyn: the same command dynamically linked with cgo, so it can
# load Go plugins (--plugin); the static bin/fraised refuses them. A
# plugin must be built by the same toolchain with the same flags:
# plugin-example builds examples/plugin exactly as build-dyn builds the host.
DYN_BIN    := bin/fraised-dyn
PLUGIN_SO  := bin/plugins/example.so
DYN_FLAGS  := -trimpath

build-dyn: $(DYN_BIN)

$(DYN_BIN): $(GOFILES) go.mod go.sum
	CGO_ENABLED=1 $(GO) build $(DYN_FLAGS) -ldflags '$(LDFLAGS)' -o $(DYN_BIN) ./cmd/fraised

plugin-example: $(PLUGIN_SO)

$(PLUGIN_SO): $(GOFILES) go.mod go.sum
	CGO_ENABLED=1 $(GO) build $(DYN_FLAGS) -buildmode=plugin -o $(PLUGIN_SO) ./examples/plugin

run: build
	@echo "fraised: ws://127.0.0.1:4000/graphql (graphql-transport-ws), publish on 127.0.0.1:4001 and $(SOCK)"
	@echo "  GraphiQL:  http://127.0.0.1:4000/graphiql (queries also over HTTP: POST http://127.0.0.1:4000/graphql)"
	@echo "  publish:   redis-cli -p 4001 PUBLISH events.demo '{\"seq\":1,\"ts\":1.5,\"body\":\"hello\"}'"
	@echo "         or  $(BIN) publish events.demo '{\"seq\":1,\"ts\":1.5,\"body\":\"hello\"}'"
	@echo "  subscribe: npm ci --prefix e2e/npm && node e2e/npm/subscribe.mjs events.demo"
	@echo "         or  any graphql-ws client: subscription { events(topic: \"events.demo\") { seq body } }"
	$(BIN) --schema $(SCHEMA) --publish-unix $(SOCK)

# Three fraised nodes on one real redis-server (Debian's redis-server)
# behind a TCP round-robin proxy on 127.0.0.1:4000; prints how to publish
# and subscribe. Ctrl-C stops it (README, "Scaling out").
cluster: build
	$(GO) build -o bin/rrproxy ./perf/cmd/rrproxy
	BIN=$(BIN) PROXY=bin/rrproxy SCHEMA=$(SCHEMA) examples/cluster/cluster.sh

test: fmt-check vet unit e2e-npm e2e-browser e2e-plugin

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path '*/node_modules/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The zero-allocation tests skip themselves under -race (the race detector
# makes sync.Pool drop items), so they run a second time without it. The
# binary tests (e2e/, perf/'s smoke) run bin/fraised, the release build,
# instead of building their own copy.
ALLOC_TESTS := Alloc

unit: build
	FRAISED_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 -timeout 10m ./...
	FRAISED_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 5m -run '$(ALLOC_TESTS)' ./...

# The real npm clients against the real binary: graphql-ws (and graphql-js
# reading its introspection) and ioredis; and graphql-http's
# GraphQL-over-HTTP audit suite against the httpgql handler. Skipped with a
# notice on a machine without Node/npm, unless FRAISED_REQUIRE_NODE is set
# (.ci/run sets it). redis-py and go-redis run in `unit` (redis-py from
# Debian's python3-redis, which .ci/run installs).
e2e-npm: build
	@if ! command -v npm >/dev/null 2>&1 && [ -z "$$FRAISED_REQUIRE_NODE" ]; then \
		echo "e2e-npm: node/npm not installed; skipping the graphql-ws and ioredis client tests"; exit 0; fi; \
	set -e; cd e2e/npm && npm ci --no-audit --no-fund --loglevel=error && cd ../.. && \
	npm ci --prefix e2e/httpaudit --no-audit --no-fund --loglevel=error && \
	FRAISED_BIN=$(CURDIR)/$(BIN) FRAISED_NPM_E2E=1 $(GO) test -count=1 -run 'NPM|IORedis' ./e2e/

# Go plugins on fraised-dyn: the example plugin loads and resolves; a
# plugin built differently (another Go version, another resolver API) and
# the static binary with --plugin each exit 2 naming both sides. Needs gcc
# (cgo); .ci/run installs it.
e2e-plugin: build build-dyn plugin-example
	FRAISED_BIN=$(CURDIR)/$(BIN) FRAISED_DYN_BIN=$(CURDIR)/$(DYN_BIN) FRAISED_PLUGIN=$(CURDIR)/$(PLUGIN_SO) \
		$(GO) test -count=1 -run Plugin ./e2e/

# The embedded GraphiQL page in headless chromium (Debian's package, driven
# by the pinned playwright-core; no browser is downloaded). Skipped with a
# notice without chromium or npm, unless FRAISED_REQUIRE_BROWSER is set
# (.ci/run sets it); the screenshot lands in e2e/artifacts/.
e2e-browser: build
	@if { ! command -v npm >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; } && [ -z "$$FRAISED_REQUIRE_BROWSER" ]; then \
		echo "e2e-browser: chromium or npm not installed; skipping the GraphiQL browser test"; exit 0; fi; \
	set -e; cd e2e/browser && npm ci --no-audit --no-fund --loglevel=error && cd ../.. && \
	FRAISED_BIN=$(CURDIR)/$(BIN) FRAISED_BROWSER_E2E=1 $(GO) test -count=1 -run Browser ./e2e/

# Rebuilds graphiql/assets/ (committed, embedded with go:embed) from the
# npm packages pinned in graphiql/web/package.json and package-lock.json,
# bundled and minified by esbuild. Only needed to change GraphiQL's version
# or the page's script (graphiql/web/entry.jsx).
graphiql-assets:
	cd graphiql/web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

FUZZTIME ?= 30s
fuzz:
	$(GO) test ./codec -run XXX -fuzz FuzzParseHeader -fuzztime $(FUZZTIME)
	$(GO) test ./proto -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./resp -run XXX -fuzz FuzzParser -fuzztime $(FUZZTIME)
	$(GO) test ./gql -run XXX -fuzz FuzzCompile -fuzztime $(FUZZTIME)
	$(GO) test ./gql -run XXX -fuzz FuzzProject -fuzztime $(FUZZTIME)
	$(GO) test ./gql -run XXX -fuzz FuzzTopicOverlap -fuzztime $(FUZZTIME)
	$(GO) test ./gql -run XXX -fuzz FuzzIntrospect -fuzztime $(FUZZTIME)
	$(GO) test ./httpgql -run XXX -fuzz FuzzServe -fuzztime $(FUZZTIME)
	$(GO) test ./server -run XXX -fuzz FuzzConnInput -fuzztime $(FUZZTIME)
	$(GO) test ./server -run XXX -fuzz FuzzNetConnInput -fuzztime $(FUZZTIME)
	$(GO) test ./session -run XXX -fuzz FuzzPongEcho -fuzztime $(FUZZTIME)
	$(GO) test ./session -run XXX -fuzz FuzzRootField -fuzztime $(FUZZTIME)
	$(GO) test ./server -run XXX -fuzz FuzzLinger -fuzztime $(FUZZTIME)
	$(GO) test ./server -run XXX -fuzz FuzzProxiedInput -fuzztime $(FUZZTIME)
	$(GO) test ./proxyproto -run XXX -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./edge -run XXX -fuzz FuzzClientAddr -fuzztime $(FUZZTIME)
	$(GO) test ./server -run XXX -fuzz FuzzPublisherInput -fuzztime $(FUZZTIME)
	$(GO) test ./broker/redis -run XXX -fuzz FuzzParseMessage -fuzztime $(FUZZTIME)
	$(GO) test ./resolve -run XXX -fuzz FuzzReadResults -fuzztime $(FUZZTIME)
	$(GO) test ./session -run XXX -fuzz FuzzResumeInput -fuzztime $(FUZZTIME)
	$(GO) test ./gql -run XXX -fuzz FuzzHistoryOf -fuzztime $(FUZZTIME)
	$(GO) test ./source/postgres -run XXX -fuzz FuzzParseURL -fuzztime $(FUZZTIME)

bench:
	$(GO) test -run XXX -bench . -benchmem ./codec ./registry ./ring ./resp ./gql ./httpgql ./dispatch ./resolve ./server

clean:
	rm -rf bin

-include perf.mk
