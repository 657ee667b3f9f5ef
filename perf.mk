# perf.mk — load harness targets, included by the Makefile (`include perf.mk`).
#
#   make perf          standard scenarios against fraised       → perf/results/perf.{jsonl,md}
#   make perf-compare  S1-S5 against fraised, both floors, gqlgen → perf/results/latest.{jsonl,md}
#   make flamegraphs   CPU profiles of fraised in S2 and S4 + an alloc profile → flamegraphs/*.svg
#   make perf-floors   S1-S6 against the two floor servers only (no fraised needed)
#   make soak          the soak suite: issue 8's abuses and faults (~2 min) → perf/results/soak.md
#   make soak-quick    its ~1-minute subset as a Go test (make test runs it)
#
# Servers are pinned to CPU $(PERF_SERVER_CPU) and the harness to
# $(PERF_HARNESS_CPU) with taskset; every run is bounded by $(PERF_TIMEOUT)
# and each scenario by its own limits, and stops by itself. The 19k
# scenarios need 19k+ open files per process (the limit here is 20,000);
# they belong to `make perf`, never to CI.

PERF_BIN         ?= bin
PERF_RESULTS     ?= perf/results
PERF_SERVER_CPU  ?= 0
PERF_HARNESS_CPU ?= 1
PERF_TIMEOUT     ?= 40m
PERF_SCENARIOS   ?= S1-1k,S1-10k,S1-19k,S1b,S2,S3,S4,S5,S6
PERF_COMPARE_SCENARIOS ?= S1-1k,S1-10k,S1-19k,S1b,S2,S3,S4,S5
PERF_COMPARE_TARGETS   ?= fraised,gnet-floor,net-floor,gqlgen
PERF_FLAGS       ?=

PERF_TASKSET := $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c $(PERF_HARNESS_CPU))
PERF_BENCH   := $(PERF_TASKSET) $(PERF_BIN)/fraised-bench
PERF_SUITE    = $(PERF_BENCH) suite --bin-dir $(PERF_BIN) --server-cpu $(PERF_SERVER_CPU) \
                --timeout $(PERF_TIMEOUT) --log-dir $(PERF_RESULTS)/logs $(PERF_FLAGS)

.PHONY: perf-cluster perf perf-compare perf-floors perf-build perf-build-fraised perf-build-tools flamegraphs perf-smoke

perf-build-tools:
	go build -o $(PERF_BIN)/fraised-bench ./perf/cmd/fraised-bench
	go build -o $(PERF_BIN)/floor-gnet ./perf/cmd/floor-gnet
	go build -o $(PERF_BIN)/floor-net ./perf/cmd/floor-net
	go build -o $(PERF_BIN)/flamegraph ./perf/cmd/flamegraph
	cd perf/gqlgen && go build -o $(abspath $(PERF_BIN))/gqlgen-server .

perf-build-fraised:
	CGO_ENABLED=0 go build -o $(PERF_BIN)/fraised ./cmd/fraised # static, like make build (a cgo build would accept --plugin)

perf-build: perf-build-tools perf-build-fraised

perf: perf-build
	@mkdir -p $(PERF_RESULTS)
	rm -f $(PERF_RESULTS)/perf.jsonl
	$(PERF_SUITE) --targets fraised --scenarios $(PERF_SCENARIOS) \
		--out $(PERF_RESULTS)/perf.jsonl --md $(PERF_RESULTS)/perf.md

perf-compare: perf-build
	@mkdir -p $(PERF_RESULTS)
	rm -f $(PERF_RESULTS)/latest.jsonl
	$(PERF_SUITE) --targets $(PERF_COMPARE_TARGETS) --scenarios $(PERF_COMPARE_SCENARIOS) \
		--out $(PERF_RESULTS)/latest.jsonl --md $(PERF_RESULTS)/latest.md

perf-floors: perf-build-tools
	@mkdir -p $(PERF_RESULTS)
	rm -f $(PERF_RESULTS)/floors.jsonl
	$(PERF_SUITE) --targets gnet-floor,net-floor --scenarios $(PERF_SCENARIOS) \
		--out $(PERF_RESULTS)/floors.jsonl --md $(PERF_RESULTS)/floors.md

# S3 against one node and against one node of a cluster on a real
# redis-server (every event through Redis and back), same run: the p99
# that Redis adds (issue 10's target: at most 1 ms). PERF_CLUSTER_DURATION
# shortens the publishing phase (empty: the scenario's); PERF_CLUSTER_SCENARIO
# picks another scenario (S4: 10,000 events/s, the throughput side);
# PERF_CLUSTER_ROUNDS (even) repeats the pair in ABBA order (see the script).
PERF_CLUSTER_DURATION ?=
PERF_CLUSTER_SCENARIO ?= S3
PERF_CLUSTER_ROUNDS ?= 4
perf-cluster: perf-build-tools perf-build-fraised
	PERF_BIN=$(PERF_BIN) DURATION=$(PERF_CLUSTER_DURATION) SCENARIO=$(PERF_CLUSTER_SCENARIO) ROUNDS=$(PERF_CLUSTER_ROUNDS) OUT=$(PERF_RESULTS)/cluster.jsonl \
		MD=$(PERF_RESULTS)/cluster.md PERF_SERVER_CPU=$(PERF_SERVER_CPU) PERF_HARNESS_CPU=$(PERF_HARNESS_CPU) \
		perf/cluster-p99.sh

# The smoke scenario (also run by `go test ./perf/...`).
perf-smoke:
	go test -count=1 -run Smoke ./perf/

# Flame graphs: profile fraised while S2 and S4 run (fetched from its
# --pprof-listen), then render each profile as an SVG flame graph with
# perf/cmd/flamegraph (no graphviz needed). FLAME_TARGET=gnet-floor
# profiles the floor instead.
FLAME_TARGET ?= fraised
FLAME_DIR    ?= flamegraphs
FLAME_PPROF  ?= $(PERF_RESULTS)/pprof
flamegraphs: perf-build-tools
	@if [ "$(FLAME_TARGET)" = fraised ]; then $(MAKE) --no-print-directory perf-build-fraised; fi
	@mkdir -p $(FLAME_PPROF) $(FLAME_DIR)
	rm -f $(FLAME_PPROF)/$(FLAME_TARGET)-S2.* $(FLAME_PPROF)/$(FLAME_TARGET)-S4.* $(PERF_RESULTS)/flamegraphs-$(FLAME_TARGET).jsonl
	$(PERF_SUITE) --targets $(FLAME_TARGET) --scenarios S2,S4 --profile-dir $(FLAME_PPROF) \
		--out $(PERF_RESULTS)/flamegraphs-$(FLAME_TARGET).jsonl --md $(PERF_RESULTS)/flamegraphs-$(FLAME_TARGET).md
	$(PERF_BIN)/flamegraph -title "$(FLAME_TARGET) CPU during S2 (fan-out ceiling search)" \
		-o $(FLAME_DIR)/$(FLAME_TARGET)-S2-cpu.svg $(FLAME_PPROF)/$(FLAME_TARGET)-S2.cpu.pprof
	$(PERF_BIN)/flamegraph -title "$(FLAME_TARGET) CPU during S4 (100 subs, 10k events/s)" \
		-o $(FLAME_DIR)/$(FLAME_TARGET)-S4-cpu.svg $(FLAME_PPROF)/$(FLAME_TARGET)-S4.cpu.pprof
	$(PERF_BIN)/flamegraph -title "$(FLAME_TARGET) allocated bytes after S4" -sample alloc_space \
		-o $(FLAME_DIR)/$(FLAME_TARGET)-S4-alloc.svg $(FLAME_PPROF)/$(FLAME_TARGET)-S4.allocs.pprof

# The soak suite (perf/cmd/fraised-soak): each abuse and fault of issue 8
# against bin/fraised with default flags, a canary subscriber and
# publisher alongside, server RSS and descriptors sampled; loopback only,
# every scenario bounded. `make soak` runs all of it (about two minutes,
# never in CI) and writes $(PERF_RESULTS)/soak.md; `make soak-quick` runs
# the ~1-minute subset as a Go test, and `make test` runs soak-quick.
SOAK_FLAGS ?=
.PHONY: soak soak-quick
soak: build
	go build -o $(PERF_BIN)/fraised-soak ./perf/cmd/fraised-soak
	@mkdir -p $(PERF_RESULTS)/logs/soak
	$(PERF_BIN)/fraised-soak --bin $(BIN) --md $(PERF_RESULTS)/soak.md --log-dir $(PERF_RESULTS)/logs/soak $(SOAK_FLAGS)

soak-quick: build
	FRAISED_BIN=$(CURDIR)/$(BIN) FRAISED_SOAK=1 go test -count=1 -timeout 10m -run TestSoakQuick -v ./e2e/

test: soak-quick
