"""Which noise level a model call evaluates, so that step windows and S²'s masks follow it.

Every decision of a call (inside a window or not, which blocks S² drops) is keyed by the sigma that
call evaluates. Two ways to know it:

- **Counted, no host read.** For samplers whose calls follow a fixed pattern over the schedule, the
  call's position gives it: one call per step at sigma_i (euler, dpmpp_2m, lms, ...), or heun's
  pattern (sigma_0, then sigma_(i+1) twice per step). Those samplers are listed in ``PATTERNS`` by
  their k-diffusion function; ``tests/test_samplers.py`` checks, for every sampler name of the running
  ComfyUI, that a listed one really evaluates the counted sigma at every call.
- **Read from the call.** Every other sampler (multistep SDE solvers, dpm_2's midpoints, adaptive
  ones, a custom SAMPLER, a sampler with options such as s_churn) evaluates sigmas it computes itself.
  There the call's sigma is read from ``timestep`` on the host: one scalar per model call, a device
  synchronisation on a GPU, the only correct way (core's SkipLayerGuidance reads it the same way).

The schedule itself is read once per run from the sigmas handed to ``sample()`` (a CPU tensor).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import torch

from .config import StepWindow

# k-diffusion sampler function -> schedule index evaluated by the call with index k.
_ONE_PER_STEP: Callable[[int], int] = lambda k: k  # noqa: E731
_HEUN: Callable[[int], int] = lambda k: (k + 1) // 2  # noqa: E731
PATTERNS: dict[str, Callable[[int], int]] = {
    **{name: _ONE_PER_STEP for name in (
        "sample_euler", "sample_euler_cfg_pp", "sample_euler_ancestral", "sample_euler_ancestral_cfg_pp",
        "sample_lms", "sample_dpmpp_2m", "sample_dpmpp_2m_cfg_pp", "sample_ddpm", "sample_lcm", "sample_ipndm",
        "sample_ipndm_v", "sample_deis", "sample_res_multistep", "sample_res_multistep_cfg_pp",
        "sample_res_multistep_ancestral", "sample_res_multistep_ancestral_cfg_pp",
        "sample_gradient_estimation", "sample_gradient_estimation_cfg_pp")},
    "sample_heun": _HEUN,
}


def call_pattern(sampler) -> Callable[[int], int] | None:
    """The counted pattern of ``sampler`` (a ComfyUI SAMPLER), or None when its calls must be read.
    Only a stock KSAMPLER without extra options qualifies (options like s_churn move the sigma)."""
    function = getattr(sampler, "sampler_function", None)
    if function is None or getattr(sampler, "extra_options", None):
        return None
    return PATTERNS.get(getattr(function, "__name__", ""))


class CallClock:
    """Per run: the schedule, and the sigma and step of each model call."""

    def __init__(self, sigmas: torch.Tensor, pattern: Callable[[int], int] | None = None):
        schedule = sigmas.detach().reshape(-1, sigmas.shape[-1])[0]
        self.sigmas: list[float] = [float(s) for s in schedule.cpu().tolist()]
        self._descending = [-s for s in self.sigmas]
        self.pattern = pattern
        self.calls = 0

    def locate(self, timestep: torch.Tensor) -> tuple[int, float]:
        """(step, sigma) of the call evaluating ``timestep``: step i is the schedule interval
        (sigma_(i+1), sigma_i] the sigma lies in (0 for a sigma above the schedule)."""
        k = self.calls
        self.calls += 1
        if self.pattern is not None:
            index = min(self.pattern(k), len(self.sigmas) - 1)
            return min(index, max(len(self.sigmas) - 2, 0)), self.sigmas[index]
        sigma = float(timestep.detach().reshape(-1)[0])  # host read: see the module docstring
        return self.step_of(sigma), sigma

    def step_of(self, sigma: float) -> int:
        # sigmas descend; the first index whose sigma is <= the call's, minus one past an exact hit
        position = bisect.bisect_left(self._descending, -sigma)
        if position < len(self.sigmas) and math.isclose(self.sigmas[position], sigma, rel_tol=1e-6):
            step = position
        else:
            step = position - 1
        return min(max(step, 0), max(len(self.sigmas) - 2, 0))


def window_sigmas(model_sampling, window: StepWindow) -> tuple[float, float]:
    """(highest, lowest) sigma of a percent window, as core's SkipLayerGuidance computes them."""
    return float(model_sampling.percent_to_sigma(window.start_percent)), float(
        model_sampling.percent_to_sigma(window.end_percent)
    )


# A step on a window edge is inside: sigmas and percent_to_sigma round differently in float32, so
# the comparison allows for that rounding (a relative 1e-5, far below any two schedule steps' gap).
EDGE_TOLERANCE = 1e-5


def in_window(sigma: float, bounds: tuple[float, float]) -> bool:
    high, low = bounds
    return high * (1 + EDGE_TOLERANCE) >= sigma >= low * (1 - EDGE_TOLERANCE)
