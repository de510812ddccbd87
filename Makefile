# Every target sets up what it needs first, so each one works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
RUN_DEBIAN_PACKAGES := prometheus prometheus-alertmanager postgresql
# blackbox_exporter: the benchmark's side-by-side comparison, which a test runs in miniature.
TEST_DEBIAN_PACKAGES := $(RUN_DEBIAN_PACKAGES) chromium docker-compose wrk curl \
	prometheus-blackbox-exporter

.PHONY: test lint bench run demo dashboards debian-packages

$(VENV)/.installed: pyproject.toml
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --upgrade pip
	$(VENV_PY) -m pip install -q -e '.[test]'
	@touch $@

debian-packages:
	@scripts/ensure-debian-packages.sh $(TEST_DEBIAN_PACKAGES)

# Browser audit tools (axe-core, Lighthouse), exactly as package-lock.json pins them; no browser
# is downloaded: the tests drive Debian's Chromium.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || scripts/ensure-debian-packages.sh npm
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

test: $(VENV)/.installed debian-packages node_modules/.installed
	$(VENV)/bin/ruff check .
	$(VENV_PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The whole stack on this machine (Ctrl-C stops it; data is kept under .local/).
run: $(VENV)/.installed
	@scripts/ensure-debian-packages.sh $(RUN_DEBIAN_PACKAGES)
	$(VENV_PY) deploy/local/run.py

# The same against simulated Sefaria services, with a local Slack printing every alert.
demo: $(VENV)/.installed
	@scripts/ensure-debian-packages.sh $(RUN_DEBIAN_PACKAGES)
	$(VENV_PY) deploy/local/run.py --demo

# Regenerate deploy/grafana/dashboards/*.json from deploy/grafana/grafana_dashboards.py.
dashboards: $(VENV)/.installed
	$(VENV_PY) deploy/grafana/grafana_dashboards.py

bench: $(VENV)/.installed debian-packages
	$(VENV_PY) bench/exporter_load.py
	$(VENV_PY) bench/statuspage_load.py
