# The commands a person types. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' portal/observability/build.py)
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: help run test test-deps lint format translations screenshots vendor css clean helm-lint image image-dhi e2e audit bench bench-quick

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- environments --------------------------------------------------------------------------

$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "Installing python3-venv"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv >/dev/null && \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

translations: $(VENV)/.runtime ## Compile the French and English catalogues
	@$(PY) scripts/i18n.py compile

# npm packages of the browser suite (axe-core) and of the audit (Lighthouse), from their lockfiles.
E2E_NPM := tests/e2e/node_modules/.installed
AUDIT_NPM := audit/node_modules/.installed

$(E2E_NPM): tests/e2e/package.json tests/e2e/package-lock.json | test-deps
	cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(AUDIT_NPM): audit/package.json audit/package-lock.json | test-deps
	cd audit && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# --- the two commands ----------------------------------------------------------------------

run: $(VENV)/.runtime translations ## Start the demo on http://127.0.0.1:8000 (simulated upstreams; another port: DEMO_PORT=8001, metrics on 9101)
	$(PY) -m demo

# Three test processes (pytest-xdist): the suite often waits on peers and browsers, so on two
# cores a third process fills the idle time (on 2026-12-07: 765 s with three, 965 s with two).
# Each process starts its own peers on free ports. TEST_PROCESSES=0: one.
TEST_PROCESSES ?= 3

test: $(VENV)/.dev translations test-deps $(E2E_NPM) ## Install the test peers, run the whole suite (in three processes), then the linters
	$(PY) scripts/i18n.py check
	$(PY) -m pytest -n $(TEST_PROCESSES)
	$(MAKE) --no-print-directory lint

# --- the rest ------------------------------------------------------------------------------

KEYCLOAK_SIM := tests/peers/keycloak-sim

test-deps: $(KEYCLOAK_SIM)/node_modules/.package-lock.json ## Install the real peers the tests use (Redis, Prometheus, Alertmanager, PostgreSQL, Taiga, Chromium, helm, Keycloak-shaped provider, ...)
	@scripts/install-test-deps.sh
	@scripts/install-helm.sh >/dev/null
	@tests/peers/taiga-back/install.sh

helm-lint: $(VENV)/.dev ## Lint the Helm chart and validate what it renders (Kubernetes 1.30)
	@scripts/helm-lint.sh

image: ## Build the container image on python:3.12-slim (needs Docker): devsecops-portal:<version>
	docker build --build-arg PORTAL_BUILD_COMMIT="$$(git rev-parse HEAD)" -t devsecops-portal:$(VERSION) .

# Docker Hardened Images: the -dev variant builds, the runtime variant (no shell, UID 65532) runs.
DHI_PYTHON ?= dhi.io/python:3.12-debian13

image-dhi: ## The image on Docker Hardened Images (needs Docker and `docker login dhi.io`): devsecops-portal:<version>-dhi
	docker build --build-arg PYTHON_BUILD_IMAGE=$(DHI_PYTHON)-dev --build-arg PYTHON_IMAGE=$(DHI_PYTHON) \
	  --build-arg PORTAL_BUILD_COMMIT="$$(git rev-parse HEAD)" -t devsecops-portal:$(VERSION)-dhi .

# The Keycloak-shaped OpenID provider (npm oidc-provider, pinned by its package-lock.json).
$(KEYCLOAK_SIM)/node_modules/.package-lock.json: $(KEYCLOAK_SIM)/package.json $(KEYCLOAK_SIM)/package-lock.json
	@scripts/install-test-deps.sh
	cd $(KEYCLOAK_SIM) && npm ci --no-audit --no-fund --loglevel=error

e2e: $(VENV)/.dev translations test-deps $(E2E_NPM) ## Only the browser suite (Chromium, axe-core)
	$(PY) -m pytest -m e2e

lint: $(VENV)/.dev ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check portal simulators demo tests scripts bench gunicorn.conf.py
	$(VENV)/bin/ruff format --check portal simulators demo tests scripts bench gunicorn.conf.py
	$(VENV)/bin/mypy

format: $(VENV)/.dev ## Format the code with ruff
	$(VENV)/bin/ruff format portal simulators demo tests scripts bench gunicorn.conf.py
	$(VENV)/bin/ruff check --fix portal simulators demo tests scripts bench gunicorn.conf.py

screenshots: $(VENV)/.dev translations test-deps ## Screenshots of the demo into screenshots/
	$(PY) scripts/screenshots.py

audit: $(VENV)/.dev translations test-deps $(AUDIT_NPM) ## Lighthouse scores of the demo into audit/ and the README
	$(PY) scripts/audit.py

bench: $(VENV)/.dev translations test-deps ## Performance and resilience against the goals (about 65 min; bench/README.md)
	$(PY) -m bench

bench-quick: $(VENV)/.dev translations test-deps ## The same figures, every phase shortened (a smoke run, about 6 min)
	$(PY) -m bench --quick

vendor: $(VENV)/.runtime ## Re-fetch the vendored front-end files from npm and verify them
	$(PY) scripts/vendor.py

css: $(E2E_NPM) ## Cut Bulma to the classes the templates and scripts use (after using a new Bulma class)
	node scripts/trim_bulma.mjs

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
