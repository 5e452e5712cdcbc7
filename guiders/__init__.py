"""Guidance math and model plumbing. Nodes (in ../nodes) only build these objects."""

from .blocks import ARCHITECTURES, IgnoredDropError, UnsupportedModelError
from .config import RANGES, RATIO_MODES, RAAGConfig, S2Config, StepWindow
from .engine import CompositionError, Guidance, GuidanceGuider, apply, guidance_of

__all__ = [
    "ARCHITECTURES", "CompositionError", "Guidance", "GuidanceGuider", "IgnoredDropError", "RAAGConfig", "RANGES",
    "RATIO_MODES", "S2Config", "StepWindow", "UnsupportedModelError", "apply", "guidance_of",
]
