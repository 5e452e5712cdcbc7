"""Fixes from the correctness review (issue 11), each a test that fails without its fix."""

from __future__ import annotations

import comfy.model_sampling
import pytest
import release_features
import tiny_models as tm
import torch
from core_nodes import first
from raag_s2_guidance.guiders.raag import flow_anchor, guidance_ratio
from raag_s2_guidance.guiders.s2 import dropped_count
from raag_s2_guidance.guiders.steps import in_window, window_sigmas
from support import HookRecorder, ModelCalls, raag_guider, raag_s2_guider, s2_guider

STEPS = 4


# -- 4: every core node that sets a pre-/post-/cfg hook works with RAAG's adaptive scale and with S² ---
def _core_hook_patches():
    """(name, patch function) for the core model-patch nodes this ComfyUI has."""
    import importlib

    found = []
    for module, node, kwargs in [
        ("comfy_extras.nodes_video_model", "VideoLinearCFGGuidance", {"min_cfg": 1.0}),
        ("comfy_extras.nodes_video_model", "VideoTriangleCFGGuidance", {"min_cfg": 1.0}),
        ("comfy_extras.nodes_cfg", "CFGZeroStar", {}),
        ("comfy_extras.nodes_cfg", "CFGNorm", {"strength": 1.0}),
        ("comfy_extras.nodes_model_advanced", "RescaleCFG", {"multiplier": 0.7}),
        ("comfy_extras.nodes_apg", "APG", {"eta": 0.5, "norm_threshold": 5.0, "momentum": -0.5}),
        ("comfy_extras.nodes_tcfg", "TCFG", {}),
        ("comfy_extras.nodes_mahiro", "Mahiro", {}),
    ]:
        try:
            cls = getattr(importlib.import_module(module), node)
        except (ImportError, AttributeError):
            continue
        found.append((node, cls, kwargs))
    return found


def _apply(cls, patcher, kwargs):
    return first(cls, model=patcher, **kwargs)


HOOKS = _core_hook_patches()


def test_the_hook_nodes_exist_here():
    assert {"VideoLinearCFGGuidance", "VideoTriangleCFGGuidance", "CFGZeroStar", "RescaleCFG"} <= {h[0] for h in HOOKS}


@pytest.mark.parametrize("node,cls,kwargs", HOOKS, ids=[h[0] for h in HOOKS])
@pytest.mark.parametrize("kind", ["raag", "raag_s2"])
def test_core_hook_nodes_with_an_adaptive_scale(node, cls, kwargs, kind):
    case = tm.build("sd3")
    patched = _apply(cls, case.patcher, kwargs)
    make = {"raag": lambda p: raag_guider(case, patcher=p, alpha=2.0),
            "raag_s2": lambda p: raag_s2_guider(case, patcher=p, raag={"alpha": 2.0})}[kind]
    out = tm.sample(case, make(patched), steps=STEPS)
    assert torch.isfinite(out).all()


def test_one_scale_for_the_batch_is_a_number_like_tensor():
    case = tm.build("sd3")
    rec = HookRecorder(case.patcher)
    tm.sample(case, raag_guider(case, patcher=rec.patcher, alpha=2.0), steps=STEPS)
    assert all(torch.is_tensor(p["cond_scale"]) and p["cond_scale"].ndim == 0 for p in rec.post)


# -- 5: rho is the velocity ratio of the equivalent flow, for every prediction type -------------------
def _prediction_classes():
    return [cls for name, cls in vars(comfy.model_sampling).items()
            if isinstance(cls, type) and name.isupper() and hasattr(cls, "calculate_denoised")
            and hasattr(cls, "noise_scaling")]


@pytest.mark.parametrize("prediction", _prediction_classes(), ids=lambda c: c.__name__)
def test_rho_is_the_flow_velocity_ratio(prediction):
    """For each model_sampling class: raw network outputs -> ComfyUI's own denoised values -> our rho,
    against the velocity ratio of the equivalent flow computed directly from x0 and eps."""
    torch.manual_seed(0)
    sampling = type("S", (prediction, comfy.model_sampling.ModelSamplingDiscreteFlow), {})(None)
    sampling.sigma_data = 1.0  # v-prediction / EDM classes read it (a model's sampling object sets it)
    sigma = torch.tensor([0.7, 0.3])
    x = torch.randn(2, 4, 8, 8)
    out_c, out_u = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    d_c = sampling.calculate_denoised(sigma, out_c, x)
    d_u = sampling.calculate_denoised(sigma, out_u, x)
    rho = guidance_ratio(d_c, d_u, flow_anchor(sampling, x, sigma))
    # reference: x = alpha x0 + beta eps (from noise_scaling); eps of each prediction from x and x0;
    # flow velocity v = eps - x0
    shape = (2, 1, 1, 1)
    alpha = sampling.noise_scaling(sigma, torch.zeros(shape), torch.ones(shape))
    beta = sampling.noise_scaling(sigma, torch.ones(shape), torch.zeros(shape))
    if torch.all(beta == 0):  # no noise in the state (IMG_TO_IMG_FLOW): t = 0, rho from x itself
        ref = ((d_c - d_u).flatten(1).norm(dim=1) / (x / alpha - d_u).flatten(1).norm(dim=1))
    else:
        v_c = (x - alpha * d_c) / beta - d_c
        v_u = (x - alpha * d_u) / beta - d_u
        ref = (v_c - v_u).flatten(1).norm(dim=1) / v_u.flatten(1).norm(dim=1)
    torch.testing.assert_close(rho, ref, rtol=1e-4, atol=1e-6)
    assert torch.all(flow_anchor(sampling, x, sigma).abs().sum() > 0)  # never a zero anchor


def test_eps_model_rho_in_the_sampler_is_the_flow_ratio():
    """On a real EPS model (SD1.5 tiny): rho = ||D_c - D_u|| / ||x / (1 + sigma) - D_u||, not the
    eps-space ratio ||D_c - D_u|| / ||x - D_u||, which is ~sigma times smaller at high noise."""
    case = tm.build("sd15")
    rec = HookRecorder(case.patcher)
    guider = raag_guider(case, patcher=rec.patcher, alpha=2.0)
    tm.sample(case, guider, steps=STEPS)
    for pre, row in zip(rec.pre, guider.trace.rows()):
        x, c, u, sigma = pre["x"], pre["cond"], pre["uncond"], pre["sigma"].item()
        flow = ((c - u).norm() / (x / (1 + sigma) - u).norm()).item()
        assert row["rho"][0] == pytest.approx(flow, rel=1e-4)
    assert rec.pre[0]["sigma"].item() > 5  # the high-noise end, where the two ratios differ most


# -- 6: no per-run state outlives the run --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["raag", "s2"])
def test_run_state_is_cleared_when_sample_returns(kind):
    case = tm.build("flux")
    guider = raag_guider(case) if kind == "raag" else s2_guider(case)
    tm.sample(case, guider, steps=STEPS)
    # the run's state lived in the sampler wrapper's call: the guider's own prediction is back, the trace stays
    assert "predict_noise" not in vars(guider) and len(guider.trace) == STEPS


# -- 7: a step on a window edge is inside ---------------------------------------------------------------
def test_a_step_exactly_on_the_window_edge_is_inside():
    case = tm.build("flux")
    ms = case.patcher.get_model_object("model_sampling")
    from raag_s2_guidance.guiders import StepWindow

    bounds = window_sigmas(ms, StepWindow(0.2, 0.8))
    schedule = tm.schedule(case.patcher, steps=10)
    on_edge = [s for s in schedule if abs(s - bounds[1]) < 1e-6 or abs(s - bounds[0]) < 1e-6]
    assert on_edge, (bounds, schedule)
    assert all(in_window(s, bounds) for s in on_edge)
    # float32 rounding of the same value either side of the edge
    low = bounds[1]
    assert in_window(float(torch.tensor(low, dtype=torch.float32)), bounds)
    assert in_window(low * (1 - 1e-7), bounds) and not in_window(low * 0.99, bounds)


# -- 9: drop count rounds half up ------------------------------------------------------------------------
def test_drop_count_rounds_half_up():
    assert dropped_count(25, 0.1) == 3  # 2.5 -> 3 (Python's round gives 2)
    assert dropped_count(15, 0.1) == 2  # 1.5 -> 2
    assert dropped_count(24, 0.1) == 2 and dropped_count(3, 0.01) == 1


# -- 2: core's step caches never see S²'s sub-network pass ------------------------------------------------
def test_easycache_sees_only_the_full_passes(monkeypatch):
    nodes_easycache = release_features.require("easycache")
    from raag_s2_guidance.guiders.blocks import PASS_MARKER

    seen = []
    forward, calc = nodes_easycache.easycache_forward_wrapper, nodes_easycache.easycache_calc_cond_batch_wrapper

    def counting_forward(executor, *args, **kwargs):
        options = args[-1] if isinstance(args[-1], dict) else kwargs.get("transformer_options", {})
        seen.append(("forward", options.get(PASS_MARKER)))
        return forward(executor, *args, **kwargs)

    def counting_calc(executor, *args, **kwargs):
        seen.append(("calc", None))
        return calc(executor, *args, **kwargs)

    monkeypatch.setattr(nodes_easycache, "easycache_forward_wrapper", counting_forward)
    monkeypatch.setattr(nodes_easycache, "easycache_calc_cond_batch_wrapper", counting_calc)
    case = tm.build("flux")
    cached = first(nodes_easycache.EasyCacheNode, model=case.patcher, reuse_threshold=0.2, start_percent=0.15,
                   end_percent=0.95, verbose=False)
    guider = s2_guider(case, patcher=cached)
    out = tm.sample(case, guider, steps=8)
    assert torch.isfinite(out).all()
    assert all(r["dropped"] for r in guider.trace.rows())  # S² ran at every step
    assert [kind for kind, _ in seen].count("calc") == 8  # one full calc_cond_batch per step
    assert all(marker is None for _, marker in seen), "a step cache saw the sub-network pass"
    # the full passes kept the cache: it was entered for them
    assert [kind for kind, _ in seen].count("forward") >= 8


def test_lazycache_with_s2(monkeypatch):
    """LazyCache wraps the guider's whole predict_noise: S²'s sub-network pass runs inside it, so the
    cache is entered once per step and keeps the guided result; a step it reuses runs no pass at all."""
    nodes_easycache = release_features.require("lazycache")
    entered = []
    wrapper = nodes_easycache.lazycache_predict_noise_wrapper

    def counting(executor, *args, **kwargs):
        entered.append(1)
        return wrapper(executor, *args, **kwargs)

    monkeypatch.setattr(nodes_easycache, "lazycache_predict_noise_wrapper", counting)
    case = tm.build("flux")
    cached = first(nodes_easycache.LazyCacheNode, model=case.patcher, reuse_threshold=0.2, start_percent=0.15,
                   end_percent=0.95, verbose=False)
    guider = s2_guider(case, patcher=cached)
    out = tm.sample(case, guider, steps=8)
    assert torch.isfinite(out).all()
    assert len(entered) == 8, "the cache was entered more than once per step (the sub-network pass?)"
    rows = guider.trace.rows()
    assert 0 < len(rows) <= 8 and all(r["dropped"] for r in rows)  # every step that ran, ran S² whole


# -- 3: NAG (core NAGuidance, newer ComfyUI) also acts in S²'s sub-network pass -----------------------
def test_nag_sees_the_sub_network_pass_as_a_positive_negative_pair():
    nodes_nag = release_features.require("nag")
    case = tm.build("flux")
    nag = first(nodes_nag.NAGuidance, model=case.patcher, nag_scale=5.0, nag_alpha=0.25, nag_tau=2.5)
    with ModelCalls(nag, watch_blocks=False) as probe:
        out = tm.sample(case, s2_guider(case, patcher=probe.patcher), steps=STEPS)
    subs = [c for c in probe.calls if c["dropped"] is not None]
    assert len(subs) == STEPS and torch.isfinite(out).all()
    # the sub-network pass holds the positive and the negative row, as the full pass: NAG applies there
    assert all(sorted(c["cond_or_uncond"]) == [0, 1] for c in subs)
    # without attention patches it stays one conditional row (no extra cost)
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        tm.sample(case, s2_guider(case, patcher=probe.patcher), steps=STEPS)
    assert all(c["cond_or_uncond"] == [0] for c in probe.calls if c["dropped"] is not None)


# -- 11: with an inpainting mask, rho measures the repainted part only --------------------------------
def test_inpainting_rho_is_measured_inside_the_mask():
    import comfy.sampler_helpers

    case = tm.build("sd3")
    start = torch.randn(case.latent.shape, generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :32] = 1.0
    rec = HookRecorder(case.patcher)
    guider = raag_guider(case, patcher=rec.patcher, alpha=2.0)
    tm.sample(case, guider, steps=STEPS, latent={"samples": start, "noise_mask": mask})
    region = comfy.sampler_helpers.prepare_mask(mask, start.shape, start.device)
    ms = case.patcher.get_model_object("model_sampling")
    for pre, row in zip(rec.pre, guider.trace.rows()):
        region = region.to(pre["x"].device)
        inside = guidance_ratio(pre["cond"], pre["uncond"], flow_anchor(ms, pre["x"], pre["sigma"]), region=region)
        whole = guidance_ratio(pre["cond"], pre["uncond"], flow_anchor(ms, pre["x"], pre["sigma"]))
        assert row["rho"][0] == pytest.approx(inside.item(), rel=1e-5)
        assert abs(inside.item() - whole.item()) > 1e-4 * whole.item()


# -- nested latents (LTX-2's (video, audio)): the mask reaches the engine packed like the latents ------------
def test_a_packed_mask_masks_the_same_elements_as_the_parts():
    """Since 0.3.67 core packs nested latents into one flat [B, 1, N] tensor before the sampler, and (0.6.0+)
    their denoise masks the same way (comfy.utils.pack_latents). The engine hands RAAG's ratio the mask as
    the sampler gets it: packed, it must give the ratio of the unpacked parts under their masks."""
    utils = release_features.require("pack_latents")

    gen = torch.Generator().manual_seed(9)
    video, audio = (2, 16, 3, 4, 4), (2, 8, 12)
    parts = {name: [torch.randn(shape, generator=gen) for _ in range(3)] for name, shape in (("v", video), ("a", audio))}
    masks = [(torch.rand(video, generator=gen) > 0.5).float(), (torch.rand(audio, generator=gen) > 0.3).float()]
    packed = [utils.pack_latents([parts["v"][i], parts["a"][i]])[0] for i in range(3)]
    region, shapes = utils.pack_latents(masks)
    assert region.shape == packed[0].shape and [tuple(s) for s in shapes] == [video, audio]
    ours = guidance_ratio(packed[0], packed[1], packed[2], region=region)
    flat = [torch.cat([parts["v"][i].flatten(1), parts["a"][i].flatten(1)], 1) for i in range(3)]
    flat_region = torch.cat([masks[0].flatten(1), masks[1].flatten(1)], 1)
    torch.testing.assert_close(ours, guidance_ratio(flat[0], flat[1], flat[2], region=flat_region))
    assert not torch.allclose(ours, guidance_ratio(packed[0], packed[1], packed[2]))  # the mask matters
