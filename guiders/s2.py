"""S²-Guidance's combination and sub-network sampling, as small pure functions (arXiv 2508.12880).

Camera-ready Eq. 4 / Algorithm 1:  D = D_u + lambda (D_c - D_u) - omega (D_sub - D_c).
The weights sum to 1, so the same formula holds for x0, eps or velocity predictions. (The older
"raw subtraction" form CFG - omega * D_sub does not, and shrinks x0 predictions: not used here.)
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import torch

_MASK64 = (1 << 64) - 1


def s2_term(cond: torch.Tensor, sub: torch.Tensor, omega: float) -> torch.Tensor:
    """The S² correction -omega (D_sub - D_c) that is added to the CFG result."""
    return (cond - sub) * omega


def subnetwork_deviation(cond: torch.Tensor, uncond: torch.Tensor, sub: torch.Tensor) -> torch.Tensor:
    """||D_sub - D_c|| / ||D_c - D_u|| per sample: how far the sub-network moved the prediction,
    relative to the whole CFG signal (S² assumes a dropped block is a mild perturbation)."""
    num = torch.linalg.vector_norm((sub.float() - cond.float()).flatten(1), dim=1)
    den = torch.linalg.vector_norm((cond.float() - uncond.float()).flatten(1), dim=1)
    return num / den.clamp_min(1e-8)


def _mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps), stable across runs and platforms."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (value & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state


def dropped_count(eligible: int, ratio: float) -> int:
    """ratio * eligible rounded half up (2.5 -> 3; Python's round() would give 2), at least one, at most
    ``eligible``."""
    return min(eligible, max(1, math.floor(ratio * eligible + 0.5)))


def draw_mask(
    eligible: Sequence[tuple[str, int]], ratio: float, seed: int, step_sigma: float
) -> tuple[tuple[str, int], ...]:
    """Picks the blocks to drop at one step, uniformly at random from ``eligible``.

    The generator is seeded from the sampling seed and the step, on the CPU (no device sync). The
    step is identified by its sigma in the schedule rather than its index, so a schedule split over
    two samplers (split sigmas) draws the same masks as the whole schedule in one sampler. The same
    seed gives the same masks; a different seed, different ones.
    """
    count = dropped_count(len(eligible), ratio)
    # the sigma's float32 bits: the value a model call sees, whether counted from the schedule or read
    step_bits = struct.unpack("<I", struct.pack("<f", float(step_sigma)))[0]
    generator = torch.Generator(device="cpu")
    generator.manual_seed(_mix(int(seed), step_bits, 0x5332))
    order = torch.randperm(len(eligible), generator=generator)[:count].tolist()
    return tuple(eligible[i] for i in sorted(order))
