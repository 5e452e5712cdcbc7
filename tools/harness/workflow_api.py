"""Converts a UI-format workflow (the JSON users drag onto the ComfyUI canvas) into an API-format
prompt (what ``POST /prompt`` and the executor take), using a server's ``/object_info``.

    prompt = to_api(json.load(open(workflow_files.path("demo_tiny"))), server.object_info())

Rules (those of the ComfyUI frontend):
- a node's ``widgets_values`` hold, in order, one value per widget input among its required then
  optional inputs (object_info's ``input_order``); an INT input with ``control_after_generate`` is
  followed by one extra value (the "fixed"/"randomize" choice), which is skipped;
- a widget that was turned into a socket and linked takes the link instead (its value still sits in
  ``widgets_values``);
- links are ``[id, from_node, from_slot, to_node, to_slot, type]``; an input becomes
  ``[str(from_node), from_slot]``;
- muted nodes (mode 2) are left out; bypassed nodes (mode 4) are not supported (an error);
  frontend-only nodes (Note, MarkdownNote, Reroute, PrimitiveNode) are not supported except notes.
"""

from __future__ import annotations

from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
NOTE_TYPES = {"Note", "MarkdownNote"}


class WorkflowError(ValueError):
    pass


def _is_widget(spec: list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _ordered_inputs(info: dict) -> list[tuple[str, list]]:
    declared = info.get("input", {})
    order = info.get("input_order") or {k: list(declared.get(k, {})) for k in ("required", "optional")}
    return [(name, declared[section][name]) for section in ("required", "optional")
            for name in order.get(section, []) if name in declared.get(section, {})]


def to_api(workflow: dict, object_info: dict) -> dict[str, dict[str, Any]]:
    links = {link[0]: link for link in workflow.get("links", [])}
    prompt: dict[str, dict[str, Any]] = {}
    for node in workflow["nodes"]:
        class_type = node["type"]
        if class_type in NOTE_TYPES or node.get("mode", 0) == 2:
            continue
        if node.get("mode", 0) == 4:
            raise WorkflowError(f"node {node['id']} ({class_type}) is bypassed; bypass is not supported")
        if class_type not in object_info:
            raise WorkflowError(f"node {node['id']}: unknown node type {class_type!r} (is its pack installed?)")
        linked = {}
        for socket in node.get("inputs", []):
            link_id = socket.get("link")
            if link_id is not None:
                link = links[link_id]
                linked[socket["name"]] = [str(link[1]), link[2]]
        values = list(node.get("widgets_values") or [])
        inputs: dict[str, Any] = {}
        position = 0
        for name, spec in _ordered_inputs(object_info[class_type]):
            if _is_widget(spec):
                if position >= len(values):
                    raise WorkflowError(f"node {node['id']} ({class_type}): no widget value for {name!r}")
                inputs[name] = values[position]
                position += 1
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if spec[0] == "INT" and options.get("control_after_generate"):
                    position += 1
            if name in linked:
                inputs[name] = linked[name]
        prompt[str(node["id"])] = {"class_type": class_type, "inputs": inputs,
                                   "_meta": {"title": node.get("title") or class_type}}
    return prompt
