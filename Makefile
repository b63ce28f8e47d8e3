# Two entry points for a fresh machine (see README.md):
#   make demo   set up .venv and run `augsens demo` on the embedded default
#   make test   set up .venv with the dev tools, lint (ruff, mypy) and run the test suite; as root on a
#               Debian-like system it first installs headless Chromium for the report's browser test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-out

.PHONY: demo test lint bench clean browser

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

# Chromium + chromedriver for tests/plot/test_explorer_browser.py; without root or apt-get the test
# skips and says how to install them.
browser:
	@if command -v chromedriver >/dev/null && (command -v chromium || command -v chromium-browser) >/dev/null; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) \
			|| echo "note: apt-get could not install chromium: the browser test will be skipped"; \
	else \
		echo "note: no Chromium/chromedriver and no root apt-get: the browser test will be skipped"; \
	fi

test: lint browser
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) benchmarks/estimators.py
	$(PY) benchmarks/augment.py
	$(PY) benchmarks/throughput.py efficientnet_lite0

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
