# Lakehouse Workbook. Two commands: `make run` and `make test`; both set up what is missing.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# A supported Python on PATH, the one CI uses first; pyproject.toml's requires-python decides which are supported.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3.12 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STATE  := .lakehouse
JARS   := $(STATE)/jars
POMS   := lakehouse_helpers/runtime/jvm/pom.xml $(wildcard lakehouse_helpers/runtime/jvm/*/pom.xml)
CLI    := $(PY) -m lakehouse_helpers
# Maven 3.8's console library writes colour resets (ESC[0m) even in batch mode; jansi.noreset stops them.
MVN     = MAVEN_OPTS="$${MAVEN_OPTS:-} -Djansi.noreset=true" \
	  mvn --quiet --batch-mode -Dstyle.color=never -f lakehouse_helpers/runtime/jvm/pom.xml -Djars.dir=$(abspath $(JARS))

# Notebook parameters from the command line: `make run EVENTS=100000 SEED=7 NOTEBOOKS="01 02"`,
# and any parameter of any notebook as shell-like words in PARAMS (`make help` lists them):
#   make run NOTEBOOKS=07 PARAMS="mistaken_delete=\"currency IN ('EUR')\""
RUN_ARGS := $(if $(EVENTS),-p events $(EVENTS)) $(if $(SEED),-p seed $(SEED)) $(if $(NOTEBOOKS),--only $(NOTEBOOKS))
# PARAMS reaches the CLI through the environment, as typed: make does not expand a `$` in it and
# the shell does not re-split it; the CLI parses it with shlex.
ifdef PARAMS
override PARAMS := $(value PARAMS)
export PARAMS
endif

.PHONY: help setup run reset test test-unit test-quick lint lab chromium strip bench services-up services-down services-status doctor clean distclean deploy-databricks

help:  ## list the targets and every notebook parameter
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'
	@echo
	@if [ -n "$(PYTHON)" ]; then $(PYTHON) -m lakehouse_helpers.notebook.params; \
	  else echo "Notebook parameters: install Python (see README.md) to list them."; fi

setup: $(VENV)/.installed $(JARS)/.resolved $(if $(UNITY),$(JARS)/.unity)  ## create .venv, install, resolve jars (idempotent; UNITY=1 adds the Unity Catalog connector)

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python is needed (python3 not on PATH; requires-python in pyproject.toml says which). Install it or use conda: conda env create -f environment.yml" >&2; exit 1; }
	@$(PYTHON) lakehouse_helpers/runtime/pyversion.py
	@if [ ! -x $(PY) ]; then echo "Creating $(VENV) with $(notdir $(PYTHON)) ..."; $(PYTHON) -m venv $(VENV); fi
	@echo "Installing Python packages into $(VENV) (about 1.3 GB, once) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[dev]'
	@touch $@

$(JARS)/.resolved: $(POMS)
	@command -v java >/dev/null || { echo "Java 17 is needed (java not on PATH): install a JDK 17 or use conda (environment.yml)." >&2; exit 1; }
	@java -version 2>&1 | awk -F'"' '/version/ { split($$2, v, "."); if (v[1] < 17) { print "Java 17 or newer is needed, found " $$2 > "/dev/stderr"; exit 1 } }'
	@command -v mvn >/dev/null || { echo "Maven (mvn) is needed once to fetch the jars: install it or use conda (environment.yml)." >&2; exit 1; }
	@rm -rf $(JARS)
	@echo "Resolving jars into $(JARS) with Maven (about 200 MB, once; later runs are offline) ..."
	@$(MVN) package
	@touch $@

$(JARS)/.unity: $(JARS)/.resolved
	@echo "Adding the Unity Catalog Spark connector to $(JARS) ..."
	@$(MVN) -Punity package
	@touch $@

services-up: setup  ## start Kafka, the S3 server, the metastore and the Spark Connect server (reuses running ones)
	@$(CLI) services up

services-down:  ## stop the services this project started (the test suite's too)
	@if [ -x $(PY) ]; then $(CLI) services down; \
	  for test in $(STATE)/test $(STATE)/test-*; do if [ -d $$test/services ]; then \
	    LAKEHOUSE_STATE_DIR=$$test $(CLI) services down >/dev/null; fi; done; fi

services-status:  ## show each service's health
	@$(CLI) services status

doctor: setup  ## check packages, Java, jars and every service, with fixes
	@$(CLI) doctor

run: setup services-up  ## run the notebooks with papermill (EVENTS= SEED= NOTEBOOKS= PARAMS=); executed copies and a summary
	@$(CLI) run $(RUN_ARGS) --params "$${PARAMS:-}"

# The tiers are the folders of tests/ (tests/tiers.py): unit, jars, spark, services, notebooks, browser, faults.
# Two lanes at once, each on a stack of its own (tests/lanes.py); LANES=1 runs them one after the other.
LANES ?= 2
test: setup lint chromium  ## lint, then every tier in two lanes (starts the services it needs)
	$(PY) -m pytest $(if $(filter 1,$(LANES)),,-n 2)

# The browser tier drives Debian's Chromium package (Playwright's own browser downloads are not
# used). Installed here when missing; where it cannot be, make goes on and the browser test fails
# naming the command, so the other tiers still run.
CHROMIUM_INSTALL := apt-get install -y chromium
chromium:  ## install Chromium for the browser tier when it is missing (apt-get; `make test` runs this)
	@if ! command -v chromium >/dev/null; then \
	  if ! command -v apt-get >/dev/null; then echo "Chromium is missing and apt-get is not available: install Chromium yourself (Debian: $(CHROMIUM_INSTALL)); the browser tier will fail until then." >&2; \
	  else sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n "); echo "Installing Chromium for the browser tier: $${sudo}$(CHROMIUM_INSTALL) ..."; \
	    { DEBIAN_FRONTEND=noninteractive $${sudo}$(CHROMIUM_INSTALL) >/dev/null 2>&1 \
	      || { $${sudo}apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $${sudo}$(CHROMIUM_INSTALL) >/dev/null; }; } \
	      || echo "Could not install Chromium ($${sudo}$(CHROMIUM_INSTALL) failed); the browser tier will fail until it is installed." >&2; fi; \
	fi

test-unit: $(VENV)/.installed  ## the unit tier: no services, Spark, jars, kernels or Java (seconds; run on every change)
	$(PY) -m pytest tests/unit

test-quick: setup  ## unit, jars, spark and services tiers: everything but the notebooks, the browser and the faults (a few minutes)
	$(PY) -m pytest tests/unit tests/jars tests/spark tests/services

lint:  ## ruff on the package, the tests and the notebooks
	$(VENV)/bin/ruff check lakehouse_helpers tests notebooks

# The lab's root is <state>/lab: links to notebooks/ and to the executed runs, nothing else of the
# state folder (secrets, service data). Its overrides.json turns off the news and update pop-ups.
lab: setup services-up  ## JupyterLab on notebooks/ and the executed runs, with the services up
	@state=$$($(PY) -c 'from lakehouse_helpers import load_settings; print(load_settings().state_dir)'); \
	  mkdir -p "$$state/lab" "$$state/lab-settings" "$$state/runs"; \
	  ln -sfn "$(CURDIR)/notebooks" "$$state/lab/notebooks"; \
	  ln -sfn "$$state/runs" "$$state/lab/runs"; \
	  echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}, "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Markdown Preview"}}}' \
	    > "$$state/lab-settings/overrides.json"; \
	  $(VENV)/bin/jupyter lab --notebook-dir="$$state/lab" --LabApp.app_settings_dir="$$state/lab-settings" \
	    --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	    --ServerApp.default_url=/lab/tree/notebooks/README.md --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

strip: $(VENV)/.installed  ## clear outputs from notebooks/ after working in the lab (keeps # NBVAL_CHECK_OUTPUT cells)
	@$(CLI) notebooks strip

BENCH_EVENTS ?= 100000
bench: setup services-up  ## scoreboard: each stage's rate next to its native limit (BENCH_EVENTS=); start-up; every notebook in both modes
	@$(CLI) bench --events $(BENCH_EVENTS) --notebooks

# Host and token come from DATABRICKS_HOST/DATABRICKS_TOKEN or DATABRICKS_CONFIG_PROFILE, never from here.
deploy-databricks: $(VENV)/.installed  ## deploy notebooks 00, 05-07 as one Databricks job (RUN=1: run it and follow; DRY_RUN=1: print the requests only)
	@$(CLI) deploy $(if $(RUN),--run) $(if $(DRY_RUN),--dry-run)

reset: setup services-up  ## the data back to before notebook 01 (topic, tables, landing, checkpoints); keeps .venv, jars, services, runs
	@$(CLI) reset

clean: services-down  ## remove all generated state (.lakehouse/): jars, service data, tables, outputs
	rm -rf $(STATE)

distclean: clean  ## also remove the virtualenv
	rm -rf $(VENV)
