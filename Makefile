# The README's two commands: `make up` (the whole stack with the demo model) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
OUT ?= modelyard-bundle.tar.gz
MODELS ?=

.PHONY: setup up down register images images-offline bundle serve test test-fast e2e fuzz mutation lint format bench soak screenshots clean

setup:
	@VENV=$(VENV) scripts/bootstrap.sh

# The stack: Docker (installed if needed), images (offline when nothing can be pulled), demo model.
up: setup
	scripts/up.sh

down:
	docker compose down

# A model file of this machine into the running stack's registry: make register FILE=m.joblib NAME=fraud [PROMOTE=1]
register:
	scripts/register.sh "$(FILE)" "$(NAME)" "$(PROMOTE)"

images: setup
	scripts/images.sh

images-offline: setup
	scripts/images.sh --offline

# One archive for a client's network: make bundle OUT=modelyard.tar.gz MODELS="churn:1"
bundle: setup
	scripts/bundle.sh $(OUT) $(MODELS)

# The API alone, on this machine, without Docker (the demo model trained if none is registered).
serve: setup
	$(BIN)/modelyard demo train --if-missing
	$(BIN)/modelyard serve --host $(HOST) --port $(PORT)

# Everything: lint, then unit, integration, and end-to-end through Docker Compose (installed if needed).
test: setup lint
	scripts/docker.sh
	$(BIN)/pytest

# Without the end-to-end suite, for quick rounds.
test-fast: setup
	$(BIN)/pytest --ignore=tests/e2e

e2e: setup
	scripts/docker.sh
	$(BIN)/pytest tests/e2e

# The API's contract fuzzed longer than in `make test` (schemathesis: every check, every phase, 200
# examples an operation), on a server with a key and on one without; each run's summary printed.
fuzz: setup
	MODELYARD_FUZZ_EXAMPLES=200 $(BIN)/pytest tests/integration/api/test_contract.py -k fuzzer -s

# The README's pictures of the console (docs/images/console-*.png): the browser tests' stack and Chromium.
screenshots: setup
	$(BIN)/python scripts/screenshots.py docs/images

# Mutation testing of the core (mutmut, settings in pyproject.toml); the survivors are listed last.
mutation: setup
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	$(BIN)/mutmut results

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: setup
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/realtime.py
	$(BIN)/python benchmarks/predict_latency.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/hostile.py
	$(BIN)/python benchmarks/memory.py

# Ten minutes of mixed valid, malformed and oversize requests: 500s, 503s and RSS each minute.
soak: setup
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
