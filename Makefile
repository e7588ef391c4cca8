# valuetrack: `make run` opens the dashboard on the embedded demo; `make test` runs the tests.
# Both set up everything they need on a fresh machine (a virtualenv in .venv).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: setup setup-test run demo test test-fast system-deps standins bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

setup-test: $(VENV)/.installed-test

$(VENV)/.installed-test: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

demo: setup
	$(PY) -m valuetrack demo
	$(PY) -m valuetrack refresh

run: demo
	$(PY) -m valuetrack serve --port $(PORT)

system-deps:
	bash scripts/system-deps.sh

standins: setup-test
	@if [ -f scripts/standins/setup.sh ]; then bash scripts/standins/setup.sh; fi

test: setup-test system-deps standins
	$(PY) -m pytest

test-fast: setup-test
	$(PY) -m pytest -m "not slow and not standin and not browser"

bench: setup
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) .venvs build *.egg-info .pytest_cache
