#!/usr/bin/env bash
# Installs what tests/test_browser.py needs on top of tools/runtime/setup.sh's runtime (idempotent):
#   - Chromium: Debian's package (apt-get, as root or through sudo); CHROMIUM=/path skips it;
#   - into .venv: playwright (it drives that Chromium; no browser download) and the
#     comfyui-frontend-package version pinned by the ComfyUI in use (1.32.9 for 0.3.75);
#   - the newest frontend the pack is checked with (NEWEST_FRONTEND below), unpacked into
#     .cache/frontends/<version>/ (not into .venv: ComfyUI serves it with --front-end-root).
# Without root or sudo it only warns: the browser test then skips and says why.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv
export PIP_CONSTRAINT="$PWD/tools/runtime/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_quiet() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo;
  else SUDO=none; fi
  if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "[browser] Chromium missing and cannot be installed here (needs apt-get as root): the browser test will skip" >&2
  else
    echo "[browser] installing Debian's chromium (apt-get; about 1 minute)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
      || echo "[browser] WARNING: apt-get could not install chromium: the browser test will skip" >&2
  fi
fi

comfy_dir=$("$VENV/bin/python" tools/runtime/comfy_env.py root)
frontend=$( (grep -E '^comfyui-frontend-package==' "$comfy_dir/requirements.txt" 2>/dev/null || true) | head -n1 | tr -d '[:space:]')
frontend=${frontend:-comfyui-frontend-package==1.32.9}
stamp="$(cat tools/runtime/requirements-browser.txt tools/runtime/constraints.txt; echo "$frontend")"
stamp=$(echo "$stamp" | sha256sum | cut -c1-16)
if [ ! -f "$VENV/.stamp-browser" ] || [ "$(cat "$VENV/.stamp-browser")" != "$stamp" ]; then
  echo "[browser] installing playwright and $frontend into $VENV"
  pip_quiet install -q -r tools/runtime/requirements-browser.txt "$frontend"
  echo "$stamp" > "$VENV/.stamp-browser"
fi
NEWEST_FRONTEND=1.58.1
newest_dir=.cache/frontends/$NEWEST_FRONTEND
if [ ! -f "$newest_dir/comfyui_frontend_package/static/index.html" ]; then
  echo "[browser] unpacking comfyui-frontend-package==$NEWEST_FRONTEND into $newest_dir"
  rm -rf "$newest_dir"
  pip_quiet install -q --no-deps --target "$newest_dir" "comfyui-frontend-package==$NEWEST_FRONTEND"
fi
echo "[browser] ready: $(command -v chromium || echo "${CHROMIUM:-no chromium}"), $frontend and $NEWEST_FRONTEND"
