"""The demo model's nodes: loader, prompt, decode. The logic lives in ../demo_model."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from .base import PackNode, errors_named, named

MAX_PROMPTS = 64


class DemoNode(PackNode):
    MENU = "RAAGS2Guidance/demo"
    ALIASES = ("demo", "tiny model", "digits", "RAAG demo", "S2 demo", "cpu demo")


class DemoModelLoaderNode(DemoNode):
    NODE_ID, DISPLAY_NAME = "DemoModelLoader", "Demo Model Loader (RAAG/S²)"
    ABOUT = ("Loads the pack's own tiny demo model (shipped in demo_model/, 5 MB): ComfyUI's Flux architecture with "
             "4 double + 8 single blocks (hidden 96), trained by flow matching on 8x8 digits rendered as '<colour> "
             "<digit> on <colour>'. Its latent is the RGB image itself, so no VAE is needed: decode with 'Demo "
             "Decode'. Samples on any CPU in well under a second per step.")

    @classmethod
    def outputs(cls) -> list:
        return [io.Model.Output(tooltip="The demo model; use it with the stock samplers and any guider.")]

    @classmethod
    def execute(cls) -> io.NodeOutput:
        from ..demo_model.model import load_patcher

        return io.NodeOutput(load_patcher())


def _parse_lines(prompts: str) -> list:
    from ..demo_model import SPEC

    lines = [line.strip() for line in prompts.splitlines()] if prompts.strip() else [""]
    lines = [line for line in lines if line] or [""]
    if len(lines) > MAX_PROMPTS:
        raise ValueError(f"prompts: at most {MAX_PROMPTS} lines (one image each), got {len(lines)}")
    parsed = []
    for number, line in enumerate(lines, start=1):
        try:
            parsed.append(SPEC.parse(line))
        except ValueError as exc:
            raise ValueError(f"prompts, line {number}: {exc}") from None
    return parsed


class DemoPromptNode(DemoNode):
    NODE_ID, DISPLAY_NAME = "DemoPrompt", "Demo Prompt (RAAG/S²)"
    ABOUT = ("Turns prompts for the demo model into CONDITIONING, from the prompt embeddings shipped beside it (no "
             "text encoder). One prompt per line, each '[colour] [digit] [on colour]' with every part optional, e.g. "
             "'red 7 on blue', '3', 'yellow on black'. An empty text is the unconditional prompt (use it as the "
             "negative). Also gives an empty latent with one 8x8 image per line.")

    @classmethod
    def inputs(cls) -> list:
        return [io.String.Input("prompts", multiline=True, default="red 7 on blue",
                                tooltip="One prompt per line: '[colour] [digit] [on colour]'. Colours: black, "
                                "gray, white, red, orange, yellow, green, cyan, blue, purple; digits 0-9 or "
                                "zero-nine. Empty: the unconditional prompt. At most 64 lines.")]

    @classmethod
    def outputs(cls) -> list:
        return [io.Conditioning.Output(display_name="conditioning", tooltip="One conditioning row per line (a batch)."),
                io.Latent.Output(display_name="empty_latent",
                                 tooltip="An empty latent with one 8x8 image per line, for the sampler.")]

    @classmethod
    def validate_inputs(cls, prompts):
        if prompts is None:
            return True
        try:
            _parse_lines(prompts)
        except ValueError as exc:
            return named(cls.DISPLAY_NAME, str(exc))
        return True

    @classmethod
    def execute(cls, prompts) -> io.NodeOutput:
        from ..demo_model import SPEC
        from ..demo_model.model import conditioning

        with errors_named(cls.DISPLAY_NAME):
            parsed = _parse_lines(prompts)
        size = SPEC.image_size
        latent = {"samples": torch.zeros((len(parsed), 3, size, size))}
        return io.NodeOutput(conditioning(parsed), latent)


class DemoDecodeNode(DemoNode):
    NODE_ID, DISPLAY_NAME = "DemoDecode", "Demo Decode (RAAG/S²)"
    ABOUT = ("Turns a demo-model latent into an IMAGE. The latent is the RGB image itself (an exact pixel map, no "
             "VAE), so this only clamps it to [0, 1] and enlarges each pixel to a square.")

    @classmethod
    def inputs(cls) -> list:
        return [io.Latent.Input("samples", tooltip="A latent sampled with the demo model ([B, 3, 8, 8] pixels)."),
                io.Int.Input("upscale", default=8, min=1, max=64,
                             tooltip="Each of the 8x8 pixels becomes an upscale x upscale square (nearest "
                             "neighbour). Default 8 (64x64 images); allowed 1-64.")]

    @classmethod
    def outputs(cls) -> list:
        return [io.Image.Output(tooltip="The images, one per latent in the batch.")]

    @classmethod
    def execute(cls, samples, upscale) -> io.NodeOutput:
        from ..demo_model.pixels import latent_to_image

        return io.NodeOutput(latent_to_image(samples["samples"], upscale))
