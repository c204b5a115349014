# Two commands for a new user: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# torch first, pinned: pip takes this CPU build from local disk; a bare `torch` would pull a multi-GB CUDA build.
TORCH   ?= torch==2.13.0
EXTRAS  ?= dev,stac,tune,docs,explore
ASV_ARGS ?=

.PHONY: demo test test-fast install lint bench docs clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/xcalving demo

test: $(STAMP)
	$(BIN)/ruff check xcalving tests benchmarks scripts examples
	$(BIN)/mypy xcalving
	$(BIN)/python -m pytest -m "not gpu" -q --doctest-modules xcalving tests

# the quick half for inner-loop work: no notebooks, docs build, fuzzing or whole-program suites
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not gpu and not slow" -q --doctest-modules xcalving tests

lint: $(STAMP)
	$(BIN)/ruff check xcalving tests benchmarks scripts examples
	$(BIN)/mypy xcalving

bench: $(STAMP)
	$(BIN)/asv machine --yes >/dev/null
	$(BIN)/asv run --python=same --show-stderr $(ASV_ARGS)

docs: $(STAMP)
	$(BIN)/sphinx-build -q -W -b html docs docs/_build/html
	@echo "API reference: docs/_build/html/index.html"

clean:
	rm -rf $(VENV) xcalving-demo .pytest_cache
