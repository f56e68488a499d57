# Loudly — the commands the README documents.
GO ?= go

.PHONY: test check run-order run-inventory load build fmt vet

# The test command: formatting, vet, and every test against real PostgreSQL and NATS.
test: check
	$(GO) test -count=1 -timeout 30m ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o bin/ ./services/order ./services/inventory ./loadtest ./cmd/...

run-order:
	$(GO) run ./services/order

run-inventory:
	$(GO) run ./services/inventory

load:
	$(GO) run ./loadtest -rate 50 -duration 30s -poison 0.02 -verify
