"""The MODEL-patch nodes (RAAG / S² / RAAG + S² for KSampler) on core's real KSampler, against the guiders."""

from __future__ import annotations

import comfy.model_management
import pytest
import tiny_models as tm
import torch
from comfy_extras.nodes_apg import APG
from comfy_extras.nodes_cfg import CFGZeroStar
from comfy_extras.nodes_model_advanced import RescaleCFG
from comfy_extras.nodes_slg import SkipLayerGuidanceDiT
from core_nodes import first
from raag_s2_guidance.guiders.model_patch import MARKER
from raag_s2_guidance.nodes.model_patch import RAAGModelPatchNode, RAAGS2ModelPatchNode, S2ModelPatchNode
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


def ksampler(case, model, *, cfg=CFG, steps=STEPS, seed=SEED, sampler_name="euler", scheduler="simple"):
    """The stock KSampler node, called as ComfyUI calls a V1 node."""
    (out,) = comfy_nodes.KSampler().sample(model, seed, steps, cfg, sampler_name, scheduler, case.positive,
                                           case.negative, {"samples": case.latent.clone()}, denoise=1.0)
    return out["samples"]


def ksampler_advanced(case, model, latent, *, start, end, add_noise=True, leftover=False, steps=6, cfg=CFG):
    (out,) = comfy_nodes.KSamplerAdvanced().sample(
        model, "enable" if add_noise else "disable", SEED, steps, cfg, "euler", "simple", case.positive,
        case.negative, {"samples": latent.clone()}, start, end, "enable" if leftover else "disable")
    return out["samples"]


def raag_patch(model, window=(0.0, 1.0), **overrides):
    settings = {**RAAG, **overrides}
    return first(RAAGModelPatchNode, model=model, start_percent=window[0], end_percent=window[1], **settings)


def s2_patch(model, window=(0.0, 1.0), seed=SEED, **overrides):
    settings = {**S2, **overrides}
    return first(S2ModelPatchNode, model=model, start_percent=window[0], end_percent=window[1], seed=seed,
                 **settings)


def raag_s2_patch(model, window=(0.0, 1.0), seed=SEED, raag=None, **s2):
    return first(RAAGS2ModelPatchNode, model=model, start_percent=window[0], end_percent=window[1], seed=seed,
                 **{**RAAG, **(raag or {})}, **{**S2, **s2})


def max_diff(a, b) -> float:
    return float((a - b).abs().max())


def snapshot(value):
    """model_options as comparable structure: containers by content, everything else by identity."""
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [snapshot(v) for v in value]
    return id(value)


# (patch, the guider it must equal) per method; the RAAG window leaves the last steps to plain CFG.
METHODS = {
    "raag": (lambda m: raag_patch(m, window=(0.0, 0.6)),
             lambda case, patcher=None: raag_guider(case, patcher, cfg=CFG, window=(0.0, 0.6), **RAAG)),
    "s2": (lambda m: s2_patch(m), lambda case, patcher=None: s2_guider(case, patcher, cfg=CFG, **S2)),
    "raag_s2": (lambda m: raag_s2_patch(m, window=(0.0, 0.8)),
                lambda case, patcher=None: raag_s2_guider(case, patcher, raag=RAAG, window=(0.0, 0.8), **S2)),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", ARCHS)
def test_ksampler_with_patch_equals_sampler_custom_advanced_with_guider(arch, method):
    case = tm.build(arch)
    patch, guider = METHODS[method]
    ours = ksampler(case, patch(case.patcher))
    reference = tm.sample(case, guider(case), steps=STEPS, seed=SEED, sampler_name="euler", scheduler="simple")
    assert max_diff(ours, reference) <= TOL
    assert max_diff(ours, ksampler(case, case.patcher)) > 1e-3, "the patch had no effect"


def test_sampler_with_calls_read_from_the_schedule_it_computes_also_matches():
    """dpmpp_2s_ancestral evaluates midpoints of its own: masks and windows follow each call's sigma."""
    case = tm.build("sd3")
    ours = ksampler(case, raag_s2_patch(case.patcher, window=(0.0, 0.7)), sampler_name="dpmpp_2s_ancestral")
    reference = tm.sample(case, raag_s2_guider(case, raag=RAAG, window=(0.0, 0.7), **S2), steps=STEPS, seed=SEED,
                          sampler_name="dpmpp_2s_ancestral")
    assert max_diff(ours, reference) <= TOL


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
    assert split_masks == whole_masks
    # core's hand-over between the two KSamplerAdvanced (the latent goes out and back in) rounds at the
    # 1e-6 level by itself; the masks above are the point, and they are identical
    assert max_diff(split, whole) <= 1e-5
    assert tail_masks == whole_masks[2:], "a step range must draw the masks of those steps' sigmas"
    assert torch.isfinite(tail).all()


def test_ksampler_at_cfg_one_still_runs_the_unconditional_pass_and_applies_raag():
    case = tm.build("sd3")
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        ours = ksampler(case, raag_patch(probe.patcher, alpha=0.5), cfg=1.0)
        rows = [c["rows"] for c in probe.calls]
    assert rows == [2] * STEPS, "core's cfg=1 shortcut must be off under the RAAG patch"
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
    with pytest.raises(ValueError, match="twice"):
        raag_patch(raag_patch(case.patcher))
    with pytest.raises(ValueError, match="twice"):
        s2_patch(s2_patch(case.patcher))
    with pytest.raises(ValueError, match="twice"):
        raag_s2_patch(raag_patch(case.patcher))
    with pytest.raises(ValueError, match="twice"):
        s2_patch(raag_s2_patch(case.patcher))


def test_raag_patch_and_s2_patch_stacked_in_either_order_equal_the_combined_patch():
    case = tm.build("sd3")
    combined = ksampler(case, raag_s2_patch(case.patcher))
    assert torch.equal(ksampler(case, s2_patch(raag_patch(case.patcher))), combined)
    assert torch.equal(ksampler(case, raag_patch(s2_patch(case.patcher))), combined)


@pytest.mark.parametrize("make_guider", [raag_guider, s2_guider])
def test_patch_and_the_packs_guider_node_is_an_error(make_guider):
    case = tm.build("sd3")
    for patch in (raag_patch, s2_patch):
        guider = make_guider(case, patcher=patch(case.patcher))
        with pytest.raises(ValueError, match="run twice"):
            tm.sample(case, guider, steps=STEPS, seed=SEED)


def test_patch_with_cores_cfg_guider_in_sampler_custom_advanced_equals_ksampler():
    case = tm.build("sd3")
    model = raag_s2_patch(case.patcher)
    assert max_diff(tm.sample(case, cfg_guider(case, CFG, patcher=model), steps=STEPS, seed=SEED),
                    ksampler(case, model)) <= TOL


def _cfg_zero_star(model):
    return first(CFGZeroStar, model=model)


def _rescale_cfg(model):
    return first(RescaleCFG, model=model, multiplier=0.7)


def _slg(model):
    return first(SkipLayerGuidanceDiT, model=model, double_layers="1", single_layers="", scale=2.0,
                 start_percent=0.0, end_percent=1.0, rescaling_scale=0.0)


@pytest.mark.parametrize("other", [_cfg_zero_star, _rescale_cfg, _slg], ids=["CFGZeroStar", "RescaleCFG", "SLG"])
@pytest.mark.parametrize("method", list(METHODS))
def test_core_patches_compose_in_either_order(method, other):
    """Our guidance is the CFG combination plus the first post-cfg step, wherever the patch sits in the
    chain: RescaleCFG's cfg function gets RAAG's w; CFGZeroStar / SLG post-process the guided result.
    Equal to the guider on the same patched model, except CFGZeroStar with RAAG (see below)."""
    case = tm.build("sd3")
    patch, guider = METHODS[method]
    after = ksampler(case, other(patch(case.patcher)))
    before = ksampler(case, patch(other(case.patcher)))
    assert max_diff(after, before) <= TOL
    assert max_diff(after, ksampler(case, patch(case.patcher))) > 1e-4, f"{other.__name__} had no effect"
    if not (other is _cfg_zero_star and "raag" in method):
        reference = tm.sample(case, guider(case, other(case.patcher)), steps=STEPS, seed=SEED)
        assert max_diff(after, reference) <= TOL


def test_post_cfg_patches_see_the_samplers_cfg_as_cond_scale_under_raag():
    """Core hands every post-cfg hook its own cond_scale, the sampler's cfg: CFGZeroStar after the RAAG
    patch corrects with that cfg, where the RAAG guider hands it RAAG's w (documented in the README)."""
    case = tm.build("sd3")
    recorder = HookRecorder(case.patcher)
    ksampler(case, raag_patch(recorder.patcher), cfg=3.0)
    assert [r["cond_scale"] for r in recorder.post] == [3.0] * STEPS
    assert [r["cond_scale"] for r in recorder.pre] == [3.0] * STEPS


def _apg(model):
    return first(APG, model=model, eta=0.5, norm_threshold=0.0, momentum=0.0)


def test_apg_with_s2_patch_equals_the_s2_guider_and_with_raag_runs():
    """APG is a pre-cfg step: S²'s term uses the predictions before APG changed them (as the guider);
    with RAAG, APG receives the sampler's cfg as cond_scale (core passes it), not RAAG's w."""
    case = tm.build("sd3")
    reference = tm.sample(case, s2_guider(case, _apg(case.patcher), cfg=CFG, **S2), steps=STEPS, seed=SEED)
    assert max_diff(ksampler(case, _apg(s2_patch(case.patcher))), reference) <= TOL
    assert max_diff(ksampler(case, s2_patch(_apg(case.patcher))), reference) <= TOL
    raag_apg = ksampler(case, _apg(raag_patch(case.patcher)))
    assert torch.isfinite(raag_apg).all()
    assert max_diff(raag_apg, ksampler(case, raag_patch(case.patcher))) > 1e-4
