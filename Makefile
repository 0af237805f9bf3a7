# Two entry points on a fresh machine (Python 3.11+, a C++ compiler and make):
#   make demo   -- create .venv, install hwsim, run the demo
#   make test   -- create .venv with the test extras, run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml setup.py hwsim/exact/_igemm.c | $(BIN)/python
	$(BIN)/pip install -q -e '.[onnx]'
	touch $@

$(VENV)/.test-installed: pyproject.toml setup.py hwsim/exact/_igemm.c | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,onnx]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/hwsim demo

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/bench_array.py
	$(BIN)/python benchmarks/bench_models.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache sim_build
