# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-slow lint typecheck check-generated generate pytest clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/durable-execution demo

test: lint typecheck check-generated pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict src codegen tests examples bench

generate: $(INSTALLED)
	$(BIN)/python -m codegen.regenerate

check-generated: $(INSTALLED)
	$(BIN)/python -m codegen.regenerate --check

pytest: $(INSTALLED)
	$(BIN)/pytest

# The full-size soak variants of the reliability tests (minutes; not part of `make test`).
test-slow: $(INSTALLED)
	$(BIN)/pytest -m slow

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
