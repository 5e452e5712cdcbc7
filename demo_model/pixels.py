"""The demo model's latent is the RGB image itself: an exact, trivially invertible pixel map, so no
VAE is trained or needed. A LATENT holds [B, 3, 8, 8] pixels in [0, 1]; the latent format maps
them to [-1, 1] for the model (``process_in``) and back (``process_out``), as ComfyUI does for a
VAE latent's scale and shift. ComfyUI's latents are 1/8 of the image size, so the stock
"Empty Latent Image" node at 64x64 gives the model's 8x8 images."""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_UPSCALE = 64


def latent_to_image(samples: torch.Tensor, upscale: int = 8) -> torch.Tensor:
    """LATENT samples [B, 3, H, W] -> IMAGE [B, H*upscale, W*upscale, 3] in [0, 1] (nearest upscale)."""
    if not isinstance(upscale, int) or not 1 <= upscale <= MAX_UPSCALE:
        raise ValueError(f"upscale must be an integer in [1, {MAX_UPSCALE}], got {upscale!r}")
    if samples.ndim != 4 or samples.shape[1] != 3:
        raise ValueError(
            f"samples: expected a demo-model latent [B, 3, H, W] (the RGB pixels), got shape "
            f"{list(samples.shape)}; sample it with the demo model loaded by 'Demo Model Loader'")
    pixels = samples.float().clamp(0.0, 1.0)
    if upscale > 1:
        pixels = F.interpolate(pixels, scale_factor=upscale, mode="nearest")
    return pixels.permute(0, 2, 3, 1).contiguous()


def to_model_space(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 0.5) * 2.0


def from_model_space(latent: torch.Tensor) -> torch.Tensor:
    return latent * 0.5 + 0.5
