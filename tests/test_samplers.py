"""Every sampler of the running ComfyUI: each model call's window decision and S² mask follow the sigma
that call evaluates (guiders/steps.py), whether the guider counts the call or reads its sigma."""

from __future__ import annotations

import comfy.samplers
import pytest
import tiny_models as tm
from raag_s2_guidance.guiders.s2 import draw_mask
from raag_s2_guidance.guiders.steps import PATTERNS, call_pattern, in_window, window_sigmas
from support import ModelCalls, s2_guider

WINDOW = (0.3, 0.7)
STEPS = 6


def _sweep(arch: str, sampler_name: str):
    case = tm.build(arch)
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        guider = s2_guider(case, patcher=probe.patcher, window=WINDOW, drop_ratio=0.4)
        tm.sample(case, guider, sampler_name=sampler_name, steps=STEPS)
    return case, guider, probe.calls


@pytest.mark.parametrize("arch", ["flux", "sd15"])  # a flow and an EPS model
@pytest.mark.parametrize("sampler_name", comfy.samplers.KSAMPLER_NAMES)
def test_window_and_mask_follow_the_evaluated_sigma(arch, sampler_name):
    case, guider, calls = _sweep(arch, sampler_name)
    bounds = window_sigmas(case.patcher.get_model_object("model_sampling"), guider.guidance.s2.window)
    full = [c for c in calls if c["dropped"] is None]
    rows = guider.trace.rows()
    assert len(rows) == len(full) > 0
    eligible = guider_eligible(guider)
    extra = iter(c for c in calls if c["dropped"] is not None)
    for row, call in zip(rows, full):
        evaluated = call["sigma"]  # what the model really got
        assert row["sigma"][0] == pytest.approx(evaluated, rel=1e-6)
        inside = in_window(evaluated, bounds)
        if inside:  # the S² pass ran, with the mask of this very sigma
            sub = next(extra)
            assert sub["sigma"] == evaluated
            assert tuple(sub["dropped"]) == draw_mask(eligible, 0.4, 0, evaluated)
            assert tuple(map(tuple, row["dropped"])) == tuple(sub["dropped"])
        else:
            assert row["dropped"] == []
    assert next(extra, None) is None


def guider_eligible(guider):
    from raag_s2_guidance.guiders import blocks

    diffusion_model = guider.model_patcher.model.diffusion_model
    return blocks.eligible_blocks(blocks.architecture_of(diffusion_model), diffusion_model)


def test_counted_samplers_are_stock_names_of_this_comfyui():
    """The patterns name real k-diffusion functions here (a renamed one would silently be read)."""
    functions = {getattr(comfy.samplers.ksampler(n), "sampler_function", None) for n in comfy.samplers.KSAMPLER_NAMES}
    names = {f.__name__ for f in functions if f is not None}
    assert set(PATTERNS) <= names, set(PATTERNS) - names
    assert call_pattern(comfy.samplers.ksampler("euler")) is not None
    assert call_pattern(comfy.samplers.ksampler("euler", {"s_churn": 1.0})) is None  # moves the sigma
    assert call_pattern(comfy.samplers.ksampler("dpm_2")) is None


def test_a_sampler_that_never_calls_back_still_gets_fresh_masks():
    """A custom SAMPLER without progress callbacks: the masks change with the sigma (no frozen clock)."""
    import torch

    def no_callback_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
        s_in = x.new_ones([x.shape[0]])
        for i in range(len(sigmas) - 1):
            denoised = model(x, sigmas[i] * s_in, **(extra_args or {}))
            x = denoised + (x - denoised) * (sigmas[i + 1] / sigmas[i])
        return x

    case = tm.build("flux")
    guider = s2_guider(case, drop_ratio=0.4)
    noise = torch.randn(case.latent.shape, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor(tm.schedule(case.patcher, steps=STEPS))
    guider.sample(noise, case.latent, comfy.samplers.KSAMPLER(no_callback_euler), sigmas, seed=0)
    masks = [tuple(map(tuple, r["dropped"])) for r in guider.trace.rows()]
    assert [r["step"] for r in guider.trace.rows()] == list(range(STEPS))
    assert len(set(masks)) > 1
