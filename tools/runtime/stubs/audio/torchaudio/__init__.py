# Tests-only stand-in for torchaudio. There is no CPU build of torchaudio on the package index for our torch
# (the only one for torch 2.13 is a CUDA build that fails to import on a CPU torch), and an unpinned
# install pulls a new torch plus ~5 GB of CUDA. ComfyUI imports it at module level for a few model
# families and nodes (Cosmos, Cascade, ACE, audio, SAM3, background removal...); nothing our tests run
# calls into it. Any name can be imported; calling one raises. tools/runtime/comfy_env.py puts this
# folder on sys.path only when no real torchaudio exists.
import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))
from _stub_missing import missing as _missing  # noqa: E402

__getattr__ = _missing(__name__)
