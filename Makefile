# The two commands a new user types: `make demo` and `make test`. Both set up what they need.
PY := .venv/bin/python
export OMP_NUM_THREADS ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: setup browser-deps lint test demo workflows locales

setup:
	@bash tools/runtime/setup.sh

# Chromium (Debian package), Playwright and the ComfyUI frontend package: only the browser test uses them.
browser-deps: setup
	@bash tools/runtime/setup_browser.sh

lint: setup
	.venv/bin/ruff check .

test: setup lint browser-deps
	$(PY) -m pytest

demo: setup
	$(PY) tools/demo/demo.py

# Regenerate files that are derived from the node schemas: workflows/ and subgraphs/ (tests fail when
# they are out of date).
workflows: setup
	$(PY) tools/generate/make_workflows.py
	$(PY) tools/generate/make_subgraphs.py

locales: setup
	$(PY) tools/generate/gen_locales.py

# Overhead of the guiders over CFGGuider (issue #5): prints a table and writes docs/bench_overhead.md.
# Extra options: make bench-overhead BENCH_ARGS="--clock cpu" (shared CPU) or "--device cuda --real-size --archs sd3".
BENCH_ARGS ?=
.PHONY: bench-overhead
bench-overhead: setup
	TORCH_CPP_LOG_LEVEL=ERROR $(PY) tools/bench/bench_overhead.py --out docs/bench_overhead.md $(BENCH_ARGS)

# The reproduction benchmark on the demo model (~10-15 min on 2 cores): docs/bench_repro.{md,png,json}.
.PHONY: bench train-demo
bench: setup
	$(PY) tools/bench/bench_repro.py

# Retrains the shipped demo model into demo_model/ (deterministic, ~45-50 min on 2 cores; CI never runs it).
train-demo: setup
	$(PY) tools/demo/train_demo.py

# The GPU check (issue #15): CUDA no-host-sync checks, the real-size overhead table and S² at depth, in one run
# (< 10 min on one H200, the in-process suite on CUDA included), written to output/gpu_check/gpu_check.{md,json}. GPU_ARGS="--quick": its CPU mode.
GPU_ARGS ?=
.PHONY: gpu-check gpu-bundle
gpu-check: setup
	TORCH_CPP_LOG_LEVEL=ERROR $(PY) tools/bench/gpu_check.py $(GPU_ARGS)

# For a GPU machine without a package index: .cache/gpu-bundle (wheels + ComfyUI) prepared here; there run
# `bash tools/bench/gpu_run.sh` with that folder carried along (the whole check: sync, overhead, the suite).
gpu-bundle:
	@bash tools/runtime/gpu_bundle.sh
