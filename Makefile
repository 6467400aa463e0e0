# Two commands do everything on a fresh machine (Python 3.11+, Node.js):
#   make run    the whole system locally on http://127.0.0.1:8000
#   make test   every test, offline
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip repeats a warning for every package when a configured index folder is absent.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# What `make run` needs: the stack and its fake model (the `local` extra), not the test tools.
RUN_STAMP := $(VENV)/.installed-local-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# checkov pins an older boto3 than the project's: it gets a virtual environment of its own.
CHECKOV_SPEC := checkov>=3.2,<4
CHECKOV_STAMP := $(VENV)/checkov/.installed-$(shell echo '$(CHECKOV_SPEC)' | sha1sum | cut -c1-12)

.PHONY: run test lint bench fuzz checkov synth deploy browser-deps clean

# The project's three packages live in three folders (layers/, local/, clients/cli/), so the
# editable install goes through an import finder, which setuptools warns about at length.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(QUIET_PIP)
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[dev]' $(QUIET_PIP)
	@rm -f $(VENV)/.installed-* && touch $@ $(RUN_STAMP)

# The first `make run` installs only what runs the stack (`make test` adds the rest).
$(RUN_STAMP): pyproject.toml
	@echo "make run: installing what the local stack runs on into $(VENV)/ (once; about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(QUIET_PIP)
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[local]' $(QUIET_PIP)
	@rm -f $(VENV)/.installed-local-* && touch $@

# make run DATA=.data keeps the stack's data in .data/ between runs.
run: $(RUN_STAMP)
	$(BIN)/agentfiles serve $(if $(DATA),--data $(DATA))

# The machine's Node.js 20 is past its end of life for the CDK's jsii runtime: it works,
# and the banner it prints on every synth would drown the test output.
test: $(STAMP) browser-deps $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(BIN)/python -m pytest -n 2 --dist loadgroup

# Debian's Chromium for the browser tests (Playwright's own download does not work offline).
browser-deps:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

$(CHECKOV_STAMP):
	@test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet '$(CHECKOV_SPEC)' $(QUIET_PIP)
	@rm -f $(VENV)/checkov/.installed-* && touch $@

checkov: $(CHECKOV_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench

# The capacity model's own tests, then measure a conversation three times and rewrite the
# tables in docs/capacity.md (not part of make test: it models the product, it is not the product).
.PHONY: capacity-doc
capacity-doc: $(STAMP)
	$(BIN)/python -m pytest -p no:xdist -q bench/capacity/tests
	$(BIN)/python -m bench.capacity.doc

# schemathesis against a fresh local stack for ten minutes (make test runs a short one).
fuzz: $(STAMP)
	$(BIN)/python -m tests.e2e.fuzzing $(FUZZ_ARGS)

synth: $(STAMP)
	$(BIN)/python app.py

deploy: $(STAMP)
	npx --yes aws-cdk@2 deploy --app '$(BIN)/python app.py'

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .ruff_cache .hypothesis
