"""Builds the demo model with ComfyUI's own classes, as a loader would.

Architecture: ``comfy.ldm.flux.model.Flux`` (4 double-stream + 8 single-stream blocks, hidden 96,
3 heads), configured through a subclass of ``comfy.supported_models.FluxSchnell`` (Flux without the
distilled-guidance embedding; ModelType.FLOW, shift 1) whose only changes are the latent format
(the RGB pixels, see pixels.py) and the memory estimate. Sampling, guiders and S²'s block dropping
therefore run through ComfyUI's Flux code: ``("double_block", i)`` / ``("single_block", i)`` dit patches.
"""

from __future__ import annotations

import math
from functools import lru_cache

import comfy.latent_formats
import comfy.ldm.flux.model
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models
import comfy.utils
import torch

from .fit import fit_params
from .pixels import from_model_space, to_model_space
from .spec import EMBEDDINGS_FILE, SPEC, WEIGHTS_FILE, DemoSpec, Prompt


class DemoPixels(comfy.latent_formats.LatentFormat):
    """LATENT = RGB pixels in [0, 1]; the model sees them in [-1, 1]."""

    latent_channels = 3
    latent_dimensions = 2

    def __init__(self):
        # Live previews: the model-space x0 is already RGB in [-1, 1].
        self.latent_rgb_factors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        self.latent_rgb_factors_bias = None

    def process_in(self, latent):
        return to_model_space(latent)

    def process_out(self, latent):
        return from_model_space(latent)


class DemoFluxConfig(comfy.supported_models.FluxSchnell):
    """Flux (no guidance embedding, plain flow sampling with shift 1) on 3-channel pixel latents."""

    latent_format = DemoPixels
    memory_usage_factor = 0.05
    supported_inference_dtypes = [torch.float32]


def model_config(spec: DemoSpec = SPEC) -> DemoFluxConfig:
    """The demo's configuration, with exactly the Flux parameters the running ComfyUI declares."""
    config = DemoFluxConfig(fit_params(comfy.ldm.flux.model.FluxParams, spec.architecture, keep=("image_model",)))
    config.set_inference_dtype(torch.float32, None)
    return config


def build_model(spec: DemoSpec = SPEC, device=None):
    """A ``model_base.Flux`` with uninitialised weights (ComfyUI's ops skip initialisation)."""
    return model_config(spec).get_model({}, device=device)


def load_state_dict(path=WEIGHTS_FILE, config: DemoFluxConfig | None = None) -> dict[str, torch.Tensor]:
    """The weights as the running ComfyUI's Flux names them: the file keeps the names it was trained
    with, and the model configuration's own state-dict conversion renames what changed since (QK-norm
    ``.scale`` -> ``.weight`` in newer releases), as it does for any Flux checkpoint."""
    sd = comfy.utils.load_torch_file(str(path), safe_load=True)
    sd = (config or model_config()).process_unet_state_dict(sd)
    return {k: v.float() for k, v in sd.items()}


def load_patcher(path=WEIGHTS_FILE, spec: DemoSpec = SPEC) -> comfy.model_patcher.ModelPatcher:
    """The shipped model as a MODEL (a ModelPatcher), loaded like core's UNETLoader does."""
    config = model_config(spec)
    sd = load_state_dict(path, config)
    load_device = comfy.model_management.get_torch_device()
    offload_device = comfy.model_management.unet_offload_device()
    model = config.get_model({}).to(offload_device)
    missing, unexpected = model.diffusion_model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"demo weights {path} do not fit the demo architecture: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def block_count(spec: DemoSpec = SPEC) -> int:
    arch = spec.architecture
    return int(arch["depth"]) + int(arch["depth_single_blocks"])


# -- prompt embeddings ---------------------------------------------------------------------------

class PromptEmbeddings(torch.nn.Module):
    """Three slot tables (digit, foreground, background), each with a last null row. A prompt's
    CONDITIONING: cross-attention tokens [B, 3, D] (one per slot) and ``pooled_output`` [B, 3*D]."""

    def __init__(self, spec: DemoSpec = SPEC):
        super().__init__()
        d = spec.embedding_dim
        self.digit = torch.nn.Embedding(11, d)
        self.fg = torch.nn.Embedding(len(spec.colour_names) + 1, d)
        self.bg = torch.nn.Embedding(len(spec.colour_names) + 1, d)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.stack([self.digit(ids[:, 0]), self.fg(ids[:, 1]), self.bg(ids[:, 2])], dim=1)
        return tokens, tokens.flatten(1)


@lru_cache(maxsize=4)
def _embeddings(path: str) -> PromptEmbeddings:
    table = PromptEmbeddings()
    sd = comfy.utils.load_torch_file(path, safe_load=True)
    table.load_state_dict({k: v.float() for k, v in sd.items()})
    return table.eval().requires_grad_(False)


def conditioning(prompts: list[Prompt], path=EMBEDDINGS_FILE, spec: DemoSpec = SPEC) -> list:
    """A ComfyUI CONDITIONING for a batch of prompts (one row each)."""
    tokens, pooled = _embeddings(str(path))(spec.token_ids(prompts))
    return [[tokens.clone(), {"pooled_output": pooled.clone()}]]


def init_weights(diffusion_model: torch.nn.Module, generator: torch.Generator) -> None:
    """The training initialisation (DiT-style adaLN-zero): Xavier-uniform matrices, zero biases,
    unit norm scales, zero modulation and output layers, so every block starts as the identity."""
    with torch.no_grad():
        for name, p in diffusion_model.named_parameters():
            if p.ndim >= 2:
                fan_out, fan_in = p.shape[0], p[0].numel()
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
        for name, module in diffusion_model.named_modules():
            if name.endswith(("_mod.lin", "modulation.lin", "adaLN_modulation.1")) or name == "final_layer.linear":
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
