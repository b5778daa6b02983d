# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/authz-watcher scan --no-decode examples/logs

lint: $(STAMP)
	$(BIN)/ruff check watcher tests benchmarks
	$(BIN)/ruff format --check watcher tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/scan_throughput.py
	$(BIN)/python benchmarks/decode_throughput.py
	$(BIN)/python benchmarks/tail_latency.py
	$(BIN)/python benchmarks/tail_throughput.py
	$(BIN)/python benchmarks/tail_rss.py
	$(BIN)/python benchmarks/cloudtrail_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
