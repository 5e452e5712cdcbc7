"""Tiny random-weight instances of REAL ComfyUI diffusion models, for tests and benchmarks on a CPU.

Every model is ComfyUI's own class, built the way a loader builds it:
``comfy.supported_models.<Arch>(unet_config).get_model({})`` wrapped in a
``comfy.model_patcher.ModelPatcher``; only the sizes are tiny (hidden 64, SD3 192; 3 blocks per block list,
3 double + 3 single for two-stream models) and the weights are random.

Weights: ComfyUI's ops leave parameters uninitialised, so every parameter is filled from a seed:
matrices and kernels ~ randn / sqrt(fan_in) (fan_in = product of all dims but the first), 1-D biases
0, 1-D norm weights/scales 1. Nothing is zero-initialised (adaLN, gates, final layers included), so
each block really changes its input: replacing one by the identity moves the output by far more
than 1e-3. SD3's ``pos_embed`` buffer gets ComfyUI's 2-D sincos table.

Conditioning follows ComfyUI's CONDITIONING format ``[[cross_attn, {extra keys}]]``; the extra keys
are what each ``model_base.<Class>.extra_conds`` needs (``pooled_output`` for SD3/Flux/HunyuanVideo/
HiDream, ``conditioning_llama3`` for HiDream, ``attention_mask`` for LTXV, whose forward requires it).
A "prompt" is a seeded random tensor; ``batch`` rows are ``batch`` different prompts.

Choices worth knowing:
- ``flux`` has the guidance embedding ON (Flux.1-dev, the config ``supported_models.Flux`` matches);
  ``model_base.Flux`` feeds the same ``guidance`` (3.5) to positive and negative, so CFG acts
  through the different text; ``hunyuan_video`` likewise (guidance 6.0). ``chroma`` has none.
- ``qwen_image`` is an image model whose latent format (Wan21) is 3-D: ``empty_latent`` gives the
  ``[B, 16, 1, H, W]`` shape that ``fix_empty_latent_channels`` would make of a 4-D empty latent,
  so the sampled output has the same shape as the input.
- ``lumina2`` uses 3 refiner layers (real Lumina 2 has 2) so that every block list has >= 3 entries.
- ``sd15`` is an SD1.5-style UNet (``supported_models.SD15``, eps prediction) with 7
  BasicTransformerBlocks in 7 SpatialTransformers; its "block list" is those BasicTransformerBlocks.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import pathlib
from dataclasses import dataclass, field

import comfy.model_management  # callers must have run comfy_env.bootstrap() first (--cpu)
import comfy.model_patcher
import comfy.supported_models
import comfy_env
import core_nodes
import release_features
import torch

ALL_ARCHS: tuple[str, ...] = (
    "sd3", "flux", "chroma", "wan21", "qwen_image", "hunyuan_video",
    "ltxv", "lumina2", "hidream", "cosmos_predict2", "sd15", "wan21_causal_ar",
    "auraflow", "hunyuan_dit", "mochi", "pixart_alpha", "pixart_sigma", "cosmos1", "omnigen2",
    "kandinsky5", "ernie_image", "lens", "mage_flow", "krea2", "cogvideox", "joyimage", "boogu",
    "z_image", "flux2", "longcat_image",
)
UNSUPPORTED_ARCH = "stable_cascade_c"  # built like the others, but no S² block table entry exists for it
VIDEO_ARCHS: frozenset[str] = frozenset({"wan21", "hunyuan_video", "ltxv", "cosmos_predict2", "wan21_causal_ar",
                                         "mochi", "cosmos1", "kandinsky5", "cogvideox"})

# Image models whose latent format (Wan21) has a frame axis: [B, 16, 1, H, W].
FRAME_AXIS_IMAGE_ARCHS: frozenset[str] = frozenset({"qwen_image", "krea2", "joyimage"})

NEGATIVE_SEED_OFFSET = 10_000  # build(): negative prompt = conditioning(arch, seed + this)
CTX_TOKENS = 8                 # text tokens per prompt
CPU = torch.device("cpu")
# Where the tiny models sample: the CPU (tests, CI), or ``TINY_MODELS_DEVICE=cuda`` (the GPU check's run of
# the in-process suite). Weights are built on the CPU and ComfyUI loads them there, as it loads a checkpoint.
DEVICE = torch.device(os.environ.get("TINY_MODELS_DEVICE", "cpu"))
# How close an image sampled in a batch is to the same image sampled alone. On the CPU only summation order
# differs; on a GPU ComfyUI's convolutions run in TF32 (comfy/ops.py) and cuDNN picks its algorithm per
# batch size, so a 10-bit mantissa's rounding (~1e-3 relative) can differ. A batch mate leaking into an
# image changes it by the size of the image.
BATCH_TOLERANCE = 1e-4 if DEVICE.type == "cpu" else 2e-3


@dataclass(frozen=True)
class _Spec:
    config: str                 # class name in comfy.supported_models
    unet_config: dict
    latent: tuple               # latent shape without the batch dim
    ctx_dim: int                # cross_attn feature size
    extras: dict = field(default_factory=dict)  # cond key -> shape without batch, "mask" or None
    block_lists: tuple = ()     # attribute names of the diffusion model's block lists
    # Where the running ComfyUI declares this model's parameters: a dataclass ("...Params") or the
    # model class itself (keyword arguments). The config is fitted to it (demo_model/fit.py), so one spec
    # builds the model on every supported version.
    params: str | None = None
    # A class the family needs (dotted path): where the running ComfyUI lacks it, the family is
    # listed in MISSING_ARCHS (and reported in the test summary) instead of ARCHS.
    requires: str | None = None


def _sd3_config(depth: int = 3) -> dict:
    hidden = 64 * depth  # MMDiT hard-codes hidden = 64 * depth, heads = depth
    return dict(
        in_channels=16, out_channels=16, patch_size=2, depth=depth, input_size=None, adm_in_channels=32,
        context_embedder_config={"target": "torch.nn.Linear",
                                 "params": {"in_features": 32, "out_features": hidden}},
        num_patches=256, pos_embed_max_size=16,  # latents up to 32x32
        pos_embed_scaling_factor=None, x_block_self_attn_layers=[],
    )


_WAN21 = dict(image_model="wan2.1", model_type="t2v", dim=64, ffn_dim=128, num_heads=2, num_layers=3, in_dim=16,
              out_dim=16, text_dim=32, freq_dim=64, patch_size=(1, 2, 2), window_size=(-1, -1), qk_norm=True,
              cross_attn_norm=True, eps=1e-6)
_FLUX_COMMON = dict(
    in_channels=16, out_channels=16, hidden_size=64, num_heads=2, mlp_ratio=4.0, depth=3,
    depth_single_blocks=3, axes_dim=[8, 12, 12], theta=10000, patch_size=2, qkv_bias=True, context_in_dim=32,
)
_IMAGE, _VIDEO = (16, 8, 8), (16, 2, 8, 8)  # latent shapes without the batch dim
_POOLED = {"pooled_output": (32,)}
# PixArt sizes its position table from the latent: (H + W) / 2 must round to at least 64 / 2 latent pixels.
# PixArt α's size and aspect embeddings are hidden / 3 wide each (hidden 96).
# Mochi asserts its image MLP width (hidden_size_x * mlp_ratio_x == 1536 * 8), so its ratio is 192.
_PIXART = (4, 36, 36)

SPECS: dict[str, _Spec] = {
    "sd3": _Spec("SD3", _sd3_config(), _IMAGE, 32, _POOLED, ("joint_blocks",)),
    "flux": _Spec(
        "Flux", dict(image_model="flux", **_FLUX_COMMON, vec_in_dim=32, guidance_embed=True),
        _IMAGE, 32, _POOLED, ("double_blocks", "single_blocks"), "comfy.ldm.flux.model.FluxParams"),
    "chroma": _Spec(
        "Chroma", dict(_FLUX_COMMON, image_model="chroma", in_channels=64, out_channels=64,
                       in_dim=64, out_dim=64, hidden_dim=32, n_layers=2),
        _IMAGE, 32, {"pooled_output": None}, ("double_blocks", "single_blocks"), "comfy.ldm.chroma.model.ChromaParams"),
    "wan21": _Spec("WAN21_T2V", _WAN21, _VIDEO, 32, {}, ("blocks",)),
    # Causal (autoregressive) Wan: a WanModel subclass whose ar_video sampler runs its own block loop.
    "wan21_causal_ar": _Spec("WAN21_CausalAR_T2V", dict(_WAN21, causal_ar=True), _VIDEO, 32, {}, ("blocks",),
                             requires="comfy.ldm.wan.ar_model.CausalWanModel"),
    "qwen_image": _Spec(
        "QwenImage", dict(image_model="qwen_image", in_channels=64, out_channels=16, num_layers=3,
                          attention_head_dim=32, num_attention_heads=2, joint_attention_dim=32,
                          axes_dims_rope=(8, 12, 12)),
        (16, 1, 8, 8), 32, {}, ("transformer_blocks",)),
    "hunyuan_video": _Spec(
        "HunyuanVideo", dict(_FLUX_COMMON, image_model="hunyuan_video", patch_size=[1, 2, 2], theta=256,
                             vec_in_dim=32, guidance_embed=True, byt5=False, meanflow=False,
                             use_cond_type_embedding=False, vision_in_dim=None),
        _VIDEO, 32, _POOLED, ("double_blocks", "single_blocks"), "comfy.ldm.hunyuan_video.model.HunyuanVideoParams"),
    "ltxv": _Spec(
        "LTXV", dict(image_model="ltxv", in_channels=128, num_layers=3, attention_head_dim=32,
                     num_attention_heads=2, cross_attention_dim=64, caption_channels=32),
        (128, 2, 4, 4), 32, {"attention_mask": "mask"}, ("transformer_blocks",)),
    "lumina2": _Spec(
        "Lumina2", dict(image_model="lumina2", patch_size=2, in_channels=16, dim=64, cap_feat_dim=32,
                        n_layers=3, n_refiner_layers=3, n_heads=2, n_kv_heads=2, multiple_of=16,
                        ffn_dim_multiplier=4.0, qk_norm=True, axes_dims=[8, 12, 12], axes_lens=[300, 64, 64],
                        rope_theta=10000.0),
        # the text encoder's attention mask and its empty pooled output, as real Lumina 2 conditioning has
        # them (0.3.64 requires the mask; 0.4.0's model_base.Lumina2 reads pooled_output unguarded)
        _IMAGE, 32, {"attention_mask": "mask", "pooled_output": None},
        ("layers", "noise_refiner", "context_refiner"),
        "comfy.ldm.lumina.model.NextDiT"),
    "hidream": _Spec(
        "HiDream", dict(image_model="hidream", patch_size=2, in_channels=16, out_channels=16, num_layers=3,
                        num_single_layers=3, attention_head_dim=32, num_attention_heads=2,
                        caption_channels=[32, 32], text_emb_dim=32, num_routed_experts=4,
                        num_activated_experts=2, axes_dims_rope=[8, 12, 12], max_resolution=[64, 64],
                        llama_layers=[0, 1, 2, 3, 3, 3]),  # one llama layer per block, 4 layers given
        _IMAGE, 32, {**_POOLED, "conditioning_llama3": (4, CTX_TOKENS, 32)},
        ("double_stream_blocks", "single_stream_blocks")),
    "cosmos_predict2": _Spec(
        "CosmosT2IPredict2", dict(
            image_model="cosmos_predict2", max_img_h=64, max_img_w=64, max_frames=16, in_channels=16,
            out_channels=16, patch_spatial=2, patch_temporal=1, concat_padding_mask=True, model_channels=64,
            num_blocks=3, num_heads=2, crossattn_emb_channels=32, pos_emb_cls="rope3d",
            pos_emb_learnable=True, pos_emb_interpolation="crop", use_adaln_lora=True, adaln_lora_dim=16,
            extra_per_block_abs_pos_emb=False, rope_h_extrapolation_ratio=4.0, rope_w_extrapolation_ratio=4.0,
            rope_t_extrapolation_ratio=1.0, rope_enable_fps_modulation=False),
        _VIDEO, 32, {}, ("blocks",)),
    "sd15": _Spec(
        "SD15", dict(use_checkpoint=False, image_size=32, use_spatial_transformer=True, legacy=False,
                     adm_in_channels=None, in_channels=4, out_channels=4, model_channels=32,
                     num_res_blocks=[1, 1], channel_mult=[1, 2], transformer_depth=[1, 1],
                     transformer_depth_output=[1, 1, 1, 1], transformer_depth_middle=1,
                     use_linear_in_transformer=False, context_dim=32,
                     use_temporal_resblock=False, use_temporal_attention=False),
        (4, 8, 8), 32, {}, ("transformer_blocks",)),  # its BasicTransformerBlocks, see block_lists()
    "auraflow": _Spec(
        "AuraFlow", dict(cond_seq_dim=32, in_channels=4, out_channels=4, patch_size=2, dim=64, n_layers=6,
                         n_double_layers=3, n_heads=2, global_conddim=64, max_seq=64),
        (4, 8, 8), 32, {}, ("double_layers", "single_layers")),
    # HunyuanDiT's long skips: the second half's blocks take the outputs of the first half (depth 6:
    # blocks 4 and 5 read those of blocks 0 and 1); the T5 stream has its own tokens and mask.
    "hunyuan_dit": _Spec(
        "HunyuanDiT", dict(image_model="hydit", input_size=8, patch_size=2, in_channels=4, hidden_size=64,
                           depth=6, num_heads=2, mlp_ratio=4.0, text_states_dim=32, text_states_dim_t5=32,
                           text_len=CTX_TOKENS, text_len_t5=CTX_TOKENS, size_cond=False, use_style_cond=False),
        (4, 8, 8), 32, {"attention_mask": "mask", "conditioning_mt5xl": (CTX_TOKENS, 32),
                        "attention_mask_mt5xl": "mask"}, ("blocks",)),
    "mochi": _Spec(
        "GenmoMochi", dict(image_model="mochi_preview", depth=3, patch_size=2, num_heads=2, hidden_size_x=64,
                           hidden_size_y=32, mlp_ratio_x=192.0, mlp_ratio_y=4.0, learn_sigma=False, in_channels=12,
                           qk_norm=True, qkv_bias=False, out_bias=True, attn_drop=0.0, patch_embed_bias=True,
                           posenc_preserve_area=True, timestep_mlp_bias=True, attend_to_padding=False,
                           timestep_scale=1000.0, use_t5=True, t5_feat_dim=32, t5_token_length=CTX_TOKENS,
                           rope_theta=10000.0),
        (12, 2, 8, 8), 32, {"attention_mask": "mask"}, ("blocks",)),
    "pixart_alpha": _Spec(
        "PixArtAlpha", dict(image_model="pixart_alpha", micro_condition=True, num_heads=2, patch_size=2,
                            hidden_size=96, in_channels=4, depth=3, model_max_length=CTX_TOKENS,
                            caption_channels=32, input_size=16, pe_interpolation=0.25),
        _PIXART, 32, {}, ("blocks",)),
    "pixart_sigma": _Spec(
        "PixArtSigma", dict(image_model="pixart_sigma", micro_condition=False, num_heads=2, patch_size=2,
                            hidden_size=64, in_channels=4, depth=3, model_max_length=CTX_TOKENS,
                            caption_channels=32, input_size=16, pe_interpolation=0.25),
        _PIXART, 32, {}, ("blocks",)),
    # Cosmos 1 (GeneralDIT): its blocks are a ModuleDict "block0", "block1", ...
    "cosmos1": _Spec(
        "CosmosT2V", dict(image_model="cosmos", max_img_h=64, max_img_w=64, max_frames=16, in_channels=16,
                          out_channels=16, patch_spatial=2, patch_temporal=1, model_channels=64,
                          block_config="FA-CA-MLP", concat_padding_mask=True, pos_emb_cls="rope3d",
                          pos_emb_learnable=False, pos_emb_interpolation="crop", block_x_format="THWBD",
                          affline_emb_norm=True, use_adaln_lora=True, adaln_lora_dim=16, num_blocks=3,
                          num_heads=2, crossattn_emb_channels=32, extra_per_block_abs_pos_emb=True,
                          extra_per_block_abs_pos_emb_type="learnable"),
        _VIDEO, 32, {}, ("blocks",)),
    "omnigen2": _Spec(
        "Omnigen2", dict(image_model="omnigen2", axes_dim_rope=[8, 12, 12], axes_lens=[300, 64, 64],
                         ffn_dim_multiplier=None, hidden_size=64, in_channels=16, multiple_of=16, norm_eps=1e-5,
                         num_attention_heads=2, num_kv_heads=2, num_layers=3, num_refiner_layers=2,
                         out_channels=None, patch_size=2, text_feat_dim=32, timestep_scale=1000.0),
        _IMAGE, 32, {"attention_mask": "mask"}, ("layers",)),
    # Families S² matches by subclass / shared class, tested by name: Z-Image (NextDiT with Z-Image's
    # modulation and time scale; its adaLN input is 256 wide, so dim 256) and Flux 2 (Flux with global
    # modulation, 128-channel latent, patch 1; its pooled_output is unused, older model_base.Flux reads it).
    "z_image": _Spec(
        "ZImage", dict(image_model="lumina2", patch_size=2, in_channels=16, dim=256, cap_feat_dim=32,
                       n_layers=3, n_refiner_layers=3, n_heads=2, n_kv_heads=2, multiple_of=16,
                       ffn_dim_multiplier=1.0, qk_norm=True, axes_dims=[32, 48, 48], axes_lens=[300, 64, 64],
                       rope_theta=256.0, z_image_modulation=True, time_scale=1000.0),
        _IMAGE, 32, {"pooled_output": None}, ("layers", "noise_refiner", "context_refiner"),
        "comfy.ldm.lumina.model.NextDiT"),
    "flux2": _Spec(
        "Flux2", dict(_FLUX_COMMON, image_model="flux2", in_channels=128, out_channels=128, patch_size=1,
                      axes_dim=[8, 8, 8, 8], mlp_ratio=3.0, theta=2000, global_modulation=True, vec_in_dim=None,
                      mlp_silu_act=True, qkv_bias=False, ops_bias=False, guidance_embed=False),
        (128, 4, 4), 32, _POOLED, ("double_blocks", "single_blocks"), "comfy.ldm.flux.model.FluxParams"),
    # LongCat-Image (0.33.0): a Flux without guidance or vector input, text ids on two rope axes.
    "longcat_image": _Spec(
        "LongCatImage", dict(_FLUX_COMMON, image_model="flux", guidance_embed=False, vec_in_dim=None,
                             txt_ids_dims=[1, 2]),
        _IMAGE, 32, {}, ("double_blocks", "single_blocks"), "comfy.ldm.flux.model.FluxParams"),
    # Newer families (absent from 0.3.75: their classes are what ``requires`` names).
    "kandinsky5": _Spec(
        "Kandinsky5", dict(image_model="kandinsky5", in_visual_dim=16, out_visual_dim=16, in_text_dim=32,
                           in_text_dim2=32, time_dim=32, model_dim=64, ff_dim=128, visual_embed_dim=132,
                           patch_size=(1, 2, 2), num_text_blocks=2, num_visual_blocks=3, axes_dims=(8, 12, 12)),
        _VIDEO, 32, _POOLED, ("visual_transformer_blocks",), requires="comfy.ldm.kandinsky5.model.Kandinsky5"),
    "ernie_image": _Spec(
        "ErnieImage", dict(image_model="ernie", hidden_size=64, num_attention_heads=2, num_layers=3,
                           ffn_hidden_size=128, in_channels=128, out_channels=128, patch_size=1, text_in_dim=32,
                           rope_axes_dim=(8, 12, 12)),
        (128, 4, 4), 32, {}, ("layers",), requires="comfy.ldm.ernie.model.ErnieImageModel"),
    "lens": _Spec(
        "Lens", dict(image_model="lens", patch_size=1, in_channels=128, out_channels=128, num_layers=3,
                     attention_head_dim=32, num_attention_heads=2, enc_hidden_dim=32, axes_dims_rope=(8, 12, 12),
                     multi_layer_encoder_feature=False),
        (128, 4, 4), 32, {"attention_mask": "mask"}, ("transformer_blocks",),
        requires="comfy.ldm.lens.model.LensTransformer2DModel"),
    "mage_flow": _Spec(
        "MageFlow", dict(image_model="mage_flow", in_channels=128, out_channels=128, num_layers=3,
                         attention_head_dim=32, num_attention_heads=2, joint_attention_dim=32,
                         axes_dims_rope=(8, 12, 12)),
        (128, 4, 4), 32, {}, ("transformer_blocks",), requires="comfy.ldm.mage_flow.model.MageFlowTransformer2DModel"),
    # Krea2's text input is a stack of ``txtlayers`` encoder layers (2 x 32 features).
    "krea2": _Spec(
        "Krea2", dict(image_model="krea2", features=64, tdim=32, txtdim=32, heads=2, kvheads=2, multiplier=2,
                      layers=3, patch=2, channels=16, txtlayers=2, txtheads=2, txtkvheads=2),
        (16, 1, 8, 8), 64, {}, ("blocks",), requires="comfy.ldm.krea2.model.SingleStreamDiT"),
    "cogvideox": _Spec(
        "CogVideoX_T2V", dict(image_model="cogvideox", num_attention_heads=2, attention_head_dim=32, in_channels=16,
                              out_channels=16, time_embed_dim=32, text_embed_dim=32, num_layers=3, sample_width=8,
                              sample_height=8, sample_frames=5, patch_size=2, max_text_seq_length=CTX_TOKENS,
                              use_rotary_positional_embeddings=True),
        _VIDEO, 32, {}, ("blocks",), requires="comfy.ldm.cogvideo.model.CogVideoXTransformer3DModel"),
    # JoyImage: supported_models forces rope_dim_list [16, 56, 56], so heads are 128 wide (hidden 256, 2 heads).
    "joyimage": _Spec(
        "JoyImage", dict(image_model="joyimage", patch_size=[1, 2, 2], in_channels=16, hidden_size=256,
                         num_attention_heads=2, text_dim=32, mlp_width_ratio=1.0, num_layers=3),
        (16, 1, 8, 8), 32, {}, ("double_blocks",), requires="comfy.ldm.joyimage.model.JoyImageTransformer3DModel"),
    "boogu": _Spec(
        "Boogu", dict(image_model="boogu", patch_size=2, in_channels=16, hidden_size=64, num_layers=3,
                      num_double_stream_layers=3, num_refiner_layers=2, num_attention_heads=2, num_kv_heads=2,
                      multiple_of=16, axes_dim_rope=(8, 12, 12), axes_lens=(300, 64, 64), instruction_feat_dim=32),
        _IMAGE, 32, {"attention_mask": "mask"}, ("double_stream_layers", "single_stream_layers"),
        requires="comfy.ldm.boogu.model.BooguTransformer2DModel"),
    # Not in ARCHS: a real ComfyUI model that S²-Guidance does not list (Stable Cascade's stage C: a
    # cascade prior with ResBlock/attention stages, no transformer block list).
    UNSUPPORTED_ARCH: _Spec(
        "Stable_Cascade_C", dict(stable_cascade_stage="c", c_cond=64, c_hidden=[64, 64], nhead=[2, 2],
                                 blocks=[[1, 1], [1, 1]], block_repeat=[[1, 1], [1, 1]], c_r=16,
                                 c_clip_text=32, c_clip_text_pooled=32, c_clip_img=768, c_clip_seq=2,
                                 level_config=["CTA", "CTA"], switch_level=[False], self_attn=True),
        (16, 8, 8), 32, {"pooled_output": (1, 32)}, ()),
}


BROKEN_ARCHS: dict[str, str] = {}  # family -> the import error of a module this release has (a failure)


def _available(arch: str, spec: _Spec) -> bool:
    """Whether this release has the family. Absent only where the module does not exist here; a module that
    exists and fails to import is recorded in BROKEN_ARCHS (tests/test_tiny_models.py fails on it)."""
    if spec.requires is None:
        return hasattr(comfy.supported_models, spec.config)
    module, name = spec.requires.rsplit(".", 1)
    if not release_features.module_exists(module):
        return False
    try:
        found = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 (recorded, and reported as a test failure)
        BROKEN_ARCHS[arch] = f"{module}: {type(exc).__name__}: {exc}"
        return False
    return hasattr(found, name) and hasattr(comfy.supported_models, spec.config)


# The families this ComfyUI has, and the ones it lacks (family -> the class it would need).
ARCHS: tuple[str, ...] = tuple(a for a in ALL_ARCHS if _available(a, SPECS[a]))
MISSING_ARCHS: dict[str, str] = {a: SPECS[a].requires or f"comfy.supported_models.{SPECS[a].config}"
                                 for a in ALL_ARCHS if a not in ARCHS and a not in BROKEN_ARCHS}


@dataclass
class TinyCase:
    arch: str
    patcher: "comfy.model_patcher.ModelPatcher"
    positive: list   # CONDITIONING
    negative: list   # CONDITIONING
    latent: torch.Tensor  # zeros, batch 1


def _spec(arch: str) -> _Spec:
    try:
        return SPECS[arch]
    except KeyError:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ALL_ARCHS}") from None


def _fitted(spec: _Spec, unet_config: dict) -> dict:
    if spec.params is None:
        return unet_config
    module, name = spec.params.rsplit(".", 1)
    target = getattr(importlib.import_module(module), name)
    comfy_env.load_pack()  # the pack's own adapter (also inside a server process, by the test nodes)
    compat = importlib.import_module(comfy_env.PACK_NAME + ".demo_model.fit")
    if dataclasses.is_dataclass(target):
        return compat.fit_params(target, unet_config, keep=("image_model",))
    return compat.fit_kwargs(target, unet_config)


def fit_config(arch: str, unet_config: dict) -> dict:
    """``unet_config`` (of family ``arch``, any size) fitted to the running ComfyUI's parameter fields."""
    return _fitted(_spec(arch), unet_config)


def _model_config(arch: str, unet_config: dict | None = None):
    spec = _spec(arch)
    cfg = getattr(comfy.supported_models, spec.config)(_fitted(spec, unet_config or spec.unet_config))
    cfg.set_inference_dtype(torch.float32, None)
    return cfg


def _init_weights(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A deterministic state dict for ``module`` (see the module docstring for the rules)."""
    gen = torch.Generator().manual_seed(seed)
    params = {name for name, _ in module.named_parameters()}
    sd = {}
    for name, t in module.state_dict().items():
        if name == "pos_embed" and t.ndim == 3:  # SD3's fixed sincos table [1, N, hidden] (a buffer)
            from comfy.ldm.modules.diffusionmodules.mmdit import get_2d_sincos_pos_embed_torch
            side = math.isqrt(t.shape[1])
            sd[name] = get_2d_sincos_pos_embed_torch(t.shape[2], side, side).reshape(t.shape).to(t.dtype)
        elif name not in params or not t.is_floating_point():  # other buffers keep their values
            sd[name] = t.clone()
        elif t.ndim >= 2:
            sd[name] = (torch.randn(t.shape, generator=gen) / math.sqrt(t[0].numel())).to(t.dtype)
        elif name.endswith("bias"):
            sd[name] = torch.zeros_like(t)
        else:  # norm weights / scales
            sd[name] = torch.ones_like(t)
        if sd[name].is_floating_point() and not torch.isfinite(sd[name]).all():
            raise RuntimeError(f"uninitialised buffer {name} in {type(module).__name__}")
    return sd


_STATE_CACHE: dict[tuple[str, int], dict[str, torch.Tensor]] = {}


def _model(arch: str, seed: int):
    """A fresh ``model_base.BaseModel`` subclass instance with seeded weights."""
    model = _model_config(arch).get_model({}, device=CPU)
    dm = model.diffusion_model
    key = (arch, seed)
    if key not in _STATE_CACHE:
        _STATE_CACHE[key] = _init_weights(dm, seed)
    dm.load_state_dict(_STATE_CACHE[key], strict=True)
    return model


def _patcher(model) -> "comfy.model_patcher.ModelPatcher":
    return comfy.model_patcher.ModelPatcher(model, load_device=DEVICE, offload_device=CPU)


def conditioning(arch: str, seed: int, batch: int = 1) -> list:
    """A CONDITIONING for ``batch`` different random "prompts" (deterministic in ``seed``)."""
    spec = _spec(arch)
    gen = torch.Generator().manual_seed(seed)
    cross_attn = torch.randn((batch, CTX_TOKENS, spec.ctx_dim), generator=gen)
    extras = {}
    for key, shape in spec.extras.items():
        if shape is None:  # e.g. Chroma's T5 encoder gives no pooled output, and says so
            extras[key] = None
        elif shape == "mask":
            extras[key] = torch.ones((batch, CTX_TOKENS), dtype=torch.long)
        else:
            extras[key] = torch.randn((batch, *shape), generator=gen)
    return [[cross_attn, extras]]


def empty_latent(arch: str, batch: int = 1) -> torch.Tensor:
    return torch.zeros((batch, *_spec(arch).latent))


def build(arch: str, seed: int = 0) -> TinyCase:
    """A fresh tiny model of ``arch`` (weights from ``seed``) with a positive and a negative prompt."""
    return TinyCase(
        arch=arch,
        patcher=_patcher(_model(arch, seed)),
        positive=conditioning(arch, seed),
        negative=conditioning(arch, seed + NEGATIVE_SEED_OFFSET),
        latent=empty_latent(arch),
    )


def block_lists(arch: str, diffusion_model: torch.nn.Module) -> dict[str, list[torch.nn.Module]]:
    """The block lists of a tiny model's ``diffusion_model``, by name (SD1.5: its BasicTransformerBlocks)."""
    if arch == "sd15":
        from comfy.ldm.modules.attention import BasicTransformerBlock
        blocks = [m for m in diffusion_model.modules() if isinstance(m, BasicTransformerBlock)]
        return {"transformer_blocks": blocks}
    lists = {name: getattr(diffusion_model, name) for name in _spec(arch).block_lists}
    return {name: list(b.values() if isinstance(b, torch.nn.ModuleDict) else b) for name, b in lists.items()}


def predict(case: TinyCase, x: torch.Tensor, sigma: float, conditioning: list | None = None,
            model_options: dict | None = None) -> torch.Tensor:
    """One denoised (x0) prediction, no sampling loop: ``process_conds`` + ``calc_cond_batch``, as a
    guider's ``predict_noise`` does. ``conditioning`` defaults to the case's positive prompt and
    ``model_options`` to the patcher's; the patcher is loaded (weight patches applied) first."""
    import comfy.sampler_helpers
    import comfy.samplers

    model = case.patcher.model
    cond = case.positive if conditioning is None else conditioning
    conds = {"positive": comfy.sampler_helpers.convert_cond(cond)}
    x = x.to(DEVICE)
    conds = comfy.samplers.process_conds(model, x, conds, DEVICE, latent_image=torch.zeros_like(x), seed=0)
    options = case.patcher.model_options if model_options is None else model_options
    sigmas = torch.full((x.shape[0],), float(sigma), device=DEVICE)
    comfy.model_management.load_models_gpu([case.patcher])  # applies the patcher's weight patches
    case.patcher.pre_run()
    try:
        with torch.no_grad():
            (out,) = comfy.samplers.calc_cond_batch(model, [conds["positive"]], x, sigmas, options)
    finally:
        case.patcher.cleanup()
    return out.to(CPU)


def write_tiny_sd3_checkpoint(path, seed: int = 0, depth: int = 3) -> pathlib.Path:
    """Writes a tiny SD3 (MMDiT) ``.safetensors`` that ``comfy.sd.load_diffusion_model`` detects as SD3.

    in_channels 16, hidden 64 * depth, depth heads (ComfyUI's MMDiT rule); unprefixed keys.
    """
    import comfy.utils

    if depth < 3:
        raise ValueError("depth must be >= 3")
    path = pathlib.Path(path)
    model = _model_config("sd3", _sd3_config(depth)).get_model({}, device=CPU)
    sd = _init_weights(model.diffusion_model, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    comfy.utils.save_torch_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def sample(case: TinyCase, guider, *, latent: torch.Tensor | dict | None = None, **options) -> torch.Tensor:
    """``sample_latent`` on the case's empty latent (or ``latent``); see there for ``options``."""
    return sample_latent(guider, case.latent if latent is None else latent, **options)


def schedule(patcher, steps: int = 10, scheduler: str = "simple", denoise: float = 1.0) -> list[float]:
    """The sigmas the stock BasicScheduler gives (what ``sample_latent`` samples on), as floats."""
    from comfy_extras.nodes_custom_sampler import BasicScheduler

    sigmas = core_nodes.first(BasicScheduler, model=patcher, scheduler=scheduler, steps=steps, denoise=denoise)
    return [float(s) for s in sigmas.tolist()]


def sample_latent(guider, latent: torch.Tensor | dict, *, sampler_name: str = "euler", steps: int = 10,
                  seed: int = 0, scheduler: str = "simple", denoise: float = 1.0,
                  sigmas: torch.Tensor | None = None, sampler=None) -> torch.Tensor:
    """Samples exactly as a stock graph does: RandomNoise + KSamplerSelect + BasicScheduler (on the
    guider's model) into the real ``SamplerCustomAdvanced`` node. Returns the output latent.

    ``latent`` may be a LATENT dict (with ``batch_index`` or ``noise_mask``, as ComfyUI's nodes make
    them); ``sigmas`` replaces the scheduler (e.g. one half of a split schedule)."""
    from comfy_extras.nodes_custom_sampler import (
        BasicScheduler,
        KSamplerSelect,
        RandomNoise,
        SamplerCustomAdvanced,
    )

    if sigmas is None:
        sigmas = core_nodes.first(BasicScheduler, model=guider.model_patcher, scheduler=scheduler, steps=steps,
                                  denoise=denoise)
    noise = core_nodes.first(RandomNoise, noise_seed=seed)
    if sampler is None:  # a SAMPLER object (e.g. from a core sampler node with options) replaces the name
        sampler = core_nodes.first(KSamplerSelect, sampler_name=sampler_name)
    latent = latent if isinstance(latent, dict) else {"samples": latent}
    out = core_nodes.first(SamplerCustomAdvanced, noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                           latent_image=latent)
    return out["samples"]
