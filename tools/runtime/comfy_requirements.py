"""Prints what a ComfyUI tree needs installed to import and serve, read from its own requirements.txt.

    python tools/runtime/comfy_requirements.py <ComfyUI folder>

Taken: every requirement (the "non essential" ones too: core's latent nodes import kornia), except
- torch, torchvision, torchaudio: torch stays pinned to the local CPU build (constraints.txt);
  torchvision and torchaudio have no CPU build on the package index and get tests-only stand-ins;
- spandrel (upscale models only): it requires torchvision, which would bring the CUDA build that
  fails to import beside a CPU torch; it gets a tests-only stand-in too, so that core's upscale-model
  nodes load (calling one raises);
- the UI packages (comfyui-frontend-package, -workflow-templates, -embedded-docs): the browser set-up
  installs the frontend the tree pins; the server runs without the other two (it logs that).
Standard library only: it runs before the virtual environment has anything in it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LEFT_OUT = {"torch", "torchvision", "torchaudio", "spandrel", "comfyui-frontend-package",
            "comfyui-workflow-templates", "comfyui-embedded-docs"}


def requirements(comfy_dir: Path) -> list[str]:
    wanted = []
    for raw in (comfy_dir / "requirements.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[<>=!~\[;\s]", line, maxsplit=1)[0].lower().replace("_", "-")
        if name not in LEFT_OUT:
            wanted.append(line)
    return wanted


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print("\n".join(requirements(Path(sys.argv[1]))))
