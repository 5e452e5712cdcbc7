"""The MODEL-patch nodes (RAAG / S² / RAAG + S² for KSampler) on core's real KSampler, against the guider
nodes: one engine behind both faces, so KSampler + patch equals SamplerCustomAdvanced + guider."""

from __future__ import annotations

import comfy.model_management
import comfy.samplers
import pytest
import tiny_models as tm
import torch
from comfy_extras.nodes_apg import APG
from comfy_extras.nodes_cfg import CFGZeroStar
from comfy_extras.nodes_custom_sampler import Guider_Basic, Guider_DualCFG
from comfy_extras.nodes_model_advanced import RescaleCFG
from comfy_extras.nodes_slg import SkipLayerGuidanceDiT
from core_nodes import first
from raag_s2_guidance.guiders import CompositionError, guidance_of
from raag_s2_guidance.guiders.engine import MARKER
from raag_s2_guidance.guiders.steps import PATTERNS
from raag_s2_guidance.nodes.guidance import RAAGModelPatchNode, RAAGS2ModelPatchNode, S2ModelPatchNode
from support import (
    HookRecorder,
    ModelCalls,
    cfg_guider,
    fail_inside,
    forward_overrides,
    raag_guider,
    raag_s2_guider,
    s2_guider,
)

import nodes as comfy_nodes  # ComfyUI's nodes.py: KSampler, KSamplerAdvanced (V1 nodes)

ARCHS = [a for a in ("sd3", "flux", "wan21") if a in tm.ARCHS]
STEPS = 5
SEED = 7
CFG = 4.0
TOL = 1e-6
RAAG = dict(w_max=8.0, alpha=12.0, ratio_mode="per_sample")
S2 = dict(omega=0.25, drop_ratio=0.4)


def ksampler(case, model, *, cfg=CFG, steps=STEPS, seed=SEED, sampler_name="euler", scheduler="simple",
             latent=None, denoise=1.0):
    """The stock KSampler node, called as ComfyUI calls a V1 node."""
    latent = {"samples": case.latent.clone()} if latent is None else latent
    (out,) = comfy_nodes.KSampler().sample(model, seed, steps, cfg, sampler_name, scheduler, case.positive,
                                           case.negative, latent, denoise=denoise)
    return out["samples"]


def ksampler_advanced(case, model, latent, *, start, end, add_noise=True, leftover=False, steps=6, cfg=CFG):
    (out,) = comfy_nodes.KSamplerAdvanced().sample(
        model, "enable" if add_noise else "disable", SEED, steps, cfg, "euler", "simple", case.positive,
        case.negative, {"samples": latent.clone()}, start, end, "enable" if leftover else "disable")
    return out["samples"]


def raag_patch(model, window=(0.0, 1.0), **overrides):
    settings = {**RAAG, **overrides}
    return first(RAAGModelPatchNode, model=model, start_percent=window[0], end_percent=window[1], **settings)


def s2_patch(model, window=(0.0, 1.0), **overrides):
    settings = {**S2, **overrides}
    return first(S2ModelPatchNode, model=model, start_percent=window[0], end_percent=window[1], **settings)


def raag_s2_patch(model, window=(0.0, 1.0), raag=None, **s2):
    return first(RAAGS2ModelPatchNode, model=model, start_percent=window[0], end_percent=window[1],
                 **{**RAAG, **(raag or {})}, **{**S2, **s2})


def max_diff(a, b) -> float:
    return float((a - b).abs().max())


def masks(model_or_guider) -> list[tuple]:
    """The S² masks of the last run, per model call, from the trace."""
    patcher = getattr(model_or_guider, "model_patcher", model_or_guider)
    return [tuple(map(tuple, r["dropped"])) for r in guidance_of(patcher).trace.rows()]


def snapshot(value):
    """model_options as comparable structure: containers by content, everything else by identity."""
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [snapshot(v) for v in value]
    return id(value)

# (patch, the guider it must equal) per method; the RAAG windows leave the last steps to plain CFG.
METHODS = {
    "raag_per_sample": (lambda m: raag_patch(m, window=(0.0, 0.6)),
                        lambda case, patcher=None: raag_guider(case, patcher, cfg=CFG, window=(0.0, 0.6), **RAAG)),
    "raag_batch": (lambda m: raag_patch(m, window=(0.0, 0.6), ratio_mode="batch"),
                   lambda case, patcher=None: raag_guider(case, patcher, cfg=CFG, window=(0.0, 0.6),
                                                          **{**RAAG, "ratio_mode": "batch"})),
    # MAMBO-G's rescale (the authors' Qwen-Image setting uses 1.0)
    "raag_rescale": (lambda m: raag_patch(m, window=(0.0, 0.6), rescale=0.7),
                     lambda case, patcher=None: raag_guider(case, patcher, cfg=CFG, window=(0.0, 0.6),
                                                            **{**RAAG, "rescale": 0.7})),
    "s2": (lambda m: s2_patch(m), lambda case, patcher=None: s2_guider(case, patcher, cfg=CFG, **S2)),
    "raag_s2": (lambda m: raag_s2_patch(m, window=(0.0, 0.8)),
                lambda case, patcher=None: raag_s2_guider(case, patcher, raag=RAAG, window=(0.0, 0.8), **S2)),
}

# Every sampler whose calls the engine counts without a host read, plus three that evaluate sigmas of their
# own (adaptive step size, SDE midpoints, a 3-stage method): read from each call.
FIXED = [name for name in comfy.samplers.KSAMPLER_NAMES if f"sample_{name}" in PATTERNS]
ADAPTIVE = [name for name in ("dpm_adaptive", "dpmpp_sde", "seeds_3") if name in comfy.samplers.KSAMPLER_NAMES]


def inpainting(case, batch: int) -> dict:
    """A LATENT with content and a noise_mask (what SetLatentNoiseMask / VAEEncodeForInpaint make): the
    left half is repainted, the right half kept."""
    shape = (batch, *case.latent.shape[1:])
    content = torch.randn(shape, generator=torch.Generator().manual_seed(11)) * 0.5
    mask = torch.zeros((1, 1, 8 * shape[-2], 8 * shape[-1]))
    mask[..., : mask.shape[-1] // 2] = 1.0
    return {"samples": content, "noise_mask": mask}


def both_faces(case, method, *, batch=1, inpaint=False, sampler_name="euler", steps=STEPS):
    """(KSampler + patch, SamplerCustomAdvanced + guider, patched model, guider) on the same inputs."""
    patch, guider_of = METHODS[method]
    latent = inpainting(case, batch) if inpaint else {"samples": tm.empty_latent(case.arch, batch)}
    denoise = 0.8 if inpaint else 1.0
    model, guider = patch(case.patcher), guider_of(case)
    ours = ksampler(case, model, latent=dict(latent), denoise=denoise, sampler_name=sampler_name, steps=steps)
    reference = tm.sample(case, guider, latent=dict(latent), denoise=denoise, steps=steps, seed=SEED,
                          sampler_name=sampler_name)
    return ours, reference, model, guider


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("inpaint", [False, True], ids=["no_mask", "noise_mask"])
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", ARCHS)
def test_ksampler_with_patch_equals_sampler_custom_advanced_with_guider(arch, method, inpaint, batch):
    """The equivalence matrix over architectures, methods, inpainting and batch, on a one-call sampler and
    on heun's two-call pattern; the same S² masks at every call."""
    case = tm.build(arch)
    for sampler_name in ("euler", "heun"):
        ours, reference, model, guider = both_faces(case, method, batch=batch, inpaint=inpaint,
                                                    sampler_name=sampler_name)
        assert max_diff(ours, reference) <= TOL, sampler_name
        assert masks(model) == masks(guider)
        if "s2" in method:
            assert any(masks(model)), "S² drew no mask"
    latent = inpainting(case, batch) if inpaint else {"samples": tm.empty_latent(arch, batch)}
    plain = ksampler(case, case.patcher, latent=latent, denoise=0.8 if inpaint else 1.0, sampler_name="heun")
    assert max_diff(ours, plain) > 1e-4, "the patch had no effect"


@pytest.mark.parametrize("method", ["raag_per_sample", "raag_batch", "s2", "raag_s2"])
@pytest.mark.parametrize("sampler_name", FIXED + ADAPTIVE)
def test_every_counted_sampler_and_three_adaptive_ones_give_the_guiders_picture(sampler_name, method):
    """Inpainting at batch 3, every sampler the engine counts and three that it reads call by call."""
    case = tm.build("sd3")
    ours, reference, model, guider = both_faces(case, method, batch=3, inpaint=True, sampler_name=sampler_name,
                                                steps=4)
    assert max_diff(ours, reference) <= TOL
    assert masks(model) == masks(guider)


def test_inpainting_measures_rho_on_the_repainted_region_in_both_faces():
    """The issue that started the one engine: with a noise_mask, the patch measured rho on the whole latent."""
    case = tm.build("sd3")
    ours, reference, model, guider = both_faces(case, "raag_per_sample", inpaint=True)
    assert max_diff(ours, reference) <= TOL
    whole = both_faces(case, "raag_per_sample", inpaint=False)[0]
    masked_rho = [r["rho"] for r in guidance_of(model).trace.rows()]
    assert masked_rho == [r["rho"] for r in guider.trace.rows()]
    assert max_diff(whole, ours) > 1e-3


def test_ksampler_advanced_step_range_equals_split_sigmas_in_sampler_custom_advanced():
    case = tm.build("sd3")
    for method in ("raag_s2", "raag_batch"):
        patch, guider_of = METHODS[method]
        sigmas = torch.tensor(tm.schedule(case.patcher, steps=6))
        ours = ksampler_advanced(case, patch(case.patcher), case.latent, start=2, end=5, leftover=True)
        reference = tm.sample(case, guider_of(case), sigmas=sigmas[2:6], seed=SEED)
        assert max_diff(ours, reference) <= TOL, method


def test_sampler_with_calls_read_from_the_schedule_it_computes_also_matches():
    """dpmpp_2s_ancestral evaluates midpoints of its own: masks and windows follow each call's sigma."""
    case = tm.build("sd3")
    ours = ksampler(case, raag_s2_patch(case.patcher, window=(0.0, 0.7)), sampler_name="dpmpp_2s_ancestral")
    reference = tm.sample(case, raag_s2_guider(case, raag=RAAG, window=(0.0, 0.7), **S2), steps=STEPS, seed=SEED,
                          sampler_name="dpmpp_2s_ancestral")
    assert max_diff(ours, reference) <= TOL


# ----- one seed: KSampler's -----

def test_the_ksampler_seed_seeds_the_s2_masks():
    case = tm.build("sd3")
    model = s2_patch(case.patcher)
    first_run = ksampler(case, model, seed=21)
    first_masks = masks(model)
    assert torch.equal(ksampler(case, model, seed=21), first_run), "same KSampler seed, same bits"
    assert masks(model) == first_masks
    ksampler(case, model, seed=22)
    assert masks(model) != first_masks, "another KSampler seed must draw other masks"
    guider = s2_guider(case, cfg=CFG, **S2)
    tm.sample(case, guider, steps=STEPS, seed=21)
    assert masks(guider) == first_masks, "the guider with noise seed 21 draws the same masks"


def test_an_old_seed_input_is_ignored_by_the_api():
    """Saved API prompts of the S² patches may still carry ``seed``: ComfyUI drops inputs a node no longer
    declares, and the node has none (the sampler's seed is the only one)."""
    for node in (S2ModelPatchNode, RAAGS2ModelPatchNode):
        assert "seed" not in [item.id for item in node.define_schema().inputs]


def _subnetwork_masks(calls) -> list[tuple[float, tuple]]:
    return [(c["sigma"], tuple(tuple(d) for d in c["dropped"])) for c in calls if c["dropped"] is not None]


def test_ksampler_advanced_step_range_and_two_pass_split_keep_s2_masks():
    case = tm.build("sd3")
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        model = s2_patch(probe.patcher)
        whole = ksampler_advanced(case, model, case.latent, start=0, end=6)
        whole_masks = _subnetwork_masks(probe.calls)
        probe.calls.clear()
        half = ksampler_advanced(case, model, case.latent, start=0, end=3, leftover=True)
        split = ksampler_advanced(case, model, half, start=3, end=6, add_noise=False)
        split_masks = _subnetwork_masks(probe.calls)
        probe.calls.clear()
        tail = ksampler_advanced(case, model, case.latent, start=2, end=6)
        tail_masks = _subnetwork_masks(probe.calls)
    assert len(whole_masks) == 6 and len({m for _, m in whole_masks}) > 1
    # both KSamplerAdvanced carry the same seed: the second half (add_noise disabled) still draws from it
    assert split_masks == whole_masks
    # core's hand-over between the two KSamplerAdvanced (the latent goes out and back in) rounds at the
    # 1e-6 level by itself; the masks above are the point, and they are identical
    assert max_diff(split, whole) <= 1e-5
    assert tail_masks == whole_masks[2:], "a step range must draw the masks of those steps' sigmas"
    assert torch.isfinite(tail).all()


# ----- cfg = 1, effect off, reuse, failures -----

def test_ksampler_at_cfg_one_still_runs_the_unconditional_pass_and_applies_raag():
    case = tm.build("sd3")
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        ours = ksampler(case, raag_patch(probe.patcher, alpha=0.5), cfg=1.0)
        rows = [c["rows"] for c in probe.calls]
    assert rows == [2] * STEPS, "core's cfg=1 shortcut must be off under RAAG"
    reference = tm.sample(case, raag_guider(case, cfg=1.0, **{**RAAG, "alpha": 0.5}), steps=STEPS, seed=SEED)
    assert max_diff(ours, reference) <= TOL
    assert max_diff(ours, ksampler(case, case.patcher, cfg=1.0)) > 1e-3


def test_s2_patch_alone_keeps_cores_cfg_one_shortcut():
    case = tm.build("sd3")
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        ksampler(case, s2_patch(probe.patcher), cfg=1.0)
        assert [(c["rows"], c["dropped"] is not None) for c in probe.calls] == [(1, False), (1, True)] * STEPS


@pytest.mark.parametrize("arch", ARCHS)
def test_effect_off_equals_the_unpatched_model_bit_for_bit(arch):
    case = tm.build(arch)
    plain = ksampler(case, case.patcher)
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        s2_off = ksampler(case, s2_patch(probe.patcher, omega=0.0))
        assert len(probe.calls) == STEPS, "omega = 0 must not run a sub-network pass"
    assert torch.equal(s2_off, plain)
    # RAAG: alpha = 0 gives w = w_max at every step; with w_max = the sampler's cfg that is plain CFG.
    assert torch.equal(ksampler(case, raag_patch(case.patcher, alpha=0.0, w_max=CFG)), plain)
    assert torch.equal(ksampler(case, raag_s2_patch(case.patcher, raag=dict(alpha=0.0, w_max=CFG), omega=0.0)),
                       plain)


def test_patched_model_reused_three_times_same_bits_and_source_unchanged():
    case = tm.build("flux")
    before = snapshot(case.patcher.model_options)
    model = raag_s2_patch(case.patcher)
    runs = [ksampler(case, model) for _ in range(3)]
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    assert snapshot(case.patcher.model_options) == before
    assert MARKER not in case.patcher.model_options.get("transformer_options", {})


@pytest.mark.parametrize("failure", ["interrupt", "error"])
def test_failure_inside_the_s2_pass_leaves_the_models_unchanged(failure):
    case = tm.build("sd3")
    reference = ksampler(case, s2_patch(case.patcher))
    marked, handle = fail_inside(case.patcher, "subnetwork", failure)
    source, marked_before = snapshot(case.patcher.model_options), snapshot(marked.model_options)
    model = s2_patch(marked)
    patched_before = snapshot(model.model_options)
    expected = comfy.model_management.InterruptProcessingException if failure == "interrupt" else RuntimeError
    try:
        with pytest.raises(expected):
            ksampler(case, model)
    finally:
        handle.remove()
    assert snapshot(case.patcher.model_options) == source
    assert snapshot(marked.model_options) == marked_before
    assert snapshot(model.model_options) == patched_before
    assert forward_overrides(case.patcher) == []
    assert torch.equal(ksampler(case, model), reference), "the next run must be unaffected"


# ----- composition -----

def test_the_same_method_twice_is_an_error():
    case = tm.build("sd3")
    for make in (lambda: raag_patch(raag_patch(case.patcher)), lambda: s2_patch(s2_patch(case.patcher)),
                 lambda: raag_s2_patch(raag_patch(case.patcher)), lambda: s2_patch(raag_s2_patch(case.patcher)),
                 lambda: raag_guider(case, raag_patch(case.patcher))):
        with pytest.raises(CompositionError, match="twice"):
            make()


def test_methods_stack_in_either_order_and_across_faces():
    """RAAG patch + S² patch (either order) is the RAAG + S² patch; a guider node on a MODEL patched with the
    other method is the RAAG + S² guider."""
    case = tm.build("sd3")
    combined = ksampler(case, raag_s2_patch(case.patcher))
    assert torch.equal(ksampler(case, s2_patch(raag_patch(case.patcher))), combined)
    assert torch.equal(ksampler(case, raag_patch(s2_patch(case.patcher))), combined)
    reference = tm.sample(case, raag_s2_guider(case, raag=RAAG, **S2), steps=STEPS, seed=SEED)
    stacked = tm.sample(case, s2_guider(case, raag_patch(case.patcher), cfg=CFG, **S2), steps=STEPS, seed=SEED)
    assert torch.equal(stacked, reference)


def test_patch_with_cores_cfg_guider_in_sampler_custom_advanced_equals_ksampler():
    case = tm.build("sd3")
    model = raag_s2_patch(case.patcher)
    assert max_diff(tm.sample(case, cfg_guider(case, CFG, patcher=model), steps=STEPS, seed=SEED),
                    ksampler(case, model)) <= TOL


def test_a_guider_with_its_own_combination_is_refused_clearly():
    case = tm.build("sd3")
    dual = Guider_DualCFG(raag_patch(case.patcher))
    dual.set_conds(case.positive, case.negative, case.negative)
    dual.set_cfg(CFG, 2.0)
    with pytest.raises(CompositionError, match="Guider_DualCFG, which combines its predictions its own way"):
        tm.sample(case, dual, steps=STEPS, seed=SEED)


def test_basic_guider_without_a_negative():
    """BasicGuider has no negative: RAAG says it needs one; S² (CFG = the conditional prediction) runs."""
    case = tm.build("sd3")
    for patch, ok in ((raag_patch, False), (s2_patch, True)):
        basic = Guider_Basic(patch(case.patcher))
        basic.set_conds(case.positive)
        if ok:
            assert max_diff(tm.sample(case, basic, steps=STEPS, seed=SEED), ksampler(case, case.patcher, cfg=1.0)) > 1e-4
        else:
            with pytest.raises(CompositionError, match="RAAG needs a negative"):
                tm.sample(case, basic, steps=STEPS, seed=SEED)


def _cfg_zero_star(model):
    return first(CFGZeroStar, model=model)


def _rescale_cfg(model):
    return first(RescaleCFG, model=model, multiplier=0.7)


def _slg(model):
    return first(SkipLayerGuidanceDiT, model=model, double_layers="1", single_layers="", scale=2.0,
                 start_percent=0.0, end_percent=1.0, rescaling_scale=0.0)


def _apg(model):
    return first(APG, model=model, eta=0.5, norm_threshold=0.0, momentum=0.0)


@pytest.mark.parametrize("other", [_cfg_zero_star, _rescale_cfg, _slg, _apg],
                         ids=["CFGZeroStar", "RescaleCFG", "SLG", "APG"])
@pytest.mark.parametrize("method", ["raag_per_sample", "s2", "raag_s2"])
def test_core_patches_compose_in_either_order_as_with_the_guider(method, other):
    """Core's pre-cfg (APG), cfg (RescaleCFG) and post-cfg (CFGZeroStar, SLG) steps see RAAG's w as their
    cond_scale and S²'s term before them, wherever the patch sits in the chain: the guider's result."""
    case = tm.build("sd3")
    patch, guider = METHODS[method]
    after = ksampler(case, other(patch(case.patcher)))
    before = ksampler(case, patch(other(case.patcher)))
    assert max_diff(after, before) <= TOL
    assert max_diff(after, ksampler(case, patch(case.patcher))) > 1e-4, f"{other.__name__} had no effect"
    reference = tm.sample(case, guider(case, other(case.patcher)), steps=STEPS, seed=SEED)
    assert max_diff(after, reference) <= TOL


def test_pre_and_post_cfg_hooks_see_raags_w_as_cond_scale():
    case = tm.build("sd3")
    recorder = HookRecorder(case.patcher)
    ksampler(case, raag_patch(recorder.patcher), cfg=3.0)
    scales = [float(r["cond_scale"]) for r in recorder.post]
    assert len(scales) == STEPS and all(s != 3.0 for s in scales[:3])  # inside RAAG's window: w, not the cfg
    assert [float(r["cond_scale"]) for r in recorder.pre] == scales
