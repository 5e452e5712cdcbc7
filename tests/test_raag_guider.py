"""The RAAG guider on real ComfyUI sampling (tiny models of every architecture)."""

from __future__ import annotations

import logging

import pytest
import tiny_models as tm
import torch
from comfy_extras.nodes_cfg import CFGZeroStar
from core_nodes import first
from raag_s2_guidance.guiders import GuidanceGuider, RAAGConfig, StepWindow
from raag_s2_guidance.nodes.guidance import RAAGGuiderNode
from raag_s2_guidance.nodes.trace_plot import GuidanceTracePlotNode
from support import HookRecorder, cfg_guider, conditioning_row, raag_guider


def official_raag_step(v_c, v_u, w_max, alpha):
    """The official code's lines (sd35_step.py), in float64: one norm over the whole half-batch."""
    delta = v_c - v_u
    ratio = torch.linalg.norm(delta) / torch.linalg.norm(v_u)
    w = 1 + (w_max - 1) * torch.exp(-alpha * ratio)
    return v_u + w * delta, w


def close_prompts(arch, seed, batch=1, spread=0.15):
    """A positive and a nearby negative, so that rho is small and w really varies between 1 and w_max."""
    positive = tm.conditioning(arch, seed, batch)
    noise = tm.conditioning(arch, seed + 1, batch)
    negative = [[p[0] + spread * n[0], {**p[1]}] for p, n in zip(positive, noise)]
    return positive, negative


def test_parity_with_the_official_formula_in_batch_mode():
    case = tm.build("sd3")
    positive, negative = close_prompts("sd3", 3, batch=2)
    rec = HookRecorder(case.patcher)
    guider = raag_guider(case, patcher=rec.patcher, w_max=18.0, alpha=12.0, ratio_mode="batch",
                         positive=positive, negative=negative)
    tm.sample(case, guider, steps=8, latent=tm.empty_latent("sd3", batch=2))
    assert len(rec.pre) == len(rec.post) == 8
    ws = []
    for pre, post in zip(rec.pre, rec.post):
        x, sigma = pre["x"].double(), pre["sigma"].double().view(-1, 1, 1, 1)
        v_c, v_u = (x - pre["cond"].double()) / sigma, (x - pre["uncond"].double()) / sigma
        v, w = official_raag_step(v_c, v_u, 18.0, 12.0)
        ws.append(float(w))
        assert torch.allclose(pre["cond_scale"].double().flatten(), w.expand(2), rtol=1e-5, atol=1e-5)
        assert torch.allclose(post["denoised"].double(), x - sigma * v, rtol=1e-5, atol=1e-5)
    # w is in the schedule's curved part (neither ~1 nor ~w_max), so the replay tests the exponential
    assert all(1.5 < w < 17.5 for w in ws), ws


def test_per_sample_equals_batch_mode_for_a_batch_of_one():
    case = tm.build("flux")
    outs = [tm.sample(case, raag_guider(case, ratio_mode=mode, alpha=3.0), steps=6) for mode in ("per_sample", "batch")]
    assert torch.equal(outs[0], outs[1])


def test_batch_of_four_prompts_equals_each_prompt_alone():
    case = tm.build("sd3")
    positive, negative = close_prompts("sd3", 5, batch=4)
    latent = {"samples": tm.empty_latent("sd3", batch=4), "batch_index": [0, 1, 2, 3]}

    def run(mode, pos, neg, lat):
        return tm.sample(case, raag_guider(case, ratio_mode=mode, alpha=3.0, positive=pos, negative=neg),
                         steps=6, latent=lat, seed=11)

    together = run("per_sample", positive, negative, latent)
    for i in range(4):
        alone = run("per_sample", conditioning_row(positive, i), conditioning_row(negative, i),
                    {"samples": tm.empty_latent("sd3"), "batch_index": [i]})
        # batched and single matmuls round differently (~1e-6), and w ~ 17 amplifies that
        assert torch.allclose(together[i:i + 1], alone, atol=tm.BATCH_TOLERANCE), f"sample {i} depends on its batch mates"
    # The official whole-batch norm does couple the samples: the check above can fail.
    coupled = run("batch", positive, negative, latent)
    alone0 = run("batch", conditioning_row(positive, 0), conditioning_row(negative, 0),
                 {"samples": tm.empty_latent("sd3"), "batch_index": [0]})
    assert (coupled[:1] - alone0).abs().max() > 1e-3  # 10x the tolerance above


@pytest.mark.parametrize("arch", ["sd3", "wan21"])
def test_alpha_zero_is_cfg_at_w_max(arch):
    case = tm.build(arch)
    ours = tm.sample(case, raag_guider(case, w_max=6.0, alpha=0.0), steps=6)
    ref = tm.sample(case, cfg_guider(case, 6.0), steps=6)
    assert (ours - ref).abs().max().item() <= 1e-6


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_runs_on_every_architecture(arch):
    case = tm.build(arch)
    guider = raag_guider(case, alpha=2.0)
    out = tm.sample(case, guider, steps=5)
    assert out.shape == case.latent.shape and torch.isfinite(out).all()
    rows = guider.trace.rows()
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(1.0 <= r["w"][0] <= 18.0 and r["rho"][0] >= 0 for r in rows)
    assert not torch.allclose(out, tm.sample(case, cfg_guider(case, 5.0), steps=5))


def rows_sigmas(guider):
    return tm.schedule(guider.model_patcher, steps=10)


@pytest.mark.parametrize("sampler,calls", [("euler", 10), ("heun", 19), ("dpmpp_2m", 10), ("euler_cfg_pp", 10)])
def test_samplers_and_trace_length(sampler, calls):
    case = tm.build("flux")
    guider = raag_guider(case, alpha=2.0)
    out = tm.sample(case, guider, sampler_name=sampler, steps=10)
    assert torch.isfinite(out).all()
    rows = guider.trace.rows()
    assert len(rows) == calls
    assert sorted({r["step"] for r in rows}) == list(range(10))
    if sampler == "heun":  # heun reports step i between its two calls; the second is at sigma_(i+1)
        assert [r["step"] for r in rows][:5] == [0, 1, 1, 2, 2]
    for row in rows:  # a call's step is the schedule position of the sigma it evaluates
        assert row["sigma"][0] == pytest.approx(rows_sigmas(guider)[row["step"]], rel=1e-5)


def test_cfg_plus_plus_sampler_sees_our_unconditional_prediction():
    """euler_cfg_pp reads uncond_denoised from a post-cfg hook that core's cfg_function calls."""
    case = tm.build("sd3")
    plain = tm.sample(case, raag_guider(case, alpha=2.0), sampler_name="euler", steps=6)
    cfgpp = tm.sample(case, raag_guider(case, alpha=2.0), sampler_name="euler_cfg_pp", steps=6)
    assert torch.isfinite(cfgpp).all() and not torch.allclose(plain, cfgpp)


def test_cfg_zero_star_applied_to_the_model():
    case = tm.build("sd3")
    patched = first(CFGZeroStar, model=case.patcher)
    rec = HookRecorder(patched)
    with_zero_star = tm.sample(case, raag_guider(case, patcher=rec.patcher, alpha=2.0), steps=6)
    without = tm.sample(case, raag_guider(case, alpha=2.0), steps=6)
    assert torch.isfinite(with_zero_star).all() and not torch.allclose(with_zero_star, without)
    # post-cfg hooks get core's full argument dict, with the adaptive scale as a per-sample tensor
    assert {"denoised", "cond", "uncond", "cond_scale", "model", "uncond_denoised", "cond_denoised", "sigma",
            "model_options", "input"} <= rec.post[0]["keys"]
    # one image: one scale, a 0-dim tensor (hooks written for a number accept it)
    assert torch.is_tensor(rec.post[0]["cond_scale"]) and rec.post[0]["cond_scale"].ndim == 0


def test_trace_resets_at_every_run():
    case = tm.build("sd3")
    guider = raag_guider(case)
    tm.sample(case, guider, steps=10)
    assert len(guider.trace) == 10
    tm.sample(case, guider, steps=4)
    assert len(guider.trace) == 4 and [r["step"] for r in guider.trace.rows()] == [0, 1, 2, 3]


def test_step_window_uses_plain_cfg_outside():
    case = tm.build("sd3")
    guider = raag_guider(case, cfg=3.0, window=(0.0, 0.5), alpha=2.0)
    tm.sample(case, guider, steps=10)
    sigmas = case.patcher.get_model_object("model_sampling")
    bound = sigmas.percent_to_sigma(0.5)
    rows = guider.trace.rows()
    inside = [r for r in rows if r["sigma"][0] >= bound]
    outside = [r for r in rows if r["sigma"][0] < bound]
    assert inside and outside
    assert all(r["w"] == [3.0] for r in outside)
    assert all(r["w"] != [3.0] for r in inside)


def test_plot_node_draws_the_trace():
    case = tm.build("sd3")
    images = []
    for alpha in (0.5, 5.0):
        guider = raag_guider(case, alpha=alpha)
        latent = tm.sample(case, guider, steps=10)
        images.append(GuidanceTracePlotNode.execute(guider=guider, latent={"samples": latent}).result[0])
    for image in images:
        assert image.ndim == 4 and image.shape[0] == 1 and image.shape[-1] == 3
        assert image.min() < 0.5 < image.max()  # not a blank canvas
    assert not torch.equal(images[0], images[1])


def test_non_flow_model_warns_once(caplog):
    case = tm.build("sd15")
    guider = raag_guider(case)
    with caplog.at_level(logging.WARNING):
        tm.sample(case, guider, steps=3)
        tm.sample(case, guider, steps=3)
    warnings = [r for r in caplog.records if "RAAG" in r.getMessage() and "flow" in r.getMessage()]
    assert len(warnings) == 1 and "EPS" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        tm.sample(tm.build("flux"), raag_guider(tm.build("flux")), steps=3)
    assert not [r for r in caplog.records if "RAAG" in r.getMessage()]


@pytest.mark.parametrize("kwargs,message", [
    ({"w_max": 0.5}, "w_max must be in [1, 100], got 0.5"),
    ({"alpha": -1.0}, "alpha must be in [0, 100], got -1"),
    ({"ratio_mode": "mean"}, "ratio_mode must be one of per_sample, batch"),
])
def test_bad_settings_name_the_input_and_range(kwargs, message):
    with pytest.raises(ValueError) as err:
        RAAGConfig(**kwargs)
    assert message in str(err.value)


def test_bad_window_and_missing_negative():
    with pytest.raises(ValueError, match=r"start_percent \(0.8\) must be below end_percent \(0.3\)"):
        StepWindow(0.8, 0.3)
    numbers = dict(w_max=18.0, alpha=12.0, ratio_mode="per_sample", cfg=5.0)
    assert "start_percent" in RAAGGuiderNode.validate_inputs(**numbers, start_percent=0.8, end_percent=0.3)
    assert RAAGGuiderNode.validate_inputs(**numbers, start_percent=0.1, end_percent=0.9) is True
    # linked inputs arrive as None at queue time: checked when the node runs
    assert RAAGGuiderNode.validate_inputs(**{name: None for name in [*numbers, "start_percent", "end_percent"]})
    case = tm.build("sd3")
    with pytest.raises(ValueError, match="negative: the conditioning input is missing"):
        GuidanceGuider(case.patcher, raag=RAAGConfig()).set_conds(case.positive, None)
    with pytest.raises(ValueError, match="w_max"):
        RAAGGuiderNode.execute(model=case.patcher, positive=case.positive, negative=case.negative, w_max=0.0,
                               alpha=12.0, ratio_mode="per_sample", start_percent=0.0, end_percent=1.0, cfg=5.0)
