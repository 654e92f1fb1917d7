# Set-up and everyday commands. `make demo` and `make test` create the virtual
# environment on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Test workers: the suite is CPU-bound, so one per core of a 2-core machine.
PYTEST_ARGS ?= -n 2

.PHONY: install demo test ui clean

$(INSTALLED): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/cx-pipeline demo

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

ui: $(INSTALLED)
	mkdir -p .dagster
	DAGSTER_HOME=$(CURDIR)/.dagster $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) data .dagster
