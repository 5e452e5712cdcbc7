"""Inputs shared by the guider nodes, with their tooltips, built from the ranges in guiders.config."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

from comfy_api.latest import io

from ..guiders.compat import core_category, schema_accepts
from ..guiders.config import RANGES, RATIO_MODES, StepWindow, check

# Our guiders sit beside core's: the category of core's own CFGGuider node on the running ComfyUI
# (it moved from sampling/custom_sampling/guiders to model/sampling/guiders in newer releases).
CATEGORY = core_category("comfy_extras.nodes_custom_sampler", "CFGGuider", "sampling/custom_sampling/guiders")
NODE_PREFIX = "RAAGS2Guidance_"


def number(name: str, default: float, step: float, tooltip: str) -> io.Float.Input:
    allowed = RANGES[name]
    low = allowed.low + step if allowed.low_open else allowed.low
    high = allowed.high - step if allowed.high_open else allowed.high
    return io.Float.Input(name, default=default, min=low, max=high, step=step, round=step / 10, tooltip=tooltip)


def model_and_conds() -> list:
    return [
        io.Model.Input("model", tooltip="The diffusion model to guide. Both methods are made for flow-matching "
                       "models (SD3.5, Flux, Chroma, Qwen-Image, Wan, HunyuanVideo, LTXV, Lumina2, HiDream...)."),
        io.Conditioning.Input("positive", tooltip="The prompt's conditioning: what to guide towards."),
        io.Conditioning.Input("negative", tooltip="Negative / unconditional conditioning, evaluated every step "
                              "(an empty prompt gives the papers' setting)."),
    ]


def raag_inputs() -> list:
    return [
        number("w_max", 18.0, 0.1, "RAAG's largest guidance scale, used when the conditional and unconditional "
               "velocities agree (rho = 0). Paper default 18 (SD3.5-Large, 10 steps). Recommended 8-20; lower it "
               "if images look over-saturated."),
        number("alpha", 12.0, 0.1, "How fast the scale falls as the ratio rho = ||v_c - v_u|| / ||v_u|| grows: "
               "w = 1 + (w_max - 1) * exp(-alpha * rho). Paper default 12. Recommended 5-20; 0 gives constant "
               "CFG at w_max."),
        io.Combo.Input("ratio_mode", options=list(RATIO_MODES), default="per_sample",
                       tooltip="per_sample: each image's own ratio, so an image never depends on its batch "
                       "mates (recommended). batch: one ratio over the whole batch, as the official code "
                       "(identical for batch size 1)."),
    ]


def window(what: str, outside: str) -> list:
    units = ("ComfyUI's percent of the noise schedule, as core's start_percent/end_percent: 0 = the highest "
             "noise, 1 = none; percent_to_sigma of the model gives the sigma. It equals the fraction of steps "
             "only for some schedulers")
    return [
        number("start_percent", 0.0, 0.01, f"Where {what} starts, in {units}. A step whose sigma lies on an edge "
               f"is inside. Outside [start_percent, end_percent]: {outside}. Default 0."),
        number("end_percent", 1.0, 0.01, f"Where {what} ends, in the same units (1 = the end of the schedule). "
               f"Outside [start_percent, end_percent]: {outside}. Default 1 (the whole schedule)."),
    ]


def s2_inputs() -> list:
    return [
        number("omega", 0.25, 0.01, "Weight of the S² self-guidance term: D = D_u + lambda (D_c - D_u) - omega "
               "(D_sub - D_c). Paper default 0.25 (SD3, SD3.5, Wan). Recommended 0.1-0.5: large values "
               "over-correct. 0 turns S² off (no extra pass)."),
        number("drop_ratio", 0.1, 0.01, "Fraction of the transformer blocks dropped in the sub-network, drawn "
               "anew each step (the first block of each stack is never dropped; at least one block is). "
               "Paper: about 0.1 (1-3 of SD3.5's 24 blocks). Recommended 0.05-0.15."),
    ]


def named(display_name: str, message: str) -> str:
    """A validation message as the UI shows it: the node's display name, then the message (which starts
    with the input's name, as guiders.config writes them), the name given once."""
    prefix = f"{display_name}: "
    return message if message.startswith(prefix) else prefix + message


@contextmanager
def errors_named(display_name: str):
    """Re-raises a ValueError (a bad value that reached ``execute`` through a link) with the node's
    display name in front, as a plain ValueError."""
    try:
        yield
    except ValueError as exc:
        raise ValueError(named(display_name, str(exc))) from None


def check_inputs(display_name: str, **values) -> bool | str:
    """Queue-time check of a node's numbers, for its ``validate_inputs``: True, or one message (after the
    node's display name) naming every bad input and its allowed range, then a reversed or empty step
    window. NaN is caught here: core's own min/max check lets NaN through (every comparison with it is
    False), and core skips that check for the inputs ``validate_inputs`` takes, so every number of the
    node is taken. A linked input arrives as None and is checked when the node runs."""
    problems = []
    for name, value in values.items():
        if value is None:
            continue
        try:
            check(name, value)
        except ValueError as exc:
            problems.append(str(exc))
    start, end = values.get("start_percent"), values.get("end_percent")
    if not problems and start is not None and end is not None:
        try:
            StepWindow(start, end)
        except ValueError as exc:
            problems.append(str(exc))
    return named(display_name, "; ".join(problems)) if problems else True


def with_search_aliases(schema: io.Schema, aliases: list[str]) -> io.Schema:
    """``schema`` with the node-search aliases where the running ComfyUI's schema has that field
    (newer releases); unchanged where it does not (the search then matches the display name only)."""
    if not schema_accepts("search_aliases"):
        return schema
    return dataclasses.replace(schema, search_aliases=list(aliases))
