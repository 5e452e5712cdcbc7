"""The demo workflow (workflows/Demo 1 - ....json, the file users drag onto the canvas) converts to an API prompt with
tools/harness/workflow_api.py and runs to the end in a real ComfyUI server with this pack installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from workflow_api import WorkflowError, to_api
from workflow_files import path as workflow_path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = workflow_path("demo_tiny")

INFO = {
    "Seed": {"input": {"required": {"noise_seed": ["INT", {"control_after_generate": True}]}},
             "input_order": {"required": ["noise_seed"]}},
    "Mix": {"input": {"required": {"a": ["LATENT", {}], "mode": [["x", "y"], {}], "scale": ["FLOAT", {}]},
                      "optional": {"name": ["STRING", {}]}},
            "input_order": {"required": ["a", "mode", "scale"], "optional": ["name"]}},
}


def _node(nid, type_, widgets, inputs=(), outputs=(), mode=0):
    return {"id": nid, "type": type_, "mode": mode, "widgets_values": widgets,
            "inputs": [{"name": n, "type": "X", "link": link} for n, link in inputs],
            "outputs": [{"name": n, "type": "X", "links": links} for n, links in outputs]}


def test_workflow_api_rules():
    workflow = {"nodes": [
        _node(1, "Seed", [7, "randomize"], outputs=[("NOISE", [1])]),
        _node(2, "Mix", ["y", 2.5, "n"], inputs=[("a", 1), ("scale", 2)]),
        _node(3, "Seed", [9, "fixed"], outputs=[("NOISE", [2])]),
        _node(4, "Note", ["text"]),
        _node(5, "Seed", [1, "fixed"], mode=2),
    ], "links": [[1, 1, 0, 2, 0, "NOISE"], [2, 3, 0, 2, 1, "FLOAT"]]}
    api = to_api(workflow, INFO)
    assert set(api) == {"1", "2", "3"}  # the note and the muted node are left out
    assert api["1"]["inputs"] == {"noise_seed": 7}  # the control_after_generate value is skipped
    assert api["2"]["inputs"] == {"a": ["1", 0], "mode": "y", "scale": ["3", 0], "name": "n"}  # linked widget
    with pytest.raises(WorkflowError, match="unknown node type 'Nope'"):
        to_api({"nodes": [_node(1, "Nope", [])], "links": []}, INFO)
    with pytest.raises(WorkflowError, match="bypassed"):
        to_api({"nodes": [_node(1, "Seed", [1, "fixed"], mode=4)], "links": []}, INFO)


@pytest.mark.e2e
def test_demo_workflow_runs_in_a_real_server(comfy_server):
    workflow = json.loads(WORKFLOW.read_text())
    api = to_api(workflow, comfy_server.object_info())
    entry = comfy_server.run(api, timeout=600)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"], indent=1)
    saves = [i for i, n in api.items() if n["class_type"] == "SaveImage"]
    assert len(saves) == 9  # 6 grid columns + 3 trace plots
    rows = len(api["2"]["inputs"]["prompts"].splitlines())
    for node_id in saves:
        files = [comfy_server.output_file(ref) for ref in entry["outputs"][node_id]["images"]]
        assert all(f.is_file() for f in files)
        if not api[node_id]["inputs"]["filename_prefix"].startswith("demo/trace_"):
            assert len(files) == rows
            assert Image.open(files[0]).size == (64, 64)
