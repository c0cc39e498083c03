# The two commands of the README:
#   make demo   - the demo host project on SQLite with the sandbox standing in for Align
#   make test   - the whole test suite (lint, migrations check, dependency audit, pytest,
#                 Django 6.x via tox, docs)
# Both set up everything they need (a .venv here) on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pyenv keeps 3.12/3.13 next to the default 3.11; this makes their shims answer for tox.
export PYENV_VERSION ?= $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.1[123]\.' | sort -V | tr '\n' ':' | sed 's/:$$//')

.PHONY: demo test lint audit unit tox docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,demo,docs]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python demo/run.py

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python -m django makemigrations --check --dry-run

# pip-audit on the installed versions.  A known advisory fails; advisory data that cannot be
# reached (as on machines whose registry mirror lacks PyPI's per-release JSON) is reported and
# skipped, unless AUDIT_REQUIRED=true (docs/security.md, "Dependencies").
audit: $(BIN)/.installed
	$(BIN)/python tools/audit_dependencies.py

# Two workers: the suite waits on sockets and subprocesses as much as on the CPU.
unit: $(BIN)/.installed
	$(BIN)/pytest -n 2

# The Django 6.x environment needs Python 3.12; without it a developer run says so and goes
# on, while CI (CI=true) fails.
tox: $(BIN)/.installed
	@if [ "$$CI" != "true" ] && ! python3.12 --version >/dev/null 2>&1; then \
		echo "make: python3.12 not found: skipping tox -e $(TOX_ENVS) (CI runs it)"; \
	else \
		$(BIN)/tox run --skip-missing-interpreters false -e $(TOX_ENVS); \
	fi

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict --quiet --site-dir site

TOX_ENVS ?= py312-django61

# The default run and the Django 6.x run overlap (each waits on sockets and subprocesses
# much of the time); ALIGN_TEST_RUN=tox gives the second its own databases.
test: lint audit docs
	$(MAKE) --no-print-directory -j2 unit tox

clean:
	rm -rf $(VENV) .tox site dist build
