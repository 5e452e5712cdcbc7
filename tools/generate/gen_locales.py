"""Writes ``locales/en/nodeDefs.json`` from the V3 schemas of ``nodes.NODES`` (run it after any node change).

    .venv/bin/python tools/generate/gen_locales.py           # (re)write the file
    .venv/bin/python tools/generate/gen_locales.py --check   # exit 1 when the file is out of date

The format is the frontend's (docs.comfy.org/custom-nodes/i18n): per node id, ``display_name``,
``description``, ``inputs.<id>.name`` / ``.tooltip`` and ``outputs.<index>.name`` / ``.tooltip``.
ComfyUI serves it at ``/i18n``; other languages go next to it (``locales/<lang>/nodeDefs.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "locales" / "en" / "nodeDefs.json"
COMMAND = ".venv/bin/python tools/generate/gen_locales.py"
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/


def node_classes() -> list[type]:
    import comfy_env

    pack = comfy_env.load_pack()
    return list(import_module(pack.__name__ + ".nodes").NODES)


def _drop_none(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if v not in (None, "")}


def node_defs(classes: list[type] | None = None) -> dict[str, Any]:
    """The English nodeDefs of the pack's nodes, in ``NODES`` order."""
    defs: dict[str, Any] = {}
    for cls in classes if classes is not None else node_classes():
        schema = cls.define_schema()
        inputs = {}
        for item in schema.inputs:
            inputs[item.id] = _drop_none({"name": item.display_name or item.id, "tooltip": item.tooltip})
        outputs = {}
        for index, item in enumerate(schema.outputs):
            name = item.display_name or item.id or item.io_type
            outputs[str(index)] = _drop_none({"name": name, "tooltip": item.tooltip})
        entry = _drop_none({"display_name": schema.display_name or schema.node_id,
                            "description": schema.description})
        if inputs:
            entry["inputs"] = inputs
        if outputs:
            entry["outputs"] = outputs
        defs[schema.node_id] = entry
    return defs


def render(defs: dict[str, Any]) -> str:
    return json.dumps(defs, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    text = render(node_defs())
    current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else None
    if args.check:
        if current != text:
            print(f"{TARGET.relative_to(REPO)} is out of date: run `{COMMAND}`")
            return 1
        print(f"{TARGET.relative_to(REPO)} is up to date")
        return 0
    if current != text:
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(REPO)} ({len(json.loads(text))} nodes)")
    else:
        print(f"{TARGET.relative_to(REPO)} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
