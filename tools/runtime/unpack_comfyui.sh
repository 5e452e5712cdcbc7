#!/usr/bin/env bash
# Unpacks a ComfyUI release tarball (top folder ComfyUI-<version>/) into .cache/releases/ and prints the
# folder, for COMFYUI_PATH. Idempotent; checks the sha256 where releases.sha256 lists the file.
#   bash tools/runtime/unpack_comfyui.sh ../shared/comfyui/ComfyUI-v0.33.0.tar.gz
set -euo pipefail
tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/../.."
dest=.cache/releases
known=$(grep -F " $(basename "$tarball")" tools/runtime/releases.sha256 || true)
if [ -n "$known" ]; then
  echo "${known%% *}  $tarball" | sha256sum -c --quiet - >&2 || { echo "[unpack] sha256 mismatch: $tarball" >&2; exit 1; }
fi
top=$(basename "$tarball" .tar.gz)  # release tarballs name their top folder like the file
if [ ! -f "$dest/$top/.unpacked" ]; then
  rm -rf "${dest:?}/$top"
  mkdir -p "$dest"
  tar -xzf "$tarball" -C "$dest"
  touch "$dest/$top/.unpacked"
fi
echo "$PWD/$dest/$top"
