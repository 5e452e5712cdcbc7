"""End to end through a real ComfyUI server process: stock nodes + the test node pack on tiny SD3."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from comfy_server import PromptRejected
from graphs import SAVE, build_graph, cfg_guider, guider
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


RAAG = {"w_max": 18.0, "alpha": 12.0, "ratio_mode": "per_sample", "start_percent": 0.0, "end_percent": 1.0,
        "rescale": 0.0}
S2 = {"omega": 0.25, "drop_ratio": 0.1, "start_percent": 0.0, "end_percent": 1.0}
OUR_GUIDERS = {
    "RAAGS2Guidance_RAAGGuider": {**RAAG, "cfg": 5.0},
    "RAAGS2Guidance_S2Guider": {**S2, "cfg": 7.5},
    "RAAGS2Guidance_RAAGS2Guider": {**RAAG, **S2},
}


def test_pack_is_loaded_from_outside_the_comfyui_folder(comfy_server):
    imports = {Path(path).name: ok for path, ok in comfy_server.custom_node_imports().items()}
    assert imports.get("raag_s2_guidance") is True, comfy_server.log_tail()
    info = comfy_server.object_info()
    core = info["CFGGuider"]["category"]  # core's own guider menu on this version
    for node_id in [*OUR_GUIDERS, "RAAGS2Guidance_TracePlot"]:
        assert info[node_id]["category"] == core


def test_the_server_keeps_a_file_database_as_a_users_server_does(comfy_server):
    """Not an in-memory sqlite: on some releases (0.9-0.16) the asset code run by /object_info opens another
    connection than the migrations and finds no tables, and every server test would fail there. With the
    database support installed (SQLAlchemy, alembic), the server opens the file under its own folder (its
    tables where the release's migrations have any); and /object_info answers with a model file present (the
    asset scan's trigger)."""
    command = comfy_server.command()
    url = command[command.index("--database-url") + 1]
    assert ":memory:" not in url and url == comfy_server.database_url
    database = Path(url.removeprefix("sqlite:///"))
    assert database.is_absolute() and comfy_server.base in database.parents
    assert any(comfy_server.base.glob("models/*/*.safetensors"))
    assert "RAAGS2Guidance_RAAGGuider" in comfy_server.object_info()
    if importlib.util.find_spec("sqlalchemy") and importlib.util.find_spec("alembic"):
        assert database.is_file(), comfy_server.log_tail()


@pytest.mark.parametrize("node_id", list(OUR_GUIDERS))
def test_our_guider_node_through_the_server(comfy_server, node_id):
    graph = build_graph(guider(node_id, **OUR_GUIDERS[node_id]), filename_prefix=f"latents/{node_id}")
    graph["plot"] = {"class_type": "RAAGS2Guidance_TracePlot", "inputs": {"guider": ["guider", 0],
                                                                         "latent": ["sample", 0]}}
    graph["preview"] = {"class_type": "PreviewImage", "inputs": {"images": ["plot", 0]}}
    entry = comfy_server.run(graph, timeout=180)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"], indent=1)
    latent = load_file(str(comfy_server.output_file(entry["outputs"][SAVE]["latents"][0])))["latent_tensor"]
    assert list(latent.shape) == [1, 16, 8, 8] and torch.isfinite(latent).all()
    assert len(entry["outputs"]["preview"]["images"]) == 1


def _limits(info: dict, node_id: str) -> list[tuple[str, float, float]]:
    required = info[node_id]["input"]["required"]
    return [(name, spec[1]["min"], spec[1]["max"]) for name, spec in required.items()
            if spec[0] == "FLOAT"]


@pytest.mark.parametrize("node_id", list(OUR_GUIDERS))
def test_every_number_out_of_range_is_rejected_naming_the_input(comfy_server, node_id):
    info = comfy_server.object_info(node_id)
    display = info[node_id]["display_name"]
    limits = _limits(info, node_id)
    assert len(limits) >= 4
    for name, low, high in limits:
        for bad in (low - 0.5, high + 0.5):
            graph = build_graph(guider(node_id, **{**OUR_GUIDERS[node_id], name: bad}))
            with pytest.raises(PromptRejected) as err:
                comfy_server.post_prompt(graph)
            errors = err.value.node_errors["guider"]["errors"]
            named = [e for e in errors if e["extra_info"].get("input_name") == name]
            assert named, f"{name}={bad}: {errors}"
            text = " ".join(f"{e['message']} {e['details']}" for e in named)
            assert f"{bad:g}" in text or str(bad) in text, text
            for e in named:  # the inputs our validate_inputs checks: display name first, input once
                if e["type"] == "custom_validation_failed":
                    ours = e["details"].split(" - ", 1)[1]
                    assert ours.startswith(f"{display}: {name} "), ours
                    assert ours.count(display) == 1 and ours.count(name) == 1, ours


PATCHES = {
    "RAAGS2Guidance_RAAGModelPatch": RAAG,
    "RAAGS2Guidance_S2ModelPatch": S2,
    "RAAGS2Guidance_RAAGS2ModelPatch": {**RAAG, **S2},
}


def _graph_with(node_id: str, values: dict) -> tuple[dict, str]:
    """A graph in which ``node_id`` (one of our guiders, or a model patch in front of CFGGuider) has
    ``values``; returns it and the id of our node in it."""
    if node_id in OUR_GUIDERS:
        return build_graph(guider(node_id, **values)), "guider"
    graph = build_graph(cfg_guider(4.0))
    graph["patch"] = {"class_type": node_id, "inputs": {"model": ["unet", 0], **values}}
    graph["guider"]["inputs"]["model"] = ["patch", 0]
    return graph, "patch"


ALL_NODES = {**OUR_GUIDERS, **PATCHES}


@pytest.mark.parametrize("node_id", list(ALL_NODES))
def test_nan_in_any_number_is_rejected_at_queue_time(comfy_server, node_id):
    """Core's min/max check lets NaN through (every comparison is False): our validate_inputs catches it
    before anything runs, naming the input and its range."""
    info = comfy_server.object_info(node_id)
    display = info[node_id]["display_name"]
    floats = [name for name, _, _ in _limits(info, node_id)]
    assert floats
    for name in floats:
        graph, ours = _graph_with(node_id, {**ALL_NODES[node_id], name: float("nan")})
        with pytest.raises(PromptRejected) as err:
            comfy_server.post_prompt(graph)
        errors = err.value.node_errors[ours]["errors"]
        assert {e["type"] for e in errors} == {"custom_validation_failed"}, errors
        messages = {e["details"].split(" - ", 1)[1] for e in errors}
        assert len(messages) == 1, messages  # one message, listed by core once per input the check reads
        message = messages.pop()
        assert message.startswith(f"{display}: {name} must be in ") and message.endswith("got nan"), message
        assert name in {e["extra_info"]["input_name"] for e in errors}


@pytest.mark.parametrize("node_id", [n for n in ALL_NODES if "ratio_mode" in ALL_NODES[n]])
def test_unknown_ratio_mode_is_rejected_at_queue_time(comfy_server, node_id):
    graph, ours = _graph_with(node_id, {**ALL_NODES[node_id], "ratio_mode": "per_pixel"})
    with pytest.raises(PromptRejected) as err:
        comfy_server.post_prompt(graph)
    errors = err.value.node_errors[ours]["errors"]
    # some releases do not check a V3 combo's value themselves: our validate_inputs does, on every one
    assert {e["type"] for e in errors} == {"custom_validation_failed"}, errors
    display = comfy_server.object_info(node_id)[node_id]["display_name"]
    assert {e["details"].split(" - ", 1)[1] for e in errors} == {
        f"{display}: ratio_mode must be one of per_sample, batch, got 'per_pixel'"}


@pytest.mark.parametrize("node_id", list(ALL_NODES))
def test_window_with_start_after_end_is_rejected(comfy_server, node_id):
    info = comfy_server.object_info(node_id)
    display = info[node_id]["display_name"]
    graph, ours = _graph_with(node_id, {**ALL_NODES[node_id], "start_percent": 0.7, "end_percent": 0.2})
    with pytest.raises(PromptRejected) as err:
        comfy_server.post_prompt(graph)
    errors = err.value.node_errors[ours]["errors"]
    assert {e["type"] for e in errors} == {"custom_validation_failed"}, errors
    # core lists a validate_inputs message once per input it reads ("<input> - <ours>"): one text, the
    # node's display name and each input named once in it
    assert {e["details"].split(" - ", 1)[1] for e in errors} == {
        f"{display}: start_percent (0.7) must be below end_percent (0.2): the step window would be empty"}


def test_several_bad_numbers_are_reported_in_one_message(comfy_server):
    graph, ours = _graph_with("RAAGS2Guidance_RAAGGuider", {**OUR_GUIDERS["RAAGS2Guidance_RAAGGuider"],
                                                            "w_max": float("nan"), "alpha": 500.0})
    with pytest.raises(PromptRejected) as err:
        comfy_server.post_prompt(graph)
    messages = {e["details"].split(" - ", 1)[1] for e in err.value.node_errors[ours]["errors"]}
    assert messages == {"RAAG / MAMBO-G Guider: w_max must be in [1, 100], got nan; alpha must be in [0, 100], got 500"}


def test_missing_negative_is_rejected_naming_the_input(comfy_server):
    graph = build_graph(guider("RAAGS2Guidance_RAAGGuider", **OUR_GUIDERS["RAAGS2Guidance_RAAGGuider"]))
    del graph["guider"]["inputs"]["negative"]
    with pytest.raises(PromptRejected) as err:
        comfy_server.post_prompt(graph)
    errors = err.value.node_errors["guider"]["errors"]
    assert any(e["type"] == "required_input_missing" and e["details"] == "negative" for e in errors)
