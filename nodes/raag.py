"""The "RAAG Guider" node."""

from __future__ import annotations

from comfy_api.latest import io

from ..guiders import RAAGConfig, RAAGGuider, StepWindow
from .inputs import (
    CATEGORY,
    NODE_PREFIX,
    check_inputs,
    errors_named,
    model_and_conds,
    number,
    raag_inputs,
    window,
    with_search_aliases,
)

DISPLAY_NAME = "RAAG Guider"
SEARCH_ALIASES = ["ratio aware adaptive guidance", "adaptive cfg", "adaptive guidance scale", "ratio",
                  "RAAG", "few step guidance", "dynamic cfg"]


class RAAGGuiderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return with_search_aliases(io.Schema(
            node_id=NODE_PREFIX + "RAAGGuider",
            display_name=DISPLAY_NAME,
            category=CATEGORY,
            description="Ratio-aware adaptive guidance (RAAG, arXiv 2508.03442): each step the guidance scale "
            "follows the ratio rho = ||v_c - v_u|| / ||v_u||, w = 1 + (w_max - 1) exp(-alpha rho): strong "
            "where the prompt barely changes the prediction, gentle where it already does (the first steps). "
            "Made for few-step sampling of flow models (10 RAAG steps vs 30 CFG steps in the paper). "
            "Plug into SamplerCustomAdvanced.",
            inputs=[
                *model_and_conds(),
                *raag_inputs(),
                *window("RAAG", "plain CFG at cfg"),
                number("cfg", 5.0, 0.1, "Plain CFG scale used outside RAAG's step window; no effect with the "
                       "default window (the whole schedule). Recommended: the model's usual CFG (SD3.5 4.5-7, "
                       "Chroma 3.5-4, Qwen-Image 2.5-4, Wan 5-6)."),
            ],
            outputs=[io.Guider.Output(tooltip="Connect to SamplerCustomAdvanced's guider input.")],
        ), SEARCH_ALIASES)

    @classmethod
    def validate_inputs(cls, w_max, alpha, ratio_mode, start_percent, end_percent, cfg):
        return check_inputs(DISPLAY_NAME, w_max=w_max, alpha=alpha, ratio_mode=ratio_mode,
                            start_percent=start_percent, end_percent=end_percent, cfg=cfg)

    @classmethod
    def execute(cls, model, positive, negative, w_max, alpha, ratio_mode, start_percent, end_percent,
                cfg) -> io.NodeOutput:
        with errors_named(DISPLAY_NAME):
            config = RAAGConfig(w_max, alpha, ratio_mode, StepWindow(start_percent, end_percent))
            guider = RAAGGuider(model, config, cfg=cfg)
        guider.set_conds(positive, negative)
        return io.NodeOutput(guider)
