# One-command setup and runs for a fresh machine. `make demo` and `make test` are the two a newcomer needs.
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch comes from this spec; on a GPU machine pass e.g. TORCH='torch>=2.1'.
TORCH ?= torch==2.13.0

.PHONY: setup system-deps demo test test-all lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Debian's chromium for the browser tests (the report and the web UI); installed when running as root.
system-deps:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: install Debian's chromium (apt-get install chromium) to run the browser tests"

demo: setup
	$(BIN)/videogen selftest --keep demo-output
	$(BIN)/videogen models

test: setup system-deps
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

test-all: setup system-deps
	$(BIN)/python -m pytest -q -m ''

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
