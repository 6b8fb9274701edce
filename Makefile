# FamilyLink: `make run` to try it, `make test` to check it. Nothing else is needed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/familylink_test
DEV_ENV := FLASK_DEBUG=1 DEV_MAILBOX=1

.PHONY: help venv translations translations-extract translations-update run test test-sqlite test-postgres test-deep lint format clean bench chromium screenshots

help:
	@echo "make run    - set up, migrate, load demo data and serve on http://127.0.0.1:5000"
	@echo "make test   - lint, then the whole suite on SQLite and on PostgreSQL, side by side"
	@echo "make test-deep - the privacy oracle with many more random worlds, on both databases"
	@echo "make format - format the code with the pinned ruff"
	@echo "make translations - compile the message catalogues (make run and make test do it)"
	@echo "make translations-extract - write every translatable string to familylink/translations/messages.pot"
	@echo "make translations-update - re-extract and update each language's .po (folds in parts/*.po drafts)"
	@echo "make bench  - run every benchmark and rewrite docs/benchmarks.md"
	@echo "make screenshots - save desktop and phone screenshots to docs/screenshots/"

$(VENV)/.installed: requirements.txt
	@echo "Setting up $(VENV) (first run takes a minute)…"
	@test -x $(PY) || python3 -m venv $(VENV)
	@set -o pipefail; $(PY) -m pip install --quiet --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
	@set -o pipefail; $(PY) -m pip install --quiet -r requirements.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

venv: $(VENV)/.installed

# Catalogues: familylink/translations/<lang>/LC_MESSAGES/messages.po is the source; the .mo
# the app reads is built here (not committed). See familylink/i18n.py.
translations: venv
	@$(PY) -m familylink.i18n compile

translations-extract: venv
	@$(PY) -m familylink.i18n extract

translations-update: venv
	@$(PY) -m familylink.i18n update

run: venv translations
	@$(DEV_ENV) $(FLASK) db upgrade
	@$(DEV_ENV) $(FLASK) seed-demo --if-empty
	@echo "Serving on http://127.0.0.1:5000 - emails appear at http://127.0.0.1:5000/dev/mailbox"
	@$(DEV_ENV) $(FLASK) mail worker --interval 5 & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(DEV_ENV) $(FLASK) run --host 127.0.0.1 --port 5000

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The browser tests drive Debian's Chromium; Playwright's own browser downloads can't work here.
CHROMIUM := /usr/bin/chromium
# Chromium's profile and pytest's scratch files stay inside the project (tmp/ is ignored).
E2E_ENV := TMPDIR=$(CURDIR)/tmp/scratch

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "Chromium is missing: installing Debian's chromium package for the browser tests…"; \
	  mkdir -p tmp; \
	  if ( export DEBIAN_FRONTEND=noninteractive; apt-get update -q \
	       && apt-get install -y -q --no-install-recommends chromium fonts-liberation ) \
	       >tmp/apt-chromium.log 2>&1; then \
	    echo "Chromium installed: $$($(CHROMIUM) --version 2>/dev/null)"; \
	  else \
	    tail -n 5 tmp/apt-chromium.log; \
	    echo "Could not install chromium (log: tmp/apt-chromium.log); the browser tests will fail."; \
	  fi; \
	fi

test-sqlite: venv chromium
	@echo "== Tests on SQLite"
	@mkdir -p tmp/scratch
	TEST_DATABASE_URL= $(E2E_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# --database-tests-only: the ~720 tests that never reach the test database (pure rules,
# content, README commands, structure) and those marked sqlite_only (what no database
# changes: the page-translation crawl) ran already, identically, in the SQLite run.
test-postgres: venv
	@echo "== Tests on PostgreSQL ($(PG_TEST_URL))"
	TEST_DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -m "not e2e" --database-tests-only $(PYTEST_ARGS)

# Lint, then both databases side by side (TEST_JOBS=1: one after the other). Each run writes
# its own log in tmp/test-logs/, printed whole when both are done; the last two lines say
# which database passed or failed, and `make test` fails if either did. While they run, a line
# a minute shows how far each has got.
TEST_JOBS ?= 2
TEST_LOGS := tmp/test-logs
test: lint translations chromium
	@mkdir -p $(TEST_LOGS)
	@started=$$(date +%s); \
	if [ "$(TEST_JOBS)" = 1 ]; then \
	  echo "== SQLite, then PostgreSQL (logs: $(TEST_LOGS)/sqlite.log, $(TEST_LOGS)/postgres.log)"; \
	  $(MAKE) --no-print-directory test-sqlite >$(TEST_LOGS)/sqlite.log 2>&1; sqlite=$$?; \
	  $(MAKE) --no-print-directory test-postgres >$(TEST_LOGS)/postgres.log 2>&1; postgres=$$?; \
	else \
	  echo "== SQLite and PostgreSQL side by side (follow: tail -f $(TEST_LOGS)/*.log)"; \
	  $(MAKE) --no-print-directory test-sqlite >$(TEST_LOGS)/sqlite.log 2>&1 & sqlite_pid=$$!; \
	  $(MAKE) --no-print-directory test-postgres >$(TEST_LOGS)/postgres.log 2>&1 & postgres_pid=$$!; \
	  ticks=0; \
	  while kill -0 $$sqlite_pid 2>/dev/null || kill -0 $$postgres_pid 2>/dev/null; do \
	    sleep 5; ticks=$$((ticks + 1)); [ $$((ticks % 12)) = 0 ] || continue; \
	    echo "== $$(( ($$(date +%s) - started) / 60 )) min: SQLite $$(grep -o '\[ *[0-9]*%\]' $(TEST_LOGS)/sqlite.log | tail -n 1), PostgreSQL $$(grep -o '\[ *[0-9]*%\]' $(TEST_LOGS)/postgres.log | tail -n 1)"; \
	  done; \
	  wait $$sqlite_pid; sqlite=$$?; wait $$postgres_pid; postgres=$$?; \
	fi; \
	cat $(TEST_LOGS)/sqlite.log; echo; cat $(TEST_LOGS)/postgres.log; echo; \
	echo "== Both databases took $$(( $$(date +%s) - started )) s"; \
	for run in "SQLite $$sqlite" "PostgreSQL $$postgres"; do \
	  set -- $$run; \
	  if [ "$$2" = 0 ]; then echo "== $$1: passed"; else echo "== $$1: FAILED (exit $$2)"; fi; \
	done; \
	[ "$$sqlite" = 0 ] && [ "$$postgres" = 0 ]

# The privacy oracle (tests/privacy) explores many more worlds than in `make test`
# (ORACLE_EXAMPLES, default 50, of 20 steps each); each run ends with how many examples,
# steps, distinct states, pages and emails it checked. docs/privacy.md keeps the last report.
ORACLE := $(PY) -m pytest tests/privacy/test_oracle.py -k finds_no_leak
test-deep: venv
	@echo "== Privacy oracle (deep) on SQLite"
	TEST_DATABASE_URL= ORACLE_PROFILE=deep $(ORACLE) $(PYTEST_ARGS)
	@echo "== Privacy oracle (deep) on PostgreSQL ($(PG_TEST_URL))"
	TEST_DATABASE_URL=$(PG_TEST_URL) ORACLE_PROFILE=deep $(ORACLE) $(PYTEST_ARGS)

bench: venv
	$(PY) -m bench.run_all

screenshots: venv chromium
	@mkdir -p tmp/scratch
	$(E2E_ENV) $(PY) -m tests.e2e.screenshots

clean:
	rm -rf $(VENV) tmp .pytest_cache .ruff_cache
