"""Typed, validated settings of the two methods.

The allowed ranges live here once: the nodes build their widgets from ``RANGES`` and the guiders
re-check every value, so a bad value gets the same clear message from a node, a workflow file or
Python code, always naming the input and the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Range:
    """Closed bounds: the widget's min and max are exactly these, so the UI, the queue-time check and the
    guiders accept the same values."""

    low: float
    high: float

    def describe(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"

    def contains(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high


RANGES: dict[str, Range] = {
    "cfg": Range(0.0, 100.0),
    "w_max": Range(1.0, 100.0),
    "alpha": Range(0.0, 100.0),
    "rescale": Range(0.0, 1.0),
    "omega": Range(0.0, 10.0),
    "drop_ratio": Range(0.01, 0.99),
    "start_percent": Range(0.0, 1.0),
    "end_percent": Range(0.0, 1.0),
}

RATIO_MODES = ("per_sample", "batch")
CHOICES: dict[str, tuple[str, ...]] = {"ratio_mode": RATIO_MODES}


def check(name: str, value):
    """Returns ``value`` as a float (or, for a choice input, the option), or raises ValueError naming the
    input and its allowed range (options)."""
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise ValueError(f"{name} must be one of {', '.join(CHOICES[name])}, got {value!r}")
        return value
    allowed = RANGES[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in {allowed.describe()}, got {value!r}") from None
    if not allowed.contains(number):
        raise ValueError(f"{name} must be in {allowed.describe()}, got {number:g}")
    return number


@dataclass(frozen=True)
class StepWindow:
    """The part of the schedule a method acts on, in ComfyUI's percent units (the same ones as core's
    start_percent/end_percent widgets): a percent of the model's noise schedule, turned into a sigma by
    ``model_sampling.percent_to_sigma`` (0 = the highest noise, 1 = none). It equals the fraction of
    steps only for some schedulers."""

    start_percent: float = 0.0
    end_percent: float = 1.0

    def __post_init__(self):
        start = check("start_percent", self.start_percent)
        end = check("end_percent", self.end_percent)
        if start >= end:
            raise ValueError(
                f"start_percent ({start:g}) must be below end_percent ({end:g}): the step window would be empty"
            )
        object.__setattr__(self, "start_percent", start)
        object.__setattr__(self, "end_percent", end)


@dataclass(frozen=True)
class RAAGConfig:
    """Ratio-aware adaptive guidance, MAMBO-G since the paper's v4 (arXiv 2508.03442):
    w = 1 + (w_max - 1) * exp(-alpha * rho), and optionally diffusers' rescale of the guided prediction."""

    w_max: float = 18.0
    alpha: float = 12.0
    ratio_mode: str = "per_sample"  # "batch": one ratio over the whole batch, as the authors' SD3.5 code
    window: StepWindow = field(default_factory=StepWindow)
    rescale: float = 0.0  # phi: 0 = off (the paper's SD3.5 setting), 1 = the authors' Qwen-Image setting

    def __post_init__(self):
        object.__setattr__(self, "w_max", check("w_max", self.w_max))
        object.__setattr__(self, "alpha", check("alpha", self.alpha))
        object.__setattr__(self, "rescale", check("rescale", self.rescale))
        check("ratio_mode", self.ratio_mode)


@dataclass(frozen=True)
class S2Config:
    """S²-Guidance (arXiv 2508.12880, Eq. 4): one extra conditional pass through a sub-network with
    ``drop_ratio`` of the eligible blocks skipped, weighted by ``omega``."""

    omega: float = 0.25
    drop_ratio: float = 0.1
    window: StepWindow = field(default_factory=StepWindow)

    def __post_init__(self):
        object.__setattr__(self, "omega", check("omega", self.omega))
        object.__setattr__(self, "drop_ratio", check("drop_ratio", self.drop_ratio))
