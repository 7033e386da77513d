# sysup — the commands of the README. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-data
DEMO_PORT ?= 8000
UPSTREAM_PORT ?= 8001

.PHONY: venv demo test lint format bench clean

$(BIN)/sysup: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

venv: $(BIN)/sysup

## demo: build the synthetic upstream, serve it, start sysup against it and print the URLs (offline).
demo: venv
	$(BIN)/sysup demo --dir $(DEMO_DIR) --port $(DEMO_PORT) --upstream-port $(UPSTREAM_PORT)

## test: the whole test suite (CI=true makes tests that need a service, bwrap or Chromium fail instead of skip).
test: venv
	$(BIN)/ruff check sysup tests bench
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check sysup tests bench
	$(BIN)/ruff format --check sysup tests bench

format: venv
	$(BIN)/ruff format sysup tests bench
	$(BIN)/ruff check --fix sysup tests bench

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
