"""The S² and RAAG + S² guiders on real ComfyUI sampling (tiny models of every architecture)."""

from __future__ import annotations

import comfy.patcher_extension
import comfy.samplers
import pytest
import tiny_models as tm
import torch
from comfy_extras.nodes_cfg import CFGZeroStar
from comfy_extras.nodes_slg import SkipLayerGuidanceDiT
from core_nodes import first
from raag_s2_guidance.guiders import S2Config, UnsupportedModelError, blocks, engine
from raag_s2_guidance.guiders.blocks import PASS_MARKER, IgnoredDropError
from raag_s2_guidance.guiders.raag import raag_scale
from raag_s2_guidance.nodes.guidance import S2GuiderNode
from support import (
    HookRecorder,
    ModelCalls,
    block_modules,
    cfg_guider,
    fail_inside,
    forward_overrides,
    raag_guider,
    raag_s2_guider,
    s2_guider,
    sample_expecting_failure,
)

STEPS = 4


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_subnetwork_pass_really_drops_the_chosen_blocks(arch):
    case = tm.build(arch)
    with ModelCalls(case.patcher) as probe:
        guider = s2_guider(case, patcher=probe.patcher, drop_ratio=0.4)
        out = tm.sample(case, guider, steps=STEPS)
        calls = probe.calls
    order = list(block_modules(case.patcher))  # the loop's order
    every_block = set(order)
    # per step: the batched cond + uncond pass of CFGGuider, then one conditional sub-network pass
    assert [(c["rows"], c["dropped"] is not None) for c in calls] == [(2, False), (1, True)] * STEPS
    rows = guider.trace.rows()
    for full, sub, row in zip(calls[0::2], calls[1::2], rows):
        dropped = tuple(tuple(d) for d in row["dropped"])
        assert full["ran"] == every_block
        assert tuple(sub["dropped"]) == dropped and len(dropped) >= 1
        # a pass that reused the full pass's prefix (test_prefix_reuse.py) starts at the first dropped block
        skipped = set(order[:order.index(dropped[0])]) if row["reused"] else set()
        assert sub["ran"] == every_block - set(dropped) - skipped, "a dropped block ran, or a kept block did not"
        assert not any(i == 0 for _, i in dropped), "the first block of a stack must never be dropped"
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, tm.sample(case, cfg_guider(case, 5.0), steps=STEPS))
    assert forward_overrides(case.patcher) == []


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_omega_zero_is_cfg_guider_bit_for_bit_without_an_extra_pass(arch):
    case = tm.build(arch)
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        ours = tm.sample(case, s2_guider(case, patcher=probe.patcher, omega=0.0), steps=STEPS)
        assert all(c["dropped"] is None for c in probe.calls) and len(probe.calls) == STEPS
    assert torch.equal(ours, tm.sample(case, cfg_guider(case, 5.0), steps=STEPS))


def test_no_dropped_block_gives_the_full_model(monkeypatch):
    """The sub-network pass with an empty mask (which S² never draws: it drops at least one block) is the
    full model's conditional pass: the pass itself adds nothing but the dropped blocks."""
    monkeypatch.setattr(engine, "draw_mask", lambda *args: ())
    case = tm.build("flux")
    with ModelCalls(case.patcher) as probe:
        guider = s2_guider(case, patcher=probe.patcher, drop_ratio=0.01)
        tm.sample(case, guider, steps=STEPS)
    subs = [c for c in probe.calls if c["dropped"] is not None]
    fulls = [c for c in probe.calls if c["dropped"] is None]
    assert len(subs) == STEPS and all(c["dropped"] == () for c in subs)
    for full, sub in zip(fulls, subs):
        cond = full["output"][full["cond_or_uncond"].index(0)]
        assert torch.allclose(sub["output"][0], cond, atol=1e-5)  # D_sub == D_c (batched vs single pass)
    assert all(r["deviation"][0] < 1e-4 for r in guider.trace.rows())


@pytest.mark.parametrize("arch", ["sd3", "lumina2"])  # dit patch, forward override
def test_output_is_eq4_from_the_three_recorded_passes(arch):
    case = tm.build(arch)
    rec = HookRecorder(case.patcher)
    with ModelCalls(rec.patcher, watch_blocks=False) as probe:
        tm.sample(case, s2_guider(case, patcher=probe.patcher, cfg=4.0, omega=0.5), steps=STEPS)
    subs = [c["output"] for c in probe.calls if c["dropped"] is not None]
    assert len(subs) == len(rec.pre) == len(rec.post) == STEPS
    for pre, post, sub in zip(rec.pre, rec.post, subs):
        c, u = pre["cond"], pre["uncond"]
        expected = u + 4.0 * (c - u) - 0.5 * (sub - c)
        assert torch.allclose(post["denoised"], expected, atol=1e-6, rtol=1e-6)


def test_raag_s2_uses_the_raag_scale_as_lambda():
    case = tm.build("sd3")
    rec = HookRecorder(case.patcher)
    with ModelCalls(rec.patcher, watch_blocks=False) as probe:
        guider = raag_s2_guider(case, patcher=probe.patcher, raag={"alpha": 2.0}, omega=0.3)
        tm.sample(case, guider, steps=STEPS)
    subs = [c["output"] for c in probe.calls if c["dropped"] is not None]
    rows = guider.trace.rows()
    for pre, post, sub, row in zip(rec.pre, rec.post, subs, rows):
        c, u, x = pre["cond"], pre["uncond"], pre["x"]
        rho = torch.linalg.vector_norm(c - u) / torch.linalg.vector_norm(x - u)
        w = raag_scale(rho.view(1), 18.0, 2.0)
        assert row["w"][0] == pytest.approx(w.item(), rel=1e-5)
        expected = u + w.item() * (c - u) - 0.3 * (sub - c)
        assert torch.allclose(post["denoised"], expected, atol=1e-5, rtol=1e-5)
    assert len({round(r["w"][0], 4) for r in rows}) > 1  # lambda really changes per step


def test_window_limits_the_extra_pass_to_its_steps():
    case = tm.build("wan21")
    steps, window = 10, (0.3, 0.7)
    ms = case.patcher.get_model_object("model_sampling")
    high, low = ms.percent_to_sigma(window[0]), ms.percent_to_sigma(window[1])
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        guider = s2_guider(case, patcher=probe.patcher, window=window)
        tm.sample(case, guider, steps=steps)
    schedule = tm.schedule(case.patcher, steps=steps)
    # a step on an edge is inside (a relative 1e-5 allows for float32 rounding: guiders/steps.py)
    expected = [high * (1 + 1e-5) >= s >= low * (1 - 1e-5) for s in schedule[:steps]]
    assert 0 < sum(expected) < steps
    per_step = []
    for call in probe.calls:
        if call["dropped"] is None:
            per_step.append([call["rows"]])
        else:
            per_step[-1].append(call["rows"])
    # inside: CFGGuider's cond + uncond pass plus one conditional pass; outside: exactly CFGGuider's
    assert per_step == [[2, 1] if inside else [2] for inside in expected]


def test_same_seed_same_image_different_seed_different_masks():
    case = tm.build("flux")

    def run(seed):
        guider = s2_guider(case, drop_ratio=0.3)
        return tm.sample(case, guider, steps=8, seed=seed), [tuple(map(tuple, r["dropped"])) for r in
                                                              guider.trace.rows()]

    (a, masks_a), (b, masks_b), (_, masks_c) = run(3), run(3), run(4)
    assert torch.equal(a, b) and masks_a == masks_b
    assert masks_a != masks_c
    assert len(set(masks_a)) > 1  # a fresh mask each step


@pytest.mark.parametrize("arch", ["sd3", "lumina2", "sd15"])
@pytest.mark.parametrize("failure", ["exception", "interrupt"])
def test_no_leftovers_after_a_failure_inside_the_extra_pass(arch, failure):
    """The failure is raised from inside the model (a block that always runs), while S²'s blocks are
    dropped, so the restore code really has something to restore."""
    case = tm.build(arch)
    options_before = repr(case.patcher.model_options)
    seen: list = []
    marked, handle = fail_inside(case.patcher, "subnetwork", failure, seen)
    guider = s2_guider(case, patcher=marked)
    sample_expecting_failure(case, guider, failure, handle, STEPS)
    if arch != "sd3":  # forward overrides were in place when it failed (sd3 uses ComfyUI's dit patches)
        assert seen
    assert forward_overrides(case.patcher) == []
    assert repr(case.patcher.model_options) == options_before
    # the same guider object's next run equals a fresh guider's run
    again = tm.sample(case, guider, steps=STEPS)
    assert torch.equal(again, tm.sample(case, s2_guider(case), steps=STEPS))


def test_patcher_options_unchanged_after_a_normal_run():
    case = tm.build("hidream")
    before = repr(case.patcher.model_options)
    tm.sample(case, s2_guider(case), steps=STEPS)
    assert repr(case.patcher.model_options) == before and forward_overrides(case.patcher) == []


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "euler_cfg_pp"])
def test_samplers(sampler):
    case = tm.build("sd3")
    guider = s2_guider(case)
    out = tm.sample(case, guider, sampler_name=sampler, steps=6)
    assert torch.isfinite(out).all()
    assert all(r["dropped"] for r in guider.trace.rows())


def test_with_cfg_zero_star_and_skip_layer_guidance_on_the_model():
    case = tm.build("sd3")
    patched = first(CFGZeroStar, model=case.patcher)
    patched = first(SkipLayerGuidanceDiT, model=patched, scale=3.0, start_percent=0.0, end_percent=1.0,
                                           double_layers="1", single_layers="", rescaling_scale=0.0)
    with ModelCalls(patched, watch_blocks=False) as probe:
        out = tm.sample(case, s2_guider(case, patcher=probe.patcher), steps=STEPS)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, tm.sample(case, s2_guider(case), steps=STEPS))
    # per step: cond + uncond, S²'s sub-network pass, then SLG's own conditional pass (a post-cfg hook)
    assert [(c["rows"], c["dropped"] is not None) for c in probe.calls] == [(2, False), (1, True), (1, False)] * STEPS


def test_unsupported_model_gets_a_clear_error_and_raag_still_works():
    case = tm.build(tm.UNSUPPORTED_ARCH)
    with pytest.raises(UnsupportedModelError) as err:
        s2_guider(case)
    message = str(err.value)
    assert "comfy.ldm.cascade.stage_c.StageC" in message
    # exactly the rows the running ComfyUI has, none it lacks
    assert f"Supported architectures: {blocks.supported_labels()}. RAAG" in message
    assert [a.label for a in blocks.ARCHITECTURES] == [a.label for a in blocks.TABLE if a.resolved is not None]
    assert all(a.label not in message for a in blocks.TABLE if a.resolved is None)
    for label in ("SD3", "Flux", "Wan", "Qwen-Image", "HunyuanVideo", "LTXV", "Lumina", "HiDream", "Cosmos", "UNet",
                  "AuraFlow", "PixArt"):
        assert label in message
    assert torch.isfinite(tm.sample(case, raag_guider(case), steps=STEPS)).all()


@pytest.mark.parametrize("kwargs,message", [
    ({"omega": -0.1}, "omega must be in [0, 10], got -0.1"),
    ({"drop_ratio": 0.0}, "drop_ratio must be in [0.01, 0.99], got 0"),
    ({"drop_ratio": 0.995}, "drop_ratio must be in [0.01, 0.99], got 0.995"),
])
def test_bad_settings_name_the_input_and_range(kwargs, message):
    with pytest.raises(ValueError) as err:
        S2Config(**kwargs)
    assert message in str(err.value)


def test_empty_window_is_rejected_by_the_node():
    assert "would be empty" in S2GuiderNode.validate_inputs(cfg=5.0, omega=0.25, drop_ratio=0.1, start_percent=0.5,
                                                           end_percent=0.5)
    case = tm.build("sd3")
    with pytest.raises(ValueError, match="would be empty"):
        S2GuiderNode.execute(model=case.patcher, positive=case.positive, negative=case.negative, cfg=5.0,
                             omega=0.25, drop_ratio=0.1, start_percent=0.4, end_percent=0.4)


def _ignoring_dit_patches(patcher):
    """A clone whose model runs S²'s sub-network pass without the dit replace patches, as a block loop
    that never reads ``patches_replace`` would (the case of Wan's autoregressive sampler)."""
    def strip(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        if transformer_options.get(PASS_MARKER) is not None:
            transformer_options = {k: v for k, v in transformer_options.items() if k != "patches_replace"}
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

    clone = patcher.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test-strip", strip)
    return clone


def test_a_model_that_ignores_the_drop_mechanism_stops_s2_with_a_clear_error():
    case = tm.build("wan21")
    guider = s2_guider(case, patcher=_ignoring_dit_patches(case.patcher))
    with pytest.raises(IgnoredDropError) as err:
        tm.sample(case, guider, steps=STEPS)
    message = str(err.value)
    assert "comfy.ldm.wan.model.WanModel" in message and "ignored the replacement of double_block" in message
    assert "extra pass for nothing" in message
    # the same guider on the plain model runs (nothing was left behind)
    assert torch.isfinite(tm.sample(case, s2_guider(case), steps=STEPS)).all()


def test_causal_wan_drops_blocks_with_ordinary_samplers_and_stops_under_its_ar_sampler():
    arch = "wan21_causal_ar"
    if arch not in tm.ARCHS:
        pytest.skip("this ComfyUI has no causal Wan (comfy.ldm.wan.ar_model, newer releases)")
    case = tm.build(arch)
    with ModelCalls(case.patcher) as probe:
        guider = s2_guider(case, patcher=probe.patcher, drop_ratio=0.4)
        out = tm.sample(case, guider, steps=STEPS)
    subs = [c for c in probe.calls if c["dropped"] is not None]
    assert len(subs) == STEPS and torch.isfinite(out).all()
    order = list(block_modules(case.patcher))
    # with an ordinary sampler the causal model runs WanModel's own loop, so the pass reuses the prefix
    # (test_prefix_reuse.py checks it equals the whole pass)
    for sub, row in zip(subs, guider.trace.rows()):
        dropped = [tuple(d) for d in sub["dropped"]]
        skipped = set(order[:order.index(dropped[0])]) if row["reused"] else set()
        assert sub["ran"] == set(order) - set(dropped) - skipped
    # core's ar_video sampler (what SamplerARVideo gives) sizes its caches for one pass per call, so it is
    # used at cfg 1 (distilled causal models): the full pass is batch 1, then S²'s extra pass
    ar_video = comfy.samplers.ksampler("ar_video", {"num_frame_per_block": 1})
    with pytest.raises(IgnoredDropError, match="ar_video"):
        tm.sample(case, s2_guider(case, cfg=1.0), sampler=ar_video, steps=STEPS)
    # the model itself runs under that sampler: the error is S²'s refusal, not a broken model
    assert torch.isfinite(tm.sample(case, cfg_guider(case, 1.0), sampler=ar_video, steps=STEPS)).all()
