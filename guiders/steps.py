"""Which sampler step a model call belongs to, and whether a step window is active, without reading
a tensor on the device (no host synchronisation per step).

The schedule is taken once per run from the sigmas handed to ``sample()`` (a CPU tensor in ComfyUI
graphs). The current step advances with the sampler's per-step callback, the signal ComfyUI's progress
bar and previews use: a call made after the callback of step i belongs to step i + 1. For one-call
samplers (euler, dpmpp_2m, uni_pc...) that is the step being taken; heun-like samplers report step i
between their two calls, so the second call, evaluated at sigma_(i+1), counts towards step i + 1.
Either way a call's step is the schedule position of the sigma it evaluates, which is what the step
windows and S²'s per-step masks are defined on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import StepWindow


class StepClock:
    def __init__(self, sigmas: torch.Tensor):
        schedule = sigmas.detach().reshape(-1, sigmas.shape[-1])[0]
        self.sigmas: list[float] = [float(s) for s in schedule.cpu().tolist()]
        self.step = 0

    @property
    def last_step(self) -> int:
        return max(len(self.sigmas) - 2, 0)

    @property
    def sigma(self) -> float:
        return self.sigmas[min(self.step, len(self.sigmas) - 1)]

    def completed(self, step: int) -> None:
        self.step = min(int(step) + 1, self.last_step)

    def wrap(self, callback: Callable | None) -> Callable:
        """The sampler callback to pass on: advances the clock, then calls the original (if any)."""

        def on_step(step, x0, x, total_steps):
            self.completed(step)
            if callback is not None:
                return callback(step, x0, x, total_steps)

        return on_step


def window_sigmas(model_sampling, window: StepWindow) -> tuple[float, float]:
    """(highest, lowest) sigma of a percent window, as core's SkipLayerGuidance computes them."""
    return float(model_sampling.percent_to_sigma(window.start_percent)), float(
        model_sampling.percent_to_sigma(window.end_percent)
    )


def in_window(sigma: float, bounds: tuple[float, float]) -> bool:
    high, low = bounds
    return high >= sigma >= low
