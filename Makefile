# SentinelDF developer tasks. `make test` is the README's test command and
# what CI (.ci/run) runs.

GO       ?= go
BIN      ?= bin/sentineldf
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Benchmarks: run with COUNT=10 and compare two runs with
#   benchstat old.txt new.txt   (go install golang.org/x/perf/cmd/benchstat@latest)
COUNT    ?= 1
BENCH    ?= .
PKGS     ?= ./...
# Fuzzing: each fuzz target runs for FUZZTIME.
FUZZTIME ?= 10s
# Labelled data for `make eval` (not part of the repository).
DATA     ?= ../shared/data

# ONNX Runtime, for `-tags ort` builds and their tests: the linux-x64
# libonnxruntime.so.1 inside the onnxruntime-node npm package, checked
# against its SHA-256. `make ort-lib` prints its path (ONNXRUNTIME_LIB).
ORT_VERSION ?= 1.30.0
ORT_SHA256  ?= ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ORT_CACHE   ?= $(HOME)/.cache/sentineldf/onnxruntime-$(ORT_VERSION)
ORT_LIB     := $(ORT_CACHE)/libonnxruntime.so.1

export CGO_ENABLED := 0

.PHONY: all build test test-services test-race test-ort ort-lib bench lint fuzz eval clean

all: lint test build

## build: the static sentineldf binary in bin/, version from git describe.
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sentineldf

## test: every package's tests (go test's normal output).
test:
	$(GO) test $(PKGS)

## test-services: the integration suites (Postgres, Redis, S3) and the distributed end-to-end
## tests against local servers, failing, not skipping, when one is missing. versitygw comes from
## scripts/versitygw.sh; .ci/run starts the servers when they are down.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0
SERVICES_ENV       = TEST_DATABASE_URL='$(TEST_DATABASE_URL)' TEST_REDIS_URL='$(TEST_REDIS_URL)' \
                     SENTINELDF_REQUIRE_SERVICES=1 PATH="$$($(GO) env GOPATH)/bin:$$PATH"
test-services:
	$(SERVICES_ENV) $(GO) test -count 1 ./postgres/... ./redis/... ./s3/...
	$(SERVICES_ENV) $(GO) test -count 1 -run 'Distributed' ./cmd/sentineldf/

## test-race: the concurrent packages under the race detector (needs cgo).
test-race:
	CGO_ENABLED=1 $(GO) test -race ./scan/... ./detect/... ./corpus/... ./dataset/... ./mbom/... \
		./api/... ./worker/... ./sqlite/... ./inmem/... ./localfs/... ./client/... ./telemetry/...

## ort-lib: fetch ONNX Runtime $(ORT_VERSION) (npm pack onnxruntime-node) into $(ORT_CACHE); print the path.
ort-lib: $(ORT_LIB)
	@echo $(ORT_LIB)

$(ORT_LIB):
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for try in 1 2 3 4; do \
		if (cd "$$tmp" && npm pack --silent --fetch-timeout=120000 onnxruntime-node@$(ORT_VERSION) >/dev/null); then break; fi; \
		if [ $$try = 4 ]; then echo "ort-lib: npm pack onnxruntime-node@$(ORT_VERSION) failed" >&2; exit 1; fi; \
		echo "ort-lib: npm pack failed (try $$try of 4); retrying" >&2; sleep $$((try * 15)); \
	done; \
	tar -xzf "$$tmp/onnxruntime-node-$(ORT_VERSION).tgz" -C "$$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
	lib="$$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1"; \
	echo "$(ORT_SHA256)  $$lib" | sha256sum -c --quiet - || { echo "ort-lib: checksum mismatch" >&2; exit 1; }; \
	mkdir -p $(ORT_CACHE); mv "$$lib" $@.tmp; mv $@.tmp $@

## test-ort: the ONNX Runtime tests (cgo, -tags ort): pure-Go/ORT parity, user models, --model.
test-ort: $(ORT_LIB)
	CGO_ENABLED=1 ONNXRUNTIME_LIB=$(ORT_LIB) $(GO) test -tags ort ./onnx/...
	CGO_ENABLED=1 ONNXRUNTIME_LIB=$(ORT_LIB) $(GO) test -tags ort -run 'Model' ./cmd/sentineldf/

## bench: every benchmark, with allocations; COUNT=10 for benchstat.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKGS)

## lint: gofmt and go vet.
lint:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

## fuzz: a short run of every fuzz target of every package.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## eval: measure the detectors on the labelled data in $(DATA), when present.
eval: build
	@if [ -f $(DATA)/injection-dev.jsonl ]; then \
		echo "== $(DATA)/injection-dev.jsonl by source"; \
		$(BIN) eval --label-field label --group-field source $(DATA)/injection-dev.jsonl; \
	else echo "no $(DATA)/injection-dev.jsonl: skipping"; fi
	@if [ -f $(DATA)/backdoor-dev.jsonl ]; then \
		echo "== $(DATA)/backdoor-dev.jsonl by attack"; \
		$(BIN) eval --label-field label --group-field attack $(DATA)/backdoor-dev.jsonl; \
	else echo "no $(DATA)/backdoor-dev.jsonl: skipping"; fi

clean:
	rm -rf bin dist
