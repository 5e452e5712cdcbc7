"""S²'s sub-network pass starts at the first dropped block, from what the full pass handed that block
(guiders/blocks.py, ``Prefix``): the same result as the whole sub-network pass, with the prefix's blocks
really skipped, on every architecture whose row allows it, and the whole pass wherever it does not."""

from __future__ import annotations

import comfy.samplers
import pytest
import release_features
import tiny_models as tm
import torch
from core_nodes import first
from raag_s2_guidance.guiders import blocks
from support import ModelCalls, block_modules, raag_s2_guider, s2_guider
from test_controlnet import _tiny_sd3_controlnet, _with_control

STEPS = 4
S2 = dict(omega=0.25, drop_ratio=0.3)
TOL = 1e-6


def _reuse_rows() -> list[str]:
    rows = []
    for arch in tm.ARCHS:
        case = tm.build(arch)
        if blocks.architecture_of(case.patcher.model.diffusion_model).reuse:
            rows.append(arch)
    return rows


REUSE = _reuse_rows()
WHOLE = [a for a in tm.ARCHS if a not in REUSE]


def whole_pass(monkeypatch):
    """The sub-network pass as it ran before reuse: the full pass keeps nothing."""
    monkeypatch.setattr(blocks, "prefix_plan", lambda arch, options, *args: (options, None))


def inpainting(case, batch: int) -> dict:
    shape = (batch, *case.latent.shape[1:])
    mask = torch.zeros((1, 1, 8 * shape[-2], 8 * shape[-1]))
    mask[..., : mask.shape[-1] // 2] = 1.0
    return {"samples": torch.randn(shape, generator=torch.Generator().manual_seed(2)) * 0.5, "noise_mask": mask}


def run(case, guider, *, sampler, batch, inpaint, steps=STEPS):
    latent = inpainting(case, batch) if inpaint else {"samples": tm.empty_latent(case.arch, batch)}
    out = tm.sample(case, guider, latent=latent, sampler_name=sampler, steps=steps, seed=3,
                    denoise=0.8 if inpaint else 1.0)
    return out, guider.trace.rows()


# one-call, two-call (heun), ancestral and SDE (calls read from the sampler) samplers; batch 1 and 3; masks
KINDS = [("euler", 1, False), ("heun", 3, True), ("euler_ancestral", 1, True), ("dpmpp_sde", 3, False)]


class WholeBeside:
    """At every S² call of a real run, also computes the whole sub-network pass (no prefix) on the same
    inputs and records how far the reused one is from it, relative to the prediction's size; and the
    model's own noise floor there: how far the full model's conditional row computed in core's batch
    (beside the unconditional one) is from that row computed alone. The reused pass starts from a row
    computed in that batch, the whole pass from one computed alone."""

    def __init__(self, monkeypatch):
        self.relative: list[float] = []
        self.floor: list[float] = []
        self.reused: list[bool] = []
        original = blocks.subnetwork_prediction

        def both(model, arch, options, dropped, positive, negative, x, timestep, prefix=None):
            args = (model, arch, options, dropped, positive, negative, x, timestep)
            reused = original(*args, prefix=prefix)
            whole = original(*args, prefix=None)
            self.reused.append(prefix is not None and prefix.complete())
            self.relative.append(float((reused - whole).abs().max() / whole.abs().max()))
            batched = comfy.samplers.calc_cond_batch(model, [positive, negative], x, timestep, options)[0]
            alone = comfy.samplers.calc_cond_batch(model, [positive], x, timestep, options)[0]
            self.floor.append(float((batched - alone).abs().max() / alone.abs().max()))
            return reused

        monkeypatch.setattr(blocks, "subnetwork_prediction", both)


@pytest.mark.parametrize("arch", REUSE)
def test_reuse_equals_the_whole_subnetwork_pass(arch, monkeypatch):
    """Per call, D_sub started at the first dropped block equals the whole pass to 1e-6 of its size in fp32,
    or to twice the model's own batch noise where that is larger (a wrong row or block would be off by
    the size of the prediction); end to end the samples agree to that noise, with the same masks."""
    case = tm.build(arch)
    for sampler, batch, inpaint in KINDS:
        with monkeypatch.context() as m:
            beside = WholeBeside(m)
            reused, rows = run(case, s2_guider(case, **S2), sampler=sampler, batch=batch, inpaint=inpaint)
        assert beside.reused and all(beside.reused) and all(r["reused"] for r in rows), sampler
        for relative, floor in zip(beside.relative, beside.floor):
            assert relative <= max(TOL, 2 * floor), (sampler, batch, inpaint, relative, floor)
        with monkeypatch.context() as m:
            whole_pass(m)
            whole, whole_rows = run(case, s2_guider(case, **S2), sampler=sampler, batch=batch, inpaint=inpaint)
        assert not any(r["reused"] for r in whole_rows)
        assert [r["dropped"] for r in rows] == [r["dropped"] for r in whole_rows], "other masks"
        assert float((reused - whole).abs().max() / whole.abs().max()) <= 10 * TOL, (sampler, batch, inpaint)


@pytest.mark.parametrize("arch", [a for a in ("sd3", "flux", "wan21") if a in REUSE])
def test_the_reused_pass_runs_only_the_blocks_after_the_first_dropped_one(arch):
    """Forward hooks on every block count what really ran in each sub-network pass."""
    case = tm.build(arch)
    modules = block_modules(case.patcher)
    order = list(modules)  # groups in table order, blocks in index order: the loop's order
    with ModelCalls(case.patcher) as probe:
        tm.sample(case, raag_s2_guider(case, patcher=probe.patcher, **S2), steps=8)
    subs = [c for c in probe.calls if c["dropped"] is not None]
    assert len(subs) == 8
    for call in subs:
        dropped = [tuple(d) for d in call["dropped"]]
        first_dropped = order.index(dropped[0])
        expected = set(order[first_dropped:]) - set(dropped)
        assert call["ran"] == expected, (dropped, sorted(call["ran"]))
    assert any(order.index(tuple(c["dropped"][0])) > 1 for c in subs), "no step had a prefix to skip"


def test_controlnet_with_reuse_equals_the_whole_pass(monkeypatch):
    """Core's SD3 ControlNet adds a residual after each block: those before the first dropped block are in
    the kept input, those after are added in the sub-network pass as before."""
    case = tm.build("sd3")
    applied = _tiny_sd3_controlnet(case).copy().set_cond_hint(
        torch.randn((1, 16, 8, 8), generator=torch.Generator().manual_seed(3)), 1.0, (0.0, 1.0))
    case = tm.TinyCase(arch=case.arch, patcher=case.patcher, positive=_with_control(case.positive, applied),
                       negative=_with_control(case.negative, applied), latent=case.latent)
    reused, rows = run(case, s2_guider(case, **S2), sampler="euler", batch=1, inpaint=False)
    assert all(r["reused"] for r in rows)
    whole_pass(monkeypatch)
    whole, _ = run(case, s2_guider(case, **S2), sampler="euler", batch=1, inpaint=False)
    assert float((reused - whole).abs().max() / whole.abs().max()) <= 10 * TOL


def test_nag_pairs_keep_both_rows(monkeypatch):
    nodes_nag = release_features.require("nag")
    case = tm.build("flux")
    nag = first(nodes_nag.NAGuidance, model=case.patcher, nag_scale=5.0, nag_alpha=0.25, nag_tau=2.5)
    reused, rows = run(case, s2_guider(case, patcher=nag, **S2), sampler="euler", batch=3, inpaint=False)
    assert all(r["reused"] for r in rows)
    whole_pass(monkeypatch)
    whole, _ = run(case, s2_guider(case, patcher=nag, **S2), sampler="euler", batch=3, inpaint=False)
    assert float((reused - whole).abs().max() / whole.abs().max()) <= 10 * TOL


def test_a_positive_of_two_conds_runs_the_whole_pass(monkeypatch):
    """Two cond entries (ConditioningCombine) are two conditional chunks of the full pass: nothing to
    start from that equals the sub-network pass's one batch, so it runs whole, with the same result."""
    case = tm.build("sd3")
    second = tm.conditioning("sd3", 9)
    case = tm.TinyCase(arch=case.arch, patcher=case.patcher, positive=case.positive + second,
                       negative=case.negative, latent=case.latent)
    out, rows = run(case, s2_guider(case, **S2), sampler="euler", batch=1, inpaint=False)
    assert rows and not any(r["reused"] for r in rows)
    whole_pass(monkeypatch)
    whole, _ = run(case, s2_guider(case, **S2), sampler="euler", batch=1, inpaint=False)
    assert torch.equal(out, whole)


def test_an_area_cond_runs_the_whole_pass_or_an_exact_reuse(monkeypatch):
    """A positive restricted to an area is a crop of the full pass: reuse, where it happens, is exact."""
    case = tm.build("sd3")
    positive = [[emb, {**extras, "area": (8, 8, 0, 0), "strength": 1.0}] for emb, extras in case.positive]
    case = tm.TinyCase(arch=case.arch, patcher=case.patcher, positive=positive + case.positive,
                       negative=case.negative, latent=case.latent)
    out, _ = run(case, s2_guider(case, **S2), sampler="euler", batch=1, inpaint=False)
    whole_pass(monkeypatch)
    whole, _ = run(case, s2_guider(case, **S2), sampler="euler", batch=1, inpaint=False)
    assert float((out - whole).abs().max() / whole.abs().max()) <= 10 * TOL


@pytest.mark.parametrize("arch", WHOLE)
def test_rows_that_cannot_start_mid_way_run_the_whole_pass(arch):
    """Forward-override families (UNet, Lumina 2, HiDream...) and HunyuanDiT's long skips: no reuse."""
    case = tm.build(arch)
    assert not blocks.architecture_of(case.patcher.model.diffusion_model).reuse
    _, rows = run(case, s2_guider(case, **S2), sampler="euler", batch=1, inpaint=False, steps=2)
    assert rows and not any(r["reused"] for r in rows)


def test_several_gpus_run_the_sub_network_pass_on_one():
    """core's multi-GPU split (``multigpu_clones`` in model_options, 0.23+): the full pass keeps nothing
    and the sub-network pass drops the key, as core's DualModelGuider does for its extra pass."""
    case = tm.build("sd3")
    arch = blocks.architecture_of(case.patcher.model.diffusion_model)
    options = {"multigpu_clones": {"cuda:1": object()}, "transformer_options": {}}
    assert blocks.prefix_plan(arch, options, [("double_block", 2)], False, case.patcher.model.diffusion_model) == (
        options, None)
    plan = blocks.drop_plan(arch, options, [("double_block", 2)])
    assert "multigpu_clones" not in plan.options and "multigpu_clones" in options
