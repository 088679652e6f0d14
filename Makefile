# `make test` is all a fresh machine needs: it builds .venv, installs the project with its test
# extra, and runs the suite (which starts and stops its own moto servers on 127.0.0.1).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test install clean bench lint demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The incident this project exists for, told on a local stack: no AWS account, one command.
demo: install
	$(BIN)/python -m checker.demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_deploy.py
	$(BIN)/python bench/bench_wait.py
	$(BIN)/python bench/bench_sync.py 2000 50
	$(BIN)/python bench/bench_sync.py 10000 50
	$(BIN)/python bench/bench_sync.py 30000 50

clean:
	rm -rf $(VENV) build *.egg-info
