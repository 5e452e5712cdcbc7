"""Guidance math and model plumbing. Nodes (in ../nodes) only build these objects."""

from .base import GuidanceGuider, RAAGGuider, RAAGS2Guider, S2Guider
from .blocks import ARCHITECTURES, UnsupportedModelError
from .config import RANGES, RATIO_MODES, RAAGConfig, S2Config, StepWindow

__all__ = [
    "ARCHITECTURES", "GuidanceGuider", "RAAGConfig", "RAAGGuider", "RAAGS2Guider", "RANGES", "RATIO_MODES",
    "S2Config", "S2Guider", "StepWindow", "UnsupportedModelError",
]
