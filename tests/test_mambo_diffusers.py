"""RAAG is MAMBO-G (arXiv 2508.03442 v4): the pack's ratio, scale, guided prediction and rescale equal the
official integration's functions in diffusers (``mambo_guidance``, ``rescale_noise_cfg``), on the same
velocities and end to end on a tiny flow model, teacher-forced (diffusers gets the model's own predictions
of every call).

diffusers is a pinned, tests-only dependency (tools/runtime/requirements-runtime.txt; no torch of its own).
Its ``mambo_guidance`` takes ``torch.norm`` over all non-batch dims, which newer torch refuses for 4-D and
5-D tensors: it is called on each sample flattened, the same norms."""

from __future__ import annotations

import math

import pytest
import tiny_models as tm
import torch
from raag_s2_guidance.guiders.raag import guidance_ratio, per_sample_view, raag_scale, rescale_guided
from support import HookRecorder, raag_guider

diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (tests-only; it needs Python 3.11+)")
from diffusers.guiders.guider_utils import rescale_noise_cfg  # noqa: E402
from diffusers.guiders.magnitude_aware_guidance import mambo_guidance  # noqa: E402

G, ALPHA = 10.0, 8.0  # the authors' Qwen-Image setting (diffusers' defaults)


def diffusers_guided(v_c: torch.Tensor, v_u: torch.Tensor, g: float, alpha: float, phi: float) -> torch.Tensor:
    """diffusers' MagnitudeAwareGuidance on velocities: mambo_guidance, then rescale_noise_cfg where phi > 0."""
    batch = v_c.shape[0]
    pred = mambo_guidance(v_c.reshape(batch, -1), v_u.reshape(batch, -1), g, alpha).reshape(v_c.shape)
    return rescale_noise_cfg(pred, v_c, phi) if phi > 0 else pred


def _velocities(batch: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, 16, 8, 8), generator=gen)
    v_u = torch.randn((batch, 16, 8, 8), generator=gen)
    # a prompt that changes the prediction by a different amount per sample
    v_c = v_u + torch.randn((batch, 16, 8, 8), generator=gen) * torch.tensor([0.05, 0.3, 1.2][:batch]).view(-1, 1, 1, 1)
    return x, v_c, v_u


@pytest.mark.parametrize("phi", [0.0, 0.7, 1.0])
@pytest.mark.parametrize("batch", [1, 3])
def test_ratio_scale_and_guided_output_equal_diffusers(batch, phi):
    """Flow model at sigma: D = x - sigma v (ComfyUI hands the guider denoised predictions)."""
    x, v_c, v_u = _velocities(batch, seed=batch)
    sigma = 0.7
    d_c, d_u = x - sigma * v_c, x - sigma * v_u
    rho = guidance_ratio(d_c, d_u, x)
    w = raag_scale(rho, G, ALPHA)
    ours = d_u + (d_c - d_u) * per_sample_view(w, d_c)
    if phi > 0:
        ours = rescale_guided(ours, d_c, x, phi)

    reference = diffusers_guided(v_c, v_u, G, ALPHA, phi)
    torch.testing.assert_close(ours, x - sigma * reference, rtol=1e-5, atol=1e-5)
    # diffusers' scale and ratio, read back from its unrescaled output: pred = u + w (c - u)
    pred = diffusers_guided(v_c, v_u, G, ALPHA, 0.0)
    diff = v_c - v_u
    theirs_w = ((pred - v_u) * diff).flatten(1).sum(1) / (diff * diff).flatten(1).sum(1)
    torch.testing.assert_close(w, theirs_w, rtol=1e-5, atol=1e-6)
    theirs_rho = -torch.log((theirs_w - 1) / (G - 1)) / ALPHA
    torch.testing.assert_close(rho, theirs_rho, rtol=1e-4, atol=1e-6)
    assert float(w.max() - w.min()) > 0.5 or batch == 1, "the samples should get different scales"


def test_the_v4_readme_formula_is_ours_with_w_max_plus_one():
    """The v4 README writes w = 1 + w_max exp(-alpha r) (diffusers' use_original_formulation): the same
    guided prediction as w_max + 1 in the code's form, so the pack needs no second formulation."""
    x, v_c, v_u = _velocities(3, seed=5)
    batch = v_c.shape[0]
    original = mambo_guidance(v_c.reshape(batch, -1), v_u.reshape(batch, -1), G, ALPHA,
                              use_original_formulation=True).reshape(v_c.shape)
    rho = guidance_ratio(x - v_c, x - v_u, x)
    w = raag_scale(rho, G + 1.0, ALPHA)
    torch.testing.assert_close(v_u + (v_c - v_u) * per_sample_view(w, v_c), original, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("phi", [0.0, 0.7, 1.0])
@pytest.mark.parametrize("batch", [1, 3])
def test_guider_equals_diffusers_teacher_forced(batch, phi):
    """The RAAG guider sampling tiny SD3 (a flow model), every call: its guided prediction equals diffusers'
    functions applied to that call's own conditional and unconditional velocities."""
    case = tm.build("sd3")
    positive = tm.conditioning("sd3", 3, batch)
    recorder = HookRecorder(case.patcher)  # user hooks: they see our guided prediction (rescale included)
    guider = raag_guider(case, patcher=recorder.patcher, positive=positive, w_max=G, alpha=ALPHA, rescale=phi)
    tm.sample(case, guider, steps=6, latent=tm.empty_latent("sd3", batch), seed=2)
    assert len(recorder.pre) == len(recorder.post) == 6
    for pre, post in zip(recorder.pre, recorder.post):
        x, sigma = pre["x"].float(), pre["sigma"].float().view(-1, 1, 1, 1)
        v_c, v_u = (x - pre["cond"].float()) / sigma, (x - pre["uncond"].float()) / sigma
        reference = x - sigma * diffusers_guided(v_c, v_u, G, ALPHA, phi)
        scale = max(1.0, float(reference.abs().max()))
        torch.testing.assert_close(post["denoised"].float(), reference, rtol=0, atol=2e-5 * scale)
    assert math.isfinite(float(post["denoised"].abs().sum()))


def test_rescale_zero_adds_no_step_and_is_todays_raag_bit_for_bit():
    case = tm.build("flux")
    plain = tm.sample(case, raag_guider(case, w_max=G, alpha=ALPHA), steps=5, seed=1)
    recorder = HookRecorder(case.patcher)
    zero = tm.sample(case, raag_guider(case, patcher=recorder.patcher, w_max=G, alpha=ALPHA, rescale=0.0),
                     steps=5, seed=1)
    assert torch.equal(plain, zero)
    rescaled = tm.sample(case, raag_guider(case, w_max=G, alpha=ALPHA, rescale=1.0), steps=5, seed=1)
    assert float((rescaled - plain).abs().max()) > 1e-3, "rescale 1.0 had no effect"
