# sms-connector: every tool is pinned in tools/go.mod and run through `go tool`, so a fresh
# machine needs only Go.
GO      ?= go
TOOL    := $(GO) tool -modfile=tools/go.mod
BIN     := bin/sms-connector
LISTEN  ?= 127.0.0.1:50051

.PHONY: all build run test lint generate check-generated fmt tools clean

all: lint test

## build: compile the service to bin/sms-connector
build:
	$(GO) build -o $(BIN) ./cmd/sms-connector

## run: build and start in sandbox mode (built-in Twilio emulator, nothing really sent)
run: build
	./$(BIN) --sandbox --listen $(LISTEN)

## test: unit, emulator-backed and end-to-end tests (real gRPC, real grpcurl), with the race detector
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## lint: buf lint, gofmt, go vet, staticcheck
lint:
	$(TOOL) buf lint
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

## tools: build every pinned tool once (buf takes minutes the first time, then it is cached)
tools:
	$(GO) build -modfile=tools/go.mod -o /dev/null github.com/bufbuild/buf/cmd/buf github.com/fullstorydev/grpcurl/cmd/grpcurl honnef.co/go/tools/cmd/staticcheck google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

clean:
	rm -rf bin
