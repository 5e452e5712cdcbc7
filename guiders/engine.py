"""The one guidance engine: what RAAG, S² or both do at a model call, for the guider nodes and the MODEL
patches alike.

``apply`` puts the methods on a clone of a MODEL: their settings (a ``Guidance``, in
transformer_options) and a SAMPLER_SAMPLE wrapper. Core calls that wrapper where it has made the run
final: it sees the guider, the sampler, the sigmas on the device, the inpainting mask as the sampler uses
it (prepared, and packed with the latents on releases that pack nested latents) and the noise seed.
The wrapper builds the run's state (``Run``) and, while the sampler runs, makes ``predict`` the
guider's noise prediction. ``predict`` is core's ``sampling_function`` with the methods in it:

    calc_cond_batch([positive, negative])   one batched pass (sampler_calc_cond_batch_function, hooks,
                                            ControlNet... as core); core's cfg = 1 shortcut unless RAAG
    RAAG: w from rho, per sample            raag.py, fp32, on the device (MAMBO-G's rescale: see below)
    S²:   calc_cond_batch([positive])       through the sub-network (blocks.py), inside its window
    sampler_pre_cfg_function hooks          core's argument dict, cond_scale = the scale used (w)
    cfg_function(..., scale)                sampler_cfg_function and post-cfg hooks see core's contract;
                                            the pack's own steps come first: RAAG's rescale (the guided
                                            prediction's spread matched to the conditional one's, inside
                                            RAAG's window), then S²'s term

The GUIDER nodes are CFGGuider over such a clone (``GuidanceGuider``); KSampler on a patched MODEL runs
core's CFGGuider over it. Both therefore compute the same thing by construction, and every other hook sees
RAAG's w as its cond_scale. Outside the methods' windows ``predict`` is CFGGuider's computation.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field

import comfy.model_management
import comfy.model_sampling
import comfy.patcher_extension
import comfy.samplers
import torch

from . import blocks
from .config import RAAGConfig, S2Config, check
from .raag import flow_anchor, guidance_ratio, per_sample_view, raag_scale, rescale_guided
from .s2 import draw_mask, s2_term, subnetwork_deviation
from .steps import CallClock, call_pattern, in_window, window_sigmas
from .trace import GuidanceTrace, TraceEntry

log = logging.getLogger(__name__)

# transformer_options[MARKER]: the Guidance a MODEL carries; the wrapper is registered under the same key.
MARKER = "raag_s2_guidance"
_FLOW_SAMPLING = (comfy.model_sampling.CONST, comfy.model_sampling.COSMOS_RFLOW)


class CompositionError(ValueError):
    """The pack's methods combined in a way that would compound them or that a guider cannot run."""


@dataclass(frozen=True)
class Guidance:
    """The methods a MODEL carries, and the trace of its last sampler run."""

    raag: RAAGConfig | None = None
    s2: S2Config | None = None
    trace: GuidanceTrace = field(default_factory=GuidanceTrace, compare=False, repr=False)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for m, on in (("raag", self.raag), ("s2", self.s2)) if on is not None)

    @property
    def label(self) -> str:
        return label(self.methods)

    def __deepcopy__(self, memo):
        """A deep copy of model_options (what older ModelPatcher.clone() makes) gets the same settings and a
        trace of its own, without copying this one's tensors."""
        return Guidance(self.raag, self.s2)


def label(methods) -> str:
    return " + ".join({"raag": "RAAG", "s2": "S²"}[m] for m in methods)


def guidance_of(model_patcher) -> Guidance | None:
    return model_patcher.model_options.get("transformer_options", {}).get(MARKER)


def apply(model_patcher, raag: RAAGConfig | None = None, s2: S2Config | None = None):
    """A clone of ``model_patcher`` that samples with RAAG and/or S²; ``model_patcher`` is not changed.

    Methods stack: S² on a MODEL that has RAAG gives RAAG + S². The same method twice is an error (it
    would compound), as is S² on a model the block table does not know (the message lists the known)."""
    current = guidance_of(model_patcher) or Guidance()
    twice = [m for m in Guidance(raag, s2).methods if m in current.methods]
    if twice:
        raise CompositionError(
            f"This MODEL already has {label(twice)} from this pack ({current.label} upstream). Applying it "
            "twice would compound the guidance: keep one of the nodes (RAAG + S² nodes already contain both methods).")
    merged = Guidance(raag or current.raag, s2 or current.s2)
    if merged.s2 is not None:
        blocks.architecture_of(model_patcher.get_model_object("diffusion_model"))
    model_sampling = model_patcher.get_model_object("model_sampling")
    if raag is not None and not isinstance(model_sampling, _FLOW_SAMPLING):
        log.warning("RAAG on a %s model: RAAG is designed for flow-matching models, and its paper reports it "
                    "worse than CFG on diffusion (EPS / v-prediction) models such as SD2. Consider CFG for this "
                    "model.", type(model_sampling).__name__)
    patched = model_patcher.clone()
    patched.model_options.setdefault("transformer_options", {})[MARKER] = merged
    if not current.methods:
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, MARKER, _sampler_sample)
        patched.add_callback_with_key(comfy.patcher_extension.CallbacksMP.ON_CLONE, MARKER, _own_trace)
    return patched


def _own_trace(original, clone):
    """A clone of a patched MODEL (a LoRA after the patch...) samples with the same methods and records a
    trace of its own. Newer ModelPatcher.clone() copies only the dicts and lists of model_options and
    shares the objects in them, so the clone's Guidance is replaced here, whatever the copy was."""
    options = clone.model_options.get("transformer_options", {})
    if isinstance(options.get(MARKER), Guidance):
        options[MARKER] = Guidance(options[MARKER].raag, options[MARKER].s2)


@dataclass
class Run:
    """One sampler run's state, built from what core hands the sampler; gone when the sampler returns."""

    guidance: Guidance
    clock: CallClock
    seed: int
    region: torch.Tensor | None  # the inpainting mask in the latent's shape (1 = repainted), or None
    raag_window: tuple[float, float] | None
    s2_window: tuple[float, float] | None
    arch: blocks.Architecture | None
    eligible: list[tuple[str, int]]

    @classmethod
    def start(cls, guidance: Guidance, guider, sampler, sigmas, denoise_mask, seed) -> Run:
        """Once per run: the schedule is read on the host here (one read of the sigmas), never per call."""
        model = guider.inner_model
        model_sampling = model.model_sampling
        arch = blocks.architecture_of(model.diffusion_model) if guidance.s2 is not None else None
        guidance.trace.clear()
        return cls(
            guidance=guidance,
            clock=CallClock(sigmas, call_pattern(sampler)),
            seed=int(seed or 0),
            region=None if denoise_mask is None else denoise_mask.float(),
            raag_window=window_sigmas(model_sampling, guidance.raag.window) if guidance.raag else None,
            s2_window=window_sigmas(model_sampling, guidance.s2.window) if guidance.s2 else None,
            arch=arch,
            eligible=blocks.eligible_blocks(arch, model.diffusion_model) if arch is not None else [],
        )


def _sampler_sample(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask,
                    disable_pbar):
    guidance: Guidance = extra_args["model_options"]["transformer_options"][MARKER]
    own = getattr(guider.predict_noise, "__func__", None)
    if own is not comfy.samplers.CFGGuider.predict_noise:
        raise CompositionError(
            f"The MODEL carries {guidance.label} from this pack, and it is sampled by "
            f"{type(guider).__name__}, which combines its predictions its own way. Sample it with KSampler, "
            "KSamplerAdvanced, SamplerCustom or the CFG Guider node (or use the pack's guider nodes).")
    run = Run.start(guidance, guider, executor.class_obj, sigmas, denoise_mask, extra_args.get("seed"))
    # The guider's noise prediction is ``predict`` for this run only (as core's CFGOverride sets the
    # guider's cfg for a call): every PREDICT_NOISE wrapper still runs around it.
    guider.predict_noise = functools.partial(predict, guider, run)
    try:
        return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
    finally:
        del guider.predict_noise


def predict(guider, run: Run, x, timestep, model_options={}, seed=None):  # noqa: B006 (core's signature)
    """The guided (denoised) prediction of one model call: see the module docstring."""
    comfy.model_management.throw_exception_if_processing_interrupted()
    guidance, model = run.guidance, guider.inner_model
    step, sigma = run.clock.locate(timestep)
    raag_on = guidance.raag is not None and in_window(sigma, run.raag_window)
    s2_on = guidance.s2 is not None and guidance.s2.omega > 0 and in_window(sigma, run.s2_window)
    positive, negative = guider.conds.get("positive"), guider.conds.get("negative")
    if raag_on and negative is None:
        raise CompositionError(f"RAAG needs a negative (unconditional) prediction, and {type(guider).__name__} "
                               "has no negative conditioning: use KSampler or a CFG Guider (an empty prompt works).")
    # core's cfg = 1 shortcut skips the unconditional pass; RAAG always needs it
    skip_uncond = (not raag_on and math.isclose(guider.cfg, 1.0)
                   and not model_options.get("disable_cfg1_optimization", False))
    uncond = None if skip_uncond else negative
    conds = [positive, uncond]
    dropped, prefix, full_options = (), None, model_options
    if s2_on:  # the mask depends only on seed and sigma: drawn first, so the full pass can keep the prefix
        dropped = draw_mask(run.eligible, guidance.s2.drop_ratio, run.seed, sigma)
        paired = len(blocks.subnetwork_conds(positive, uncond, model_options)) > 1
        full_options, prefix = blocks.prefix_plan(run.arch, model_options, dropped, paired, model.diffusion_model)
    out = _calc_cond_batch(model, conds, x, timestep, full_options)
    cond_pred, uncond_pred = out[0], out[1]

    scale, rho, leading = guider.cfg, None, []
    if uncond is not None and guidance.raag is not None:
        anchor = flow_anchor(model.model_sampling, x, timestep)
        region = run.region if run.region is not None and run.region.shape == x.shape else None
        rho = guidance_ratio(cond_pred, uncond_pred, anchor, guidance.raag.ratio_mode, region)
        if raag_on:
            scale = _scale_for_hooks(raag_scale(rho, guidance.raag.w_max, guidance.raag.alpha), guidance.raag,
                                     cond_pred)
            if guidance.raag.rescale > 0:
                phi = guidance.raag.rescale
                leading.append(lambda args: rescale_guided(args["denoised"], args["cond_denoised"], anchor, phi))
    deviation, reused = None, False
    if s2_on:
        comfy.model_management.throw_exception_if_processing_interrupted()
        reused = prefix is not None and prefix.complete()
        sub_pred = blocks.subnetwork_prediction(model, run.arch, model_options, dropped, positive, uncond, x,
                                                timestep, prefix=prefix)
        prefix = None  # the kept state goes with the pass that used it
        if uncond is not None:
            deviation = subnetwork_deviation(cond_pred, uncond_pred, sub_pred)
        correction = s2_term(cond_pred, sub_pred, guidance.s2.omega)
        leading.append(lambda args: args["denoised"] + correction)

    if leading:  # before the user's post-cfg hooks (CFGZeroStar, SLG...), which then see the whole guided prediction
        model_options = dict(model_options)
        model_options["sampler_post_cfg_function"] = leading + list(model_options.get("sampler_post_cfg_function", []))
    for fn in model_options.get("sampler_pre_cfg_function", []):
        out = fn({"conds": conds, "conds_out": out, "cond_scale": scale, "timestep": timestep, "input": x,
                  "sigma": timestep, "model": model, "model_options": model_options})
    result = comfy.samplers.cfg_function(model, out[0], out[1], scale, x, timestep, model_options=model_options,
                                         cond=positive, uncond=uncond)
    guidance.trace.record(TraceEntry(step=step, sigma=timestep.detach(),
                                     scale=scale.flatten() if torch.is_tensor(scale) else scale,
                                     rho=rho, dropped=dropped, deviation=deviation, reused=reused))
    return result


def _scale_for_hooks(w: torch.Tensor, raag: RAAGConfig, like: torch.Tensor):
    """RAAG's w as core's hooks receive a cond_scale: a 0-dim tensor when one scale serves the batch (hooks
    written for a number accept it: core's VideoLinearCFGGuidance puts it into torch.linspace), else
    [B, 1, ...]."""
    if raag.ratio_mode == "batch" or w.shape[0] == 1:
        return w[0].to(like.dtype)
    return per_sample_view(w, like)


def _calc_cond_batch(model, conds, x, timestep, model_options):
    if "sampler_calc_cond_batch_function" in model_options:
        args = {"conds": conds, "input": x, "sigma": timestep, "model": model, "model_options": model_options}
        return model_options["sampler_calc_cond_batch_function"](args)
    return comfy.samplers.calc_cond_batch(model, conds, x, timestep, model_options)


class GuidanceGuider(comfy.samplers.CFGGuider):
    """What the guider nodes return: core's CFGGuider over ``apply``'s clone of the model. ``cfg`` is the
    fixed scale: S²'s lambda, and the plain CFG scale outside RAAG's step window."""

    def __init__(self, model_patcher, *, cfg: float = 1.0, raag: RAAGConfig | None = None,
                 s2: S2Config | None = None):
        super().__init__(apply(model_patcher, raag=raag, s2=s2))
        self.set_cfg(cfg)

    @property
    def guidance(self) -> Guidance:
        return guidance_of(self.model_patcher)

    @property
    def trace(self) -> GuidanceTrace:
        return self.guidance.trace

    def set_cfg(self, cfg):
        self.cfg = check("cfg", cfg)

    def set_conds(self, positive, negative):
        for name, value in (("positive", positive), ("negative", negative)):
            if value is None:
                raise ValueError(f"{name}: the conditioning input is missing; RAAG and S²-Guidance need a "
                                 "positive and a negative (unconditional) prediction (an empty prompt works)")
        super().set_conds(positive, negative)
