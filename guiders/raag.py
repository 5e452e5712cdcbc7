"""RAAG's two formulas, as small pure-torch functions (arXiv 2508.03442, official code).

    rho = ||v_c - v_u|| / ||v_u||            (plain L2 norms, velocity space)
    w   = 1 + (w_max - 1) * exp(-alpha * rho)

ComfyUI hands the guider denoised (x0) predictions D = a(sigma)*x - b(sigma)*v, where v is the
network output and a, b are per-sample scalars. So v_c - v_u = -(D_c - D_u) / b and
v_u = (a*x - D_u) / b: b cancels and rho = ||D_c - D_u|| / ||D_u - a*x||. ``anchor`` is a*x, the
denoised value of a zero network output; it is x itself for flow (CONST) and EPS models, which gives
the issue's rho = ||D_c - D_u|| / ||x - D_u||. Never measure rho between x0 predictions alone.
"""

from __future__ import annotations

import torch

EPS = 1e-8
# A non-finite ratio (NaN/inf in a prediction) is treated as "very large": w -> 1, no amplification.
_LARGE = 1e30


def guidance_ratio(
    cond: torch.Tensor, uncond: torch.Tensor, anchor: torch.Tensor, mode: str = "per_sample"
) -> torch.Tensor:
    """rho for each sample, shape [B], in fp32. ``mode="batch"`` takes one norm over the whole batch
    (the official code's choice) and repeats it for every sample."""
    delta = cond.float() - uncond.float()
    base = uncond.float() - anchor.float()
    if mode == "batch":
        num = torch.linalg.vector_norm(delta).expand(delta.shape[0])
        den = torch.linalg.vector_norm(base).expand(delta.shape[0])
    else:
        num = torch.linalg.vector_norm(delta.flatten(1), dim=1)
        den = torch.linalg.vector_norm(base.flatten(1), dim=1)
    return num / den.clamp_min(EPS)


def raag_scale(rho: torch.Tensor, w_max: float, alpha: float) -> torch.Tensor:
    """w = 1 + (w_max - 1) * exp(-alpha * rho), elementwise; always finite and within [1, w_max]."""
    rho = torch.nan_to_num(rho.float(), nan=_LARGE, posinf=_LARGE, neginf=0.0)
    return 1.0 + (w_max - 1.0) * torch.exp(-alpha * rho)


def per_sample_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, ...] broadcastable against ``like`` (4-D images, 5-D video, packed latents)."""
    return values.to(like.dtype).view([-1] + [1] * (like.ndim - 1))
