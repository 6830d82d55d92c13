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

test: install chromium services
	$(PY) -m pytest -q -p no:cacheprovider --durations=25

bench: install services
	$(PY) -m benchmarks.run

lint: install
	$(VENV)/bin/ruff check annae tests benchmarks
	$(VENV)/bin/ruff format --check annae tests benchmarks
	$(VENV)/bin/mypy annae

clean:
	rm -rf $(ANNAE_HOME) .pytest_cache
