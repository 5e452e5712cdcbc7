"""The guider behind every node of the pack: ComfyUI's CFGGuider plus RAAG's adaptive scale and/or
S²-Guidance's sub-network term.

Only ``predict_noise`` (and ``sample``, to reset per-run state) are overridden. A model call goes
through core's own pieces, in core's order, so every patch users stack on the model keeps working:

    calc_cond_batch([positive, negative])    one batched pass, as CFGGuider (honours
                                             sampler_calc_cond_batch_function, hooks, ControlNet…)
    RAAG: w from rho, per sample             pure functions in raag.py, fp32, stays on the device
    S²:   calc_cond_batch([positive])        a second, sequential pass through a sub-network with
                                             random blocks dropped (blocks.py), inside its window
    sampler_pre_cfg_function hooks           with core's argument dict, cond_scale = the scale used
    cfg_function(..., cond_scale)            sampler_cfg_function / post-cfg hooks (CFGZeroStar,
                                             RescaleCFG, CFG++ samplers…) see core's exact contract;
                                             the S² term is added as the first post-cfg step.

With RAAG off and S² off (or outside their windows) this is exactly CFGGuider's computation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import comfy.model_management
import comfy.model_sampling
import comfy.sampler_helpers
import comfy.samplers
import torch

from . import blocks
from .config import RAAGConfig, S2Config, check
from .raag import flow_anchor, guidance_ratio, per_sample_view, raag_scale
from .s2 import draw_mask, s2_term, subnetwork_deviation
from .steps import CallClock, call_pattern, in_window, window_sigmas
from .trace import GuidanceTrace, TraceEntry

log = logging.getLogger(__name__)

_FLOW_SAMPLING = (comfy.model_sampling.CONST, comfy.model_sampling.COSMOS_RFLOW)


def _prediction_type(model_sampling) -> str:
    """EPS, V_PREDICTION, CONST...: ComfyUI builds model_sampling classes by mixing one of these in."""
    for cls in type(model_sampling).__mro__:
        if cls.__module__ == comfy.model_sampling.__name__ and cls.__name__.isupper():
            return cls.__name__
    return type(model_sampling).__name__


@dataclass
class _Run:
    """What one ``sample()`` call needs; rebuilt at the start of every run."""

    clock: CallClock
    seed: int
    raag_window: tuple[float, float] | None
    s2_window: tuple[float, float] | None
    eligible: list[tuple[str, int]]
    mask: torch.Tensor | None = None  # the inpainting mask as handed to sample(); in latent shape below
    region: torch.Tensor | None = None


class GuidanceGuider(comfy.samplers.CFGGuider):
    """``cfg`` is the fixed guidance scale: S²'s lambda, and RAAG's scale outside its step window."""

    def __init__(self, model_patcher, *, cfg: float = 1.0, raag: RAAGConfig | None = None,
                 s2: S2Config | None = None):
        super().__init__(model_patcher)
        self.set_cfg(cfg)
        self.raag = raag
        self.s2 = s2
        self.trace = GuidanceTrace()
        self._run: _Run | None = None
        # Fail when the node runs, with the list of supported models, not deep inside sampling.
        self._arch = blocks.architecture_of(self._diffusion_model()) if s2 is not None else None
        self._warned_non_flow = False

    def set_cfg(self, cfg):
        self.cfg = check("cfg", cfg)

    def set_conds(self, positive, negative):
        if positive is None:
            raise ValueError("positive: the conditioning input is missing")
        if negative is None:
            raise ValueError(
                "negative: the conditioning input is missing; RAAG and S²-Guidance need an unconditional "
                "prediction (an empty prompt works)"
            )
        super().set_conds(positive, negative)

    def _diffusion_model(self):
        return self.model_patcher.get_model_object("diffusion_model")

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
               disable_pbar=False, seed=None):
        if sigmas.shape[-1] == 0:
            return super().sample(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
        self.trace.clear()
        self._run = self._start_run(sigmas, seed, sampler)
        self._run.mask = denoise_mask
        try:
            return super().sample(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
        finally:
            self._run = None  # nothing of this run survives it (a later direct call starts afresh)

    def _start_run(self, sigmas: torch.Tensor, seed, sampler=None) -> _Run:
        model_sampling = self.model_patcher.get_model_object("model_sampling")
        if self.raag is not None and not isinstance(model_sampling, _FLOW_SAMPLING) and not self._warned_non_flow:
            self._warned_non_flow = True
            log.warning(
                "RAAG on a %s-prediction model: RAAG is designed for flow-matching models, and its paper "
                "reports it worse than CFG on diffusion (EPS / v-prediction) models such as SD2. Consider CFG "
                "for this model.",
                _prediction_type(model_sampling),
            )
        return _Run(
            clock=CallClock(sigmas, call_pattern(sampler) if sampler is not None else None),
            seed=int(seed or 0),
            raag_window=window_sigmas(model_sampling, self.raag.window) if self.raag is not None else None,
            s2_window=window_sigmas(model_sampling, self.s2.window) if self.s2 is not None else None,
            eligible=blocks.eligible_blocks(self._arch, self._diffusion_model()) if self.s2 is not None else [],
        )

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006 (core's signature)
        comfy.model_management.throw_exception_if_processing_interrupted()
        run = self._run
        if run is None:  # called outside sample() (outer_sample driven directly): this call's own run
            run = self._start_run(model_options["transformer_options"]["sample_sigmas"], seed)
        step, sigma = run.clock.locate(timestep)
        raag_on = run.raag_window is not None and in_window(sigma, run.raag_window)
        s2_on = run.s2_window is not None and self.s2.omega > 0 and in_window(sigma, run.s2_window)

        positive = self.conds.get("positive")
        negative = self.conds.get("negative")
        # Core's cfg=1 shortcut skips the unconditional pass; RAAG always needs it.
        skip_uncond = (not raag_on and math.isclose(self.cfg, 1.0)
                       and not model_options.get("disable_cfg1_optimization", False))
        uncond = None if skip_uncond else negative
        conds = [positive, uncond]
        out = self._calc_cond_batch(conds, x, timestep, model_options)
        cond_pred, uncond_pred = out[0], out[1]

        scale, rho = self._guidance_scale(x, timestep, cond_pred, uncond_pred, uncond is not None, raag_on)
        dropped, deviation = (), None
        if s2_on:
            comfy.model_management.throw_exception_if_processing_interrupted()
            dropped = draw_mask(run.eligible, self.s2.drop_ratio, run.seed, sigma, self.s2.min_dropped)
            sub_pred = blocks.subnetwork_prediction(self.inner_model, self._arch, model_options, dropped, positive,
                                                    uncond, x, timestep)
            if uncond is not None:
                deviation = subnetwork_deviation(cond_pred, uncond_pred, sub_pred)
            model_options = _with_first_post_cfg(model_options, self._s2_correction(cond_pred, sub_pred))

        for fn in model_options.get("sampler_pre_cfg_function", []):
            out = fn({"conds": conds, "conds_out": out, "cond_scale": scale, "timestep": timestep, "input": x,
                      "sigma": timestep, "model": self.inner_model, "model_options": model_options})

        result = comfy.samplers.cfg_function(self.inner_model, out[0], out[1], scale, x, timestep,
                                             model_options=model_options, cond=positive, uncond=uncond)
        self.trace.record(TraceEntry(step=step, sigma=timestep.detach(),
                                     scale=scale.flatten() if torch.is_tensor(scale) else scale,
                                     rho=rho, dropped=dropped, deviation=deviation))
        return result

    def _s2_correction(self, cond_pred, sub_pred):
        """S²'s term -omega (D_sub - D_c), added to the CFG result. (The benchmark's premise test flips
        its sign in a subclass: tools/demo/demo_runs.py.)"""
        return s2_term(cond_pred, sub_pred, self.s2.omega)

    def _guidance_scale(self, x, timestep, cond_pred, uncond_pred, has_uncond: bool, raag_on: bool):
        """(scale, rho): RAAG's per-sample w inside its window, else the fixed cfg. rho is measured
        whenever an unconditional prediction exists, for the trace."""
        if not has_uncond or self.raag is None:
            return self.cfg, None
        anchor = flow_anchor(self.inner_model.model_sampling, x, timestep)
        rho = guidance_ratio(cond_pred, uncond_pred, anchor, self.raag.ratio_mode, self._inpaint_region(x))
        if not raag_on:
            return self.cfg, rho
        w = raag_scale(rho, self.raag.w_max, self.raag.alpha)
        if self.raag.ratio_mode == "batch" or w.shape[0] == 1:
            # one scale serves the batch: a 0-dim tensor, which hooks written for a number accept
            # (core's VideoLinearCFGGuidance puts it into torch.linspace)
            return w[0].to(cond_pred.dtype), rho
        return per_sample_view(w, cond_pred), rho

    def _inpaint_region(self, x):
        """The run's inpainting mask in x's shape (core's own reshaping, once per run), or None."""
        run = self._run
        if run is None or run.mask is None or x.ndim < 4:
            return None
        if run.region is None or run.region.shape[0] != x.shape[0]:
            run.region = comfy.sampler_helpers.prepare_mask(run.mask, x.shape, x.device)
        return run.region

    def _calc_cond_batch(self, conds, x, timestep, model_options):
        if "sampler_calc_cond_batch_function" in model_options:
            args = {"conds": conds, "input": x, "sigma": timestep, "model": self.inner_model,
                    "model_options": model_options}
            return model_options["sampler_calc_cond_batch_function"](args)
        return comfy.samplers.calc_cond_batch(self.inner_model, conds, x, timestep, model_options)


def _with_first_post_cfg(model_options: dict, correction: torch.Tensor) -> dict:
    """A shallow copy of ``model_options`` whose first post-cfg step adds S²'s ``correction`` to the CFG
    result, so the user's post-cfg hooks (CFGZeroStar, SLG...) see the whole guided prediction."""
    options = dict(model_options)
    options["sampler_post_cfg_function"] = [lambda args: args["denoised"] + correction] + list(
        model_options.get("sampler_post_cfg_function", []))
    return options


class RAAGGuider(GuidanceGuider):
    """RAAG alone: w per step from the ratio; plain CFG at ``cfg`` outside RAAG's step window."""

    def __init__(self, model_patcher, raag: RAAGConfig, cfg: float = 1.0):
        super().__init__(model_patcher, cfg=cfg, raag=raag)


class S2Guider(GuidanceGuider):
    """S²-Guidance at a fixed CFG scale ``cfg`` (the paper's lambda)."""

    def __init__(self, model_patcher, s2: S2Config, cfg: float):
        super().__init__(model_patcher, cfg=cfg, s2=s2)


class RAAGS2Guider(GuidanceGuider):
    """RAAG's adaptive lambda per step plus S²'s sub-network term."""

    def __init__(self, model_patcher, raag: RAAGConfig, s2: S2Config, cfg: float = 1.0):
        super().__init__(model_patcher, cfg=cfg, raag=raag, s2=s2)
