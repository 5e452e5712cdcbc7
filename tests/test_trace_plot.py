"""The Guidance Trace Plot against real sampling: its model-pass count equals what a counted run made
(an APPLY_MODEL wrapper on the real model), its title is the guider node's display name, its legend
and S² shading are drawn."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models as tm
import torch
from raag_s2_guidance.nodes.guidance import (
    RAAGGuiderNode,
    RAAGModelPatchNode,
    RAAGS2GuiderNode,
    RAAGS2ModelPatchNode,
    S2GuiderNode,
    S2ModelPatchNode,
)
from raag_s2_guidance.nodes.plot import (
    COLOURS,
    HEIGHT,
    S2_SHADE,
    WIDTH,
    call_counts,
    calls_label,
    draw_trace,
)
from raag_s2_guidance.nodes.trace_plot import GuidanceTracePlotNode, title
from support import ModelCalls

import nodes as comfy_nodes  # ComfyUI's nodes.py: KSampler

COND = 0  # comfy.samplers.COND: the marker of a conditional chunk in transformer_options["cond_or_uncond"]

NODE_SETTINGS = {
    RAAGGuiderNode: {"w_max": 6.0, "alpha": 2.0, "ratio_mode": "per_sample", "start_percent": 0.0,
                     "end_percent": 1.0, "cfg": 5.0},
    S2GuiderNode: {"cfg": 5.0, "omega": 0.25, "drop_ratio": 0.2, "start_percent": 0.1, "end_percent": 0.9},
    RAAGS2GuiderNode: {"w_max": 6.0, "alpha": 2.0, "ratio_mode": "per_sample", "omega": 0.25,
                       "drop_ratio": 0.2, "start_percent": 0.0, "end_percent": 1.0},
}


def node_guider(node, case, patcher, batch):
    positive, negative = tm.conditioning(case.arch, 3, batch), tm.conditioning(case.arch, 4, batch)
    return node.execute(model=patcher, positive=positive, negative=negative, **NODE_SETTINGS[node]).result[0]


def counted_passes(calls: list[dict], batch: int) -> dict[str, int]:
    """Per image, from the model calls that really ran: conditional evaluations of full passes (each
    with its unconditional one), and sub-network passes."""
    for c in calls:  # every chunk of every call holds all the images of the batch
        assert c["rows"] == batch * len(c["cond_or_uncond"]), c
    full = sum(c["cond_or_uncond"].count(COND) for c in calls if c["dropped"] is None)
    uncond = sum(len(c["cond_or_uncond"]) - c["cond_or_uncond"].count(COND) for c in calls if c["dropped"] is None)
    assert uncond == full  # each full pass has both halves
    sub = sum(c["cond_or_uncond"].count(COND) for c in calls if c["dropped"] is not None)
    return {"full": full, "subnetwork": sub}


@pytest.mark.parametrize("node", list(NODE_SETTINGS), ids=lambda n: n.__name__)
@pytest.mark.parametrize("sampler,batch", [("euler", 2), ("heun", 1)])
def test_model_pass_count_equals_a_counted_run(node, sampler, batch):
    case = tm.build("sd3")
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        guider = node_guider(node, case, probe.patcher, batch)
        tm.sample(case, guider, sampler_name=sampler, steps=10, latent=tm.empty_latent("sd3", batch=batch))
        calls = list(probe.calls)
    rows = guider.trace.rows()
    counts = call_counts(rows)
    real = counted_passes(calls, batch)
    assert (counts["full"], counts["subnetwork"]) == (real["full"], real["subnetwork"]), (counts, real)
    # on these models core batches cond + uncond into one call: the passes are the model calls
    assert counts["total"] == len(calls)
    assert counts["steps"] == 10 and counts["full"] == (19 if sampler == "heun" else 10)
    has_s2 = node is not RAAGGuiderNode
    assert (counts["subnetwork"] > 0) == has_s2
    if node is S2GuiderNode:
        assert counts["subnetwork"] < counts["full"]  # the 0.1-0.9 window leaves steps without one
    label = calls_label(rows)
    assert f"{len(calls)} model passes" in label and f"{real['full']} full" in label
    assert (f"{real['subnetwork']} S² sub-network" in label) == has_s2


def colour_pixels(image: torch.Tensor, colour) -> int:
    pixels = (image[0].numpy() * 255).round().astype(np.uint8)
    return int((pixels == np.array(colour, dtype=np.uint8)).all(axis=-1).sum())


@pytest.mark.parametrize("node", list(NODE_SETTINGS), ids=lambda n: n.__name__)
def test_plot_is_titled_with_the_node_and_draws_legend_and_shading(node):
    case = tm.build("sd3")
    guider = node_guider(node, case, case.patcher, 2)
    latent = tm.sample(case, guider, steps=8, latent=tm.empty_latent("sd3", batch=2))
    assert title(guider.guidance.methods, guider=True) == node.define_schema().display_name
    image = GuidanceTracePlotNode.execute(guider=guider, latent={"samples": latent}).result[0]
    assert tuple(image.shape) == (1, HEIGHT, WIDTH, 3)
    assert colour_pixels(image, COLOURS[0]) > 50 and colour_pixels(image, COLOURS[1]) > 50  # two images
    shaded = colour_pixels(image, S2_SHADE)
    if node is RAAGGuiderNode:
        assert shaded == 0
    else:  # S² bands behind both panels, not a hairline
        assert shaded > 0.1 * WIDTH * HEIGHT


def test_title_and_legend_change_the_image():
    case = tm.build("sd3")
    guider = node_guider(S2GuiderNode, case, case.patcher, 1)
    tm.sample(case, guider, steps=6)
    rows = guider.trace.rows()
    untitled, titled = draw_trace(rows), draw_trace(rows, title="S² Guider")
    assert not np.array_equal(untitled, titled)
    assert (untitled[38:58] != 255).any()  # the legend sits above the panels even without a title
    no_s2 = [{**r, "dropped": []} for r in rows]
    assert (draw_trace(no_s2) == np.array(S2_SHADE, dtype=np.uint8)).all(axis=-1).sum() == 0


PATCH_SETTINGS = {
    RAAGModelPatchNode: {k: v for k, v in NODE_SETTINGS[RAAGGuiderNode].items() if k != "cfg"},
    S2ModelPatchNode: {k: v for k, v in NODE_SETTINGS[S2GuiderNode].items() if k != "cfg"},
    RAAGS2ModelPatchNode: NODE_SETTINGS[RAAGS2GuiderNode],
}


@pytest.mark.parametrize("node", list(PATCH_SETTINGS), ids=lambda n: n.__name__)
def test_a_ksampler_graph_feeds_the_plot_through_the_patched_model(node):
    """KSampler on a patched MODEL: the plot node takes that MODEL and draws that run, counted like the
    guider's (its title names the patch node)."""
    case = tm.build("sd3")
    with ModelCalls(case.patcher, watch_blocks=False) as probe:
        model = node.execute(model=probe.patcher, **PATCH_SETTINGS[node]).result[0]
        (out,) = comfy_nodes.KSampler().sample(model, 5, 8, 5.0, "euler", "simple", case.positive, case.negative,
                                               {"samples": tm.empty_latent("sd3", batch=2)}, denoise=1.0)
        calls = list(probe.calls)
    image = GuidanceTracePlotNode.execute(guider=model, latent=out).result[0]
    assert title(model.model_options["transformer_options"]["raag_s2_guidance"].methods, guider=False) == \
        node.define_schema().display_name
    assert tuple(image.shape) == (1, HEIGHT, WIDTH, 3)
    assert colour_pixels(image, COLOURS[0]) > 50 and colour_pixels(image, COLOURS[1]) > 50
    rows = model.model_options["transformer_options"]["raag_s2_guidance"].trace.rows()
    counts, real = call_counts(rows), counted_passes(calls, 2)
    assert (counts["full"], counts["subnetwork"]) == (real["full"], real["subnetwork"]) and counts["steps"] == 8
    assert (colour_pixels(image, S2_SHADE) > 0) == (node is not RAAGModelPatchNode)


def test_plot_without_a_pack_guider_or_patched_model_says_why():
    case = tm.build("sd3")
    latent = {"samples": case.latent}
    for other in (case.patcher, comfy_nodes.KSampler(), None):
        with pytest.raises(ValueError, match="Guidance Trace Plot: guider: expects a guider of this pack or a MODEL"):
            GuidanceTracePlotNode.execute(guider=other, latent=latent)


def test_a_clone_of_a_patched_model_keeps_the_methods_with_a_trace_of_its_own():
    """A node after the patch (LoRA...) clones the MODEL: core copies model_options (deeply, or in newer
    releases its dicts and lists only). The clone samples with the same methods and records its own trace;
    the trace's tensors are not copied."""
    import copy

    from raag_s2_guidance.guiders import guidance_of

    case = tm.build("sd3")
    model = RAAGS2ModelPatchNode.execute(model=case.patcher, **PATCH_SETTINGS[RAAGS2ModelPatchNode]).result[0]
    comfy_nodes.KSampler().sample(model, 5, 4, 5.0, "euler", "simple", case.positive, case.negative,
                                  {"samples": case.latent.clone()}, denoise=1.0)
    original = guidance_of(model)
    clone = model.clone()
    copied = guidance_of(clone)
    assert copied is not original and (copied.raag, copied.s2) == (original.raag, original.s2)
    assert len(original.trace) == 4 and len(copied.trace) == 0
    comfy_nodes.KSampler().sample(clone, 5, 3, 5.0, "euler", "simple", case.positive, case.negative,
                                  {"samples": case.latent.clone()}, denoise=1.0)
    assert len(copied.trace) == 3 and len(original.trace) == 4
    assert len(copy.deepcopy(original).trace) == 0
