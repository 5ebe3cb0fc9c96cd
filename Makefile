# sms-connector. Tools (buf, protoc plugins, grpcurl, staticcheck) are pinned in tools/go.mod and
# run through `go tool`; make test also needs Node.js 20 with npm (clients/node). `make help`
# lists the targets.
GO      ?= go
TOOL    := $(GO) tool -modfile=tools/go.mod
BIN     := bin/sms-connector
LISTEN  ?= 127.0.0.1:50051
# The contract as last released: buf breaking holds proto/ to it (see proto/released/README.md).
RELEASED_CONTRACT := proto/released/connector-v1.json

.PHONY: all help build run test quick redis-server lint generate check-generated contract-release tools clean node-deps test-node fuzz

## all: lint, then test (the default target)
all: lint test

## help: list every target with what it does
help:
	@awk '/^## [a-z-]+:/ { sub(/^## /, ""); i = index($$0, ": "); printf "  %-16s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2); next } \
	      /^## / { sub(/^## /, ""); printf "  %-16s %s\n", "", $$0 }' $(firstword $(MAKEFILE_LIST))

## build: compile the service to bin/sms-connector and the black-box checker to bin/sms-conformance
build:
	$(GO) build -o $(BIN) ./cmd/sms-connector
	$(GO) build -o bin/sms-conformance ./cmd/sms-conformance

## run: build and start in sandbox mode (built-in Twilio emulator, nothing really sent)
run: build
	./$(BIN) --sandbox --listen $(LISTEN)

## test: unit, emulator-backed and end-to-end tests (real gRPC, real grpcurl, real redis-server), with the
## race detector, then the Node.js host test (needs Node.js 20 and npm); installs redis-server when missing (root on Debian)
test: redis-server
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory test-node

## quick: the Go tests without the race detector and without Node.js, for the edit-test loop
quick: redis-server
	$(GO) test -count=1 -timeout 20m ./...

## redis-server: make sure redis-server is installed (the Redis tests never skip): installs Debian's
## package as root, otherwise stops naming it
redis-server:
	@sh tools/ensure-redis.sh

## node-deps: install clients/node's pinned packages (npm ci), again only when its lock changes;
## no package there needs an install script
NODE_DEPS := clients/node/node_modules/.npm-ci-stamp
node-deps: $(NODE_DEPS)
$(NODE_DEPS): clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

## test-node: the Node.js host (clients/node) runs bin/sms-connector in plugin mode and calls every RPC
test-node: build $(NODE_DEPS)
	cd clients/node && SMS_CONNECTOR_BIN=$(CURDIR)/$(BIN) node --test --test-reporter=tap test/*.test.js

## lint: buf lint, buf breaking against the released contract, gofmt, go vet, staticcheck
lint:
	$(TOOL) buf lint
	$(TOOL) buf breaking --against $(RELEASED_CONTRACT)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOL) staticcheck ./...

## generate: regenerate gen/ from proto/ with buf (local plugins only)
generate:
	rm -rf gen
	$(TOOL) buf generate

## check-generated: fail when gen/ is not what buf generates from proto/
check-generated: generate
	@if [ -n "$$(git status --porcelain -- gen)" ]; then echo "gen/ is stale: run 'make generate' and commit"; git status --porcelain -- gen; git diff --stat -- gen; exit 1; fi

## contract-release: record proto/ as the released contract (proto/released/README.md says when)
contract-release:
	$(TOOL) buf build --exclude-source-info -o $(RELEASED_CONTRACT)

## tools: build every pinned tool once (buf takes minutes the first time, then it is cached)
tools:
	$(GO) build -modfile=tools/go.mod -o /dev/null github.com/bufbuild/buf/cmd/buf github.com/fullstorydev/grpcurl/cmd/grpcurl honnef.co/go/tools/cmd/staticcheck google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

## clean: remove bin/
clean:
	rm -rf bin

## fuzz: run every fuzz target for FUZZ_TIME executions (FUZZ_TIME_SLOW for the slow server target);
## seed corpora live in testdata/fuzz. Counts, not durations: Go 1.26's fuzzing coordinator can fail a
## duration-limited run at its end with "context deadline exceeded" and no crasher (golang/go#75804)
FUZZ_TIME      ?= 100000x
FUZZ_TIME_SLOW ?= 20000x
FUZZ_CONNECTOR := FuzzNormalizePhone FuzzCountSegments FuzzRender FuzzSelectTemplate
fuzz:
	for t in $(FUZZ_CONNECTOR); do $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZ_TIME) -fuzzminimizetime 200x ./connector || exit 1; done
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZ_TIME) -fuzzminimizetime 200x ./connector/twilio
	$(GO) test -run '^$$' -fuzz '^FuzzScanStrings$$' -fuzztime $(FUZZ_TIME_SLOW) -fuzzminimizetime 200x ./server

## bench: cmd/sms-load against bin/sms-connector: prints the markdown report of BENCHMARKS.md, with
## the budget judged (about 2 min). BENCH_DURATION: measured time per cell; BENCH_ROUNDS: times
## every cell runs (median of rounds); BENCH_FLAGS: more sms-load flags (e.g. -out report.md)
BENCH_DURATION ?= 3s
BENCH_ROUNDS   ?= 3
BENCH_FLAGS    ?=
.PHONY: bench
bench: build
	$(GO) run ./cmd/sms-load -binary $(BIN) -duration $(BENCH_DURATION) -rounds $(BENCH_ROUNDS) $(BENCH_FLAGS)
