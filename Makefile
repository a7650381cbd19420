# Two commands do everything on a fresh machine:
#   make demo   create .venv, install hipanalytics, run the demo (outputs under reports/demo/)
#   make test   create .venv with the test extras, run the whole suite
# Versions come from requirements/constraints.txt (refresh with `make lock`).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS)

.PHONY: demo test lock clean

demo: $(VENV)/.installed
	$(BIN)/hipanalytics demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hipanalytics needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) -e '.[dev]'
	@touch $@ $(VENV)/.installed

# Re-resolve the newest versions the pyproject ranges allow and pin them.
lock:
	rm -rf .lockenv
	$(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet -e '.[dev]'
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^pip==' > $(CONSTRAINTS)
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info reports/demo
