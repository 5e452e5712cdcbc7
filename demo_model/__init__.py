"""The pack's own demo model: a 12-block Flux-architecture flow-matching model of coloured 8x8
digits, small enough to sample on any CPU. See docs/demo_model.md.

- ``spec``: the vocabulary and colours (from config.json), prompt parsing, rendering of digits.
- ``model``: builds the model through ``comfy.supported_models`` and loads the shipped weights.
- ``pixels``: the exact pixel <-> latent map (the latent *is* the RGB image) and decoding.
- ``measure``: attribute measurement (colours from pixels, digit from a small classifier) and a
  Frechet distance, used by the demo, the benchmark and the tests; never by the nodes.
"""

from .spec import SPEC, DemoSpec, Prompt, parse_prompt

__all__ = ["SPEC", "DemoSpec", "Prompt", "parse_prompt"]
