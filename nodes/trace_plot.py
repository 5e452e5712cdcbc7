"""The "Guidance Trace Plot" node."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..guiders import GuidanceGuider, RAAGGuider, RAAGS2Guider, S2Guider
from ..guiders.plot import draw_trace
from .inputs import CATEGORY, NODE_PREFIX, named, with_search_aliases
from .raag import DISPLAY_NAME as RAAG_NAME
from .s2 import RAAG_S2_DISPLAY_NAME, S2_DISPLAY_NAME

DISPLAY_NAME = "Guidance Trace Plot"
SEARCH_ALIASES = ["plot", "trace", "graph", "rho", "ratio", "guidance scale", "RAAG plot", "S2 plot"]
# The plot's title: the display name of the node that made the guider (exact class first, then its bases).
GUIDER_TITLES = {RAAGGuider: RAAG_NAME, S2Guider: S2_DISPLAY_NAME, RAAGS2Guider: RAAG_S2_DISPLAY_NAME}


def guider_title(guider) -> str:
    for klass in type(guider).__mro__:
        if klass in GUIDER_TITLES:
            return GUIDER_TITLES[klass]
    return type(guider).__name__


class GuidanceTracePlotNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return with_search_aliases(io.Schema(
            node_id=NODE_PREFIX + "TracePlot",
            display_name=DISPLAY_NAME,
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
        ), SEARCH_ALIASES)

    @classmethod
    def execute(cls, guider, latent) -> io.NodeOutput:
        if not isinstance(guider, GuidanceGuider):
            raise ValueError(named(DISPLAY_NAME, "guider: expects a RAAG / S² guider from this pack, got "
                                   f"{type(guider).__name__}"))
        pixels = draw_trace(guider.trace.rows(), title=guider_title(guider))
        return io.NodeOutput(torch.from_numpy(pixels.copy()).float().div(255.0).unsqueeze(0))
