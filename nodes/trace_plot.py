"""The "Guidance Trace Plot" node: what the pack's guidance did in its last sampler run, from a guider
node's GUIDER or from a patched MODEL (a KSampler graph)."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..guiders import guidance_of
from .base import PackNode, named, pack_node
from .guidance import GUIDANCE_NODES
from .plot import draw_trace


def title(methods: tuple[str, ...], guider: bool) -> str:
    """The display name of the node that makes such a guider (or patch)."""
    return next(node.DISPLAY_NAME for node in GUIDANCE_NODES if node.METHODS == methods and node.GUIDER == guider)


@pack_node
class GuidanceTracePlotNode(PackNode):
    NODE_ID, DISPLAY_NAME = "TracePlot", "Guidance Trace Plot"
    ALIASES = ("plot", "trace", "graph", "rho", "ratio", "guidance scale", "RAAG plot", "S2 plot")
    ABOUT = ("Plots what RAAG / S² did in the last sampler run of a guider (SamplerCustomAdvanced) or of a patched "
             "MODEL (KSampler): RAAG's ratio rho and the guidance scale w against the step, one line per image, "
             "with the steps that ran S²'s sub-network pass shaded. Connect the sampler's output latent so the "
             "plot is drawn after sampling.")

    @classmethod
    def inputs(cls) -> list:
        return [
            # one socket for both (saved workflows link their guider to it): GUIDER or MODEL
            io.MultiType.Input("guider", [io.Guider, io.Model], display_name="guider / model",
                               tooltip="A guider from this pack (RAAG, S², or RAAG + S²; the one the sampler used), "
                               "or, in a KSampler graph, the MODEL from one of its model-patch nodes (the plot shows "
                               "that KSampler's last run)."),
            io.Latent.Input("latent", tooltip="The sampled latent from the sampler; only used to run this node "
                            "after the sampler."),
        ]

    @classmethod
    def outputs(cls) -> list:
        return [io.Image.Output(tooltip="The plot, as an image (preview or save it).")]

    @classmethod
    def execute(cls, guider, latent) -> io.NodeOutput:
        patcher = getattr(guider, "model_patcher", guider)  # a GUIDER's model, or the MODEL itself
        guidance = guidance_of(patcher) if hasattr(patcher, "model_options") else None
        if guidance is None:
            raise ValueError(named(cls.DISPLAY_NAME, "guider: expects a guider of this pack or a MODEL from its "
                                   f"model-patch nodes (the one the sampler used), got {type(guider).__name__}"))
        pixels = draw_trace(guidance.trace.rows(), title=title(guidance.methods, patcher is not guider))
        return io.NodeOutput(torch.from_numpy(pixels.copy()).float().div(255.0).unsqueeze(0))
