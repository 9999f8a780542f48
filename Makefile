# make demo   create .venv (if missing) and run the demo on ../shared/data
# make test   create .venv (if missing) and run the test suite
# make lint   ruff
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export SKDIM_DATA ?= $(abspath ../shared/data)

.PHONY: demo test test-slow lint docs bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,benchmark]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

test: $(VENV)/.installed
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.installed
	$(BIN)/ruff check skdim tests benchmarks examples tools
	$(BIN)/ruff format --check skdim

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build
