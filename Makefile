# Two commands do all the set-up on a fresh machine:
#   make demo   the exporter with a simulated fleet on http://127.0.0.1:9477/
#   make test   lint and every test (installs the Python packages and the Prometheus tools)
# and, for a quick loop, `make test-fast`: the unit tests alone (no binaries, under a minute).
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
APT_TOOLS := promtool prometheus amtool prometheus-alertmanager jsonnetfmt docker-compose victoria-metrics vmalert
# Not in Debian bookworm: installed by hand (the Kubernetes tests run `kubectl kustomize`).
MANUAL_TOOLS := kubectl
TOOLS := $(APT_TOOLS) $(MANUAL_TOOLS)

.PHONY: install tools demo stack test test-fast lint format generate

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

# Debian's Prometheus, Alertmanager, Jsonnet, docker-compose and VictoriaMetrics (victoria-metrics,
# vmalert) tools, for the tests that run the real binaries; kubectl must be there already.
tools:
	@for t in $(MANUAL_TOOLS); do command -v $$t >/dev/null || { \
		echo "kubectl is missing: install the Kubernetes command-line tool (with its built-in kustomize) from the Kubernetes project's release binaries; Debian bookworm has no package for it" >&2; exit 1; }; done
	@missing=0; for t in $(APT_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if [ $$missing = 1 ]; then \
		echo "installing prometheus, prometheus-alertmanager, jsonnet, docker-compose and victoria-metrics from Debian"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus prometheus-alertmanager jsonnet docker-compose victoria-metrics >/dev/null; \
	fi

demo: install
	$(VENV)/bin/agency-telemetry demo

# Exporter with demo fleet, Prometheus with the mixin's rules, Alertmanager with the bundle and a
# notification sink, from local binaries (no Docker); prints the URLs, Ctrl-C stops them all.
stack: install tools
	$(PYTHON) scripts/local_stack.py

# Renders config.libsonnet, rules/*.libsonnet and dashboards/*.libsonnet into the committed
# rules/*.yml and dashboards/*.json.
generate: install
	$(PYTHON) scripts/generate.py

lint: install tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	jsonnetfmt --test $$(git ls-files '*.jsonnet' '*.libsonnet')
	promtool check rules --lint=all --lint-fatal rules/*.yml

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PYTHON) -m pytest

# Leaves out the tests marked integration (they start Prometheus, Alertmanager, promtool, amtool,
# docker-compose or the CLI) or slow; pytest's exit code 5 (nothing collected) fails it too.
test-fast: install
	$(PYTHON) -m pytest -m "not integration and not slow"
