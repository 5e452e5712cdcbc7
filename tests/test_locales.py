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


def _strings(value, where=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}/{key}")
    elif isinstance(value, str):
        yield where, value


def test_nodedefs_json_is_plain_text_to_the_frontends_message_compiler():
    """The frontend compiles every /i18n string as a vue-i18n message: ``|`` separates plural forms, ``{ }``
    and ``@`` are placeholders and links. An empty plural form (``||v||``) is a compile error that stops
    frontends 1.33-1.47 (ComfyUI 0.4-0.30) from starting at all; norms are written with ``‖``."""
    defs = json.loads(gen_locales.TARGET.read_text(encoding="utf-8"))
    special = [(where, text) for where, text in _strings(defs) if set(text) & set("|{}@")]
    assert special == [], special
