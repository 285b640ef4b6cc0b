# The README's two commands: `make serve` (the API with the demo model) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup serve test lint format bench clean

setup:
	@VENV=$(VENV) scripts/bootstrap.sh

serve: setup
	$(BIN)/modelyard demo train --if-missing
	$(BIN)/modelyard serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/predict_latency.py
	$(BIN)/python benchmarks/batch.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
