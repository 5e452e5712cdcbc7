"""The "S² Guider" and "RAAG + S² Guider" nodes."""

from __future__ import annotations

from comfy_api.latest import io

from ..guiders import RAAGConfig, RAAGS2Guider, S2Config, S2Guider, StepWindow
from .inputs import (
    CATEGORY,
    NODE_PREFIX,
    check_inputs,
    errors_named,
    model_and_conds,
    number,
    raag_inputs,
    s2_inputs,
    window,
    with_search_aliases,
)

S2_DISPLAY_NAME = "S² Guider (S2)"  # "S2" as a word: the newest node search ranks a word match above core nodes
S2_SEARCH_ALIASES = ["S2", "S2 guidance", "S2-Guidance", "stochastic self guidance", "self guidance",
                     "stochastic", "block dropping", "sub-network guidance"]
RAAG_S2_DISPLAY_NAME = "RAAG + S² Guider"
RAAG_S2_SEARCH_ALIASES = ["RAAG S2", "S2", "S2 guidance", "stochastic self guidance", "self guidance",
                          "stochastic", "adaptive cfg", "ratio", "ratio aware adaptive guidance"]

S2_OUTSIDE = "no sub-network pass (plain guidance, CFGGuider's cost)"


class S2GuiderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return with_search_aliases(io.Schema(
            node_id=NODE_PREFIX + "S2Guider",
            display_name=S2_DISPLAY_NAME,
            category=CATEGORY,
            description="S²-Guidance (stochastic self-guidance, arXiv 2508.12880): CFG plus one extra "
            "conditional pass per step through a sub-network with ~10% of the transformer blocks dropped at "
            "random; D = D_u + lambda (D_c - D_u) - omega (D_sub - D_c) steers away from the sub-network's "
            "errors. Costs one extra conditional pass per step inside the window. Plug into "
            "SamplerCustomAdvanced.",
            inputs=[
                *model_and_conds(),
                number("cfg", 7.5, 0.1, "CFG scale lambda. Paper: 7.5 for SD3/SD3.5, 5 for Wan 2.1. Otherwise "
                       "your model's usual CFG."),
                *s2_inputs(),
                *window("S²", S2_OUTSIDE),
            ],
            outputs=[io.Guider.Output(tooltip="Connect to SamplerCustomAdvanced's guider input.")],
        ), S2_SEARCH_ALIASES)

    @classmethod
    def validate_inputs(cls, cfg, omega, drop_ratio, start_percent, end_percent):
        return check_inputs(S2_DISPLAY_NAME, cfg=cfg, omega=omega, drop_ratio=drop_ratio,
                            start_percent=start_percent, end_percent=end_percent)

    @classmethod
    def execute(cls, model, positive, negative, cfg, omega, drop_ratio, start_percent,
                end_percent) -> io.NodeOutput:
        with errors_named(S2_DISPLAY_NAME):
            config = S2Config(omega, drop_ratio, StepWindow(start_percent, end_percent))
            guider = S2Guider(model, config, cfg=cfg)
        guider.set_conds(positive, negative)
        return io.NodeOutput(guider)


class RAAGS2GuiderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return with_search_aliases(io.Schema(
            node_id=NODE_PREFIX + "RAAGS2Guider",
            display_name=RAAG_S2_DISPLAY_NAME,
            category=CATEGORY,
            description="RAAG and S²-Guidance together: the CFG scale lambda of every step comes from RAAG's "
            "ratio schedule (w = 1 + (w_max - 1) exp(-alpha rho)), plus S²'s sub-network term "
            "- omega (D_sub - D_c). Plug into SamplerCustomAdvanced.",
            inputs=[
                *model_and_conds(),
                *raag_inputs(),
                *s2_inputs(),
                *window("S²", S2_OUTSIDE),
            ],
            outputs=[io.Guider.Output(tooltip="Connect to SamplerCustomAdvanced's guider input.")],
        ), RAAG_S2_SEARCH_ALIASES)

    @classmethod
    def validate_inputs(cls, w_max, alpha, ratio_mode, omega, drop_ratio, start_percent, end_percent):
        return check_inputs(RAAG_S2_DISPLAY_NAME, w_max=w_max, alpha=alpha, ratio_mode=ratio_mode, omega=omega,
                            drop_ratio=drop_ratio, start_percent=start_percent, end_percent=end_percent)

    @classmethod
    def execute(cls, model, positive, negative, w_max, alpha, ratio_mode, omega, drop_ratio, start_percent,
                end_percent) -> io.NodeOutput:
        with errors_named(RAAG_S2_DISPLAY_NAME):
            raag = RAAGConfig(w_max, alpha, ratio_mode)
            s2 = S2Config(omega, drop_ratio, StepWindow(start_percent, end_percent))
            guider = RAAGS2Guider(model, raag, s2)
        guider.set_conds(positive, negative)
        return io.NodeOutput(guider)
