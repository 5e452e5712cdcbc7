"""S² and RAAG with a ControlNet, on the tiny SD3 model and core's own SD3 ControlNet class.

The pack's decision (README, "Limits"): S²'s sub-network pass is a conditional pass like any other, so
core runs the ControlNet in it too (one more ControlNet call per step), and the model still adds a
dropped block's ControlNet residual after it (the block is dropped, not the control). These tests hold
the part that can break: sampling works and stays deterministic, the ControlNet runs once per model
pass (S²'s extra pass included), and it changes the result (it is really applied).
"""

from __future__ import annotations

import comfy.cldm.mmdit
import comfy.controlnet
import comfy.ops
import pytest
import tiny_models as tm
import torch
from raag_s2_guidance import guiders

STEPS = 4


def _tiny_sd3_controlnet(case: tm.TinyCase, seed: int = 5):
    """Core's SD3 ControlNet (comfy.cldm.mmdit.ControlNet) sized like the tiny model, seeded weights,
    wrapped in core's ControlNet hint handling."""
    unet_config = dict(case.patcher.model.model_config.unet_config)
    unet_config.pop("depth", None)
    model = comfy.cldm.mmdit.ControlNet(num_blocks=2, control_latent_channels=16, depth=3,
                                        operations=comfy.ops.disable_weight_init, device="cpu",
                                        dtype=torch.float32, **{k: v for k, v in unet_config.items()
                                                                 if k not in ("image_model", "dtype", "device", "operations")})
    model.load_state_dict(tm._init_weights(model, seed), strict=True)
    # no latent format: the hint is already a latent (core's loader sets one, with a VAE to encode images)
    return comfy.controlnet.ControlNet(model, compression_ratio=1, latent_format=None,
                                      load_device=tm.DEVICE, manual_cast_dtype=None)


def _with_control(conditioning: list, applied) -> list:
    return [[emb, {**extras, "control": applied}] for emb, extras in conditioning]


def _counting(control):
    calls = []
    forward = control.control_model.forward

    def counted(*args, **kwargs):
        calls.append(args[0].shape[0] if args else 1)
        return forward(*args, **kwargs)

    control.control_model.forward = counted
    return calls


def _guider(kind: str, patcher, positive, negative):
    if kind == "raag":
        g = guiders.GuidanceGuider(patcher, raag=guiders.RAAGConfig(8.0, 4.0))
    else:
        g = guiders.GuidanceGuider(patcher, cfg=4.0, s2=guiders.S2Config(0.25, 0.34))
    g.set_conds(positive, negative)
    return g


@pytest.mark.parametrize("kind", ["raag", "s2"])
def test_guiders_sample_with_a_controlnet(kind):
    case = tm.build("sd3")
    control = _tiny_sd3_controlnet(case)
    calls = _counting(control)
    hint = torch.randn((1, 16, 8, 8), generator=torch.Generator().manual_seed(3))
    applied = control.copy().set_cond_hint(hint, 1.0, (0.0, 1.0))  # one for both, as ControlNetApplyAdvanced
    positive, negative = _with_control(case.positive, applied), _with_control(case.negative, applied)

    first = tm.sample(case, _guider(kind, case.patcher, positive, negative), steps=STEPS)
    assert torch.isfinite(first).all()
    per_step = len(calls) / STEPS
    calls.clear()
    again = tm.sample(case, _guider(kind, case.patcher, positive, negative), steps=STEPS)
    assert torch.equal(first, again), "not deterministic with a ControlNet"
    without = tm.sample(case, _guider(kind, case.patcher, case.positive, case.negative), steps=STEPS)
    assert not torch.allclose(first, without), "the ControlNet had no effect"

    # one ControlNet call per model pass: the batched cond+uncond pass, plus S²'s sub-network pass
    assert per_step == (2 if kind == "s2" else 1), per_step
