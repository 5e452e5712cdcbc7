"""Measures how tall each node of the shipped workflows is with Nodes 2.0 (the Vue node renderer) in
the frontends the supported ComfyUI releases pin, and writes ``tools/generate/node_heights.json``.

    .venv/bin/python tools/generate/measure_node_heights.py                  # every frontend below
    .venv/bin/python tools/generate/measure_node_heights.py 1.45.21 1.58.1   # some of them (merged)

The Vue renderer sizes a node by its content, differently from one frontend to the next;
``make_workflows.py`` lays the workflows out with the largest height measured here for each node type, so
that no node overlaps its neighbour in any of them. Each frontend package is downloaded from the package
index into ``.cache/measure-frontends/`` (not ``.cache/frontends/``, which the browser test runs), served
by the ComfyUI in use with ``--front-end-root`` (``COMFYUI_PATH``: frontends from 1.33 on need a newer
server than 0.3.75), and each workflow is loaded with Nodes 2.0 on in headless Chromium
(``make browser-deps``). Where a frontend spreads the nodes of a classic layout apart (the auto-scale of
1.28-1.39), heights are divided by that spread (``auto_scale``): the room they need in the file's
positions. A frontend without a Vue renderer, or one that does not start with the server in use, is
recorded as such, without heights. Takes about a minute per frontend.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import workflow_files  # noqa: E402

NOTES = {"Note", "MarkdownNote"}
OUT = Path(__file__).with_name("node_heights.json")
CACHE = REPO / ".cache" / "measure-frontends"
# The comfyui-frontend-package that the releases of the README's range pin (their requirements.txt),
# the last of each minor line (the patch releases of a line share the node renderer), plus the newest
# frontend the browser test runs (setup_browser.sh) and the one the default runtime's wheel pins.
FRONTENDS = ("1.27.10", "1.28.9", "1.30.6", "1.32.9", "1.32.10", "1.33.13", "1.34.9", "1.35.9", "1.36.14",
             "1.37.11", "1.38.14", "1.39.19", "1.41.21", "1.42.15", "1.43.18", "1.44.19", "1.45.21",
             "1.47.11", "1.48.7", "1.58.1")


# Frontends where the Vue renderer is a hidden experiment (a keybinding, off by default; "Modern Node
# Design (Nodes 2.0)" is a setting from 1.32 on): measured, but the layout does not make room for them.
EXPERIMENTAL = ("1.27.10", "1.28.9", "1.30.6")


def unpacked(version: str) -> Path:
    """The static folder of comfyui-frontend-package ``version``, installed under CACHE once."""
    static = CACHE / version / "comfyui_frontend_package" / "static"
    if not (static / "index.html").is_file():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                        str(CACHE / version), f"comfyui-frontend-package=={version}"], check=True)
    return static


def covering_workflows() -> list[Path]:
    """The fewest shipped workflows (greedy) that together hold every node type they use."""
    files = {p: {n["type"] for n in json.loads(p.read_text(encoding="utf-8"))["nodes"]}
             for p in sorted(workflow_files.WORKFLOWS.glob("*.json"))}
    chosen, missing = [], set().union(*files.values())
    while missing:
        best = max(files, key=lambda p: len(files[p] & missing))
        chosen.append(best)
        missing -= files.pop(best)
    return chosen


def measure(version: str, workflows: list[Path]) -> dict:
    """{"heights": {node type: height in graph units, title bar included}} in frontend ``version``, or
    {"skipped": why}."""
    import browser
    import comfy_env
    from comfy_server import ComfyServer

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        browser.write_settings(base / "user")
        heights: dict[str, float] = {}
        with ComfyServer(base, frontend=unpacked(version)) as server, \
                browser.chromium(base / "chromium-profile") as context:
            try:
                app = browser.ComfyApp(context.new_page(), server.url).open(timeout_s=60)
            except Exception as exc:  # noqa: BLE001 - a frontend newer than the server may need its newer API
                return {"skipped": f"does not open with ComfyUI {comfy_env.comfy_version()} ({type(exc).__name__}): "
                                   "measure it with a newer one (COMFYUI_PATH)"}
            for path in workflows:
                workflow = json.loads(path.read_text(encoding="utf-8"))
                try:
                    layout = app.nodes_2_layout(workflow, path.stem)
                except Exception as exc:  # noqa: BLE001 - a frontend without the Vue renderer times out
                    return {"skipped": f"no Nodes 2.0 layout ({type(exc).__name__})"}
                scale = layout["scale"]  # the auto-scale of a classic layout spreads the nodes apart
                types = {n["id"]: n["type"] for n in workflow["nodes"]}
                for node in layout["nodes"]:
                    kind = types[int(node["name"].split()[0].lstrip("#"))]
                    if kind in NOTES:  # sized by their own text, each in its place
                        continue
                    box = node["box"]
                    heights[kind] = max(heights.get(kind, 0), round((box[3] - box[1]) / scale))
                app.open()
    found = {"heights": dict(sorted(heights.items()))}
    if version in EXPERIMENTAL:
        found = {"experimental": True, **found}
    return found if scale == 1.0 else {"auto_scale": round(scale, 3), **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", default=list(FRONTENDS))
    args = parser.parse_args()
    import comfy_env

    comfy_env.bootstrap()
    found = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() else {}
    workflows = covering_workflows()
    for version in args.versions:
        found[version] = measure(version, workflows)
        print(version, "skipped: " + found[version]["skipped"] if "skipped" in found[version]
              else f"{len(found[version]['heights'])} node types", flush=True)
        OUT.write_text(json.dumps(dict(sorted(found.items(), key=lambda kv: tuple(map(int, kv[0].split("."))))),
                                  indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
