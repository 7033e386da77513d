# asud — the commands of the README. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-data
DEMO_PORT ?= 8000
UPSTREAM_PORT ?= 8001
BENCH_FLAGS ?= --profile

.PHONY: venv demo test lint format bench clean

# An editable install in compat mode: the modern editable finder hides twisted/plugins/asud_plugin.py from
# Twisted's plugin scan (twisted-notes.md).
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]' --config-settings editable_mode=compat
	@touch $@

venv: $(VENV)/.installed

## demo: build the synthetic upstream, serve it, run the daemon (twist asud) against it, print the URLs (offline).
## The system programs are checked first with the system python3 (they include python3-venv): installed when
## running as root, otherwise the exact apt-get line is printed.
demo:
	$(PYTHON) -m asud.scripts.system_packages --venv
	$(MAKE) venv
	$(BIN)/asud demo --dir $(DEMO_DIR) --port $(DEMO_PORT) --upstream-port $(UPSTREAM_PORT)

## test: the whole test suite (CI=true makes tests that need a service, bwrap or Chromium fail instead of skip).
test: venv
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: every performance figure against its target, on 127.0.0.1; writes bench/out/results.md (< 10 min); bench/results.md is the committed reference.
## --profile samples the daemon with py-spy (the bench extra, installed with the venv). The system programs
## (the demo's, and wrk) are checked first, as for demo.
bench:
	$(PYTHON) -m asud.scripts.system_packages --venv --bench
	$(MAKE) venv
	$(BIN)/python -m bench $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
