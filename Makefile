# lrsweep: `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install install-spark chromium postgresql sweep test test-fast lint bench ui clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/lrsweep: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,s3,aws]"
	@touch $@

$(VENV)/.spark-installed: $(BIN)/lrsweep
	$(BIN)/pip install -q -e ".[dev,s3,aws,spark,postgres]"
	@# the Spark driver's class archive, once per machine (~15 s): later sessions start faster (README, Speed > Spark)
	SPARK_LOCAL_IP=127.0.0.1 $(BIN)/python -m lrsweep.backends.spark_classes
	@touch $@

install: $(BIN)/lrsweep  ## create .venv and install lrsweep (+ dev tools); no Spark needed for the sklearn sweep

install-spark: $(VENV)/.spark-installed  ## add the Spark extra (pyspark 4.3, ~490 MB; needs Java 17) and its class archive

# Debian's browser, driven by Playwright in tests/test_mlflow_ui.py (Playwright's own browser downloads are not used)
$(CHROMIUM):
	@if command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the MLflow UI test"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "no apt-get: install chromium at $(CHROMIUM) yourself, or tests/test_mlflow_ui.py is skipped"; \
	fi

chromium: $(CHROMIUM)  ## install Debian's chromium (the MLflow UI test's browser) if it is missing

# Debian's PostgreSQL server, started by tests/postgres_server.py for the shared-study tests (study.storage=postgresql://)
postgresql:  ## install Debian's PostgreSQL server (the tests start their own on 127.0.0.1) if it is missing
	@if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing Debian's postgresql for the shared-study tests"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	else \
		echo "no apt-get: install PostgreSQL yourself, or the PostgreSQL tests fail"; exit 1; \
	fi

sweep: install  ## run the default sweep (sklearn, bundled telco churn, 50 trials) in this directory
	$(BIN)/lrsweep

test: install-spark chromium postgresql  ## the whole test suite (unit, end-to-end, Spark, PostgreSQL, the MLflow UI in Chromium)
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --durations=60

test-fast: install  ## the fast unit tests only
	$(BIN)/python -m pytest -q -m "not slow and not spark"

lint: install  ## ruff lint + format check, mypy on src
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

bench: install  ## tracking overhead benchmark (prints figures)
	$(BIN)/python benchmarks/bench_tracking.py

ui: install  ## open the MLflow UI on this directory's runs
	$(BIN)/mlflow ui

clean:  ## remove caches (keeps .venv, mlflow.db and studies)
	rm -rf .pytest_cache .ruff_cache .mypy_cache build dist src/*.egg-info
