# Sous — the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST := $(UV) run --frozen pytest
INFRA := bash deploy/local/infra.sh
UNIT := not kafka and not postgres and not e2e
INTEGRATION := kafka or postgres or e2e

.PHONY: help sync system tools lint fmt schemas unit integration test infra-up infra-down infra-status up down bench

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

# Bytecode is written at install, once: with PYTHONDONTWRITEBYTECODE set, every start of
# `sous` would otherwise compile typer, rich and the rest again (half of `sous --help`).
sync: $(UV) system ## Install the workspace into .venv (uv from PyPI when missing).
	$(UV) sync --frozen --all-packages --quiet --compile-bytecode

# Helm for the chart's tests (tests/deploy), built once from its Go module into .tools/bin;
# a second `make` does nothing. The module and build caches live in TOOLS_GO (.tools/go):
# built with -trimpath, the build cache serves any clone, so pointing TOOLS_GO at a folder
# that outlives the clone turns a fresh clone's build (minutes) into a link (seconds).
GO := $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
HELM_VERSION := v3.22.0
HELM := .tools/bin/helm-$(HELM_VERSION)
TOOLS_GO ?= $(CURDIR)/.tools/go

$(HELM):
	mkdir -p .tools/bin
	GOBIN=$(CURDIR)/.tools/build GOMODCACHE=$(TOOLS_GO)/mod GOCACHE=$(TOOLS_GO)/cache \
	  GOFLAGS=-modcacherw CGO_ENABLED=0 \
	  $(GO) install -trimpath -ldflags="-s -w" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv .tools/build/helm $@
	ln -sf helm-$(HELM_VERSION) .tools/bin/helm

tools: $(HELM) ## Helm (from its Go module) for the deployment tests.

# The console lays out graphs with Graphviz; its browser tests drive Debian's Chromium.
system: ## Debian packages the console needs (graphviz, chromium), with apt-get when missing.
	@command -v dot >/dev/null && [ -x /usr/bin/chromium ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends graphviz chromium; \
	  else echo "install graphviz and chromium (apt-get install graphviz chromium)" >&2; fi; }

lint: sync ## ruff, mypy --strict, stale generated contract files, breaking contract changes.
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy sous contracts/sous_contracts services/*/sous_*
	$(UV) run --frozen python -m sous_contracts.schema_export --check
	$(UV) run --frozen python -m sous_contracts.compat

fmt: sync ## Format and fix what ruff can.
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

schemas: sync ## Regenerate the AsyncAPI document and JSON Schemas.
	$(UV) run --frozen python -m sous_contracts.schema_export

unit: sync tools ## The unit tier: no servers.
	$(PYTEST) -m "$(UNIT)" -q

# Uses SOUS_KAFKA_BOOTSTRAP / SOUS_DATABASE_URL when both are set; otherwise starts
# deploy/local (and stops it afterwards when this target started it).
integration: sync ## The integration and end-to-end tiers on real Kafka and PostgreSQL.
	@if [ -n "$$SOUS_KAFKA_BOOTSTRAP" ] && [ -n "$$SOUS_DATABASE_URL" ]; then \
	  $(PYTEST) -m "$(INTEGRATION)" -q; \
	else \
	  started=0; $(INFRA) status >/dev/null 2>&1 || started=1; \
	  env_lines="$$($(INFRA) up)" || exit 1; \
	  set -a; eval "$$env_lines"; set +a; \
	  $(PYTEST) -m "$(INTEGRATION)" -q; rc=$$?; \
	  if [ $$started = 1 ]; then $(INFRA) down >&2; fi; \
	  exit $$rc; \
	fi

test: lint unit integration ## Everything CI runs: lint, unit, integration on real servers.

infra-up: ## Start local Kafka and PostgreSQL (idempotent) and create the catalog's topics.
	@set -a; eval "$$($(INFRA) up)"; set +a; $(UV) run --frozen sous topics create; $(INFRA) env

infra-down: ## Stop local Kafka and PostgreSQL (data kept; `.venv/bin/sous infra down --purge` wipes).
	$(INFRA) down

infra-status: ## Show whether local Kafka and PostgreSQL run.
	$(INFRA) status

up: sync ## The whole mesh: local Kafka and PostgreSQL, every service, the examples. Ctrl-C stops.
	$(UV) run --frozen sous up

down: sync ## Stop what `make up` started.
	$(UV) run --frozen sous down

# Each bench at its defaults, then the scheduler's figures under load: trigger latency beside
# 30 runs/s, python steps, and two replicas of each service.
bench: sync ## Benchmarks; each prints JSON lines.
	@set -a; [ -n "$$SOUS_KAFKA_BOOTSTRAP" ] || eval "$$($(INFRA) up)"; set +a; \
	for b in bench/bench_*.py; do $(UV) run --frozen python $$b; done; \
	BENCH_BESIDE_RATE=30 $(UV) run --frozen python bench/bench_scheduler.py; \
	BENCH_STEP=python BENCH_RATE=30 $(UV) run --frozen python bench/bench_throughput.py; \
	BENCH_REPLICAS=2 $(UV) run --frozen python bench/bench_throughput.py
