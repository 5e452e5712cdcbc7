# Tests-only stand-in for torchvision. There is no CPU build of torchvision on the package index
# (the only one for torch 2.13 is a CUDA build that fails to import on a CPU torch), and an
# unpinned install pulls a new torch plus ~5 GB of CUDA. ComfyUI imports torchvision only for a
# few model families (Cosmos, Stable Cascade, ACE), at module level; nothing our tests run calls
# into it. tools/runtime/comfy_env.py puts this folder on sys.path only when no real torchvision exists.
from . import transforms  # noqa: F401
