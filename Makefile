# The two commands in the README: `make demo` runs the main job, `make test` runs every check.
# Each makes its own virtual environment, so a fresh machine needs nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(BIN)/python -m pipework demo

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests examples benchmarks typing_tests
	$(BIN)/ruff format --check src tests examples benchmarks typing_tests

typecheck: $(VENV)/.dev
	$(BIN)/mypy --strict src

pytest: $(VENV)/.dev
	$(BIN)/python -m pytest

test: lint typecheck pytest

# The peers are installed only here, never as dependencies of pipework.
$(VENV)/.bench: $(BIN)/python pyproject.toml benchmarks/requirements.txt
	$(BIN)/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
