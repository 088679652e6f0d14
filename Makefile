# `make test` is all a fresh machine needs: it builds .venv, installs the project with its test
# extra, installs the other DynamoDB implementations the suite runs on (ministack and roto-aws in
# a venv of their own, so the suite tests the botocore users get; dynalite with npm, skipped with
# a line saying so when npm is missing; the AWS CLI for the fix lines), and runs the suite (which starts and stops its servers
# on 127.0.0.1).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS_VENV := .venv-backends
AWSCLI_VENV := .venv-awscli
DYNALITE := .backends/node_modules/.bin/dynalite

.PHONY: test test-fast install clean bench lint demo backends chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $@

# the demo needs only the local extra (moto's server), not the test and lint tools
$(VENV)/.installed-local: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $@

install: $(VENV)/.installed

$(BACKENDS_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(BACKENDS_VENV)
	$(BACKENDS_VENV)/bin/python -m pip install --quiet ministack==1.5.33 roto-aws==0.10.1
	touch $@

$(DYNALITE):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-save --no-audit --no-fund --prefix .backends dynalite@4.0.0 \
		|| echo "dynalite could not be installed with npm: its backend tests will be skipped"; \
	else echo "npm not found: the dynalite backend tests will be skipped"; fi

# the AWS CLI, in a venv of its own (it pins its botocore): the fix-line test runs the printed
# `aws ...` lines through a shell exactly as a user pastes them
$(AWSCLI_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet awscli==1.45.11
	touch $@

# headless Chromium from the system's packages (Debian's chromium) for the HTML report's browser
# test; skipped with a line saying so when it cannot be installed (no apt-get, not root)
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
		  apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
		echo "chromium could not be installed: the browser test will be skipped"

backends: $(BACKENDS_VENV)/.installed $(DYNALITE) $(AWSCLI_VENV)/.installed chromium

# two workers (pytest-xdist), a test file to each at a time (its module's servers start once):
# most tests wait on servers and subprocesses, so the machine's two cores overlap them
# (`make test PYTEST_WORKERS=0` runs them one by one)
PYTEST_WORKERS ?= 2

test: install backends
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# for iteration: everything but the tests marked slow (servers, subprocesses, the other backends)
test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The incident this project exists for, told on a local stack: no AWS account, one command.
demo: $(VENV)/.installed-local
	$(BIN)/python -m checker.local.demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/results.py new
	$(BIN)/python bench/bench_deploy.py
	$(BIN)/python bench/bench_wait.py
	$(BIN)/python bench/bench_sync.py 2000 50
	$(BIN)/python bench/bench_sync.py 100000 50
	$(BIN)/python bench/bench_copy.py 100000 10000
	$(BIN)/python bench/bench_cutover.py
	$(BIN)/python bench/bench_replay.py 5000
	$(BIN)/python bench/results.py render

clean:
	rm -rf $(VENV) $(BACKENDS_VENV) $(AWSCLI_VENV) .backends build *.egg-info
