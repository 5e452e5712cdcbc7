# The two commands a new user types: `make demo` and `make test`. Both set up what they need.
PY := .venv/bin/python
export OMP_NUM_THREADS ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: setup test demo

setup:
	@bash tools/setup.sh

test: setup
	$(PY) -m pytest

demo: setup
	$(PY) tools/demo.py
