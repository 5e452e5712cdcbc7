"""RAAG's (MAMBO-G's) formulas, as small pure-torch functions (arXiv 2508.03442; the authors' code and
diffusers' ``mambo_guidance``).

    rho = ||v_c - v_u|| / ||v_u||            (plain L2 norms per sample, velocity space)
    w   = 1 + (w_max - 1) * exp(-alpha * rho)
    rescale phi (optional, diffusers' guidance_rescale, Lin et al. 2023 §3.4), per sample:
    v   = phi * v_g * std(v_c) / std(v_g) + (1 - phi) * v_g

(The v4 README writes w = 1 + w_max exp(-alpha rho): that is this formula with w_max + 1.)

rho is measured as the velocity ratio of the equivalent rectified flow, for every prediction type.
ComfyUI hands the guider denoised (x0) predictions D, and its sampler state is x = alpha x0 + beta eps
(flow: alpha = 1 - sigma, beta = sigma; EPS / v-prediction / EDM latents: alpha = 1, beta = sigma).
The same state on the flow path is x_f = x / (alpha + beta) = (1 - t) x0 + t eps, t = beta / (alpha + beta),
whose velocity is v = eps - x0 = (x_f - x0) / t. So v_c - v_u = (D_u - D_c) / t and v_u = (x_f - D_u) / t:
t cancels and rho = ||D_c - D_u|| / ||x_f - D_u||. ``flow_anchor`` gives x_f, asking the model's own
``noise_scaling`` for alpha and beta (x itself for flow models; x / (1 + sigma) for EPS-type latents,
where an eps-space ratio would fall like 1/sigma at high noise and pin w at w_max exactly where RAAG
should damp). Never measure rho between x0 predictions alone.
"""

from __future__ import annotations

import torch

EPS = 1e-8
# A non-finite ratio (NaN/inf in a prediction) is treated as "very large": w -> 1, no amplification.
_LARGE = 1e30


def flow_anchor(model_sampling, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x as the state of the equivalent rectified flow, x / (alpha + beta) (see the module docstring).
    Stays on x's device; one tiny elementwise op per call, no host read."""
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    ones = torch.ones(shape, device=x.device, dtype=torch.float32)
    zeros = torch.zeros(shape, device=x.device, dtype=torch.float32)
    sigma = sigma.float()
    alpha = model_sampling.noise_scaling(sigma, zeros.clone(), ones.clone())
    beta = model_sampling.noise_scaling(sigma, ones.clone(), zeros.clone())
    return x.float() / (alpha + beta)


def guidance_ratio(
    cond: torch.Tensor, uncond: torch.Tensor, anchor: torch.Tensor, mode: str = "per_sample",
    region: torch.Tensor | None = None,
) -> torch.Tensor:
    """rho for each sample, shape [B], in fp32. ``mode="batch"`` takes one norm over the whole batch
    (the official code's choice) and repeats it for every sample. ``region`` (an inpainting mask in
    latent shape, 1 = repainted) restricts both norms to the part being generated: the kept part is
    pasted back after every step, and its prompt response would otherwise dilute rho."""
    delta = cond.float() - uncond.float()
    base = uncond.float() - anchor.float()
    if region is not None:
        region = region.float()
        delta, base = delta * region, base * region
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


def rescale_guided(guided: torch.Tensor, cond: torch.Tensor, anchor: torch.Tensor, phi: float) -> torch.Tensor:
    """diffusers' ``rescale_noise_cfg`` of the guided prediction against the conditional one, in the velocity
    frame of the equivalent flow (see the module docstring), for denoised predictions D: v = (x_f - D) / t, so
    std(v_c) / std(v_g) = std(x_f - D_c) / std(x_f - D_g) per sample (t cancels) and the rescaled velocity
    s v_g, s = 1 + phi (std_c / std_g - 1), is D = x_f - s (x_f - D_g). Unbiased std over all non-batch dims,
    in fp32; a guided prediction with no spread (std 0) is left as it is."""
    v_g = anchor.float() - guided.float()
    v_c = anchor.float() - cond.float()
    dims = list(range(1, v_g.ndim))
    std_g, std_c = v_g.std(dim=dims, keepdim=True), v_c.std(dim=dims, keepdim=True)
    ratio = torch.where(std_g > 0, std_c / std_g.clamp_min(EPS), torch.ones_like(std_g))
    return (anchor.float() - v_g * (1.0 + phi * (ratio - 1.0))).to(guided.dtype)


def per_sample_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, ...] broadcastable against ``like`` (4-D images, 5-D video, packed latents)."""
    return values.to(like.dtype).view([-1] + [1] * (like.ndim - 1))
