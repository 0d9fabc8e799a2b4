# Lakehouse Workbook. Two commands: `make run` and `make test`; both set up what is missing.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STATE  := .lakehouse
JARS   := $(STATE)/jars
POMS   := lakehouse_helpers/jvm/pom.xml $(wildcard lakehouse_helpers/jvm/*/pom.xml)
CLI    := $(PY) -m lakehouse_helpers

# Notebook parameters from the command line, e.g. `make run EVENTS=100000 SEED=7`.
RUN_ARGS := $(if $(EVENTS),-p events $(EVENTS)) $(if $(SEED),-p seed $(SEED)) $(if $(NOTEBOOKS),--only $(NOTEBOOKS))

.PHONY: help setup run test lint lab bench services-up services-down services-status doctor clean distclean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(JARS)/.resolved  ## create .venv, install, resolve jars (idempotent)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if (3, 11) <= v[:2] <= (3, 12) else f"Python 3.11 or 3.12 is needed, found {sys.version.split()[0]} at {sys.executable}. Install it or use conda: conda env create -f environment.yml")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(JARS)/.resolved: $(POMS)
	@command -v java >/dev/null || { echo "Java 17 is needed (java not on PATH): install a JDK 17 or use conda (environment.yml)." >&2; exit 1; }
	@java -version 2>&1 | awk -F'"' '/version/ { split($$2, v, "."); if (v[1] < 17) { print "Java 17 or newer is needed, found " $$2 > "/dev/stderr"; exit 1 } }'
	@command -v mvn >/dev/null || { echo "Maven (mvn) is needed once to fetch the jars: install it or use conda (environment.yml)." >&2; exit 1; }
	@rm -rf $(JARS)
	@echo "Resolving jars into $(JARS) (once; later runs are offline)"
	mvn --quiet --batch-mode -f lakehouse_helpers/jvm/pom.xml -Djars.dir=$(abspath $(JARS)) $(if $(UNITY),-Punity) package
	@touch $@

services-up: setup  ## start Kafka, the S3 server and the metastore (reuses running ones)
	@$(CLI) services up

services-down:  ## stop the services this project started (the test suite's too)
	@if [ -x $(PY) ]; then $(CLI) services down; \
	  if [ -d $(STATE)/test/services ]; then LAKEHOUSE_STATE_DIR=$(STATE)/test $(CLI) services down >/dev/null; fi; fi

services-status:  ## show each service's health
	@$(CLI) services status

doctor: setup  ## check packages, Java, jars and every service, with fixes
	@$(CLI) doctor

run: setup services-up  ## run every notebook with papermill; writes executed notebooks and a summary
	@$(CLI) run $(RUN_ARGS)

test: setup  ## lint, then the whole test suite (starts the services it needs)
	$(VENV)/bin/ruff check lakehouse_helpers tests
	$(PY) -m pytest

lint:  ## ruff
	$(VENV)/bin/ruff check lakehouse_helpers tests

lab: setup services-up  ## JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

BENCH_EVENTS ?= 100000
bench: setup services-up  ## start-up costs, every notebook in connect and classic mode, pipeline and Auto Loader rates
	@$(CLI) bench --events $(BENCH_EVENTS) --autoloader --notebooks

clean: services-down  ## remove all generated state (.lakehouse/): jars, service data, tables, outputs
	rm -rf $(STATE)

distclean: clean  ## also remove the virtualenv
	rm -rf $(VENV)
