"""How S²-Guidance drops transformer blocks, per architecture: one table, one mechanism per row.

Each architecture is a list of block groups. A group either
- has a ComfyUI "dit" replace-patch key (``double_block`` / ``single_block``): the model's own block
  loop consults ``transformer_options["patches_replace"]["dit"][(key, i)]`` and a patch that returns
  its inputs skips the block (the mechanism of core's SkipLayerGuidanceDiT); or
- has no hook in the model: then ``forward`` of the chosen block instances is overridden with an exact
  pass-through for the duration of one model call (a ``WrappersMP.APPLY_MODEL`` wrapper placed only in
  the sub-network pass's own model_options) and restored in ``finally``. Block lists keep their length
  (HiDream and Chroma index per-block inputs by position).

**Prefix reuse.** Up to the first dropped block the sub-network computes exactly what the full network
computes on the same rows. For rows whose groups all have dit hooks (and no state passed from block to
block outside the streams, ``Architecture.reuse``), the full pass keeps what the first dropped block
receives, for the rows the sub-network pass batches (``Prefix``); that pass then skips every block before
it and starts there. Whatever a block loop does between blocks (ControlNet residuals, rope, modulation,
VACE hints) is recomputed in the sub-network pass as before; only the blocks' work is saved. Where the full
pass did not hand the first dropped block those rows exactly once (area or several conds, low-memory
chunking, context windows, a loop that ignores the hook, several GPUs), the pass runs whole, as without
reuse.

Block counts are read from the loaded model at run time; nothing here assumes a model size.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import comfy.ldm.modules.attention
import comfy.model_patcher
import comfy.patcher_extension
import torch

WRAPPER_KEY = "raag_s2_guidance.drop_blocks"
# Set in the sub-network pass's transformer_options (the dropped blocks), so caches and other
# patches can tell that pass from the full ones.
PASS_MARKER = "raag_s2_subnetwork"
# Core's step caches (EasyCache, LazyCache) register their wrappers under these keys. The sub-network
# pass carries the positive prompt's uuid and the same input, so a cache would take it for a second
# pass of that prompt (overwrite its cache, change which steps it skips): that pass runs without them.
STEP_CACHE_KEYS = ("easycache", "lazycache")


def _first_argument(x, *args, **kwargs):
    """Pass-through for blocks called as block(x, ...) -> x (residual blocks: Lumina2, Cosmos, UNet)."""
    return x


def _hidream_block(image_tokens, image_tokens_masks=None, text_tokens=None, *args, **kwargs):
    """Pass-through for HiDream blocks: double-stream ones return (image, text), single-stream ones
    (called with text_tokens=None) return the image tokens."""
    return image_tokens if text_tokens is None else (image_tokens, text_tokens)


def _hidden_and_text(hidden_states, encoder_hidden_states, *args, **kwargs):
    """Pass-through for blocks that return their two streams in the order they take them: CogVideoX's
    (called with keywords: hidden_states=, encoder_hidden_states=) and Boogu's double-stream layers
    (positional: image, text)."""
    return hidden_states, encoder_hidden_states


def _skip_patch(args, extra):
    """A "dit" replace patch that skips its block: the block's outputs are its inputs."""
    return args


@dataclass(frozen=True)
class _Attribute:
    """diffusion model -> the block list named ``name`` (a ``ModuleDict``'s values in order: Cosmos 1's
    "block0", "block1", ...)."""

    name: str

    def __call__(self, dm: torch.nn.Module) -> Sequence[torch.nn.Module]:
        blocks = getattr(dm, self.name)
        return list(blocks.values()) if isinstance(blocks, torch.nn.ModuleDict) else blocks


_attribute = _Attribute


def _unet_transformer_blocks(dm: torch.nn.Module) -> Sequence[torch.nn.Module]:
    return [m for m in dm.modules() if isinstance(m, comfy.ldm.modules.attention.BasicTransformerBlock)]


@dataclass(frozen=True)
class BlockGroup:
    name: str  # the dit patch key, or a label for the trace
    find: Callable[[torch.nn.Module], Sequence[torch.nn.Module]]  # diffusion model -> its blocks, in order
    passthrough: Callable | None = None  # None: dropped with a dit replace patch named ``name``


def _resolve(path: str) -> type | None:
    module, name = path.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


@dataclass(frozen=True)
class Architecture:
    label: str  # the families this row covers (subclasses of model_class included), for messages and README
    model_class: str  # dotted path of the diffusion model class
    groups: tuple[BlockGroup, ...]
    since: str = "0.3.75"  # documentation only: the oldest ComfyUI release of the test matrix with the class
    # Why the sub-network pass cannot start mid-way although every group has a dit hook ("": it can)
    whole_pass: str = ""
    resolved: type | None = field(default=None, compare=False, repr=False)

    @property
    def reuse(self) -> bool:
        """Whether the sub-network pass can start at the first dropped block (see the module docstring)."""
        return not self.whole_pass and all(group.passthrough is None for group in self.groups)

    def __post_init__(self):
        object.__setattr__(self, "resolved", _resolve(self.model_class))


def _dit(*groups: tuple[str, str]) -> tuple[BlockGroup, ...]:
    return tuple(BlockGroup(key, _attribute(attr)) for key, attr in groups)


_DOUBLE_SINGLE = _dit(("double_block", "double_blocks"), ("single_block", "single_blocks"))

# The one table. ``model_class`` is a dotted path: a row whose class the running ComfyUI does not have
# is absent there (``ARCHITECTURES`` holds the rows this version has). A model matches the row of its
# nearest class in its MRO, so a subclass row (e.g. a variant with its own block loop) wins over its base.
TABLE: tuple[Architecture, ...] = (
    Architecture("SD3 / SD3.5 (MMDiT)", "comfy.ldm.modules.diffusionmodules.mmdit.MMDiT",
                 _dit(("double_block", "joint_blocks"))),
    Architecture("Flux / Flux Kontext / Flux 2 / LongCat-Image", "comfy.ldm.flux.model.Flux", _DOUBLE_SINGLE),
    Architecture("Chroma / Chroma Radiance", "comfy.ldm.chroma.model.Chroma", _DOUBLE_SINGLE),
    Architecture("Wan 2.1 / 2.2 (T2V, I2V, VACE, Camera, S2V, HuMo, Animate, Animate2, SCAIL, FlowRVS, WanDancer, causal AR)", "comfy.ldm.wan.model.WanModel", _dit(("double_block", "blocks"))),
    Architecture("Qwen-Image / Qwen-Image-Edit", "comfy.ldm.qwen_image.model.QwenImageTransformer2DModel",
                 _dit(("double_block", "transformer_blocks"))),
    Architecture("HunyuanVideo / HunyuanImage 2.1 / HunyuanVideo 1.5", "comfy.ldm.hunyuan_video.model.HunyuanVideo", _DOUBLE_SINGLE),
    Architecture("LTXV / LTX-2 (LTXAV, (video, audio) streams)", "comfy.ldm.lightricks.model.LTXVModel", _dit(("double_block", "transformer_blocks"))),
    Architecture("Lumina 2 / Z-Image", "comfy.ldm.lumina.model.NextDiT",
                 (BlockGroup("layer", _attribute("layers"), _first_argument),)),
    Architecture("HiDream", "comfy.ldm.hidream.model.HiDreamImageTransformer2DModel",
                 (BlockGroup("double_stream_block", _attribute("double_stream_blocks"), _hidream_block),
                  BlockGroup("single_stream_block", _attribute("single_stream_blocks"), _hidream_block))),
    Architecture("Cosmos-Predict2 / Anima", "comfy.ldm.cosmos.predict2.MiniTrainDIT",
                 (BlockGroup("block", _attribute("blocks"), _first_argument),)),
    Architecture("AuraFlow", "comfy.ldm.aura.mmdit.MMDiT",
                 _dit(("double_block", "double_layers"), ("single_block", "single_layers"))),
    Architecture("HunyuanDiT 1.0 / 1.1", "comfy.ldm.hydit.models.HunYuanDiT", _dit(("double_block", "blocks")),
                 whole_pass="long skip connections carry block outputs past the dit hooks"),
    Architecture("Mochi", "comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint",
                 _dit(("double_block", "blocks"))),
    Architecture("PixArt α / Σ", "comfy.ldm.pixart.pixartms.PixArtMS",
                 (BlockGroup("block", _attribute("blocks"), _first_argument),)),
    Architecture("Cosmos 1", "comfy.ldm.cosmos.model.GeneralDIT",
                 (BlockGroup("block", _attribute("blocks"), _first_argument),)),
    Architecture("OmniGen2", "comfy.ldm.omnigen.omnigen2.OmniGen2Transformer2DModel",
                 (BlockGroup("layer", _attribute("layers"), _first_argument),)),
    # args["x"] is the visual stream (the text stream has its own, never dropped, blocks)
    Architecture("Kandinsky 5 (video, image)", "comfy.ldm.kandinsky5.model.Kandinsky5",
                 _dit(("double_block", "visual_transformer_blocks")), since="0.33.0",
                 whole_pass="core's own original_block of a replaced block fails (ComfyUI 0.33)"),
    Architecture("Lens", "comfy.ldm.lens.model.LensTransformer2DModel",
                 _dit(("double_block", "transformer_blocks")), since="0.33.0"),
    Architecture("MageFlow", "comfy.ldm.mage_flow.model.MageFlowTransformer2DModel",
                 _dit(("double_block", "transformer_blocks")), since="0.33.0"),
    Architecture("JoyImage", "comfy.ldm.joyimage.model.JoyImageTransformer3DModel",
                 _dit(("double_block", "double_blocks")), since="0.33.0"),
    Architecture("Krea2", "comfy.ldm.krea2.model.SingleStreamDiT",
                 (BlockGroup("block", _attribute("blocks"), _first_argument),), since="0.33.0"),
    Architecture("ERNIE-Image", "comfy.ldm.ernie.model.ErnieImageModel",
                 (BlockGroup("layer", _attribute("layers"), _first_argument),), since="0.33.0"),
    Architecture("CogVideoX", "comfy.ldm.cogvideo.model.CogVideoXTransformer3DModel",
                 (BlockGroup("block", _attribute("blocks"), _hidden_and_text),), since="0.33.0"),
    # not a Qwen-Image subclass; its single-stream loop reads ("single_block", i) and uses ["img"] of the patch
    Architecture("Qwen-Image 2.1", "comfy.ldm.qwen_image21.model.QwenImage21Transformer2DModel",
                 _dit(("single_block", "transformer_blocks")), since="0.38"),
    Architecture("Boogu", "comfy.ldm.boogu.model.BooguTransformer2DModel",
                 (BlockGroup("double_stream_layer", _attribute("double_stream_layers"), _hidden_and_text),
                  BlockGroup("single_stream_layer", _attribute("single_stream_layers"), _first_argument)),
                 since="0.33.0"),
    Architecture("SD1.x / SDXL UNet (transformer blocks)", "comfy.ldm.modules.diffusionmodules.openaimodel.UNetModel",
                 (BlockGroup("transformer_block", _unet_transformer_blocks, _first_argument),)),
)


ARCHITECTURES: tuple[Architecture, ...] = tuple(arch for arch in TABLE if arch.resolved is not None)


class UnsupportedModelError(ValueError):
    """S² on a model whose class the table does not know."""


def supported_labels() -> str:
    return ", ".join(arch.label for arch in ARCHITECTURES)


def row_of_class(cls: type) -> Architecture | None:
    """The row of the nearest class in ``cls``'s MRO that the table has (None: not supported)."""
    by_class = {arch.resolved: arch for arch in ARCHITECTURES}
    return next((by_class[c] for c in cls.__mro__ if c in by_class), None)


def architecture_of(diffusion_model: torch.nn.Module) -> Architecture:
    arch = row_of_class(type(diffusion_model))
    if arch is not None:
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


class IgnoredDropError(ValueError):
    """The model ran S²'s sub-network pass without consulting the replacement of a dropped block."""


@dataclass
class DropPlan:
    """The sub-network pass's ``options`` (a copy of the caller's model_options in which the
    ``dropped`` blocks act as identities) and a record of which replacements the model really used.

    ``check()`` after the pass: a block loop that ignores the mechanism (a dit patch its loop never
    reads, a block called around ``forward``) would make the pass the full model again, an extra
    pass for nothing; S² then stops with an error instead of silently doing nothing."""

    arch: Architecture
    dropped: tuple[tuple[str, int], ...]
    options: dict
    used: set = field(default_factory=set)

    def check(self, diffusion_model: torch.nn.Module) -> None:
        ignored = [block for block in self.dropped if block not in self.used]
        if ignored:
            cls = type(diffusion_model)
            raise IgnoredDropError(
                f"S²-Guidance could not drop blocks of this model ({cls.__module__}.{cls.__qualname__}, matched "
                f"as {self.arch.label}): its block loop ignored the replacement of "
                f"{', '.join(f'{name} {index}' for name, index in ignored)} (for example a sampler with its own "
                "per-block loop, such as Wan's autoregressive ar_video). The sub-network pass would be the full "
                "model again, an extra pass for nothing, so S² stops here. Use CFG or RAAG for this model and "
                "sampler."
            )


def has_attention_patches(model_options: dict) -> bool:
    patches = model_options.get("transformer_options", {}).get("patches", {})
    return any(kind.startswith("attn") and fns for kind, fns in patches.items())


def subnetwork_prediction(model, arch: Architecture, model_options: dict, dropped: Sequence[tuple[str, int]],
                          positive, negative, x: torch.Tensor, timestep: torch.Tensor,
                          prefix: Prefix | None = None) -> torch.Tensor:
    """S²'s D_sub: the positive prompt through the model with ``dropped`` skipped (then checked), started
    at the first dropped block where ``prefix`` kept what it receives.

    With attention patches on the model (core's NAG pairs each positive row with its negative row
    inside one batch) the pass batches the negative too, so it sees the same patches as the full
    conditional pass; that second row's output is not used."""
    import comfy.samplers

    plan = drop_plan(arch, model_options, dropped, prefix if prefix is not None and prefix.complete() else None)
    sub = comfy.samplers.calc_cond_batch(model, subnetwork_conds(positive, negative, model_options), x, timestep,
                                         plan.options)[0]
    plan.check(model.diffusion_model)
    return sub


def subnetwork_conds(positive, negative, model_options: dict) -> list:
    return [positive, negative] if negative is not None and has_attention_patches(model_options) else [positive]


def _rows(value, chunk: int, count: int):
    """A copy of rows [chunk * n, (chunk + 1) * n) of a batch of ``count`` equal chunks; tuples (LTX-2's
    (video, audio) streams) item by item. On a GPU the copy goes to pinned host memory, asynchronously (no
    host synchronisation, ordered on the stream): kept on the device, it would raise the full pass's peak by
    one row's hidden state (+3 % of the whole peak for Wan 2.1 1.3B at 480p, measured on an H200)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_rows(v, chunk, count) for v in value)
    n = value.shape[0] // count
    rows = value[chunk * n:(chunk + 1) * n]
    if not rows.is_cuda:
        return rows.clone()
    host = torch.empty(rows.shape, dtype=rows.dtype, device="cpu", pin_memory=True)
    return host.copy_(rows, non_blocking=True)


def _cat(values: list, like):
    """The kept rows of each chunk, joined, where the block's input ``like`` lives."""
    if isinstance(values[0], (tuple, list)):
        return type(values[0])(_cat(list(parts), part) for parts, part in zip(zip(*values), like))
    values = [v.to(like.device, non_blocking=True) for v in values]
    return torch.cat(values) if len(values) > 1 else values[0]


# The hidden states a dit block loop reads back from a replacement.
STREAMS = ("img", "txt")


@dataclass
class Prefix:
    """The full pass's input to the first dropped block, for the rows the sub-network pass batches
    (``needed``: core's cond_or_uncond marks, 0 = the positive prompt, 1 = the negative). Lives for one
    model call: the engine drops it after the sub-network pass."""

    block: tuple[str, int]
    skipped: tuple[tuple[str, int], ...]  # the blocks before it, in the order the loop runs them
    needed: tuple[int, ...]
    kept: dict = field(default_factory=dict)  # mark -> {stream: rows}
    seen: dict = field(default_factory=dict)  # mark -> how many times the block received it

    def complete(self) -> bool:
        """Each needed row set reached the block exactly once (else the sub-network pass runs whole)."""
        return all(self.seen.get(mark) == 1 for mark in self.needed)

    def recorder(self, existing: Callable | None) -> Callable:
        """The full pass's replacement of the block: keeps the needed rows, then runs the block as before."""
        def record(args, extra):
            marks = list(args.get("transformer_options", {}).get("cond_or_uncond", ()))
            for mark in self.needed:
                self.seen[mark] = self.seen.get(mark, 0) + marks.count(mark)
                if marks.count(mark) == 1:
                    self.kept[mark] = {key: _rows(args[key], marks.index(mark), len(marks))
                                       for key in STREAMS if key in args}
            return existing(args, extra) if existing is not None else extra["original_block"](args)
        return record

    def start(self, args, extra):
        """The sub-network pass's replacement of the block (dropped): its output is what it would have
        received, the kept rows in this call's order."""
        marks = args["transformer_options"]["cond_or_uncond"]
        out = dict(args)
        for key in self.kept[self.needed[0]]:
            out[key] = _cat([self.kept[mark][key] for mark in marks], args[key])
            if _shape(out[key]) != _shape(args[key]):
                raise RuntimeError(f"S² prefix reuse: {key} {_shape(out[key])} kept, {_shape(args[key])} here")
        return out


def _shape(value):
    return tuple(_shape(v) for v in value) if isinstance(value, (tuple, list)) else tuple(value.shape)


def prefix_plan(arch: Architecture, model_options: dict, dropped: Sequence[tuple[str, int]], paired: bool,
                diffusion_model: torch.nn.Module) -> tuple[dict, Prefix | None]:
    """The full pass's model_options (a copy keeping the first dropped block's input) and the ``Prefix``
    it fills; ``(model_options, None)`` where the row cannot start mid-way or the pass spans several GPUs."""
    if not dropped or not arch.reuse or "multigpu_clones" in model_options:
        return model_options, None
    order = [(group.name, i) for group in arch.groups for i in range(len(group.find(diffusion_model)))]
    first = dropped[0]
    prefix = Prefix(first, tuple(order[:order.index(first)]), (0, 1) if paired else (0,))
    options = comfy.model_patcher.create_model_options_clone(model_options)
    existing = options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {}).get(first)
    comfy.model_patcher.set_model_options_patch_replace(options, prefix.recorder(existing), "dit", *first)
    return options, prefix


def _recording(block: tuple[str, int], used: set, replacement: Callable) -> Callable:
    def replaced(*args, **kwargs):
        used.add(block)
        return replacement(*args, **kwargs)

    return replaced


def drop_plan(arch: Architecture, model_options: dict, dropped: Sequence[tuple[str, int]],
              prefix: Prefix | None = None) -> DropPlan:
    """Builds the sub-network pass's model_options: ``dropped`` skipped, and with a complete ``prefix`` the
    blocks before the first dropped one too, that one handing on the kept input. The caller's dict (and
    the model's own options) are never modified. The pass runs on one device (core's DualModelGuider runs
    its extra pass so too): a multi-GPU split of one conditional row has nothing to share."""
    options = {k: v for k, v in model_options.items() if k != "multigpu_clones"}
    options = comfy.model_patcher.create_model_options_clone(options)
    transformer_options = options.setdefault("transformer_options", {})
    transformer_options[PASS_MARKER] = tuple(dropped)
    for by_key in transformer_options.get("wrappers", {}).values():  # a copy: the full passes keep theirs
        for key in STEP_CACHE_KEYS:
            by_key.pop(key, None)
    plan = DropPlan(arch, tuple(dropped), options)
    by_name = {group.name: group for group in arch.groups}
    overridden = []
    for block in prefix.skipped if prefix is not None else ():
        comfy.model_patcher.set_model_options_patch_replace(options, _skip_patch, "dit", *block)
    for name, index in dropped:
        group = by_name[name]
        if group.passthrough is None:
            skip = prefix.start if prefix is not None and (name, index) == prefix.block else _skip_patch
            patch = _recording((name, index), plan.used, skip)
            comfy.model_patcher.set_model_options_patch_replace(options, patch, "dit", name, index)
        else:
            overridden.append((group, index, _recording((name, index), plan.used, group.passthrough)))
    if overridden:
        def drop_blocks(executor, *args, **kwargs):
            diffusion_model = executor.class_obj.diffusion_model
            with _overrides(diffusion_model, overridden):
                return executor(*args, **kwargs)

        comfy.patcher_extension.add_wrapper_with_key(
            comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY, drop_blocks, options, is_model_options=True
        )
    return plan


@contextmanager
def _overrides(diffusion_model: torch.nn.Module, chosen: Sequence[tuple[BlockGroup, int, Callable]]):
    with ExitStack() as stack:
        for group, index, passthrough in chosen:
            stack.enter_context(_passthrough(group.find(diffusion_model)[index], passthrough))
        yield
