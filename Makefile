# Two entry points matter: `make run` and `make test`. Everything else is a step they call.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format pytest wheel-smoke bench bench-intake bench-read bench-bulk bench-queue bench-scrub bench-reseal bench-x12 bench-submit bench-remit bench-report mutate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	RCM_ENV=dev $(BIN)/rcm dev

lint: $(STAMP)
	$(BIN)/ruff check src tests migrations bench audit integrations
	$(BIN)/ruff format --check src tests migrations bench audit integrations
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests migrations bench audit integrations
	$(BIN)/ruff check --fix src tests migrations bench audit integrations

pytest: $(STAMP)
	$(BIN)/pytest

test: lint pytest

# Only the wheel smoke test (make test runs it too): build, clean venv, migrate, serve, /readyz, apply.
wheel-smoke: $(STAMP)
	$(BIN)/pytest -m wheel

# Each prints ours beside plain asyncpg doing the same work, with the ratio (about 2 minutes each; all on
# 127.0.0.1; RCM_DATABASE_URL picks a local PostgreSQL, otherwise the embedded one is used).
bench: bench-intake bench-read bench-bulk bench-queue bench-scrub bench-reseal bench-x12 bench-submit bench-remit

bench-intake: $(STAMP)
	$(BIN)/python bench/intake.py

bench-read: $(STAMP)
	$(BIN)/python bench/read.py

bench-bulk: $(STAMP)
	$(BIN)/python bench/bulk.py

bench-queue: $(STAMP)
	$(BIN)/python bench/queue.py

bench-scrub: $(STAMP)
	$(BIN)/python bench/scrub.py

bench-submit: $(STAMP)
	$(BIN)/python bench/submit.py

bench-reseal: $(STAMP)
	$(BIN)/python bench/reseal.py

# 835 claims posted per second (rcm remit import: parse, match, post, commit) beside pyx12's segment reader.
bench-remit: $(STAMP)
	$(BIN)/python bench/remit.py

# Cash flow and AR aging p95 at 1,000,000 claims beside an index-only scan (target <= 3x), KPI money and the
# dashboard page. Not in `make bench`: the set-up alone takes 20 minutes or more (then `--reuse`).
bench-report: $(STAMP)
	$(BIN)/python bench/report.py

# No database: 835 claims read per second beside pyx12, edi-835-parser (the bench extra) and a bare split.
bench-x12: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/x12.py

# Mutation testing of the access-control modules (not in CI: tens of minutes). Needs RCM_TEST_DATABASE_URL.
# Narrow it with MUTATE_ARGS, e.g. MUTATE_ARGS="--module src/rcm/identity/access.py --max 10" or "--list-only".
mutate: $(STAMP)
	$(BIN)/python bench/mutate.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) .rcm .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
