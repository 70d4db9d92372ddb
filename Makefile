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

export CGO_ENABLED := 0

.PHONY: all build test bench lint fuzz eval clean

all: lint test build

## build: the static sentineldf binary in bin/, version from git describe.
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sentineldf

## test: every package's tests (go test's normal output).
test:
	$(GO) test $(PKGS)

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
