"""The MODEL-patch nodes: "RAAG (model patch)", "S² (model patch)", "RAAG + S² (model patch)", for
KSampler, KSamplerAdvanced and any sampler node that takes a MODEL. The hooks live in
guiders/model_patch.py."""

from __future__ import annotations

from comfy_api.latest import io

from ..guiders import RAAGConfig, S2Config, StepWindow
from ..guiders.compat import core_category
from ..guiders.model_patch import PatchSettings, apply
from .inputs import (
    NODE_PREFIX,
    check_inputs,
    errors_named,
    raag_inputs,
    s2_inputs,
    window,
    with_search_aliases,
)

# Beside core's own guidance patches (CFGZeroStar, SkipLayerGuidanceDiT) on the running ComfyUI.
PATCH_CATEGORY = core_category("comfy_extras.nodes_cfg", "CFGZeroStar", "advanced/guidance")

_USE = ("Connect the patched MODEL to KSampler, KSamplerAdvanced or any sampler node that takes a MODEL "
        "(with CFGGuider too). The incoming MODEL is not changed. Do not also use the pack's guider nodes "
        "on it, or this patch twice: that stops with an error.")
S2_OUTSIDE = "no sub-network pass"


def _model_input() -> io.Model.Input:
    return io.Model.Input("model", tooltip="The diffusion model to patch (flow-matching models: SD3.5, Flux, "
                          "Chroma, Qwen-Image, Wan...). The node returns a patched copy; this one is unchanged.")


def _seed_input() -> io.Int.Input:
    return io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                        tooltip="Seed of S²'s random block masks. The sampler's seed is not visible to a model "
                        "patch, so S² uses this one: set it to the KSampler seed to get the S² Guider's masks. "
                        "Same seed, same masks (each step's mask is keyed by its sigma, so a split schedule "
                        "over two KSamplerAdvanced draws the same masks). Default 0.")


def _output(tooltip: str) -> io.Model.Output:
    return io.Model.Output(display_name="patched_model", tooltip=tooltip)


class RAAGModelPatchNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return with_search_aliases(io.Schema(
            node_id=NODE_PREFIX + "RAAGModelPatch",
            display_name="RAAG (model patch)",
            category=PATCH_CATEGORY,
            description="Ratio-aware adaptive guidance (RAAG, arXiv 2508.03442) as a MODEL patch: each step "
            "the guidance scale is w = 1 + (w_max - 1) exp(-alpha rho), rho = ||v_c - v_u|| / ||v_u||. "
            "The sampler's cfg is the plain CFG scale outside RAAG's step window (no effect with the default "
            "window); the unconditional pass runs every step, also at cfg = 1. " + _USE,
            inputs=[_model_input(), *raag_inputs(), *window("RAAG", "plain CFG at the sampler's cfg")],
            outputs=[_output("The MODEL with RAAG: the sampler's cfg only acts outside RAAG's window.")],
        ), ["RAAG", "ratio", "adaptive cfg", "adaptive guidance", "model patch", "KSampler"])

    @classmethod
    def validate_inputs(cls, w_max, alpha, ratio_mode, start_percent, end_percent):
        return check_inputs("RAAG (model patch)", w_max=w_max, alpha=alpha, ratio_mode=ratio_mode,
                            start_percent=start_percent, end_percent=end_percent)

    @classmethod
    def execute(cls, model, w_max, alpha, ratio_mode, start_percent, end_percent) -> io.NodeOutput:
        with errors_named("RAAG (model patch)"):
            raag = RAAGConfig(w_max, alpha, ratio_mode, StepWindow(start_percent, end_percent))
        return io.NodeOutput(apply(model, PatchSettings(raag=raag, s2=None)))


class S2ModelPatchNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return with_search_aliases(io.Schema(
            node_id=NODE_PREFIX + "S2ModelPatch",
            display_name="S² (model patch)",
            category=PATCH_CATEGORY,
            description="S²-Guidance (arXiv 2508.12880) as a MODEL patch: after the sampler's CFG, one extra "
            "conditional pass per step through a sub-network with random blocks dropped, "
            "D = CFG - omega (D_sub - D_c). The sampler's cfg is S²'s lambda. Masks come from this node's seed "
            "(the sampler's seed is not visible to patches). " + _USE,
            inputs=[_model_input(), *s2_inputs(), *window("S²", S2_OUTSIDE), _seed_input()],
            outputs=[_output("The MODEL with S²: the sampler's cfg is lambda.")],
        ), ["S2", "S2-Guidance", "self guidance", "stochastic", "model patch", "KSampler"])

    @classmethod
    def validate_inputs(cls, omega, drop_ratio, start_percent, end_percent):
        return check_inputs("S² (model patch)", omega=omega, drop_ratio=drop_ratio, start_percent=start_percent,
                            end_percent=end_percent)

    @classmethod
    def execute(cls, model, omega, drop_ratio, start_percent, end_percent, seed) -> io.NodeOutput:
        with errors_named("S² (model patch)"):
            s2 = S2Config(omega, drop_ratio, StepWindow(start_percent, end_percent))
        return io.NodeOutput(apply(model, PatchSettings(raag=None, s2=s2, seed=seed)))


class RAAGS2ModelPatchNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return with_search_aliases(io.Schema(
            node_id=NODE_PREFIX + "RAAGS2ModelPatch",
            display_name="RAAG + S² (model patch)",
            category=PATCH_CATEGORY,
            description="RAAG and S²-Guidance together as a MODEL patch, the RAAG + S² Guider's computation "
            "for KSampler: RAAG's w sets the CFG scale of every step (the sampler's cfg has no effect), plus "
            "S²'s sub-network term - omega (D_sub - D_c) inside S²'s window. " + _USE,
            inputs=[_model_input(), *raag_inputs(), *s2_inputs(), *window("S²", S2_OUTSIDE), _seed_input()],
            outputs=[_output("The MODEL with RAAG + S²: the sampler's cfg has no effect.")],
        ), ["RAAG", "S2", "adaptive cfg", "self guidance", "model patch", "KSampler"])

    @classmethod
    def validate_inputs(cls, w_max, alpha, ratio_mode, omega, drop_ratio, start_percent, end_percent):
        return check_inputs("RAAG + S² (model patch)", w_max=w_max, alpha=alpha, ratio_mode=ratio_mode,
                            omega=omega, drop_ratio=drop_ratio, start_percent=start_percent,
                            end_percent=end_percent)

    @classmethod
    def execute(cls, model, w_max, alpha, ratio_mode, omega, drop_ratio, start_percent, end_percent,
                seed) -> io.NodeOutput:
        with errors_named("RAAG + S² (model patch)"):
            raag = RAAGConfig(w_max, alpha, ratio_mode)
            s2 = S2Config(omega, drop_ratio, StepWindow(start_percent, end_percent))
        return io.NodeOutput(apply(model, PatchSettings(raag=raag, s2=s2, seed=seed)))
