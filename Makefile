# Two commands for a newcomer:  make demo  and  make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

## Bring up the local sandbox, run the three core drills under load, print the summary.
demo: $(STAMP)
	$(BIN)/mpac-drill sandbox up
	$(BIN)/mpac-drill gate --target sandbox; rc=$$?; $(BIN)/mpac-drill report; exit $$rc

## The whole test suite, sandbox drills included (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest

## The fast inner loop: everything but the sandbox drills.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not sandbox"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy mpac_drill actions probes reports

clean:
	-$(BIN)/mpac-drill sandbox down
	rm -rf $(VENV) .sandbox runs
