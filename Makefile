# The two commands in the README: `make demo` runs the main job, `make test` runs every check.
# Each makes its own virtual environment, so a fresh machine needs nothing but Python 3.11+.
# The demo needs the `demo` extra (scikit-learn); `dev` includes it, so the demo's tests run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(BIN)/python -m pipework demo

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests examples benchmarks typing_tests tools
	$(BIN)/ruff format --check src tests examples benchmarks typing_tests tools

typecheck: $(VENV)/.dev
	$(BIN)/mypy --strict src

pytest: $(VENV)/.dev
	$(BIN)/python -m pytest

test: lint typecheck pytest

# The documentation site, into site/. --strict turns every warning into an error: a broken
# link or anchor, or a docstring's reference to a name that does not exist.
# tests/test_site.py builds it the same way, so `make test` fails on them too.
docs: $(VENV)/.dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The benchmarks get a virtual environment of their own: the peers they compare pipework
# with are installed only there, never as dependencies of pipework.
# `make bench BENCH_ARGS=--quick` is a 1-2 minute smoke run; BENCH_ARGS="--only a,c" picks workloads.
# Workload (h) runs the demo, so the benchmarks install the `demo` extra too.
BENCH_VENV := .venv-bench
BENCH_BIN  := $(BENCH_VENV)/bin
BENCH_ARGS ?=

$(BENCH_BIN)/python:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip

$(BENCH_VENV)/.installed: $(BENCH_BIN)/python pyproject.toml benchmarks/requirements.txt
	$(BENCH_BIN)/python -m pip install --quiet -e '.[demo]' -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-3.13 $(BENCH_VENV) site .mypy_cache .pytest_cache .ruff_cache .hypothesis
