# natsdeploy: build, lab and tests.
#
#   make test    every test: lint, unit, and end-to-end against the built-in lab
#   make demo    bring the lab up and deploy the cluster into it
#
# The lab (three Debian hosts running systemd and sshd, in Docker) is driven by
# internal/lab/lab.sh; everything it makes lives in .lab/ (git-ignored).
# Every target is idempotent: run it again and it only does what is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFMT ?= $(shell command -v gofmt 2>/dev/null || echo /usr/local/go/bin/gofmt)
export GO
# LAB_HOSTS: how many hosts `make lab-up` keeps (1 to 9; inventory/lab.toml
# names 3). Tests grow and shrink it themselves.
LAB_HOSTS ?= 3
LAB := NATSDEPLOY_LAB_HOSTS=$(LAB_HOSTS) bash internal/lab/lab.sh
STEP = @printf '==> %s\n'

.PHONY: help deps deps-apt tools docker build lab-image lab-artifacts lab-up \
	lab-reset lab-down lab-status lint unit e2e test demo bench clean nats-server-bin \
	prometheus-bin tools-mutate mutate fuzz

help:
	@echo 'natsdeploy make targets:'
	@echo '  test           all tests: deps docker lint unit e2e (what CI runs)'
	@echo '  demo           lab-up + artifacts + build, then bin/natsdeploy apply inventory/lab.toml'
	@echo '  build          bin/natsdeploy'
	@echo '  deps           apt packages (docker.io debootstrap openssh-client cloud-init ruby) and bin/tools'
	@echo '  docker         start dockerd in the background unless a daemon answers'
	@echo '  lab-image      build the lab base image (debootstrap; reused when present)'
	@echo '  lab-artifacts  nats-server and Prometheus release tarballs + checksums in .lab/artifacts'
	@echo '  lab-up         start the three lab hosts (healthy ones are kept)'
	@echo '  lab-reset      recreate the three lab hosts from the image (clean slate)'
	@echo '  lab-down       remove the lab hosts and network (the image is kept)'
	@echo '  fuzz           fuzz the inventory loader for FUZZTIME (default 60s); no lab'
	@echo '  mutate         mutation testing (gremlins) of MUTATE_PKGS; slow, not part of test'
	@echo '  lint unit e2e bench clean'

deps: deps-apt tools

deps-apt:
	@$(LAB) deps

tools:
	@$(LAB) tools

docker: deps-apt
	@$(LAB) docker-start

build:
	$(STEP) "go build -o bin/natsdeploy ./cmd/natsdeploy"
	@$(GO) build -o bin/natsdeploy ./cmd/natsdeploy

lab-image: docker
	@$(LAB) image

lab-artifacts:
	@$(LAB) artifacts

lab-up: lab-image
	@$(LAB) up

lab-reset: lab-image
	@$(LAB) reset

lab-down:
	@$(LAB) down

lab-status:
	@$(LAB) status

lint: tools
	$(STEP) "gofmt -l  (every .go file, whatever its build tags)"
	@out=$$(find . \( -path ./.git -o -path ./.lab -o -path ./bin \) -prune -o -name '*.go' -print0 | \
		xargs -0 -r $(GOFMT) -l); \
	if [ -n "$$out" ]; then echo "these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(STEP) "go vet ./...  (and with -tags e2e)"
	@$(GO) vet ./...
	@$(GO) vet -tags e2e ./...
	$(STEP) "staticcheck ./..."
	@bin/tools/staticcheck ./...
	$(STEP) "go mod tidy -diff  (go.mod and go.sum match the imports)"
	@if ! out=$$($(GO) mod tidy -diff 2>&1); then \
		echo "$$out"; echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi

# Unit tests that need a real nats-server (rendered configs, a loopback
# cluster for the verifier) and the independent natscli get them from here;
# without these variables they would skip, so `make unit` always sets them.
NATS_VERSION := 2.14.9
export NATS_SERVER_BIN := $(CURDIR)/bin/tools/nats-server-$(NATS_VERSION)
export NATSCLI_BIN := $(CURDIR)/bin/tools/nats

nats-server-bin: lab-artifacts
	@test -x $(NATS_SERVER_BIN) || { mkdir -p bin/tools && \
		tar -xzf .lab/artifacts/nats-server/v$(NATS_VERSION)/nats-server-v$(NATS_VERSION)-linux-amd64.tar.gz \
		  -O nats-server-v$(NATS_VERSION)-linux-amd64/nats-server > $(NATS_SERVER_BIN).tmp && \
		chmod 0755 $(NATS_SERVER_BIN).tmp && mv $(NATS_SERVER_BIN).tmp $(NATS_SERVER_BIN); }

# Alert rules and dashboard queries are checked by the real promtool and
# Prometheus, the lab's own build of the release.
PROMETHEUS_VERSION := 3.16.0
PROMETHEUS_DIST := prometheus-$(PROMETHEUS_VERSION).linux-amd64
export PROMETHEUS_BIN := $(CURDIR)/bin/tools/prometheus-$(PROMETHEUS_VERSION)
export PROMTOOL_BIN := $(CURDIR)/bin/tools/promtool-$(PROMETHEUS_VERSION)

prometheus-bin: lab-artifacts
	@for b in prometheus promtool; do \
		dest=$(CURDIR)/bin/tools/$$b-$(PROMETHEUS_VERSION); \
		test -x $$dest && continue; \
		mkdir -p bin/tools && \
		tar -xzf .lab/artifacts/prometheus/v$(PROMETHEUS_VERSION)/$(PROMETHEUS_DIST).tar.gz \
		  -O $(PROMETHEUS_DIST)/$$b > $$dest.tmp && \
		chmod 0755 $$dest.tmp && mv $$dest.tmp $$dest; \
	done

unit: tools nats-server-bin prometheus-bin
	$(STEP) "go test ./...  (NATS_SERVER_BIN, NATSCLI_BIN, PROMETHEUS_BIN, PROMTOOL_BIN set: no real-binary test skips)"
	@$(GO) test ./...
	$(STEP) "fuzz each target for $(FUZZ_CI_TIME) (inventory loader, facts parser, subject matching)"
	@$(foreach f,$(FUZZ_TARGETS),$(GO) test -run '^$$' -fuzz='^$(word 1,$(subst @, ,$(f)))$$' -fuzztime=$(FUZZ_CI_TIME) $(word 2,$(subst @, ,$(f))) >/dev/null && echo "    $(f) ok" &&) true

# Fuzzing: the inventory loader, the facts parser (what a host prints) and
# subject matching (what the verifier expects). Each target's seeds and
# committed corpus (testdata/fuzz/) run in every `go test`; `make unit`
# searches beyond them for FUZZ_CI_TIME each, `make fuzz` for FUZZTIME each.
# Anything found is written to the package's testdata/fuzz/ and then runs
# in every `go test`: commit it with the fix. Needs no lab.
FUZZTIME ?= 60s
FUZZ_CI_TIME ?= 5s
FUZZ_TARGETS := FuzzLoad@./inventory/ FuzzParse@./internal/facts/ FuzzMatch@./roles/nats/verify/

fuzz:
	@$(foreach f,$(FUZZ_TARGETS),echo "==> go test -fuzz=$(f) -fuzztime=$(FUZZTIME)" && \
		$(GO) test -run '^$$' -fuzz='^$(word 1,$(subst @, ,$(f)))$$' -fuzztime=$(FUZZTIME) $(word 2,$(subst @, ,$(f))) &&) true

# Mutation testing with gremlins, package by package: each mutant of a
# covered line is run against that package's tests. Efficacy is
# killed / (killed + lived). Slow (roles/nats/verify starts a nats-server
# cluster per test, for every mutant), so not part of `make test`; pick
# packages with e.g. `make mutate MUTATE_PKGS=./internal/plan:30`. Logs and
# gremlins' JSON results go to bin/mutate/.
#
# Each MUTATE_PKGS item is a package, optionally with ":N", its timeout
# coefficient. gremlins gives every mutant N times the duration of its one
# coverage run, and the mutant's compile counts against that: a package
# whose tests take a second (plan: 1.4s) needs a large N, or mutants time
# out while compiling and count for nothing (plan at the default 3: 49 of
# 94 timed out); a slow one (verify: ~40s) is fine at 3, and a larger N
# there only lets a hung mutant cost minutes. GOFLAGS=-count=1 keeps that
# coverage run from being a test-cache hit (a 0.5s "run" of a 40s suite
# times every mutant out). MUTATE_EXCLUDE are regexps of file paths not to
# mutate (gremlins -E), to measure a slow package a few files at a time,
# e.g. MUTATE_EXCLUDE='jetstream\.go$$ (^|/)stream\.go$$'.
# Do not pass --test-cpu: gremlins 0.6.0 hands `go test` "-cpu N" as one
# argument, every run fails to start and every mutant counts as killed.
MUTATE_PKGS ?= ./roles/nats/verify:3 ./internal/apply ./internal/plan:30 ./inventory
MUTATE_WORKERS ?= 1
MUTATE_EXCLUDE ?=
MUTATE_FLAGS ?=

tools-mutate:
	@$(LAB) tools-mutate

mutate: tools-mutate nats-server-bin
	@mkdir -p bin/mutate; summary=""; \
	for item in $(MUTATE_PKGS); do \
		p=$${item%%:*}; coef=3; [[ $$item == *:* ]] && coef=$${item##*:}; \
		name=$$(echo "$${p#./}" | tr / -); \
		printf '==> gremlins unleash %s, timeout coefficient %s  (log: bin/mutate/%s.log)\n' "$$p" "$$coef" "$$name"; \
		GOFLAGS="$${GOFLAGS:+$$GOFLAGS }-count=1" bin/tools/gremlins unleash --workers $(MUTATE_WORKERS) \
			--timeout-coefficient "$$coef" $(foreach e,$(MUTATE_EXCLUDE),-E '$(e)') $(MUTATE_FLAGS) -o bin/mutate/$$name.json "$$p" \
			> bin/mutate/$$name.log 2>&1 || { tail -n 20 bin/mutate/$$name.log; exit 1; }; \
		grep -E '^(Killed|Timed out|Test efficacy|Mutator coverage):' bin/mutate/$$name.log | sed 's/^/    /'; \
		grep -E '^ *(LIVED|TIMED OUT) ' bin/mutate/$$name.log | sed 's/^ */    /' || true; \
		line=$$(awk -F'[:,] *' -v p="$$p" '/^Killed:/ { k = $$2; l = $$4; nc = $$6 } \
			/^Timed out:/ { to = $$2 } \
			END { printf "%-20s efficacy %s (killed %d / (killed %d + lived %d)), timed out %d, not covered %d", p, \
				(k + l > 0 ? sprintf("%.2f%%", 100 * k / (k + l)) : "n/a"), k, k, l, to, nc }' bin/mutate/$$name.log); \
		summary="$$summary$$line"$$'\n'; \
	done; \
	printf '==> mutation efficacy per package\n%s' "$$summary"

# End-to-end tests share the three lab hosts, so packages run one at a time
# (-p 1). internal/lab's own e2e test faults and resets the lab first.
E2E_PKGS = ./internal/lab/... $(if $(wildcard e2e/*_test.go),./e2e/...)

e2e: lab-up lab-artifacts build
	$(STEP) "go test -tags e2e $(E2E_PKGS)"
	@$(if $(wildcard e2e/*_test.go),,echo "    (no tests in ./e2e yet)";) \
	$(GO) test -tags e2e -count=1 -p 1 -timeout 45m -v $(E2E_PKGS)

# unit and e2e run side by side: the lab's hosts mostly wait on timers and
# health gates, and the unit tests fill the cores meanwhile. Each one's
# output is printed whole when it ends (--output-sync), not interleaved.
test: deps docker lint
	@$(MAKE) --no-print-directory -j2 --output-sync=target unit e2e
	$(STEP) "all tests passed"

demo: deps docker lab-up lab-artifacts build
	$(STEP) "bin/natsdeploy apply inventory/lab.toml"
	@bin/natsdeploy apply inventory/lab.toml

# Unit benchmarks (rendering, planning); then the lab's: a no-op apply of
# NATS alone against the whole stack, and the table (e2e TestBenchLab): on
# the lab grown to each of BENCH_SIZES hosts, the median of BENCH_RUNS runs
# of fresh apply (hosts reset bare), no-op apply, plan, verify and rolling
# restart, each against the OpenSSH floor measured in the same run, with
# SSH connections and bytes per host; then the zero-loss test. The lab is
# left at 3 bare hosts. Over an hour on a shared 2-core machine; every
# natsdeploy run's output is kept in bin/bench/.
BENCH_SIZES ?= 3 6 9
BENCH_RUNS ?= 5

bench: docker lab-up lab-artifacts
	$(STEP) "go test -bench ./...  (unit)"
	@$(GO) test -run '^$$' -bench . -benchmem ./...
	$(STEP) "go test -tags e2e -bench ./e2e/  (lab: no-op apply of NATS alone and of the stack, verify)"
	@$(GO) test -tags e2e -run '^$$' -bench . -benchtime 5x ./e2e/
	$(STEP) "lab at $(BENCH_SIZES) hosts, median of $(BENCH_RUNS) runs: natsdeploy against the SSH and upload floors"
	@NATSDEPLOY_BENCH_SIZES='$(BENCH_SIZES)' NATSDEPLOY_BENCH_RUNS='$(BENCH_RUNS)' NATSDEPLOY_BENCH_DIR=$(CURDIR)/bin/bench \
		$(GO) test -tags e2e -count=1 -timeout 180m -v -run '^TestBenchLab$$' ./e2e/ | \
		grep -v -E '^(=== (RUN|PAUSE|CONT) |PASS$$)'
	$(STEP) "zero loss under load (lab): acknowledged publishes, retries, longest pause"
	@$(GO) test -tags e2e -count=1 -timeout 15m -v -run '^TestZeroLossUnderLoad$$' ./e2e/ | \
		grep -E 'zero-loss:|^(--- |ok|FAIL)' | sed 's/^ *load_test.go:[0-9]*: //'

clean:
	$(STEP) "rm -rf bin/"
	@rm -rf bin
