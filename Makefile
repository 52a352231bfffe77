# Zhiku (知库). `make start` runs the app on a fresh machine; `make test` runs the whole test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: start api install install-test test lint unit bench clean-venv

# torch goes in first and alone: anything that depends on it would otherwise pull GBs of CUDA wheels.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PIP) install --quiet -r requirements-test.txt
	touch $@

install: $(STAMP)
install-test: $(TEST_STAMP)

# Starts the LLM worker (when a local model is configured), the API and the Web UI; Ctrl+C stops them all.
# First run: startup.py creates the tables and builds the sample knowledge base; later runs skip what is built.
start: $(STAMP)
	$(PY) startup.py -a

api: $(STAMP)
	$(PY) -m server.api

lint: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy server configs bench init_database.py startup.py webui.py webui_pages

test: $(TEST_STAMP)
	bash scripts/system_deps.sh
	$(MAKE) lint
	$(PY) -m pytest -q -ra --durations=15

unit: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not integration"

bench: $(STAMP)
	$(PY) -m bench.ingest
	$(PY) -m bench.search

clean-venv:
	rm -rf $(VENV)
