# Two entry points for a fresh machine (see README.md):
#   make demo   set up .venv and run `augsens demo` on the embedded default
#   make test   set up .venv with the dev tools, lint (ruff, mypy), build the documentation site and run the
#               test suite; as root on a Debian-like system it first installs headless Chromium for the
#               report's browser test
#   make docs   build the documentation site into site/ (warnings are errors; the walkthrough notebook is
#               executed at a small n)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-out

.PHONY: demo test lint docs bench clean browser

# the core alone is `pip install augsens`; the demo needs the vision and analysis extras, the tests all
$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[vision,analysis]'
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.base
	$(PY) -m pip install -q -e '.[all,dev,docs]'
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

# the walkthrough notebook is executed at n = 16 into the site (a minute on 2 cores)
docs: $(VENV)/.dev
	NO_MKDOCS_2_WARNING=1 AUGSENS_WALKTHROUGH_N=16 AUGSENS_WALKTHROUGH_OUT=$(CURDIR)/site-build/walkthrough \
		$(VENV)/bin/mkdocs build --strict --site-dir site

test: lint browser docs
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) benchmarks/estimators.py
	$(PY) benchmarks/augment.py
	$(PY) benchmarks/throughput.py efficientnet_lite0

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache site site-build
