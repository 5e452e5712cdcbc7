# Tests-only stand-in for spandrel (upscale model architectures), which requires torchvision (see
# ../../vision/torchvision/__init__.py for why that is not installed). With it, ComfyUI's upscale-model
# nodes load as on a user's install: frontend 1.27.10 (what ComfyUI 0.3.64-0.3.65 pin) fails to build a
# checkpoint or VAE loader's file list when a node its model-to-node table names, such as
# UpscaleModelLoader, is missing. Any name can be imported; calling one raises.
# tools/runtime/comfy_env.py puts this folder on sys.path only when no real spandrel exists.
import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))
from _stub_missing import missing as _missing  # noqa: E402

__getattr__ = _missing(__name__)
