# Every target sets up what it needs first, so each one works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
DEBIAN_PACKAGES := prometheus prometheus-alertmanager postgresql
BENCH_DEBIAN_PACKAGES := prometheus-blackbox-exporter

.PHONY: test lint bench debian-packages

$(VENV)/.installed: pyproject.toml
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --upgrade pip
	$(VENV_PY) -m pip install -q -e '.[test]'
	@touch $@

debian-packages:
	@scripts/ensure-debian-packages.sh $(DEBIAN_PACKAGES)

test: $(VENV)/.installed debian-packages
	$(VENV)/bin/ruff check .
	$(VENV_PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed debian-packages
	@scripts/ensure-debian-packages.sh $(BENCH_DEBIAN_PACKAGES)
	$(VENV_PY) bench/exporter_load.py
	$(VENV_PY) bench/statuspage_load.py
