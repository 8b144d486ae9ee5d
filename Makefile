# Two commands set everything up on a fresh clone:
#   make demo   - .venv, install, sample data, one end-to-end run, results printed
#   make test   - .venv with dev extras, services the tests need, lint, types, the suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo

.PHONY: demo test lint typecheck pytest bench services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml setup.py src/headwater/sources/_kvscan.c src/headwater/sources/_spans.c | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py src/headwater/sources/_kvscan.c src/headwater/sources/_spans.c | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	rm -rf $(DEMO)
	$(BIN)/headwater init $(DEMO) --template cafe
	$(BIN)/headwater generate cafe --out $(DEMO)/inbox --branches 20 --days 7 --seed 1
	$(BIN)/headwater run -p $(DEMO)
	$(BIN)/headwater query -p $(DEMO) "select branch_name, count(*) as transactions, sum(total) as revenue from transactions join branches using (branch_id) group by 1 order by revenue desc limit 5"
	$(BIN)/headwater query -p $(DEMO) "select payment_method, count(*) as transactions, sum(total) as revenue from transactions group by 1 order by 1"
	$(BIN)/headwater status -p $(DEMO)
	@echo
	@echo "The demo project is in ./$(DEMO): try  $(BIN)/headwater query -p $(DEMO) \"select * from products limit 5\""
	@echo "Dashboards, runs and SQL in a browser:  $(BIN)/headwater serve -p $(DEMO)   (http://127.0.0.1:8080)"

services:
	@scripts/services.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev services
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/cafe.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache .hypothesis
