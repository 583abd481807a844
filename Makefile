# The two commands of the README: `make demo` and `make test`. Each sets up everything it needs on a
# fresh machine (a .venv with kgctl installed, Neo4j fetched from Maven Central), then runs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kgctl-installed

.PHONY: demo test test-fast lint lint-checks lint-ruff lint-format lint-markers lint-layers typecheck neo4j chromium clean help

help:
	@echo "make demo       set up, start Neo4j with the schema, print how to explore it"
	@echo "make test       set up, run the whole test suite against a real Neo4j"
	@echo "make test-fast  the tests not marked slow (development)"
	@echo "make chromium   Debian's chromium and chromium-driver for the Browser test (apt-get)"
	@echo "make lint       ruff (rules, format, no fmt: skip), and the import contracts (import-linter)"
	@echo "make typecheck  mypy --strict in place over the package, tests and benchmarks"
	@echo "make clean"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kgctl needs Python >= 3.11; set PYTHON=")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

neo4j: $(STAMP)
	$(BIN)/kgctl db install

# Debian's Chromium and ChromeDriver for the Neo4j Browser test. Where apt-get cannot run as root
# the test says so and is skipped (under CI=true it fails).
chromium:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	  || echo "make: apt-get could not install chromium; the Browser test will say so"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	  (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	  || echo "make: apt-get could not install chromium; the Browser test will say so"; \
	else echo "make: chromium is missing and apt-get needs root; the Browser test will say so"; fi

demo: neo4j
	$(BIN)/kgctl demo

test: neo4j chromium
	$(BIN)/pytest

test-fast: neo4j
	$(BIN)/pytest -m "not slow"

# `lint` installs, then runs the four checks; a test runs `make -k lint-checks BIN=…` on a copy of the
# tree with a violation of each planted, and sees each fail.
lint: $(STAMP)
	@$(MAKE) --no-print-directory lint-checks

lint-checks: lint-ruff lint-format lint-markers lint-layers

lint-ruff:
	$(BIN)/ruff check .

lint-format:
	$(BIN)/ruff format --check .

# The formatter sees every line: no `fmt: skip` (an aligned table of literals may use a
# `fmt: off`/`fmt: on` block, with a comment saying why).
lint-markers:
	@if grep -rn --include='*.py' --exclude-dir=.venv --exclude-dir=.git --exclude-dir=build -E '#[[:space:]]*fmt:[[:space:]]*skip' .; then \
	  echo "lint: remove the 'fmt: skip' markers above (the formatter owns every line)"; exit 1; fi

lint-layers:
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy kgctl tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
