# Two entry points for a fresh machine (see README.md):
#   make demo   set up .venv and run `augsens demo` on the embedded default
#   make test   set up .venv with the dev tools, lint (ruff, mypy) and run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-out

.PHONY: demo test lint bench clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.base
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.base
	$(VENV)/bin/augsens demo --out $(DEMO_OUT)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) benchmarks/estimators.py
	$(PY) benchmarks/augment.py
	$(PY) benchmarks/throughput.py efficientnet_lite0

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
