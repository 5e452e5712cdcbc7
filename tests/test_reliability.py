"""Reliability: reuse across queue runs, failures inside every kind of pass, bad numbers in the
predictions, and compatibility with what users stack on a model (LoRA, CFG patches, samplers, split
schedules, img2img, inpainting)."""

from __future__ import annotations

import comfy.model_management
import comfy.patcher_extension
import comfy.samplers
import comfy.sd
import comfy.utils
import pytest
import tiny_models as tm
import torch
from comfy_extras.nodes_apg import APG
from comfy_extras.nodes_cfg import CFGZeroStar
from comfy_extras.nodes_model_advanced import RescaleCFG
from comfy_extras.nodes_slg import SkipLayerGuidanceDiT
from core_nodes import first
from support import (
    HookRecorder,
    ModelCalls,
    cfg_guider,
    conditioning_row,
    fail_inside,
    forward_overrides,
    raag_guider,
    raag_s2_guider,
    s2_guider,
    sample_expecting_failure,
)

KINDS = {
    "raag": lambda case, **kw: raag_guider(case, alpha=2.0, **kw),
    "s2": lambda case, **kw: s2_guider(case, **kw),
    "raag_s2": lambda case, **kw: raag_s2_guider(case, raag={"alpha": 2.0}, **kw),
}
STEPS = 4


@pytest.mark.parametrize("kind", KINDS)
def test_one_guider_object_for_three_queued_runs(kind):
    case = tm.build("flux")
    guider = KINDS[kind](case)
    first = tm.sample(case, guider, steps=6, seed=1)
    other = tm.sample(case, guider, steps=5, seed=2)
    third = tm.sample(case, guider, steps=6, seed=1)
    assert torch.equal(first, third) and not torch.equal(first, other)
    assert len(guider.trace) == 6 and [r["step"] for r in guider.trace.rows()] == list(range(6))


@pytest.mark.parametrize("kind", KINDS)
def test_batch_of_four_prompts_equals_each_alone(kind):
    case = tm.build("sd3")
    positive, negative = tm.conditioning("sd3", 5, batch=4), tm.conditioning("sd3", 6, batch=4)

    def run(pos, neg, latent):
        guider = KINDS[kind](case)
        guider.set_conds(pos, neg)
        return tm.sample(case, guider, steps=STEPS, latent=latent, seed=3)

    together = run(positive, negative, {"samples": tm.empty_latent("sd3", 4), "batch_index": [0, 1, 2, 3]})
    for i in range(4):
        alone = run(conditioning_row(positive, i), conditioning_row(negative, i),
                    {"samples": tm.empty_latent("sd3"), "batch_index": [i]})
        assert torch.allclose(together[i:i + 1], alone, atol=tm.BATCH_TOLERANCE), f"sample {i}"


@pytest.mark.parametrize("arch", ["flux", "hidream"])
@pytest.mark.parametrize("which", ["full", "subnetwork"])
@pytest.mark.parametrize("failure", ["exception", "interrupt"])
def test_failure_in_each_kind_of_pass_leaves_nothing_behind(arch, which, failure):
    case = tm.build(arch)
    before = repr(case.patcher.model_options)
    patcher, handle = fail_inside(case.patcher, which, failure)
    guider = raag_s2_guider(case, patcher=patcher, raag={"alpha": 2.0})
    sample_expecting_failure(case, guider, failure, handle, STEPS)
    assert forward_overrides(case.patcher) == [] and repr(case.patcher.model_options) == before
    assert torch.equal(tm.sample(case, guider, steps=STEPS),
                       tm.sample(case, raag_s2_guider(case, raag={"alpha": 2.0}), steps=STEPS))


def _tamper(case, rows: str, how):
    """Changes the model's denoised output for the cond (0) or uncond (1) rows of full passes."""
    def wrapper(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        if transformer_options.get("raag_s2_subnetwork"):
            return out
        per_chunk = out.shape[0] // len(transformer_options["cond_or_uncond"])
        out = out.clone()
        for k, kind in enumerate(transformer_options["cond_or_uncond"]):
            if kind == {"cond": 0, "uncond": 1}[rows]:
                chunk = slice(k * per_chunk, (k + 1) * per_chunk)
                out[chunk] = how(out[chunk], x[chunk])
        return out

    patcher = case.patcher.clone()
    patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test-tamper", wrapper)
    return patcher


def _with_nan(den, x):
    den = den.clone()
    den.view(-1)[::7] = float("nan")
    return den


def _with_inf(den, x):
    den = den.clone()
    den.view(-1)[::11] = float("inf")
    return den


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rows,how", [("cond", _with_nan), ("uncond", _with_nan), ("cond", _with_inf)])
def test_nan_or_inf_in_a_prediction_passes_through_without_spreading(kind, rows, how):
    """Documented behaviour: a NaN/inf element of a prediction stays in that element of the result (as
    with CFG); a non-finite ratio gives w = 1; our math adds no NaN anywhere else."""
    case = tm.build("sd3")
    results = {}
    for name, make in (("ours", lambda p: KINDS[kind](case, patcher=p)), ("cfg", lambda p: cfg_guider(case, 5.0, p))):
        rec = HookRecorder(_tamper(case, rows, how))
        tm.sample(case, make(rec.patcher), steps=1)
        results[name] = rec.post[0]["denoised"]
    ours, cfg = results["ours"], results["cfg"]
    assert torch.equal(torch.isnan(ours), torch.isnan(cfg)) and torch.isnan(cfg).any() == (how is _with_nan)
    assert torch.isfinite(ours[torch.isfinite(cfg)]).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("zero", ["denoised", "velocity"])
def test_all_zero_unconditional_prediction(kind, zero):
    case = tm.build("wan21")
    how = (lambda den, x: torch.zeros_like(den)) if zero == "denoised" else (lambda den, x: x.clone())
    guider = KINDS[kind](case, patcher=_tamper(case, "uncond", how))
    out = tm.sample(case, guider, steps=STEPS)
    assert torch.isfinite(out).all()
    assert all(all(v == v for v in r["w"]) for r in guider.trace.rows())


def _probe_sampler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """A custom ComfyUI sampler function that evaluates the model at every sigma, the last one (0)
    included, and returns the last prediction (k-diffusion samplers never evaluate at sigma 0)."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    for i, sigma in enumerate(sigmas):
        denoised = model(x, sigma * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "denoised": denoised})
        if i + 1 < len(sigmas):
            x = denoised + (x - denoised) * (sigmas[i + 1] / sigma)
    return denoised


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_call_at_sigma_zero(kind):
    case = tm.build("sd3")
    guider = KINDS[kind](case)
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    noise = torch.randn(case.latent.shape, generator=torch.Generator().manual_seed(0))
    out = guider.sample(noise, case.latent, comfy.samplers.KSAMPLER(_probe_sampler), sigmas, seed=0)
    rows = guider.trace.rows()
    assert rows[-1]["sigma"] == [0.0] and torch.isfinite(out).all()
    assert all(v == v and v != float("inf") for r in rows for v in r["w"])


# -- compatibility --------------------------------------------------------------------------------------

def _tiny_lora(case, path) -> dict:
    keys = ["joint_blocks.1.x_block.attn.qkv", "joint_blocks.1.context_block.mlp.fc1"]
    sd = case.patcher.model.diffusion_model.state_dict()
    gen = torch.Generator().manual_seed(9)
    lora = {}
    for key in keys:
        out_dim, in_dim = sd[key + ".weight"].shape
        name = "lora_unet_" + key.replace(".", "_")
        lora[name + ".lora_up.weight"] = torch.randn(out_dim, 4, generator=gen) * 0.5
        lora[name + ".lora_down.weight"] = torch.randn(4, in_dim, generator=gen) * 0.5
        lora[name + ".alpha"] = torch.tensor(4.0)
    comfy.utils.save_torch_file(lora, str(path))
    return comfy.utils.load_torch_file(str(path))  # what LoraLoaderModelOnly reads


PATCHES = {
    "lora": lambda case, tmp: comfy.sd.load_lora_for_models(case.patcher, None, _tiny_lora(case, tmp / "l.safetensors"),
                                                            1.0, 0)[0],
    "cfg_zero_star": lambda case, tmp: first(CFGZeroStar, model=case.patcher),
    "apg": lambda case, tmp: first(APG, model=case.patcher, eta=0.5, norm_threshold=5.0, momentum=-0.5),
    "skip_layer_guidance": lambda case, tmp: first(SkipLayerGuidanceDiT, model=case.patcher, scale=3.0, start_percent=0.0, end_percent=1.0, double_layers="1", single_layers="",
        rescaling_scale=0.0),
    "rescale_cfg": lambda case, tmp: first(RescaleCFG, model=case.patcher, multiplier=0.7),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("patch", PATCHES)
def test_patches_stacked_on_the_model(kind, patch, tmp_path):
    case = tm.build("sd3")
    patched = PATCHES[patch](case, tmp_path)
    out = tm.sample(case, KINDS[kind](case, patcher=patched), steps=STEPS)
    plain = tm.sample(case, KINDS[kind](case), steps=STEPS)
    assert torch.isfinite(out).all() and not torch.allclose(out, plain), "the patch had no effect"
    assert forward_overrides(case.patcher) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde",
                                     "euler_cfg_pp", "uni_pc"])
def test_samplers(kind, sampler):
    case = tm.build("flux")
    guider = KINDS[kind](case)
    out = tm.sample(case, guider, sampler_name=sampler, steps=6)
    assert torch.isfinite(out).all()
    steps = [r["step"] for r in guider.trace.rows()]
    assert steps == sorted(steps) and set(steps) == set(range(6)), steps


class _NoNoise:
    """A NOISE input that adds nothing but keeps the sampling seed, for the second half of a split
    schedule. (With the stock DisableNoise, whose seed is 0, S² draws that half's masks from seed 0.)"""

    def __init__(self, seed):
        self.seed = seed

    def generate_noise(self, latent):
        return torch.zeros_like(latent["samples"])


@pytest.mark.parametrize("kind", KINDS)
def test_split_sigmas_with_one_guider_equals_the_whole_schedule(kind):
    from comfy_extras.nodes_custom_sampler import BasicScheduler, DisableNoise, KSamplerSelect, RandomNoise
    from comfy_extras.nodes_custom_sampler import SamplerCustomAdvanced as SCA

    case = tm.build("flux")
    guider = KINDS[kind](case)
    sigmas = first(BasicScheduler, model=case.patcher, scheduler="simple", steps=8, denoise=1.0)
    sampler = first(KSamplerSelect, sampler_name="euler")

    def run(noise, sigmas, latent):
        return first(SCA, noise=noise, guider=guider, sampler=sampler, sigmas=sigmas, latent_image=latent)

    whole = run(first(RandomNoise, noise_seed=5), sigmas, {"samples": case.latent})["samples"]
    whole_masks = [r["dropped"] for r in guider.trace.rows()]
    half = run(first(RandomNoise, noise_seed=5), sigmas[:5], {"samples": case.latent})
    first_masks = [r["dropped"] for r in guider.trace.rows()]
    rest = run(_NoNoise(5), sigmas[4:], half)["samples"]
    assert len(guider.trace) == 4  # the trace holds the last run only
    assert first_masks + [r["dropped"] for r in guider.trace.rows()] == whole_masks
    assert torch.allclose(rest, whole, atol=1e-4)
    # the stock DisableNoise: still deterministic
    again = [run(first(DisableNoise), sigmas[4:], half)["samples"] for _ in range(2)]
    assert torch.equal(again[0], again[1]) and torch.isfinite(again[0]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_img2img_with_denoise_below_one(kind):
    case = tm.build("sd3")
    start = torch.randn(case.latent.shape, generator=torch.Generator().manual_seed(4))
    guider = KINDS[kind](case)
    out = tm.sample(case, guider, steps=6, latent=start, denoise=0.5)
    assert torch.isfinite(out).all() and len(guider.trace) == 6
    assert max(r["sigma"][0] for r in guider.trace.rows()) < 0.9  # started part-way down the schedule
    assert (out - start).abs().mean() < (tm.sample(case, KINDS[kind](case), steps=6, latent=start) - start).abs().mean()


@pytest.mark.parametrize("kind", KINDS)
def test_inpainting_mask_keeps_the_unmasked_region(kind):
    case = tm.build("sd3")
    start = torch.randn(case.latent.shape, generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :32] = 1.0  # repaint the left half (mask in pixel space, as LoadImage gives it)
    out = tm.sample(case, KINDS[kind](case), steps=6, latent={"samples": start, "noise_mask": mask})
    assert torch.isfinite(out).all()
    right = (slice(None), slice(None), slice(None), slice(5, None))  # clear of the blended border
    assert torch.allclose(out[right], start[right], atol=1e-5)
    assert not torch.allclose(out[..., :3], start[..., :3], atol=1e-2)


def test_effect_off_equals_cfg_guider():
    case = tm.build("qwen_image")
    ref = tm.sample(case, cfg_guider(case, 4.0), steps=STEPS)
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        off = tm.sample(case, s2_guider(case, patcher=probe.patcher, cfg=4.0, omega=0.0), steps=STEPS)
    assert torch.equal(off, ref) and len(probe.calls) == STEPS
    raag_off = tm.sample(case, raag_guider(case, w_max=4.0, alpha=0.0), steps=STEPS)
    assert (raag_off - ref).abs().max() <= 1e-6
