# Annae: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
ANNAE := $(VENV)/bin/annae
STAMP := $(VENV)/.installed
export ANNAE_HOME ?= $(CURDIR)/annae-data
# One thread per process: measured faster under load than two (see docs/benchmarks.md).
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test bench lint services chromium clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[train,test]'
	touch $(STAMP)

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
chromium:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# PostgreSQL and Redis run on this machine; start them if they were stopped.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no

demo: install
	$(ANNAE) demo

# The suite runs on TEST_WORKERS processes (pytest-xdist; one test file stays in one process, so
# its module fixtures, e.g. the browser tests' servers, are made once). The tests marked `alone`
# run afterwards in one plain pytest: time targets that assume the machine to themselves (faults,
# fuzzing), then the suite-wide secret check, on the same secrets ledger, scanning the parallel
# run's temporary folder too (tests/test_zz_suite_log_secrets.py).
TEST_WORKERS ?= 2

test: install chromium services
	tmp=$$(mktemp -d -t annae-test-XXXXXX) || exit 1; trap 'rm -rf "$$tmp"' EXIT; \
	export ANNAE_TEST_SECRET_LEDGER="$$tmp/ledger/secrets.txt" ANNAE_TEST_SUITE_TEMP="$$tmp/suite"; \
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=25 \
		--basetemp="$$tmp/suite"; rc=$$?; \
	$(PY) -m pytest -q -p no:cacheprovider --durations=5 -m alone || rc=1; \
	exit $$rc

bench: install services
	$(PY) -m benchmarks.run

lint: install
	$(VENV)/bin/ruff check annae tests benchmarks
	$(VENV)/bin/ruff format --check annae tests benchmarks
	$(VENV)/bin/mypy annae

clean:
	rm -rf $(ANNAE_HOME) .pytest_cache
