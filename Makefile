SHELL := /bin/bash
# usvc: `make demo` sets up and runs a demo; `make test` runs every test.
SWIFT ?= swift
DEMO_HOME ?= $(HOME)/.usvc-demo

.PHONY: deps build release demo test bench bench-smoke clean

# tmux and libgit2-dev from Debian's packages, when missing (sudo unless root).
deps:
	@./scripts/deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# A demo group of three jobs in a separate USVC_HOME, then its status.
demo: build
	@./scripts/demo.sh "$(DEMO_HOME)"

# Unit tests, integration tests against real tmux, processes and sshd, the
# benchmark report's unit tests, and the benchmark harness in smoke mode (so it cannot rot).
test: build
	$(SWIFT) test 2>&1 | tee .build/test.log; test $${PIPESTATUS[0]} -eq 0
	python3 -m unittest discover -s bench -p 'test_*.py'
	python3 bench/bench.py --smoke --usvc .build/debug/usvc

bench: release
	python3 bench/bench.py --usvc .build/release/usvc --out BENCHMARKS.md --json bench/results.json

bench-smoke: build
	python3 bench/bench.py --smoke --usvc .build/debug/usvc

clean:
	rm -rf .build
