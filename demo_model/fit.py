"""A model configuration fitted to the running ComfyUI, by asking it (its parameter dataclasses, its
model classes' ``__init__``), never by its version number: 0.3.x rejects unknown keys, and newer
releases made new fields required. Used by the demo model's loader and the tests' tiny models."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Any

# Fields that newer ComfyUI releases added to the model parameter dataclasses, with the value that
# keeps the behaviour the older releases had (what ComfyUI's own model detection sets for a classic
# checkpoint of that family).
NEUTRAL: dict[str, Any] = {
    "txt_ids_dims": [],             # Flux / Chroma (v0.4): no extra text position ids
    "vec_in_dim": None,             # Chroma (v0.4): no pooled-vector input
    "meanflow_sum": False,          # HunyuanVideo (v0.4)
    "use_cond_type_embedding": False,  # HunyuanVideo 1.5
    "meanflow": False,
    "byt5": False,
    "vision_in_dim": None,
    "rope_theta": 10000.0,          # Lumina 2 / NextDiT (0.3.65+): older releases fix theta at 10000
}


def fit_params(params_class: type, config: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """``config`` reduced to the fields of ``params_class`` (a dataclass of the running ComfyUI), plus
    the ``keep`` keys (arguments the model class takes itself, such as ``image_model``).

    A required field the config lacks gets its NEUTRAL value; a key the running version does not know
    is dropped only when it holds that neutral value. Anything else is an error that names the field,
    so a configuration never silently means something else on another version."""
    fields = {f.name: f for f in dataclasses.fields(params_class)}
    fitted = {k: v for k, v in config.items() if k in fields or k in keep}
    for key, value in config.items():
        if key not in fitted and not (key in NEUTRAL and NEUTRAL[key] == value):
            raise ValueError(f"{params_class.__qualname__} of this ComfyUI has no field {key!r} "
                             f"(the configuration sets it to {value!r})")
    for name, field in fields.items():
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if required and name not in fitted:
            if name not in NEUTRAL:
                raise ValueError(f"{params_class.__qualname__} of this ComfyUI requires {name!r}, which the "
                                 "configuration does not set")
            fitted[name] = copy.deepcopy(NEUTRAL[name])
    return fitted


def fit_kwargs(model_class: type, config: dict[str, Any]) -> dict[str, Any]:
    """For model classes configured by keyword arguments (no parameter dataclass): ``config`` with
    the keys the running version's ``__init__`` does not take dropped, when they hold a NEUTRAL
    value (otherwise an error naming the key)."""
    parameters = inspect.signature(model_class.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(config)
    fitted = {k: v for k, v in config.items() if k in parameters}
    for key, value in config.items():
        if key not in fitted and not (key in NEUTRAL and NEUTRAL[key] == value):
            raise ValueError(f"{model_class.__qualname__} of this ComfyUI takes no {key!r} "
                             f"(the configuration sets it to {value!r})")
    return fitted
