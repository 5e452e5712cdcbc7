"""The "Guidance Trace Plot" node."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..guiders import GuidanceGuider
from ..guiders.plot import draw_trace
from .inputs import CATEGORY, NODE_PREFIX


class GuidanceTracePlotNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_PREFIX + "TracePlot",
            display_name="Guidance Trace Plot",
            category=CATEGORY,
            description="Plots what a RAAG / S² guider did in its last run: RAAG's ratio rho and the guidance "
            "scale w against the step, one line per image, with the steps that ran S²'s sub-network pass "
            "shaded. Connect the sampler's output latent so the plot is drawn after sampling.",
            inputs=[
                io.Guider.Input("guider", tooltip="A guider from this pack (RAAG, S², or RAAG + S²)."),
                io.Latent.Input("latent", tooltip="The sampled latent from SamplerCustomAdvanced; only used to "
                                "run this node after the sampler."),
            ],
            outputs=[io.Image.Output(tooltip="The plot, as an image (preview or save it).")],
        )

    @classmethod
    def execute(cls, guider, latent) -> io.NodeOutput:
        if not isinstance(guider, GuidanceGuider):
            raise ValueError(f"guider: expects a RAAG / S² guider from this pack, got {type(guider).__name__}")
        pixels = draw_trace(guider.trace.rows(), title=type(guider).__name__)
        return io.NodeOutput(torch.from_numpy(pixels.copy()).float().div(255.0).unsqueeze(0))
