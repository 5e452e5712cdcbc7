"""Test-only ComfyUI node pack: random CONDITIONING for the tiny models of ``tools/harness/tiny_models.py``.

There are no text encoders for the random tiny models, so end-to-end graphs take their positive and
negative conditioning from this node. The e2e fixture loads this folder as an extra custom-node path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from comfy_api.latest import ComfyExtension, io

_TOOLS = str(Path(__file__).resolve().parents[3] / "tools")
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import tiny_models  # noqa: E402

ARCHS = list(getattr(tiny_models, "ARCHS", None) or ["sd3"])


class TinyTestConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TinyTestConditioning",
            display_name="Tiny Test Conditioning",
            category="testing",
            description="Seeded random conditioning shaped for a tiny test model (tests only).",
            inputs=[
                io.Combo.Input("arch", options=ARCHS, default=ARCHS[0]),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF),
                io.Int.Input("batch", default=1, min=1, max=64),
            ],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def execute(cls, arch: str, seed: int, batch: int = 1) -> io.NodeOutput:
        return io.NodeOutput(tiny_models.conditioning(arch, seed, batch))


class TinyConditioningExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [TinyTestConditioning]


async def comfy_entrypoint() -> ComfyExtension:
    return TinyConditioningExtension()
