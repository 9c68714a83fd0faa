# relaygate — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= var/relaygate.toml

.PHONY: venv run test lint typecheck pytest bench clean

$(BIN)/relaygate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

venv: $(BIN)/relaygate

## run: initialise ./var (once) and start relaygate in capture mode
run: venv
	$(BIN)/relaygate --config $(CONFIG) quickstart

## test: ruff, mypy and the whole pytest suite
test: venv lint typecheck pytest

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
