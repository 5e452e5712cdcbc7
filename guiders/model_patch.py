"""RAAG and S²-Guidance as MODEL patches, for KSampler, KSamplerAdvanced and any sampler node that takes a
MODEL (core's CFGGuider runs them).

The same math as the guiders (``raag.py``, ``s2.py``, the block table in ``blocks.py``), reached through
core's model-option hooks on a clone of the model, placed so that core computes what the pack's guider
computes:

    calc_cond_batch([positive, negative])   core (the cfg = 1 shortcut is turned off when RAAG is on)
    pre-cfg: capture                        first pre-cfg step: keeps the raw predictions of this call
    pre-cfg hooks of other patches          core's order (APG...), with core's cond_scale = the sampler's cfg
    cfg_function(..., cfg)                  core's combination at the sampler's cfg (or sampler_cfg_function)
    post-cfg: guidance (first post-cfg)     RAAG: the combination again at w (sampler_cfg_function, e.g.
                                            RescaleCFG, called with cond_scale = w, as the guider does);
                                            S²: one conditional pass through the sub-network, + s2_term
    post-cfg hooks of other patches         CFGZeroStar, SkipLayerGuidanceDiT... see the guided result

What the sampler's ``cfg`` means: exactly what the guider's ``cfg`` input means. RAAG: the plain CFG
scale outside RAAG's step window (RAAG's own w_max and alpha set the scale inside it); S²: lambda; RAAG
+ S²: nothing (RAAG sets the scale of every step). So KSampler(cfg=c) + patch == the guider at cfg=c.

KSampler's seed is not visible to a model patch: S²'s masks are drawn from the patch's own ``seed``
(``draw_mask``, keyed by the sigma of the call), so the same graph gives the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import comfy.patcher_extension
import comfy.samplers

from . import blocks
from .config import RAAGConfig, S2Config
from .raag import flow_anchor, guidance_ratio, per_sample_view, raag_scale
from .s2 import draw_mask, s2_term
from .steps import in_window, window_sigmas

# transformer_options[MARKER]: the methods the pack's patches put on this MODEL ("raag", "s2").
MARKER = "raag_s2_guidance.model_patch"
# Our hooks carry this attribute (their method), so a later patch of ours keeps them first, in order.
ROLE = "_raag_s2_patch_role"
_RANK = {"capture": 0, "raag": 1, "s2": 2, "raag+s2": 1}
GUARD_KEY = "raag_s2_guidance.model_patch_guard"

# Plain ValueError (see blocks.py): ComfyUI's error dialog shows the class name.
CompositionError = ValueError


def patched_methods(model_patcher) -> tuple[str, ...]:
    """The methods ("raag", "s2") the pack's model patches already put on ``model_patcher``."""
    return tuple(model_patcher.model_options.get("transformer_options", {}).get(MARKER, ()))


@dataclass(frozen=True)
class PatchSettings:
    raag: RAAGConfig | None
    s2: S2Config | None
    seed: int = 0

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for m, on in (("raag", self.raag is not None), ("s2", self.s2 is not None)) if on)


def _label(methods) -> str:
    return " + ".join({"raag": "RAAG", "s2": "S²"}[m] for m in methods)


def apply(model_patcher, settings: PatchSettings):
    """A clone of ``model_patcher`` carrying the patch; ``model_patcher`` itself is never changed.

    Raises ValueError when the model already carries one of the same methods from the pack (a second
    RAAG or S² would compound) or when S² does not support the model."""
    methods = settings.methods
    already = patched_methods(model_patcher)
    twice = [m for m in methods if m in already]
    if twice:
        raise CompositionError(
            f"This MODEL already has {_label(twice)} from a RAAG / S² model patch node ({_label(already)} "
            f"(model patch) upstream). Applying it twice would compound the guidance: keep one patch node "
            "(RAAG + S² (model patch) already contains both methods).")
    arch = blocks.architecture_of(model_patcher.get_model_object("diffusion_model")) if settings.s2 else None

    stash: dict = {}

    def capture(args):
        # The raw predictions of this call, before other patches' pre-cfg steps (APG) change them:
        # RAAG's ratio and S²'s term use them, as the guider does.
        out = args["conds_out"]
        stash.clear()
        stash.update(x=args["input"], cond=out[0], uncond=out[1] if len(out) > 1 else None)
        return out

    def guidance(args):
        x, timestep = args["input"], args["sigma"]
        model = args["model"]
        cond_pred, uncond_pred = args["cond_denoised"], args["uncond_denoised"]
        raw_cond, raw_uncond = cond_pred, uncond_pred
        if stash.get("x") is x:
            raw_cond, raw_uncond = stash["cond"], stash["uncond"]
        stash.clear()
        result = args["denoised"]
        # The call's sigma, read on the host as core's SkipLayerGuidanceDiT reads it: a patch sees no
        # schedule position. One scalar per model call (a device synchronisation on a GPU).
        sigma = float(timestep.reshape(-1)[0])
        model_sampling = model.model_sampling  # the effective one (ModelSampling* nodes patch it)
        model_options = args["model_options"]
        if settings.raag is not None and raw_uncond is not None and in_window(
                sigma, window_sigmas(model_sampling, settings.raag.window)):
            anchor = flow_anchor(model_sampling, x, timestep)
            rho = guidance_ratio(raw_cond, raw_uncond, anchor, settings.raag.ratio_mode)
            scale = per_sample_view(raag_scale(rho, settings.raag.w_max, settings.raag.alpha), raw_cond)
            result = _combine(model, cond_pred, uncond_pred, scale, x, timestep, model_options,
                              args.get("cond"), args.get("uncond"))
        s2 = settings.s2
        if s2 is not None and s2.omega > 0 and in_window(sigma, window_sigmas(model_sampling, s2.window)):
            comfy.model_management.throw_exception_if_processing_interrupted()
            eligible = blocks.eligible_blocks(arch, model.diffusion_model)
            dropped = draw_mask(eligible, s2.drop_ratio, settings.seed, sigma, s2.min_dropped)
            sub_pred = blocks.subnetwork_prediction(model, arch, model_options, dropped, args["cond"],
                                                    args.get("uncond"), x, timestep)
            result = result + s2_term(raw_cond, sub_pred, s2.omega)
        return result

    def guard(executor, *args, **kwargs):
        from .base import GuidanceGuider  # the pack's guider nodes: they do this work themselves

        guider = executor.class_obj
        if isinstance(guider, GuidanceGuider):
            raise CompositionError(
                f"The MODEL carries {_label(patched_methods(guider.model_patcher))} (model patch), and it is "
                "sampled by one of the pack's guider nodes, which applies RAAG / S² itself: the guidance would "
                "run twice. Use the patch with KSampler / CFGGuider, or the guider node with the unpatched "
                "MODEL.")
        return executor(*args, **kwargs)

    setattr(capture, ROLE, "capture")
    setattr(guidance, ROLE, "+".join(methods))
    patched = model_patcher.clone()
    options = patched.model_options
    # RAAG needs the unconditional prediction at every step, also at cfg = 1.
    patched.set_model_sampler_pre_cfg_function(capture, disable_cfg1_optimization=settings.raag is not None)
    patched.set_model_sampler_post_cfg_function(guidance, disable_cfg1_optimization=settings.raag is not None)
    for key in ("sampler_pre_cfg_function", "sampler_post_cfg_function"):
        options[key] = _ours_first(options[key])
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, GUARD_KEY, guard)
    transformer_options = options.setdefault("transformer_options", {})
    transformer_options[MARKER] = tuple(sorted(set(already) | set(methods)))
    return patched


def _ours_first(hooks: list) -> list:
    """A new list: the pack's hooks first (RAAG before S², as in the guider), then every other hook in
    the order the user stacked them."""
    ours = [fn for fn in hooks if hasattr(fn, ROLE)]
    ours.sort(key=lambda fn: _RANK[getattr(fn, ROLE)])
    return ours + [fn for fn in hooks if not hasattr(fn, ROLE)]


def _combine(model, cond_pred, uncond_pred, scale, x, timestep, model_options, cond, uncond):
    """Core's CFG combination (cfg_function without its post-cfg steps) at the per-sample ``scale``."""
    if "sampler_cfg_function" in model_options:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred, "cond_scale": scale, "timestep": timestep,
                "input": x, "sigma": timestep, "cond_denoised": cond_pred, "uncond_denoised": uncond_pred,
                "model": model, "model_options": model_options, "input_cond": cond, "input_uncond": uncond}
        return x - model_options["sampler_cfg_function"](args)
    return uncond_pred + (cond_pred - uncond_pred) * scale
