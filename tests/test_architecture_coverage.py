"""Every model family of the running ComfyUI is either matched by S²'s block table or explicitly listed
here as out of scope (or not yet covered, with the reason), so a new core release with a new family
shows up as a failing test instead of a silent gap. Also: the README matrix is generated from the table.

The diffusion model class of each ``comfy.supported_models.models`` entry is read from the running
ComfyUI itself: the ``model_base`` class its ``get_model`` builds, and the ``unet_model`` that class
hands to ``BaseModel`` (both looked up along the MRO; names resolved in ``comfy.model_base``)."""

from __future__ import annotations

import inspect
import re

import arch_matrix
import comfy.model_base
import comfy.supported_models
import pytest
import tiny_models as tm
from raag_s2_guidance.guiders import blocks

# Families S² does not drop blocks of on purpose (supported_models class names). They get the clear
# "not supported" error; RAAG works on them.
OUT_OF_SCOPE = {
    # audio generators
    "StableAudio": "audio", "StableAudio3": "audio", "ACEStep": "audio", "ACEStep15": "audio",
    "MiniMaxMusic3": "audio",
    # 3D generators
    "Hunyuan3Dv2mini": "3D", "Hunyuan3Dv2": "3D", "Hunyuan3Dv2_1": "3D", "TripoSplat": "3D",
    # Stable Cascade: a two-stage cascade of ResBlock / attention stages, no transformer block list
    "Stable_Cascade_C": "cascade", "Stable_Cascade_B": "cascade",
    # perception models, not generators
    "RT_DETR_v4": "detector", "SAM3": "segmenter", "SAM31": "segmenter", "DepthAnything3": "depth",
}

# Image / video generators without a row yet, each with the reason. Listed so that the gap is visible;
# a row for one of them removes it from here (the test below fails while both say so).
NOT_YET = {
    "SeedVR2": "video restoration (NaDiT windowed blocks), not a text-to-image/video generator",
    "MiniMaxH3": "not yet: block loop not read",
    "HiDreamO1": "not yet: block loop not read",
    "PiD": "not yet: PixelDiT's two-output blocks",
    "PixelDiTT2I": "not yet: PixelDiT's two-output blocks",
    "Ideogram4": "not yet: forward-override row needs a tiny spec",
}


def _defined(cls: type, name: str):
    for c in cls.__mro__:
        if name in c.__dict__:
            return c.__dict__[name]
    return None


def _resolve_in_model_base(expr: str):
    obj = vars(comfy.model_base)[expr.split(".")[0]]
    for part in expr.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def diffusion_classes(config: type) -> list[type]:
    """The diffusion model classes ``config.get_model`` may build (several where it picks by state dict)."""
    source = inspect.getsource(_defined(config, "get_model"))
    found = []
    for name in re.findall(r"model_base\.(\w+)\(", source):
        base = getattr(comfy.model_base, name)
        for c in base.__mro__:
            init = c.__dict__.get("__init__")
            match = init and re.search(r"unet_model\s*=\s*([\w.]+)", inspect.getsource(init))
            if match:
                found.append(_resolve_in_model_base(match.group(1)))
                break
    return found


_matched = blocks.row_of_class


CONFIGS = {config.__name__: config for config in comfy.supported_models.models}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_family_is_covered_or_listed(name):
    classes = diffusion_classes(CONFIGS[name])
    assert classes, f"could not read which diffusion model {name}.get_model builds"
    matched = [_matched(cls) for cls in classes]
    listed = name in OUT_OF_SCOPE or name in NOT_YET
    if all(matched):
        assert not listed, f"{name} is matched by the table ({matched[0].label}) but still listed as uncovered"
    else:
        assert listed, (f"{name} ({', '.join(c.__module__ + '.' + c.__qualname__ for c in classes)}) is neither "
                        "in S²'s block table nor in OUT_OF_SCOPE / NOT_YET")


def test_lists_name_no_family_twice():
    assert not set(OUT_OF_SCOPE) & set(NOT_YET)


# Families matched by subclass (no row of their own): the row their class falls to, by name.
BY_SUBCLASS = {
    "LongCatImage": "Flux", "Flux2": "Flux", "ZImage": "Z-Image", "ZImagePixelSpace": "Z-Image",
    "ChromaRadiance": "Chroma Radiance", "LTXAV": "LTX-2", "HunyuanImage21": "HunyuanImage 2.1",
    "HunyuanImage21Refiner": "HunyuanImage 2.1", "HunyuanVideo15": "HunyuanVideo 1.5",
    "HunyuanVideo15_SR_Distilled": "HunyuanVideo 1.5", "Anima": "Anima",
    "WAN21_Vace": "Wan", "WAN21_Camera": "Wan", "WAN22_Camera": "Wan", "WAN22_S2V": "Wan", "WAN21_HuMo": "Wan",
    "WAN22_Animate": "Wan", "WAN_Animate2": "Wan", "WAN21_FlowRVS": "Wan", "WAN21_SCAIL": "Wan",
    "WAN21_SCAIL2": "Wan", "WAN22_WanDancer": "Wan", "WAN21_CausalAR_T2V": "Wan",
}


@pytest.mark.parametrize("name", sorted(n for n in BY_SUBCLASS if n in CONFIGS))
def test_families_matched_by_subclass_are_named_in_their_row(name):
    (arch,) = {_matched(cls) for cls in diffusion_classes(CONFIGS[name])}
    assert arch is not None and BY_SUBCLASS[name] in arch.label


def test_every_tiny_family_with_a_row_is_tested_here():
    """Each row the running ComfyUI has is exercised by at least one tiny model of the S² tests."""
    import comfy_env

    comfy_env.load_pack()
    rows_with_tiny = set()
    for arch in tm.ARCHS:
        model_class = getattr(comfy.supported_models, tm.SPECS[arch].config)
        for cls in diffusion_classes(model_class):
            rows_with_tiny.add(_matched(cls))
    untested = [a.label for a in blocks.ARCHITECTURES if a not in rows_with_tiny]
    assert untested == []


def test_readme_matrix_is_generated_from_the_table():
    readme = arch_matrix.README.read_text(encoding="utf-8")
    assert arch_matrix.section(readme) == arch_matrix.render(), "run: python tools/generate/arch_matrix.py"
