# Two commands for a newcomer: `make run` (the dashboard on the sandbox, with demo data) and
# `make test` (every test on PostgreSQL + Redis, the production shape; then, on SQLite with the in-memory
# layer, every test whose behaviour depends on the database or the layer).
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test test-sqlite test-postgres setup lint benchmark screenshots clean

setup: $(VENV)/.installed

# Re-installs whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@python=$$(scripts/find-python) || exit 1; \
	  [ -x $(PY) ] || { echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check '.[test]'
	@touch $@

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo --port $(PORT)
	PORT=$(PORT) $(PY) manage.py runserver 127.0.0.1:$(PORT)

test: test-postgres test-sqlite

test-sqlite: setup
	scripts/ensure-services
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -m "not once and not benchmark"

test-postgres: setup
	scripts/ensure-services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Figures for docs/PERFORMANCE.md; on demand, never in CI.
benchmark: setup
	$(PY) -m pytest tests/benchmarks -m benchmark -s -p no:cacheprovider

# Refreshes the README's screenshots in docs/screenshots/.
screenshots: setup
	scripts/ensure-services
	UPDATE_SCREENSHOTS=1 env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest tests/e2e/test_screenshots.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache build *.egg-info
