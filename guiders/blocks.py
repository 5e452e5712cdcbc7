"""How S²-Guidance drops transformer blocks, per architecture: one table, one mechanism per row.

Each architecture is a list of block groups. A group either
- has a ComfyUI "dit" replace-patch key (``double_block`` / ``single_block``): the model's own block
  loop consults ``transformer_options["patches_replace"]["dit"][(key, i)]`` and a patch that returns
  its inputs skips the block (the mechanism of core's SkipLayerGuidanceDiT); or
- has no hook in the model: then ``forward`` of the chosen block instances is overridden with an exact
  pass-through for the duration of one model call (a ``WrappersMP.APPLY_MODEL`` wrapper placed only in
  the sub-network pass's own model_options) and restored in ``finally``. Block lists keep their length
  (HiDream and Chroma index per-block inputs by position).

Block counts are read from the loaded model at run time; nothing here assumes a model size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import comfy.ldm.chroma.model
import comfy.ldm.cosmos.predict2
import comfy.ldm.flux.model
import comfy.ldm.hidream.model
import comfy.ldm.hunyuan_video.model
import comfy.ldm.lightricks.model
import comfy.ldm.lumina.model
import comfy.ldm.modules.attention
import comfy.ldm.modules.diffusionmodules.mmdit
import comfy.ldm.modules.diffusionmodules.openaimodel
import comfy.ldm.qwen_image.model
import comfy.ldm.wan.model
import comfy.model_patcher
import comfy.patcher_extension
import torch

WRAPPER_KEY = "raag_s2_guidance.drop_blocks"
# Set in the sub-network pass's transformer_options (the dropped blocks), so caches and other
# patches can tell that pass from the full ones.
PASS_MARKER = "raag_s2_subnetwork"


def _first_argument(x, *args, **kwargs):
    """Pass-through for blocks called as block(x, ...) -> x (residual blocks: Lumina2, Cosmos, UNet)."""
    return x


def _hidream_block(image_tokens, image_tokens_masks=None, text_tokens=None, *args, **kwargs):
    """Pass-through for HiDream blocks: double-stream ones return (image, text), single-stream ones
    (called with text_tokens=None) return the image tokens."""
    return image_tokens if text_tokens is None else (image_tokens, text_tokens)


def _skip_patch(args, extra):
    """A "dit" replace patch that skips its block: the block's outputs are its inputs."""
    return args


def _attribute(name: str) -> Callable[[torch.nn.Module], Sequence[torch.nn.Module]]:
    return lambda dm: getattr(dm, name)


def _unet_transformer_blocks(dm: torch.nn.Module) -> Sequence[torch.nn.Module]:
    return [m for m in dm.modules() if isinstance(m, comfy.ldm.modules.attention.BasicTransformerBlock)]


@dataclass(frozen=True)
class BlockGroup:
    name: str  # the dit patch key, or a label for the trace
    find: Callable[[torch.nn.Module], Sequence[torch.nn.Module]]  # diffusion model -> its blocks, in order
    passthrough: Callable | None = None  # None: dropped with a dit replace patch named ``name``


@dataclass(frozen=True)
class Architecture:
    label: str
    model_class: type
    groups: tuple[BlockGroup, ...]


def _dit(*groups: tuple[str, str]) -> tuple[BlockGroup, ...]:
    return tuple(BlockGroup(key, _attribute(attr)) for key, attr in groups)


_DOUBLE_SINGLE = _dit(("double_block", "double_blocks"), ("single_block", "single_blocks"))

ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("SD3 / SD3.5 (MMDiT)", comfy.ldm.modules.diffusionmodules.mmdit.MMDiT,
                 _dit(("double_block", "joint_blocks"))),
    Architecture("Flux / Flux Kontext / Flux 2", comfy.ldm.flux.model.Flux, _DOUBLE_SINGLE),
    Architecture("Chroma / Chroma Radiance", comfy.ldm.chroma.model.Chroma, _DOUBLE_SINGLE),
    Architecture("Wan 2.1 / 2.2 (all variants)", comfy.ldm.wan.model.WanModel, _dit(("double_block", "blocks"))),
    Architecture("Qwen-Image", comfy.ldm.qwen_image.model.QwenImageTransformer2DModel,
                 _dit(("double_block", "transformer_blocks"))),
    Architecture("HunyuanVideo / HunyuanImage", comfy.ldm.hunyuan_video.model.HunyuanVideo, _DOUBLE_SINGLE),
    Architecture("LTXV", comfy.ldm.lightricks.model.LTXVModel, _dit(("double_block", "transformer_blocks"))),
    Architecture("Lumina 2 / Z-Image", comfy.ldm.lumina.model.NextDiT,
                 (BlockGroup("layer", _attribute("layers"), _first_argument),)),
    Architecture("HiDream", comfy.ldm.hidream.model.HiDreamImageTransformer2DModel,
                 (BlockGroup("double_stream_block", _attribute("double_stream_blocks"), _hidream_block),
                  BlockGroup("single_stream_block", _attribute("single_stream_blocks"), _hidream_block))),
    Architecture("Cosmos-Predict2", comfy.ldm.cosmos.predict2.MiniTrainDIT,
                 (BlockGroup("block", _attribute("blocks"), _first_argument),)),
    Architecture("SD1.x / SDXL UNet (transformer blocks)", comfy.ldm.modules.diffusionmodules.openaimodel.UNetModel,
                 (BlockGroup("transformer_block", _unet_transformer_blocks, _first_argument),)),
)


class UnsupportedModelError(ValueError):
    pass


def supported_labels() -> str:
    return ", ".join(arch.label for arch in ARCHITECTURES)


def architecture_of(diffusion_model: torch.nn.Module) -> Architecture:
    for arch in ARCHITECTURES:
        if isinstance(diffusion_model, arch.model_class):
            return arch
    cls = type(diffusion_model)
    raise UnsupportedModelError(
        f"S²-Guidance does not support this model ({cls.__module__}.{cls.__qualname__}). Supported "
        f"architectures: {supported_labels()}. RAAG works on any model."
    )


def eligible_blocks(arch: Architecture, diffusion_model: torch.nn.Module) -> list[tuple[str, int]]:
    """Every (group, index) S² may drop: all blocks but the first of each group (the paper never drops
    the first block; for two-stream models that is the first block of each stream)."""
    return [(group.name, i) for group in arch.groups for i in range(1, len(group.find(diffusion_model)))]


@contextmanager
def _passthrough(module: torch.nn.Module, passthrough: Callable):
    """Overrides ``forward`` of one block instance; restores what was there before, even on error."""
    previous = module.__dict__.get("forward")
    module.forward = passthrough
    try:
        yield
    finally:
        if previous is None:
            del module.forward
        else:
            module.forward = previous


def dropping_options(arch: Architecture, model_options: dict, dropped: Sequence[tuple[str, int]]) -> dict:
    """A copy of ``model_options`` in which the ``dropped`` blocks act as identities. The caller's
    dict (and the model's own options) are never modified."""
    options = comfy.model_patcher.create_model_options_clone(model_options)
    options.setdefault("transformer_options", {})[PASS_MARKER] = tuple(dropped)
    by_name = {group.name: group for group in arch.groups}
    overridden = []
    for name, index in dropped:
        group = by_name[name]
        if group.passthrough is None:
            comfy.model_patcher.set_model_options_patch_replace(options, _skip_patch, "dit", name, index)
        else:
            overridden.append((group, index))
    if overridden:
        def drop_blocks(executor, *args, **kwargs):
            diffusion_model = executor.class_obj.diffusion_model
            with _overrides(diffusion_model, overridden):
                return executor(*args, **kwargs)

        comfy.patcher_extension.add_wrapper_with_key(
            comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY, drop_blocks, options, is_model_options=True
        )
    return options


@contextmanager
def _overrides(diffusion_model: torch.nn.Module, chosen: Sequence[tuple[BlockGroup, int]]):
    with ExitStack() as stack:
        for group, index in chosen:
            stack.enter_context(_passthrough(group.find(diffusion_model)[index], group.passthrough))
        yield
