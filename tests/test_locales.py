"""``locales/en/nodeDefs.json`` (served by ComfyUI at /i18n) matches the node schemas it is made from."""

from __future__ import annotations

import json

import gen_locales
from raag_s2_guidance.nodes import NODES


def test_nodedefs_json_matches_the_schemas():
    expected = gen_locales.render(gen_locales.node_defs(NODES))
    path = gen_locales.TARGET
    actual = path.read_text(encoding="utf-8") if path.is_file() else ""
    assert actual == expected, (
        f"{path.relative_to(gen_locales.REPO)} does not match the node schemas (a node, name, description "
        f"or tooltip changed): regenerate it with `{gen_locales.COMMAND}` (or `make locales`) and commit it")


def test_nodedefs_json_has_the_frontend_format():
    defs = json.loads(gen_locales.TARGET.read_text(encoding="utf-8"))
    for cls in NODES:
        schema = cls.define_schema()
        entry = defs[schema.node_id]
        assert entry["display_name"] == schema.display_name
        assert entry["description"] == schema.description
        assert list(entry.get("inputs", {})) == [item.id for item in schema.inputs]
        for item in schema.inputs:
            assert entry["inputs"][item.id] == {"name": item.display_name or item.id, "tooltip": item.tooltip}
        assert list(entry.get("outputs", {})) == [str(i) for i in range(len(schema.outputs))]
