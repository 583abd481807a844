# The two commands of the README: `make demo` and `make test`. Each sets up everything it needs on a
# fresh machine (a .venv with kgctl installed, Neo4j fetched from Maven Central), then runs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kgctl-installed

.PHONY: demo test lint typecheck neo4j clean help

help:
	@echo "make demo   set up, start Neo4j with the schema, print how to explore it"
	@echo "make test   set up, run the test suite against a real Neo4j"
	@echo "make lint / make typecheck / make clean"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kgctl needs Python >= 3.11; set PYTHON=")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

neo4j: $(STAMP)
	$(BIN)/kgctl db install

demo: neo4j
	$(BIN)/kgctl demo

test: neo4j
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' package-dir mapping in an editable install: check a real install.
typecheck: $(STAMP)
	rm -rf build/typecheck
	$(BIN)/python -m pip install --quiet --no-deps --target build/typecheck .
	cd build/typecheck && MYPYPATH=. ../../$(BIN)/mypy --config-file ../../pyproject.toml -p kgctl

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
