# The two commands a new user types: `make demo` and `make test`. Both set up what they need.
PY := .venv/bin/python
export OMP_NUM_THREADS ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: setup lint test demo

setup:
	@bash tools/setup.sh

lint: setup
	.venv/bin/ruff check .

test: setup lint
	$(PY) -m pytest

demo: setup
	$(PY) tools/demo.py
