"""End to end through a real ComfyUI server process: stock nodes + the test node pack on tiny SD3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from graphs import SAVE, build_graph, cfg_guider
from safetensors.torch import load_file

pytestmark = pytest.mark.e2e


def test_test_node_pack_is_loaded(comfy_server):
    imports = {Path(path).name: ok for path, ok in comfy_server.custom_node_imports().items()}
    assert imports.get("tiny_conditioning") is True, comfy_server.log_tail()
    info = comfy_server.object_info("TinyTestConditioning")["TinyTestConditioning"]
    assert info["output"] == ["CONDITIONING"]
    assert {"arch", "seed", "batch"} <= set(info["input"]["required"])


def test_tiny_sd3_graph_with_cfg_guider(comfy_server):
    entry = comfy_server.run(build_graph(cfg_guider(4.0)), timeout=180)
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status["messages"], indent=1)
    latents = entry["outputs"][SAVE]["latents"]
    assert len(latents) == 1 and latents[0]["type"] == "output"
    file = comfy_server.output_file(latents[0])
    assert file.is_file()
    latent = load_file(str(file))["latent_tensor"]
    assert list(latent.shape) == [1, 16, 8, 8]
    assert torch.isfinite(latent).all()
