# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench smoke clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,s3]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/imagine-bot run

lint: $(STAMP)
	$(BIN)/ruff check bot adapters tests $(wildcard benchmarks)
	$(BIN)/ruff format --check bot adapters tests $(wildcard benchmarks)

typecheck: $(STAMP)
	$(BIN)/mypy --strict bot adapters

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks

smoke: $(STAMP)
	IMAGINE_SMOKE=1 $(BIN)/pytest -q -m smoke tests/smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
