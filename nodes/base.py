"""What every node of the pack shares, written once: the schema from a few class attributes, the node
search aliases where the running ComfyUI has them, the menu category read from core's own nodes, and a
queue-time check of every number and choice input against the ranges in guiders.config (the same
ranges the widgets are built from)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from contextlib import contextmanager

from comfy_api.latest import io

from ..guiders.config import CHOICES, RANGES, StepWindow, check

NODE_PREFIX = "RAAGS2Guidance_"


def core_category(module: str, node_name: str, fallback: str) -> str:
    """The menu category of core node ``node_name`` (defined in ``module``) on the running ComfyUI, V3
    (``define_schema``) or V1 (``CATEGORY``): core moved its guiders from
    ``sampling/custom_sampling/guiders`` to ``model/sampling/guiders``; ours follow core's."""
    try:
        node_class = getattr(importlib.import_module(module), node_name)
    except (ImportError, AttributeError):
        return fallback
    define = getattr(node_class, "define_schema", None)
    category = getattr(define(), "category", None) if callable(define) else getattr(node_class, "CATEGORY", None)
    return category or fallback


def schema_accepts(field: str) -> bool:
    """Whether the running ComfyUI's ``io.Schema`` has the (optional) field ``field``."""
    return field in {f.name for f in dataclasses.fields(io.Schema)}


# Our guiders sit beside core's CFG Guider; the model patches beside core's guidance patches (CFGZeroStar).
CATEGORY = core_category("comfy_extras.nodes_custom_sampler", "CFGGuider", "sampling/custom_sampling/guiders")
PATCH_CATEGORY = core_category("comfy_extras.nodes_cfg", "CFGZeroStar", "advanced/guidance")


def number(name: str, default: float, step: float, tooltip: str) -> io.Float.Input:
    """A FLOAT widget whose bounds are ``RANGES[name]``, the range every check reads."""
    allowed = RANGES[name]
    return io.Float.Input(name, default=default, min=allowed.low, max=allowed.high, step=step, round=step / 10,
                          tooltip=tooltip)


def named(display_name: str, message: str) -> str:
    """A message as the UI shows it: the node's display name, then the message (which starts with the
    input's name, as guiders.config writes them), the name given once."""
    prefix = f"{display_name}: "
    return message if message.startswith(prefix) else prefix + message


@contextmanager
def errors_named(display_name: str):
    """Re-raises a ValueError (a bad value that reached ``execute`` through a link, an unsupported model)
    with the node's display name in front, keeping its class."""
    try:
        yield
    except ValueError as exc:
        raise type(exc)(named(display_name, str(exc))) from None


def check_inputs(display_name: str, hints: dict[str, str] | None = None, **values) -> bool | str:
    """Queue-time check of a node's numbers and choices: True, or one message (after the node's display
    name) naming every bad input and its allowed range, then a reversed or empty step window. NaN is
    caught here: core's own min/max check lets NaN through (every comparison with it is False), and core
    skips that check for the inputs ``validate_inputs`` takes. A linked input arrives as None and is
    checked when the node runs. ``hints`` adds a text after the message of an input holding a whole
    number out of its range (where a workflow saved with an older version puts an old integer widget's
    value)."""
    problems, hints = [], hints or {}
    for name, value in values.items():
        if value is None:
            continue
        try:
            check(name, value)
        except ValueError as exc:
            whole = isinstance(value, (int, float)) and math.isfinite(value) and float(value).is_integer()
            problems.append(str(exc) + (hints.get(name, "") if whole else ""))
    start, end = values.get("start_percent"), values.get("end_percent")
    if not problems and start is not None and end is not None:
        try:
            StepWindow(start, end)
        except ValueError as exc:
            problems.append(str(exc))
    return named(display_name, "; ".join(problems)) if problems else True


class PackNode(io.ComfyNode):
    """A node of the pack: NODE_ID, DISPLAY_NAME, ABOUT (the description), ALIASES, MENU, and ``inputs()``
    / ``outputs()``. Apply ``pack_node`` to the class to give it its queue-time check."""

    NODE_ID = DISPLAY_NAME = ABOUT = ""
    ALIASES: tuple[str, ...] = ()
    MENU = CATEGORY
    # input -> a text added to its out-of-range message: what a workflow saved with an older version of
    # the node carries there (widget values are positional, so a removed input's value lands in the next)
    SAVED_BEFORE: dict[str, str] = {}

    @classmethod
    def inputs(cls) -> list:
        return []

    @classmethod
    def outputs(cls) -> list:
        return []

    @classmethod
    def define_schema(cls) -> io.Schema:
        schema = io.Schema(node_id=NODE_PREFIX + cls.NODE_ID, display_name=cls.DISPLAY_NAME, category=cls.MENU,
                           description=cls.ABOUT, inputs=cls.inputs(), outputs=cls.outputs())
        # newer releases have node search aliases; older ones match the display name only
        return dataclasses.replace(schema, search_aliases=list(cls.ALIASES)) if schema_accepts(
            "search_aliases") else schema


def pack_node(cls: type[PackNode]) -> type[PackNode]:
    """Gives ``cls`` a ``validate_inputs`` over exactly its number and choice inputs (core passes a
    validate function the inputs its signature names, and reports a message once per such input)."""
    names = [item.id for item in cls.inputs() if item.id in RANGES or item.id in CHOICES]
    if names:
        def validate_inputs(klass, **values):
            return check_inputs(klass.DISPLAY_NAME, klass.SAVED_BEFORE, **values)

        parameter = inspect.Parameter.POSITIONAL_OR_KEYWORD
        validate_inputs.__signature__ = inspect.Signature(
            [inspect.Parameter(name, parameter) for name in ("cls", *names)])
        cls.validate_inputs = classmethod(validate_inputs)
    return cls
