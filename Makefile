# make demo   create .venv (if missing) and run the demo on ../shared/data
# make test   create .venv (if missing) and run the test suite
# make lint   ruff
# make bench-quick  the label-masking benchmark's quick profile (about 10 min on
#             2 cores), into a scratch directory: the CI smoke run
# make docs   create .venv (if missing), install the docs extra and build the site
#             (warnings are errors; runs every gallery example) in docs/_build/html
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export SKDIM_DATA ?= $(abspath ../shared/data)

.PHONY: demo test test-slow lint docs bench-quick clean

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

$(VENV)/.installed-docs: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.installed-docs
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench-quick: $(VENV)/.installed
	$(BIN)/python benchmarks/label_masking.py --quick --cache-dir build/bench-quick/cache \
		--out-dir build/bench-quick/results

lint: $(VENV)/.installed
	$(BIN)/ruff check skdim tests benchmarks examples tools
	$(BIN)/ruff format --check skdim

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build docs/auto_examples \
		docs/gen_modules docs/api/generated docs/benchmark_reports docs/generated_includes \
		docs/sg_execution_times.rst
