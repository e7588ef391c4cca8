# valuetrack: `make run` opens the dashboard on the embedded demo; `make test` runs the tests.
# Both set up everything they need on a fresh machine (a virtualenv in .venv).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: setup run demo test test-fast system-deps standins bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(PY) -m valuetrack demo

run: demo
	$(PY) -m valuetrack serve --port $(PORT)

system-deps:
	bash scripts/system-deps.sh

standins: setup
	@if [ -f scripts/standins/setup.sh ]; then bash scripts/standins/setup.sh; fi

test: setup system-deps standins
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not standin and not browser"

bench: setup
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) .venvs build *.egg-info .pytest_cache
