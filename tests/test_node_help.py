"""Node help pages (web/docs/<node id>.md, served from the pack's WEB_DIRECTORY where the frontend's
node library looks for them) and node-search aliases (where the running io.Schema has the field)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import release_features
from raag_s2_guidance import WEB_DIRECTORY
from raag_s2_guidance.nodes import NODES
from raag_s2_guidance.nodes.base import schema_accepts

PACK_DIR = Path(__file__).resolve().parents[1]
WEB_DIR = (PACK_DIR / WEB_DIRECTORY).resolve()
SCHEMAS = {cls.define_schema().node_id: cls.define_schema() for cls in NODES}
ARXIV = re.compile(r"arxiv\.org/abs/2508\.(03442|12880)")

# What users type for these methods, and the node each must find (issue: "self guidance", "adaptive
# cfg", "stochastic", "ratio", "S2").
ALIAS_TARGETS = {
    "self guidance": ["RAAGS2Guidance_S2Guider", "RAAGS2Guidance_RAAGS2Guider"],
    "stochastic": ["RAAGS2Guidance_S2Guider", "RAAGS2Guidance_RAAGS2Guider"],
    "S2": ["RAAGS2Guidance_S2Guider", "RAAGS2Guidance_RAAGS2Guider"],
    "adaptive cfg": ["RAAGS2Guidance_RAAGGuider", "RAAGS2Guidance_RAAGS2Guider"],
    "ratio": ["RAAGS2Guidance_RAAGGuider", "RAAGS2Guidance_RAAGS2Guider"],
    # RAAG's paper is MAMBO-G since its v4 (and in diffusers): in the display names too, so every frontend finds it
    "MAMBO": ["RAAGS2Guidance_RAAGGuider", "RAAGS2Guidance_RAAGS2Guider", "RAAGS2Guidance_RAAGModelPatch",
              "RAAGS2Guidance_RAAGS2ModelPatch"],
    "magnitude-aware guidance": ["RAAGS2Guidance_RAAGGuider", "RAAGS2Guidance_RAAGS2Guider",
                                 "RAAGS2Guidance_RAAGModelPatch"],
}


def test_web_directory_is_its_own_folder_without_scripts():
    assert WEB_DIR.is_dir() and WEB_DIR != (PACK_DIR / "docs").resolve()
    assert not list(WEB_DIR.rglob("*.js")), "the frontend would load these as extensions"
    pages = {p.stem for p in (WEB_DIR / "docs").glob("*.md")}
    assert pages <= set(SCHEMAS), f"help pages for no node: {pages - set(SCHEMAS)}"


@pytest.mark.parametrize("node_id", list(SCHEMAS))
def test_every_node_has_a_help_page_naming_every_input(node_id):
    page = WEB_DIR / "docs" / f"{node_id}.md"
    assert page.is_file(), f"no help page {page.relative_to(PACK_DIR)}"
    text = page.read_text(encoding="utf-8")
    schema = SCHEMAS[node_id]
    assert text.startswith(f"# {schema.display_name}\n"), "the page opens with the node's display name"
    missing = [item.id for item in schema.inputs if not re.search(rf"`{re.escape(item.id)}`", text)]
    assert not missing, f"{node_id}: the help page does not name the inputs {missing}"
    for section in ("## When to use it", "## Inputs", "## Example"):
        assert section in text, f"{node_id}: no {section!r}"
    assert ARXIV.search(text), f"{node_id}: no link to the paper"


# Nodes that carry search aliases (the guider, plot and demo nodes; the model-patch nodes are a later
# addition without them yet).
ALIASED = ["RAAGS2Guidance_RAAGGuider", "RAAGS2Guidance_S2Guider", "RAAGS2Guidance_RAAGS2Guider",
           "RAAGS2Guidance_TracePlot", "RAAGS2Guidance_DemoModelLoader", "RAAGS2Guidance_DemoPrompt",
           "RAAGS2Guidance_DemoDecode"]


@pytest.mark.parametrize("node_id", ALIASED)
def test_search_aliases_where_the_running_comfyui_has_them(node_id):
    schema = SCHEMAS[node_id]
    if schema_accepts("search_aliases"):
        assert schema.search_aliases, f"{node_id}: no search aliases"
        assert len(set(schema.search_aliases)) == len(schema.search_aliases)
    else:  # the schema still builds, without the field
        assert not hasattr(schema, "search_aliases")


def test_each_search_term_finds_its_nodes():
    if not schema_accepts("search_aliases"):
        release_features.ABSENT["search_aliases"] = "node search aliases (io.Schema.search_aliases)"
        pytest.skip("this ComfyUI's io.Schema has no search_aliases (the search matches names only)")
    for term, targets in ALIAS_TARGETS.items():
        for node_id in targets:
            assert term in SCHEMAS[node_id].search_aliases, f"{term!r} does not find {node_id}"


# -- through a real server: what the frontend fetches -------------------------------------------------
def _fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, "", ""


@pytest.mark.e2e
def test_server_serves_each_help_page_where_the_frontend_looks(comfy_server):
    info = comfy_server.object_info()
    for node_id in SCHEMAS:
        module = info[node_id]["python_module"]
        # the frontend's rule: custom_nodes.<pack folder>[@version] -> /extensions/<pack folder>/docs/
        parts = module.split(".")
        assert len(parts) >= 2 and parts[0] == "custom_nodes", module
        pack = parts[1].split("@")[0]
        status, kind, text = _fetch(f"{comfy_server.url}/extensions/{pack}/docs/{node_id}.md")
        assert status == 200 and "text/html" not in kind, (node_id, status, kind)
        assert text == (WEB_DIR / "docs" / f"{node_id}.md").read_text(encoding="utf-8")
        if schema_accepts("search_aliases") and node_id in ALIASED:
            assert (info[node_id].get("search_aliases") or []) == SCHEMAS[node_id].search_aliases
        elif not schema_accepts("search_aliases"):
            assert not info[node_id].get("search_aliases")
    scripts = [e for e in comfy_server.get("/extensions") if "/docs/" in e or e.endswith(".md")]
    assert not scripts, f"the frontend would load these as extensions: {scripts}"
