"""The guidance nodes: three GUIDER nodes for SamplerCustomAdvanced and three MODEL patches for KSampler
and any sampler node. Each builds the same thing in guiders/engine.py (a guider is CFGGuider over the
patched model), so a patch under KSampler and its guider give the same picture."""

from __future__ import annotations

from comfy_api.latest import io

from ..guiders import GuidanceGuider, RAAGConfig, S2Config, StepWindow, apply
from ..guiders.config import RATIO_MODES
from .base import PATCH_CATEGORY, PackNode, errors_named, number, pack_node

S2_OUTSIDE = "no sub-network pass (plain guidance, CFGGuider's cost)"
PATCH_USE = ("Connect the patched MODEL to KSampler, KSamplerAdvanced or any sampler node that takes a MODEL (or a "
             "CFG Guider). The incoming MODEL is not changed. The sampler's seed also seeds S²'s block masks.")


def model_input() -> io.Model.Input:
    return io.Model.Input("model", tooltip="The diffusion model to guide. Both methods are made for flow-matching "
                          "models (SD3.5, Flux, Chroma, Qwen-Image, Wan, HunyuanVideo, LTXV, Lumina2, HiDream...).")


def conds() -> list:
    return [
        io.Conditioning.Input("positive", tooltip="The prompt's conditioning: what to guide towards."),
        io.Conditioning.Input("negative", tooltip="Negative / unconditional conditioning, evaluated every step "
                              "(an empty prompt gives the papers' setting)."),
    ]


# name: (default, step, tooltip) of the number widgets; their bounds are guiders.config.RANGES
NUMBERS = {  # one row per widget (a table: long lines)
    "w_max": (18.0, 0.1, "RAAG's largest guidance scale, used when the conditional and unconditional velocities agree (rho = 0). Paper default 18 (SD3.5-Large, 10 steps). Recommended 8-20; lower it if images look over-saturated."),
    "alpha": (12.0, 0.1, "How fast the scale falls as the ratio rho = ‖v_c - v_u‖ / ‖v_u‖ grows: w = 1 + (w_max - 1) * exp(-alpha * rho). Paper default 12. Recommended 5-20; 0 gives constant CFG at w_max."),
    "rescale": (0.0, 0.01, "MAMBO-G's guidance rescale phi (diffusers' guidance_rescale): each step inside RAAG's window, the guided velocity's spread (per image std) is pulled towards the conditional one's, v = phi v_g std(v_c) / std(v_g) + (1 - phi) v_g, against over-saturation at high scales. Default 0 (off: the paper's SD3.5 setting); the authors' Qwen-Image setting is 1.0 (with w_max 10, alpha 8). Allowed 0-1."),
    "omega": (0.25, 0.01, "Weight of the S² self-guidance term: D = D_u + lambda (D_c - D_u) - omega (D_sub - D_c). Paper default 0.25 (SD3, SD3.5, Wan). Recommended 0.1-0.5: large values over-correct. 0 turns S² off (no extra pass)."),
    "drop_ratio": (0.1, 0.01, "Fraction of the transformer blocks dropped in the sub-network, drawn anew each step from the sampler's seed (the first block of each stack is never dropped; at least one block is). Paper: about 0.1 (1-3 of SD3.5's 24 blocks). Recommended 0.05-0.15."),
}


def numbers(*names: str) -> list:
    return [number(name, *NUMBERS[name]) for name in names]


def raag_inputs() -> list:
    return [*numbers("w_max", "alpha"), io.Combo.Input(
        "ratio_mode", options=list(RATIO_MODES), default="per_sample",
        tooltip="per_sample: each image's own ratio, so an image never depends on its batch mates "
        "(recommended). batch: one ratio over the whole batch, as the official code (identical for batch size 1).")]


def window(what: str, outside: str) -> list:
    units = ("ComfyUI's percent of the noise schedule, as core's start_percent/end_percent: 0 = the highest "
             "noise, 1 = none; percent_to_sigma of the model gives the sigma. It equals the fraction of steps "
             "only for some schedulers")
    return [
        number("start_percent", 0.0, 0.01, f"Where {what} starts, in {units}. A step whose sigma lies on an edge "
               f"is inside. Outside [start_percent, end_percent]: {outside}. Default 0."),
        number("end_percent", 1.0, 0.01, f"Where {what} ends, in the same units (1 = the end of the schedule). "
               f"Outside [start_percent, end_percent]: {outside}. Default 1 (the whole schedule)."),
    ]


class GuidanceNode(PackNode):
    """RAAG, S² or both (METHODS), as a GUIDER (conditionings and a cfg input) or as a MODEL patch. The step
    window belongs to S² when the node has S², else to RAAG."""

    METHODS: tuple[str, ...] = ()
    CFG: io.Float.Input | None = None  # the guider's fixed scale input (the sampler's cfg for a patch)
    GUIDER = True

    @classmethod
    def inputs(cls) -> list:
        items = [model_input(), *(conds() if cls.GUIDER else [])]
        if cls.CFG is not None and "raag" not in cls.METHODS:
            items.append(cls.CFG)
        items += raag_inputs() if "raag" in cls.METHODS else []
        items += numbers("omega", "drop_ratio") if "s2" in cls.METHODS else []
        items += window("S²", S2_OUTSIDE) if "s2" in cls.METHODS else window(
            "RAAG", "plain CFG at " + ("cfg" if cls.GUIDER else "the sampler's cfg"))
        if cls.CFG is not None and "raag" in cls.METHODS:
            items.append(cls.CFG)
        # new inputs go last: saved workflows give widget values by position
        return items + (numbers("rescale") if "raag" in cls.METHODS else [])

    @classmethod
    def outputs(cls) -> list:
        if cls.GUIDER:
            return [io.Guider.Output(tooltip="Connect to SamplerCustomAdvanced's guider input.")]
        return [io.Model.Output(display_name="patched_model", tooltip="The MODEL with " + " + ".join(
            {"raag": "RAAG", "s2": "S²"}[m] for m in cls.METHODS) + ": see the node's description for what the "
            "sampler's cfg means.")]

    @classmethod
    def execute(cls, model, positive=None, negative=None, cfg=1.0, start_percent=0.0, end_percent=1.0,
                **values) -> io.NodeOutput:
        with errors_named(cls.DISPLAY_NAME):
            steps = StepWindow(start_percent, end_percent)
            raag = s2 = None
            if "raag" in cls.METHODS:
                raag = RAAGConfig(values["w_max"], values["alpha"], values["ratio_mode"],
                                  StepWindow() if "s2" in cls.METHODS else steps, values.get("rescale", 0.0))
            if "s2" in cls.METHODS:
                s2 = S2Config(values["omega"], values["drop_ratio"], steps)
            if not cls.GUIDER:
                return io.NodeOutput(apply(model, raag=raag, s2=s2))
            guider = GuidanceGuider(model, cfg=cfg, raag=raag, s2=s2)
            guider.set_conds(positive, negative)
        return io.NodeOutput(guider)


class PatchNode(GuidanceNode):
    GUIDER, MENU = False, PATCH_CATEGORY


# One class per node: its id, display name, methods, search aliases and description (one line each).
@pack_node
class RAAGGuiderNode(GuidanceNode):
    NODE_ID, DISPLAY_NAME, METHODS = "RAAGGuider", "RAAG / MAMBO-G Guider", ("raag",)
    ALIASES = ("MAMBO-G", "MAMBO", "magnitude-aware guidance", "magnitude aware", "ratio aware adaptive guidance", "adaptive cfg", "adaptive guidance scale", "ratio", "RAAG", "few step guidance", "dynamic cfg")
    ABOUT = "Ratio-aware adaptive guidance (RAAG; MAMBO-G, magnitude-aware mitigation for boosted guidance, since the paper's v4: arXiv 2508.03442): each step the guidance scale follows the ratio rho = ‖v_c - v_u‖ / ‖v_u‖, w = 1 + (w_max - 1) exp(-alpha rho): strong where the prompt barely changes the prediction, gentle where it already does (the first steps). Made for few-step sampling of flow models (10 RAAG steps vs 30 CFG steps in the paper). Plug into SamplerCustomAdvanced."
    CFG = number("cfg", 5.0, 0.1, "Plain CFG scale used outside RAAG's step window; no effect with the default window (the whole schedule). Recommended: the model's usual CFG (SD3.5 4.5-7, Chroma 3.5-4, Qwen-Image 2.5-4, Wan 5-6).")


@pack_node
class S2GuiderNode(GuidanceNode):
    # "S2" as a word: the newest node search ranks a word match above core nodes
    NODE_ID, DISPLAY_NAME, METHODS = "S2Guider", "S² Guider (S2)", ("s2",)
    ALIASES = ("S2", "S2 guidance", "S2-Guidance", "stochastic self guidance", "self guidance", "stochastic", "block dropping", "sub-network guidance")
    ABOUT = "S²-Guidance (stochastic self-guidance, arXiv 2508.12880): CFG plus one extra conditional pass per step through a sub-network with ~10% of the transformer blocks dropped at random; D = D_u + lambda (D_c - D_u) - omega (D_sub - D_c) steers away from the sub-network's errors. Costs one extra conditional pass per step inside the window. Plug into SamplerCustomAdvanced."
    CFG = number("cfg", 7.5, 0.1, "CFG scale lambda. Paper: 7.5 for SD3/SD3.5, 5 for Wan 2.1. Otherwise your model's usual CFG.")


@pack_node
class RAAGS2GuiderNode(GuidanceNode):
    NODE_ID, DISPLAY_NAME, METHODS = "RAAGS2Guider", "RAAG / MAMBO-G + S² Guider", ("raag", "s2")
    ALIASES = ("RAAG S2", "MAMBO-G S2", "MAMBO-G", "MAMBO", "S2", "S2 guidance", "stochastic self guidance", "self guidance", "stochastic", "adaptive cfg", "magnitude-aware guidance", "ratio", "ratio aware adaptive guidance")
    ABOUT = "RAAG (MAMBO-G) and S²-Guidance together: the CFG scale lambda of every step comes from RAAG's ratio schedule (w = 1 + (w_max - 1) exp(-alpha rho)), plus S²'s sub-network term - omega (D_sub - D_c). Plug into SamplerCustomAdvanced."


@pack_node
class RAAGModelPatchNode(PatchNode):
    NODE_ID, DISPLAY_NAME, METHODS = "RAAGModelPatch", "RAAG / MAMBO-G (model patch)", ("raag",)
    ALIASES = ("RAAG", "MAMBO-G", "MAMBO", "magnitude-aware guidance", "ratio", "adaptive cfg", "adaptive guidance", "model patch", "KSampler")
    ABOUT = "The RAAG / MAMBO-G Guider's computation (arXiv 2508.03442) as a MODEL patch: each step the guidance scale is w = 1 + (w_max - 1) exp(-alpha rho), rho = ‖v_c - v_u‖ / ‖v_u‖. The sampler's cfg is the plain CFG scale outside RAAG's step window (no effect with the default window); the unconditional pass runs every step, also at cfg = 1. " + PATCH_USE


@pack_node
class S2ModelPatchNode(PatchNode):
    NODE_ID, DISPLAY_NAME, METHODS = "S2ModelPatch", "S² (model patch)", ("s2",)
    ALIASES = ("S2", "S2-Guidance", "self guidance", "stochastic", "model patch", "KSampler")
    ABOUT = "The S² Guider's computation (arXiv 2508.12880) as a MODEL patch: one extra conditional pass per step through a sub-network with random blocks dropped, D = CFG - omega (D_sub - D_c). The sampler's cfg is S²'s lambda. " + PATCH_USE


@pack_node
class RAAGS2ModelPatchNode(PatchNode):
    NODE_ID, DISPLAY_NAME, METHODS = "RAAGS2ModelPatch", "RAAG / MAMBO-G + S² (model patch)", ("raag", "s2")
    ALIASES = ("RAAG", "MAMBO-G", "MAMBO", "S2", "adaptive cfg", "self guidance", "model patch", "KSampler")
    SAVED_BEFORE = {"rescale": " (a workflow saved before this input existed carries the old S² seed here, "
                               "which the sampler's seed replaced: set it to 0)"}
    ABOUT = "The RAAG / MAMBO-G + S² Guider's computation as a MODEL patch: RAAG's w sets the CFG scale of every step (the sampler's cfg has no effect), plus S²'s sub-network term - omega (D_sub - D_c) inside S²'s window. " + PATCH_USE


GUIDANCE_NODES = [RAAGGuiderNode, S2GuiderNode, RAAGS2GuiderNode, RAAGModelPatchNode, S2ModelPatchNode,
                  RAAGS2ModelPatchNode]
