# ganforge: the two commands a user needs.
#   make demo  - set up .venv if missing, train the `quick` preset, write samples and TensorBoard logs
#   make test  - set up .venv if missing (with dev extras), run ruff, mypy and pytest
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The runtime: torch and torchvision pinned here, the rest from pyproject.toml.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e .
	touch $@

# The test tools on top (pytest, ruff, mypy, scipy, onnxruntime, ...).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

.PHONY: install demo test lint
install: $(VENV)/.installed

demo: install
	$(BIN)/ganforge train --preset quick

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest
