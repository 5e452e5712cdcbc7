"""The user-facing face of every node: stable prefixed ids, names, descriptions, tooltips, and only
schema options that both supported ComfyUI versions (0.3.64 and 0.3.75) accept."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from comfy_api.latest import io
from raag_s2_guidance.guiders.config import CHOICES, RANGES
from raag_s2_guidance.nodes import NODES
from raag_s2_guidance.nodes.base import CATEGORY, NODE_PREFIX, PATCH_CATEGORY

PACK_DIR = Path(__file__).resolve().parents[1]

# Node class -> node id, one line per node. The id is what saved workflows and API prompts refer to:
# renaming one breaks every user's files, so it must fail here. A new node: add its line.
EXPECTED_IDS = {
    "RAAGGuiderNode": "RAAGS2Guidance_RAAGGuider",
    "S2GuiderNode": "RAAGS2Guidance_S2Guider",
    "RAAGS2GuiderNode": "RAAGS2Guidance_RAAGS2Guider",
    "GuidanceTracePlotNode": "RAAGS2Guidance_TracePlot",
    "DemoModelLoaderNode": "RAAGS2Guidance_DemoModelLoader",
    "DemoPromptNode": "RAAGS2Guidance_DemoPrompt",
    "DemoDecodeNode": "RAAGS2Guidance_DemoDecode",
    "RAAGModelPatchNode": "RAAGS2Guidance_RAAGModelPatch",
    "S2ModelPatchNode": "RAAGS2Guidance_S2ModelPatch",
    "RAAGS2ModelPatchNode": "RAAGS2Guidance_RAAGS2ModelPatch",
}

SCHEMAS = {cls.__name__: cls.define_schema() for cls in NODES}


by_node = pytest.mark.parametrize("name", list(SCHEMAS))


def test_node_ids_are_the_expected_stable_ones():
    actual = {name: schema.node_id for name, schema in SCHEMAS.items()}
    assert actual == EXPECTED_IDS, (
        "node ids changed: saved workflows refer to them. Keep the old id, or (for a new node) add its line "
        "to EXPECTED_IDS in tests/test_node_schemas.py")


def test_node_ids_are_prefixed_and_unique():
    ids = [schema.node_id for schema in SCHEMAS.values()]
    assert len(set(ids)) == len(ids)
    for node_id in ids:
        assert node_id.startswith(NODE_PREFIX) and re.fullmatch(r"[A-Za-z0-9_]+", node_id), node_id


@by_node
def test_display_name_description_and_category(name):
    schema = SCHEMAS[name]
    assert schema.display_name and schema.display_name != schema.node_id, f"{schema.node_id}: no display name"
    assert schema.description and len(schema.description) >= 60, f"{schema.node_id}: no real description"
    in_guiders = schema.category == CATEGORY or schema.category.startswith(CATEGORY + "/")
    demo_only = schema.node_id.startswith(NODE_PREFIX + "Demo") and schema.category.endswith("/demo")
    # MODEL patches sit beside core's guidance patches (CFGZeroStar's category on the running ComfyUI)
    model_patch = schema.node_id.endswith("ModelPatch") and schema.category == PATCH_CATEGORY
    assert in_guiders or demo_only or model_patch, f"{schema.node_id}: category {schema.category!r} is not under {CATEGORY!r}"


@by_node
def test_every_input_and_output_has_a_tooltip(name):
    schema = SCHEMAS[name]
    for item in schema.inputs:
        assert item.tooltip and len(item.tooltip.strip()) >= 20, f"{schema.node_id}.{item.id}: no tooltip"
    for index, item in enumerate(schema.outputs):
        assert item.tooltip and item.tooltip.strip(), f"{schema.node_id} output {index}: no tooltip"


NUMERIC = [(schema.node_id, item.id, item.tooltip) for schema in SCHEMAS.values() for item in schema.inputs
           if isinstance(item, (io.Float.Input, io.Int.Input))]


@pytest.mark.parametrize("node_id, input_id, tooltip", [
    pytest.param(*row, id=f"{row[0]}.{row[1]}") for row in NUMERIC])
def test_numeric_tooltips_give_a_recommended_value(node_id, input_id, tooltip):
    assert re.search(r"\d", tooltip) and re.search(r"recommended|default|paper|allowed|typical", tooltip, re.I), (
        f"{node_id}.{input_id}: the tooltip should name a recommended range or default: {tooltip!r}")


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.__name__)
def test_every_number_widget_is_bounded_by_the_range_its_check_reads(node):
    """One range per number (guiders.config.RANGES): the widget's min / max, and the queue-time check
    rejects just outside them (the check, not the widget, is what an API prompt meets)."""
    for item in node.define_schema().inputs:
        if not isinstance(item, io.Float.Input):
            continue
        allowed = RANGES[item.id]
        assert (item.min, item.max) == (allowed.low, allowed.high), item.id
        for inside in (allowed.low, allowed.high):
            assert node.validate_inputs(**{item.id: inside}) is True, (item.id, inside)
        for outside in (allowed.low - item.step / 2, allowed.high + item.step / 2):
            message = node.validate_inputs(**{item.id: outside})
            assert message is not True and item.id in message and allowed.describe() in message, (item.id, outside)


def test_validate_inputs_takes_exactly_the_number_and_choice_inputs():
    """Core passes a node's validate function the inputs its signature names, and reports its message
    once per such input: exactly the checked ones, no model or conditioning."""
    for node in NODES:
        names = [i.id for i in node.define_schema().inputs if i.id in RANGES or i.id in CHOICES]
        if names:
            assert inspect.getfullargspec(node.validate_inputs).args == ["cls", *names], node.__name__


# -- options both ComfyUI 0.3.64 and 0.3.75 accept ------------------------------------------------------
# Keyword arguments of the V3 schema classes (comfy_api/latest/_io.py) known to exist in both versions;
# a conservative list: extend it only after checking both. Later versions added e.g. `advanced=`,
# `raw_link=` and `extra_dict=` on widget inputs, `gradient_stops=` on Float and `search_aliases=` on
# Schema: passing them on 0.3.75 raises TypeError when ComfyUI loads the pack.
_COMMON = {"id", "display_name", "optional", "tooltip", "lazy"}
_WIDGET = _COMMON | {"default", "socketless", "force_input"}
ALLOWED = {
    "Schema": {"node_id", "display_name", "category", "inputs", "outputs", "hidden", "description",
               "is_input_list", "is_output_node", "is_deprecated", "is_experimental", "is_api_node"},
    "Output": {"id", "display_name", "tooltip", "is_output_list"},
    "Float.Input": _WIDGET | {"min", "max", "step", "round", "display_mode"},
    "Int.Input": _WIDGET | {"min", "max", "step", "control_after_generate", "display_mode"},
    "String.Input": _WIDGET | {"multiline", "placeholder", "dynamic_prompts"},
    "Boolean.Input": _WIDGET | {"label_on", "label_off"},
    "Combo.Input": _COMMON | {"options", "default", "control_after_generate", "upload", "image_folder",
                              "remote", "socketless"},
    "Input": _COMMON,  # socket inputs: Model, Conditioning, Latent, Guider, Image, ...
}
NEWER_ONLY = {"advanced", "raw_link", "gradient_stops", "search_aliases"}


def _io_calls(tree: ast.AST):
    """Calls spelled ``io.<...>`` in a module: (dotted name after ``io.``, call node)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.insert(0, func.attr)
                func = func.value
            if isinstance(func, ast.Name) and func.id == "io" and parts:
                yield ".".join(parts), node


def _allowed_for(dotted: str) -> set[str] | None:
    if dotted in ALLOWED:
        return ALLOWED[dotted]
    last = dotted.rsplit(".", 1)[-1]
    return ALLOWED.get(last) if last in ("Input", "Output") else None


SOURCES = sorted(p for p in (PACK_DIR / "nodes").rglob("*.py")) + [PACK_DIR / "__init__.py"]


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACK_DIR)) for p in SOURCES])
def test_schema_options_exist_in_comfyui_0_3_64_and_0_3_75(path):
    problems = []
    for dotted, call in _io_calls(ast.parse(path.read_text(encoding="utf-8"))):
        allowed = _allowed_for(dotted)
        if allowed is None:
            continue  # not a schema constructor (io.NodeOutput, ...)
        for keyword in call.keywords:
            where = f"{path.name}:{call.lineno} io.{dotted}"
            if keyword.arg is None:
                problems.append(f"{where}: **kwargs hides the options; pass them by name")
            elif keyword.arg in NEWER_ONLY:
                problems.append(f"{where}: {keyword.arg}= only exists after ComfyUI 0.3.75")
            elif keyword.arg not in allowed:
                problems.append(f"{where}: {keyword.arg}= is not known to exist in ComfyUI 0.3.64 and 0.3.75")
    assert not problems, "\n".join(problems)


def test_allowed_options_exist_in_the_comfyui_under_test():
    """The allowlist above must not promise options the running ComfyUI lacks."""
    def params(fn):
        return set(inspect.signature(fn).parameters) - {"self"}

    assert ALLOWED["Schema"] <= {f.name for f in io.Schema.__dataclass_fields__.values()}
    assert ALLOWED["Output"] <= params(io.Guider.Output.__init__)
    for kind in ("Float", "Int", "String", "Boolean", "Combo"):
        assert ALLOWED[f"{kind}.Input"] <= params(getattr(io, kind).Input.__init__), kind
    assert ALLOWED["Input"] <= params(io.Model.Input.__init__)


def test_registry_icon_exists_where_pyproject_points():
    """The Comfy registry shows the icon ``[tool.comfy] Icon`` points at (a file of this repository's main)."""
    import tomllib

    icon = tomllib.loads((PACK_DIR / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["comfy"]["Icon"]
    path = PACK_DIR / icon.split("/main/", 1)[1]
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", icon
    assert "MAMBO-G" in (PACK_DIR / "pyproject.toml").read_text(encoding="utf-8")


def test_the_saved_before_hint_is_on_the_node_whose_old_workflows_need_it():
    """A RAAG + S² patch saved before ``rescale`` existed carries its old S² seed in ``rescale`` (widget
    values are positional): its message says so; the other nodes with ``rescale`` never had a value there."""
    for node in NODES:
        if "rescale" not in [i.id for i in node.define_schema().inputs]:
            continue
        message = node.validate_inputs(rescale=42.0)
        assert message.startswith(f"{node.DISPLAY_NAME}: rescale must be in [0, 1], got 42"), message
        assert message.count("rescale") == 1, message
        assert ("old S² seed" in message) == (node.NODE_ID == "RAAGS2ModelPatch"), message
        for not_a_seed in (1.5, float("nan")):
            assert "seed" not in node.validate_inputs(rescale=not_a_seed)
