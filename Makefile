# cnn-grader: set-up and the everyday jobs. `make demo` and `make test` work on a fresh clone
# with only Python 3.11, pip and make: the virtual environment is built from pinned
# requirements the first time, and again whenever a requirements file changes. The slow tests of
# what ships (handout, Gradescope bundle) also install into fresh environments on Python 3.10 and
# 3.12 (and check that 3.9 is refused): `make pythons` shows which interpreters they will use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup demo test test-fast lint bench template fixtures pythons clean

help:
	@echo "make demo       set up, then run the main job on the bundled reference and template"
	@echo "make test       set up, then run the whole test suite (slow tests included)"
	@echo "make test-fast  the tests not marked slow"
	@echo "make lint       ruff check (settings in pyproject.toml)"
	@echo "make bench      performance figures (see benchmarks/)"
	@echo "make template   regenerate the student templates from the reference solutions (both editions)"
	@echo "make fixtures   regenerate fixtures/ from reference_solution/"
	@echo "make pythons    the interpreters the shipping tests install into (3.9 to 3.12)"
	@echo "make clean      remove the virtual environment and generated output"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m autograder.demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=10

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/run.py

template: $(STAMP)
	$(PY) grade.py template
	$(PY) grade.py template --edition 2023

fixtures: $(STAMP)
	$(PY) grade.py fixtures

pythons: $(STAMP)
	@cd tests && $(abspath $(PY)) -c "import venvs; [print(v, venvs.find_python(v) or 'missing: its tests will be skipped (failed in CI)') for v in ('3.9', '3.10', '3.11', '3.12')]"

clean:
	rm -rf $(VENV) demo_output bench_output graded .pytest_cache
