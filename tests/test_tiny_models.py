"""The tiny real-ComfyUI models of tools/harness/tiny_models.py: they build, sample through the stock
SamplerCustomAdvanced node with the stock CFGGuider, load from a checkpoint like UNETLoader, and
every block matters (dropping one moves the output)."""

from __future__ import annotations

import comfy.model_base
import comfy.samplers
import comfy.sd
import pytest
import tiny_models as tm
import torch

STEPS = 4


def cfg_sample(case: tm.TinyCase, seed: int, cfg: float = 4.0) -> torch.Tensor:
    guider = comfy.samplers.CFGGuider(case.patcher)
    guider.set_conds(case.positive, case.negative)
    guider.set_cfg(cfg)
    return tm.sample(case, guider, sampler_name="euler", steps=STEPS, seed=seed)


def test_arch_table():
    assert set(tm.SPECS) == set(tm.ALL_ARCHS) | {tm.UNSUPPORTED_ARCH}
    assert set(tm.ARCHS) | set(tm.MISSING_ARCHS) == set(tm.ALL_ARCHS) and not set(tm.ARCHS) & set(tm.MISSING_ARCHS)
    # the families every supported ComfyUI has (0.3.64 and newer)
    assert {"sd3", "flux", "chroma", "wan21", "qwen_image", "hunyuan_video", "ltxv", "lumina2", "hidream",
            "cosmos_predict2", "sd15"} <= set(tm.ARCHS)
    assert tm.VIDEO_ARCHS <= set(tm.ALL_ARCHS)


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_cfg_sampling(arch):
    case = tm.build(arch)
    latent_format = case.patcher.get_model_object("latent_format")
    assert case.latent.shape[1] == latent_format.latent_channels
    assert case.latent.ndim == (5 if arch in tm.VIDEO_ARCHS or arch in tm.FRAME_AXIS_IMAGE_ARCHS else 4)
    assert not torch.equal(case.positive[0][0], case.negative[0][0])

    out0 = cfg_sample(case, seed=0)
    out1 = cfg_sample(case, seed=1)
    assert out0.shape == case.latent.shape
    assert torch.isfinite(out0).all() and torch.isfinite(out1).all()
    assert not torch.allclose(out0, out1), "the noise seed has no effect"
    assert (out0 - case.latent).abs().max() > 1e-3, "sampling left the latent unchanged"
    assert not torch.allclose(out0, cfg_sample(case, seed=0, cfg=1.0)), "CFG has no effect"
    # deterministic: a fresh build from the same seed gives the same weights and the same sample
    assert torch.equal(out0, cfg_sample(tm.build(arch), seed=0))


@pytest.mark.parametrize("arch", ["sd3", "wan21"])
def test_conditioning_batch_and_seed(arch):
    a = tm.conditioning(arch, seed=3, batch=2)
    b = tm.conditioning(arch, seed=3, batch=2)
    assert torch.equal(a[0][0], b[0][0]) and a[0][0].shape[0] == 2
    assert not torch.allclose(a[0][0][0], a[0][0][1]), "the batch rows should be different prompts"
    assert not torch.allclose(a[0][0], tm.conditioning(arch, seed=4, batch=2)[0][0])
    assert tm.empty_latent(arch, batch=3).shape[0] == 3


def test_sd3_checkpoint_loads_through_unet_loader_path(tmp_path):
    path = tm.write_tiny_sd3_checkpoint(tmp_path / "tiny_sd3.safetensors", seed=0)
    # float32 as the built model (on a GPU the loader would pick a half-precision inference dtype)
    patcher = comfy.sd.load_diffusion_model(str(path), model_options={"dtype": torch.float32})
    assert isinstance(patcher.model, comfy.model_base.SD3)
    dm = patcher.model.diffusion_model
    assert len(dm.joint_blocks) == 3 and dm.hidden_size == 192 and dm.num_heads == 3
    built = tm.build("sd3", seed=0)
    loaded = tm.TinyCase("sd3", patcher, built.positive, built.negative, built.latent)
    out = cfg_sample(loaded, seed=0)
    assert out.shape == built.latent.shape and torch.isfinite(out).all()
    # same config and seed as build("sd3", 0): the loaded model is the same model
    torch.testing.assert_close(out, cfg_sample(built, seed=0))


def first_input(x, *args, **kwargs):
    return x


# An identity forward for each block kind (what the block returns, given what its caller passes).
PASSTHROUGH = {
    ("sd3", "joint_blocks"): lambda context, x, *a, **k: (context, x),
    ("flux", "double_blocks"): lambda img, txt, **k: (img, txt),
    ("chroma", "double_blocks"): lambda img, txt, **k: (img, txt),
    ("flux2", "double_blocks"): lambda img, txt, **k: (img, txt),
    ("longcat_image", "double_blocks"): lambda img, txt, **k: (img, txt),
    ("hunyuan_video", "double_blocks"): lambda img, txt, **k: (img, txt),
    ("qwen_image", "transformer_blocks"): lambda hidden_states, encoder_hidden_states, **k: (
        encoder_hidden_states, hidden_states),
    ("hidream", "double_stream_blocks"): lambda image_tokens, image_tokens_masks, text_tokens, **k: (
        image_tokens, text_tokens),
    ("hidream", "single_stream_blocks"): lambda image_tokens, *a, **k: image_tokens,
    ("auraflow", "double_layers"): lambda c, x, *a, **k: (c, x),
    ("mochi", "blocks"): lambda x, c, y_feat, **k: (x, y_feat),
    ("lens", "transformer_blocks"): lambda hidden_states, encoder_hidden_states, **k: (
        encoder_hidden_states, hidden_states),
    ("mage_flow", "transformer_blocks"): lambda hidden_states, encoder_hidden_states, **k: (
        encoder_hidden_states, hidden_states),
    ("joyimage", "double_blocks"): lambda hidden_states, encoder_hidden_states, **k: (hidden_states, encoder_hidden_states),
    ("boogu", "double_stream_layers"): lambda img, txt, *a, **k: (img, txt),
    ("cogvideox", "blocks"): lambda hidden_states, encoder_hidden_states, **k: (hidden_states, encoder_hidden_states),
}


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_dropping_a_block_changes_the_output(arch):
    case = tm.build(arch)
    ms = case.patcher.model.model_sampling
    sigma = float(ms.sigma_max) * 0.5
    noise = torch.randn(case.latent.shape, generator=torch.Generator().manual_seed(0))
    if ms.calculate_input(torch.tensor([sigma]), noise * sigma).std() > 10:
        sigma = 1.0  # a model fed the raw x_t (CogVideoX's v-prediction): probe where its input is unit-sized
    x = noise * sigma
    full = tm.predict(case, x, sigma)
    lists = tm.block_lists(arch, case.patcher.model.diffusion_model)
    assert lists and all(len(blocks) >= 3 for blocks in lists.values()), {k: len(v) for k, v in lists.items()}
    for name, blocks in lists.items():
        block = blocks[1]
        block.forward = PASSTHROUGH.get((arch, name), first_input)
        try:
            dropped = tm.predict(case, x, sigma)
        finally:
            del block.forward
        rel = ((dropped - full).norm() / full.norm()).item()
        assert torch.isfinite(dropped).all()
        assert rel > 1e-3, f"{arch}.{name}[1] is a near-identity (relative change {rel:.2e})"
    assert torch.equal(tm.predict(case, x, sigma), full), "restoring the block did not restore the model"


def test_every_family_module_this_release_has_imports():
    """A family's module that exists on this ComfyUI but fails to import is a failure, not a missing family."""
    assert tm.BROKEN_ARCHS == {}, tm.BROKEN_ARCHS
