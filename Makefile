# Two entry points, both idempotent: `make demo` and `make test`; `make check` runs the static checks.
# Each creates .venv when missing and installs the pinned versions of constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check install clean-data

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m search.launch --budget 5%

# One test process per core (pytest-xdist), each file on one process: the suite is mostly
# one-thread trials, so a single process left a core idle (CI took 39 minutes on 2 cores).
# Files stay whole so that their module fixtures (trained studies) are built once.
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile

# Lint and format (settings in pyproject.toml), then types on the library packages ([tool.mypy]).
check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

clean-data:
	rm -rf data
