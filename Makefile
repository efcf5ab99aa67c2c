# connectord — `make run` starts the daemon on ./connectors.toml, `make test` runs the tests.
# Both create .venv on first use; nothing else needs to be installed beforehand.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint check bench bench-scale bench-clevertap bench-backfill clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/connectord run -c connectors.toml

check: $(STAMP)
	$(BIN)/connectord check -c connectors.toml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Push ingest on one process, `workers = 2` and PostgreSQL state (a few minutes); the
# PostgreSQL configurations need psycopg and a server on 127.0.0.1:5432 (user postgres).
bench-scale: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[postgres]'
	$(BIN)/python bench/push_scale.py

# The CleverTap export against dlt needs dlt, kept out of the project's own venv.
bench/.venv/.installed: pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv bench/.venv
	bench/.venv/bin/python -m pip install --quiet --upgrade pip
	bench/.venv/bin/python -m pip install --quiet -e . -r bench/requirements.txt
	touch bench/.venv/.installed

bench-clevertap: bench/.venv/.installed
	bench/.venv/bin/python bench/clevertap_export.py

# A sparse 3-year CleverTap backfill at the account's concurrency vs one call at a time
# (about 15 minutes; `.venv/bin/python bench/clevertap_backfill.py --days 120` is quicker).
bench-backfill: $(STAMP)
	$(BIN)/python bench/clevertap_backfill.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
