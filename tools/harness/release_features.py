"""What the running ComfyUI offers beyond the model families (those are tiny_models.MISSING_ARCHS), asked of
that ComfyUI, never of its version number. A feature is absent only where this release has no such module
or attribute, or where its probe (a call into that ComfyUI) says the behaviour is not there; a module that
exists and fails to import is an error (a test failure), never an absence.

Tests call ``require(name)``: it returns the feature's module, or skips with the reason, and the session's
summary names every absent feature once (tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from typing import Callable

import pytest


@dataclasses.dataclass(frozen=True)
class Feature:
    module: str
    attribute: str | None  # None: the module alone is the feature
    label: str
    probe: Callable[[], bool] | None = None  # asked once the module exists (and has the attribute)


def _rope_trains() -> bool:
    import train_demo

    return train_demo.rope_trains()


FEATURES: dict[str, Feature] = {
    "nag": Feature("comfy_extras.nodes_nag", "NAGuidance", "core's NAG (NAGuidance node)"),
    "easycache": Feature("comfy_extras.nodes_easycache", "EasyCacheNode", "core's EasyCache"),
    "lazycache": Feature("comfy_extras.nodes_easycache", "LazyCacheNode", "core's LazyCache"),
    "global_subgraphs": Feature("app.subgraph_manager", "SubgraphManager",
                                "subgraph blueprints from custom nodes (GET /global_subgraphs)"),
    "pack_latents": Feature("comfy.utils", "pack_latents",
                            "nested latents packed into one tensor for the sampler (comfy.utils.pack_latents)"),
    "trainable_rope": Feature("comfy.ldm.flux.math", "apply_rope",
                              "a Flux rope that backpropagates (comfy_kitchen's fused rope is bound with no "
                              "in_training switch: the demo model cannot be trained on this release)",
                              probe=_rope_trains),
}
ABSENT: dict[str, str] = {}  # name -> label, filled as tests ask


def module_exists(module: str) -> bool:
    """Whether this release has the module (a missing parent package means no)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def present(name: str) -> bool:
    feature = FEATURES[name]
    if not module_exists(feature.module):
        present_here = False
    else:  # the module exists on this release: an import error is an error, not an absence
        module = importlib.import_module(feature.module)
        present_here = feature.attribute is None or hasattr(module, feature.attribute)
        present_here = present_here and (feature.probe is None or feature.probe())
    if not present_here:
        ABSENT[name] = feature.label
    return present_here


def note_absent(name: str, label: str) -> None:
    """Names in the summary a feature a test found missing by using it (a frontend behaviour, say)."""
    ABSENT[name] = label


def require(name: str):
    """The feature's module; skips (with the reason, and a line in the summary) where this ComfyUI lacks it."""
    if not present(name):
        pytest.skip(f"this ComfyUI lacks {FEATURES[name].label}")
    return importlib.import_module(FEATURES[name].module)
