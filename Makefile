# Loudly — the commands the README documents.
GO ?= go

.PHONY: test test-race test-compat check tools demo run-order run-inventory load bench bench-drain bench-stored soak build up up-cluster down drill

# The test command: formatting, vet, and every test against real PostgreSQL, NATS,
# Prometheus and OpenTelemetry Collector. -trimpath: the scaffold's test builds copies of
# the repository in temporary directories with -trimpath, and packages built the same way
# here are found in the build cache there instead of compiled again.
test: tools check
	$(GO) test -trimpath -count=1 -timeout 45m ./...

# The third-party programs the tests run, at the versions the compose demo pins
# (deploy/compose/.env), built from the Go module proxy into a cache outside the
# repository (LOUDLY_TOOLS_DIR, default ~/.cache/loudly-tools) and reused after that:
# Prometheus and promtool, and the collector with the compose config's components
# (deploy/compose/otel-collector/builder.yaml). See internal/tools/build.sh.
tools:
	@GO="$(GO)" bash internal/tools/build.sh

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./cmd/silentcheck ./...

build:
	$(GO) build -o bin/ ./services/... ./loadtest ./cmd/...

# make demo: the whole pipeline on this machine with nothing but Go (no Docker): embedded
# NATS, PostgreSQL from the local binaries (or DATABASE_URL), both services, the load, and
# Prometheus with the alert rules when `make tools` has built it; a live view; Ctrl-C
# verifies every order and prints the summary. ARGS are passed on, e.g. ARGS=-fresh.
demo:
	$(GO) run ./cmd/loudly demo $(ARGS)

run-order:
	$(GO) run ./services/order

run-inventory:
	$(GO) run ./services/inventory

load:
	$(GO) run ./loadtest -rate 50 -duration 30s -poison 0.02 -verify

# make bench: PostgreSQL's limit for the accept transaction (pgbench) and the pipeline's
# settled/s, latency at half that rate and telemetry on/off, in one run on this machine,
# summed up in one line "bench: …" (about 7 minutes; loadtest/bench_test.go). Service
# settings in the environment reach both services, e.g. CONSUMER_BATCH_SIZE=1 make bench;
# BENCH_DURATION, BENCH_RATE, BENCH_CONCURRENCY, BENCH_PGBENCH_DURATION, BENCH_HALF_RATE,
# BENCH_WARMUP (the half-rate phase's warm-up, 3s) and BENCH_PROFILE_DIR change the run itself.
bench:
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkThroughput$$' -benchtime 1x -timeout 30m ./loadtest/

# make bench-drain: 100,000 order.placed events (BENCH_DRAIN_EVENTS) waiting in the stream,
# then the inventory service started: events/s drained with the settings given and with
# CONSUMER_BATCH_SIZE=1, side by side, in one line "drain: … speedup=…".
bench-drain:
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkBacklogDrain$$' -benchtime 1x -timeout 60m ./loadtest/

# make bench-stored: the saturated settled/s with 0, 500,000 and 1,500,000 orders already
# stored (STORED_ORDERS), the pipeline filling its own tables in between, in one line
# "stored: …" (loadtest/stored_test.go). Not in CI: about 20 minutes.
bench-stored:
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkStoredOrders$$' -benchtime 1x -timeout 2h ./loadtest/

# make soak: the pipeline for SOAK_DURATION (30m) at SOAK_RATE orders/s (default half the
# saturated rate, measured first) with the drills cycling; RSS and goroutines of each service
# at the start and the end, lost=0, in one line "soak: …" (loadtest/soak_test.go). Not in CI.
soak:
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkSoak$$' -benchtime 1x -timeout 4h ./loadtest/

# The race detector over the packages whose code runs concurrently: the consumer runner,
# the outbox relay, telemetry, the service base and the services (their handlers, groups
# of accepts and consumers). Slower than test (the detector costs 2-10x), so a target
# of its own.
RACE_PKGS = ./pkg/consumer/... ./pkg/outbox/... ./pkg/telemetry/... ./pkg/service/... ./services/...
test-race:
	$(GO) test -race -trimpath -count=1 -timeout 45m $(RACE_PKGS)

# The broker-facing suites again, against the NATS server at NATS_URL (an older or
# clustered server than the embedded one): .ci/run does this when a server answers on
# 127.0.0.1:4222.
test-compat:
	@test -n "$(NATS_URL)" || { echo "set NATS_URL"; exit 1; }
	NATS_URL=$(NATS_URL) $(GO) test -count=1 ./pkg/consumer/ ./pkg/outbox/

COMPOSE = docker compose -f deploy/compose/docker-compose.yml

# The demo: every service, the load, and Grafana on http://127.0.0.1:3000.
up:
	$(COMPOSE) up -d --build --wait

# The same demo on a three-node JetStream cluster (R3 streams) with two replicas of each
# service (deploy/compose/docker-compose.cluster.yml).
up-cluster:
	$(COMPOSE) -f deploy/compose/docker-compose.cluster.yml up -d --build --wait

down:
	$(COMPOSE) down --remove-orphans

# make drill NAME=silent-skip [FOR=10m] [INTENSITY=0.2]: start an on-call drill, as the
# demo's NATS operator user (its password from deploy/compose/.env unless NATS_PASSWORD is set).
drill:
	@test -n "$(NAME)" || { $(GO) run ./cmd/loudly drill list; echo; echo "usage: make drill NAME=<drill> [FOR=10m] [INTENSITY=x]"; exit 2; }
	NATS_USER=$${NATS_USER:-operator} NATS_PASSWORD=$${NATS_PASSWORD:-$$(sed -n 's/^OPERATOR_NATS_PASSWORD=//p' deploy/compose/.env)} \
	$(GO) run ./cmd/loudly drill start $(NAME) -for $(or $(FOR),10m) $(if $(INTENSITY),-intensity $(INTENSITY))
