"""The subgraph blueprints of ``subgraphs/`` ("RAAG sampler", "S2 sampler"): generated files up to date,
a well-formed blueprint (one node, one subgraph, consistent links and ports), every inner widget as
the live node definitions declare it, served by the real server's ``/global_subgraphs`` under this
pack, and, flattened into an API prompt the way the frontend does (inner node ids
``<blueprint node>:<inner node>``, subgraph inputs resolved to the outer links or to the blueprint
node's widget values), accepted by the server's validation and run to the end on the tiny SD3 model.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.error
from pathlib import Path
from typing import Any

import browser
import make_subgraphs
import make_workflows
import pytest
import release_features
import torch
from comfy_env import PACK_NAME, comfy_root, comfy_version
from comfy_server import PromptRejected
from graphs import build_graph, cfg_guider
from safetensors.torch import load_file
from workflow_api import to_api

SUBGRAPHS = Path(__file__).resolve().parents[1] / "subgraphs"
P = make_workflows.PACK_PREFIX
# name -> (guider node type, steps, the widgets exposed on the blueprint node)
EXPECTED = {
    "RAAG sampler": (P + "RAAGGuider", 10, ["noise_seed", "steps", "w_max", "alpha", "rescale"]),
    "S2 sampler": (P + "S2Guider", 28, ["noise_seed", "steps", "cfg", "omega", "drop_ratio"]),
}
SOCKETS = ["model", "positive", "negative", "latent_image"]
NAMES = list(EXPECTED)
VERSION = f"ComfyUI {comfy_version()} ({comfy_root()})"


@pytest.fixture(scope="module")
def infos():
    return make_workflows.load_node_infos()


def load(name: str) -> dict[str, Any]:
    return json.loads((SUBGRAPHS / f"{name}.json").read_text(encoding="utf-8"))


def parts(blueprint: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the blueprint node of the root graph, its subgraph definition)."""
    (instance,) = blueprint["nodes"]
    (definition,) = blueprint["definitions"]["subgraphs"]
    assert instance["type"] == definition["id"]
    return instance, definition


def widget_values(node: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Widget name -> value, read in the order of the live definition (a control value after a seed)."""
    values = list(node["widgets_values"])
    found = {}
    for name, spec, _optional in make_workflows.input_specs(info):
        if make_workflows.is_widget(spec):
            assert values, f"#{node['id']} {node['type']}: no value for widget {name}"
            found[name] = values.pop(0)
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if options.get("control_after_generate"):
                found[f"{name}.control"] = values.pop(0)
    assert not values, f"#{node['id']} {node['type']}: {len(values)} widget values left over"
    return found


# -- the files ------------------------------------------------------------------------------------------
def test_files_are_current(infos):
    built = make_subgraphs.build_all(infos)
    assert sorted(built) == sorted(p.name for p in SUBGRAPHS.glob("*.json")) == sorted(f"{n}.json" for n in NAMES)
    stale = [name for name, text in built.items() if (SUBGRAPHS / name).read_text(encoding="utf-8") != text]
    assert not stale, (f"out of date on {VERSION}: {stale}. Regenerate with "
                       "`.venv/bin/python tools/generate/make_subgraphs.py`; edit the script, not the JSON")


@pytest.mark.parametrize("name", NAMES)
def test_blueprint_is_one_node_of_one_consistent_subgraph(name):
    blueprint = load(name)
    assert blueprint["version"] == 0.4 and blueprint["links"] == []
    instance, sg = parts(blueprint)
    assert instance["title"] == sg["name"] == name
    assert blueprint["extra"]["BlueprintDescription"].strip()
    nodes = {n["id"]: n for n in sg["nodes"]}
    assert len(nodes) == len(sg["nodes"]) and sg["state"]["lastNodeId"] >= max(nodes)
    assert sg["inputNode"]["id"] == -10 and sg["outputNode"]["id"] == -20
    links = {link["id"]: link for link in sg["links"]}
    assert len(links) == len(sg["links"]) and sg["state"]["lastLinkId"] >= max(links)
    for link in sg["links"]:
        kind, lid = link["type"], link["id"]
        if link["origin_id"] == -10:
            port = sg["inputs"][link["origin_slot"]]
            assert lid in port["linkIds"] and port["type"] == kind, f"link {lid}"
        else:
            out = nodes[link["origin_id"]]["outputs"][link["origin_slot"]]
            assert lid in out["links"] and out["type"] == kind, f"link {lid}"
        if link["target_id"] == -20:
            port = sg["outputs"][link["target_slot"]]
            assert port["linkIds"] == [lid] and port["type"] == kind, f"link {lid}"
        else:
            into = nodes[link["target_id"]]["inputs"][link["target_slot"]]
            assert into["link"] == lid and into["type"] == kind, f"link {lid}"
    listed = {i for port in sg["inputs"] + sg["outputs"] for i in port["linkIds"]}
    listed |= {i["link"] for n in nodes.values() for i in n["inputs"] if i["link"] is not None}
    assert listed == set(links), "links listed by ports and nodes differ from the link table"
    # The blueprint node's sockets are the subgraph's inputs, and each feeds sockets only.
    guider_type, steps, exposed = EXPECTED[name]
    assert [p["name"] for p in sg["inputs"]] == [i["name"] for i in instance["inputs"]] == SOCKETS
    assert [p["type"] for p in sg["inputs"]] == [i["type"] for i in instance["inputs"]]
    assert not [i for i in instance["inputs"] if "widget" in i]
    assert [(o["name"], o["type"]) for o in sg["outputs"]] == [(o["name"], o["type"]) for o in instance["outputs"]]
    assert [o["type"] for o in sg["outputs"]] == ["LATENT", "GUIDER"]
    for port in sg["inputs"]:
        targets = [nodes[links[i]["target_id"]]["inputs"][links[i]["target_slot"]] for i in port["linkIds"]]
        assert targets and not [t for t in targets if "widget" in t], f"input {port['name']} feeds {targets}"
    # Its widgets are inner widgets promoted onto it (no subgraph input feeds them), the seed's control
    # after generate right after the seed.
    promoted = instance["properties"]["proxyWidgets"]
    assert [widget for _, widget in promoted if widget != "control_after_generate"] == exposed
    for i, (node_id, widget) in enumerate(promoted):
        node = nodes[int(node_id)]
        if widget == "control_after_generate":
            assert node["type"] == "RandomNoise" and promoted[i - 1] == [node_id, "noise_seed"], promoted
            continue
        (entry,) = [e for e in node["inputs"] if e.get("widget", {}).get("name") == widget]
        assert entry["link"] is None, f"#{node_id} {node['type']}.{widget} is fed by a link"
    assert sum(widget == "control_after_generate" for _, widget in promoted) == 1
    types = sorted(n["type"] for n in nodes.values())
    assert types == sorted([guider_type, "BasicScheduler", "KSamplerSelect", "RandomNoise", "SamplerCustomAdvanced"])


@pytest.mark.parametrize("name", NAMES)
def test_inner_widgets_match_the_live_schema(name, infos):
    _, sg = parts(load(name))
    problems = []
    for node in sg["nodes"]:
        info = infos[node["type"]]
        specs = make_workflows.input_specs(info)
        sockets = [(n, s[0]) for n, s, _ in specs if not make_workflows.is_widget(s)]
        widgets = [(n, "COMBO" if isinstance(s[0], list) else s[0]) for n, s, _ in specs if make_workflows.is_widget(s)]
        got = [(i["name"], i["type"]) for i in node["inputs"]]
        if got != sockets + widgets:
            problems.append(f"#{node['id']} {node['type']}: inputs {got}, the live node has {sockets + widgets}")
            continue
        if [i["name"] for i in node["inputs"] if "widget" in i] != [n for n, _ in widgets]:
            problems.append(f"#{node['id']} {node['type']}: widget inputs differ from the live node's")
        values = widget_values(node, info)
        for input_name, spec, optional in specs:
            linked = any(i["name"] == input_name and i["link"] is not None for i in node["inputs"])
            if not make_workflows.is_widget(spec):
                if not optional and not linked:
                    problems.append(f"#{node['id']} {node['type']}.{input_name}: required input not linked")
                continue
            value, options = values[input_name], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            choices = make_workflows.combo_options(spec)
            if choices is not None and value not in choices:
                problems.append(f"#{node['id']} {node['type']}.{input_name}={value!r} not in {choices}")
            if spec[0] in ("INT", "FLOAT") and not options.get("min", value) <= value <= options.get("max", value):
                problems.append(f"#{node['id']} {node['type']}.{input_name}={value!r} out of range")
    assert not problems, f"on {VERSION}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_papers_settings(name, infos):
    _, sg = parts(load(name))
    by_type = {n["type"]: widget_values(n, infos[n["type"]]) for n in sg["nodes"]}
    guider_type, steps, _ = EXPECTED[name]
    assert by_type["BasicScheduler"] == {"scheduler": "normal", "steps": steps, "denoise": 1.0}
    assert by_type["KSamplerSelect"] == {"sampler_name": "euler"}
    guider = by_type[guider_type]
    if guider_type.endswith("RAAGGuider"):  # the authors' official SD3.5 setting
        assert (guider["w_max"], guider["alpha"], guider["ratio_mode"], guider["rescale"]) == (
            18.0, 12.0, "per_sample", 0.0)
    else:
        assert (guider["cfg"], guider["omega"], guider["drop_ratio"]) == (7.5, 0.25, 0.1)
    assert (guider["start_percent"], guider["end_percent"]) == (0.0, 1.0)


# -- flattening (the frontend's graphToPrompt for a subgraph node) ------------------------------------------
def flatten(blueprint: dict[str, Any], object_info: dict[str, Any], outer: dict[str, list],
            values: dict[str, Any] | None = None) -> tuple[dict[str, dict[str, Any]], list[list]]:
    """API prompt of the blueprint's inner nodes, and the references of its outputs.

    ``outer``: subgraph input name -> ``[outer node id, slot]`` of the link into the blueprint node;
    ``values``: values of the blueprint node's widgets, the promoted inner ones (default: the inner
    widgets' values, which is what a promoted widget shows)."""
    values = dict(values or {})
    instance, sg = parts(blueprint)
    prefix = f"{instance['id']}:"
    inner = copy.deepcopy(sg["nodes"])
    internal, from_inputs = [], []
    for link in sg["links"]:
        if link["origin_id"] == -10:
            from_inputs.append(link)
        elif link["target_id"] != -20:
            internal.append([link["id"], link["origin_id"], link["origin_slot"], link["target_id"],
                             link["target_slot"], link["type"]])
    for node in inner:  # the subgraph inputs are resolved below, not through the link table
        for socket in node["inputs"]:
            if any(link["id"] == socket["link"] for link in from_inputs):
                socket["link"] = None
    prompt = to_api({"nodes": inner, "links": internal}, object_info)
    for link in from_inputs:
        port = sg["inputs"][link["origin_slot"]]
        target = next(n for n in inner if n["id"] == link["target_id"])
        socket = target["inputs"][link["target_slot"]]
        if port["name"] not in outer:
            raise AssertionError(f"subgraph input {port['name']} is not connected")
        source = outer.pop(port["name"]) if len(port["linkIds"]) == 1 else outer[port["name"]]
        prompt[str(target["id"])]["inputs"][socket["name"]] = source
    for node_id, widget in instance["properties"]["proxyWidgets"]:
        if widget in values:
            prompt[node_id]["inputs"][widget] = values.pop(widget)
    assert not values, f"no widget {sorted(values)} on the blueprint node"
    flat = {}
    for node_id, node in prompt.items():
        inputs = {k: [prefix + v[0], v[1]] if isinstance(v, list) and str(v[0]) in prompt else v
                  for k, v in node["inputs"].items()}
        flat[prefix + node_id] = {**node, "inputs": inputs}
    outputs = [[prefix + str(link["origin_id"]), link["origin_slot"]] for port in sg["outputs"]
               for link in sg["links"] if link["id"] == port["linkIds"][0]]
    return flat, outputs


def tiny_prompt(name: str, object_info: dict, values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Tiny SD3 loader, conditionings and latent → the blueprint → SaveLatent, and its GUIDER and LATENT
    → Guidance Trace Plot → PreviewImage."""
    stock = build_graph(cfg_guider())
    outside = {key: stock[key] for key in ("unet", "positive", "negative", "latent")}
    links = {"model": ["unet", 0], "positive": ["positive", 0], "negative": ["negative", 0],
             "latent_image": ["latent", 0]}
    inner, (latent, guider) = flatten(load(name), object_info, links, values)
    prefix = name.split()[0].lower()
    return {**outside, **inner,
            "save": {"class_type": "SaveLatent", "inputs": {"samples": latent,
                                                            "filename_prefix": f"latents/blueprint_{prefix}"}},
            "plot": {"class_type": P + "TracePlot", "inputs": {"guider": guider, "latent": latent}},
            "preview": {"class_type": "PreviewImage", "inputs": {"images": ["plot", 0]}}}


# -- the real server ------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_server_lists_and_serves_both_blueprints(comfy_server):
    release_features.require("global_subgraphs")
    try:
        listed = comfy_server.get("/global_subgraphs")
    except urllib.error.HTTPError as err:
        pytest.fail(f"{VERSION} has no GET /global_subgraphs (HTTP {err.code}): it cannot offer the pack's "
                    "subgraph blueprints", pytrace=False)
    ours = {entry["name"]: (key, entry) for key, entry in listed.items()
            if entry.get("info", {}).get("node_pack") == f"custom_nodes.{PACK_NAME}"}
    assert sorted(ours) == sorted(NAMES), f"{VERSION} lists {sorted(ours)} for this pack; all: {listed}"
    for name, (key, entry) in ours.items():
        assert entry["source"] == "custom_node" and "data" not in entry and "path" not in entry
        served = comfy_server.get(f"/global_subgraphs/{key}")
        assert served["name"] == name
        assert served["data"] == (SUBGRAPHS / f"{name}.json").read_text(encoding="utf-8"), name
        assert parts(json.loads(served["data"]))[1]["name"] == name


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_flattened_blueprint_validates_and_runs(comfy_server, name):
    object_info = comfy_server.object_info()
    guider_type, _, exposed = EXPECTED[name]
    knob = exposed[-1]  # the last guider knob, set through the blueprint node's widget
    spec = object_info[guider_type]["input"]["required"][knob]
    bound = spec[1]["min"] if spec[1]["min"] < spec[1]["default"] else spec[1]["max"]  # (rescale's default is its min)
    value = round((bound + spec[1]["default"]) / 2, 3)  # between the default and a bound: never the default
    prompt = tiny_prompt(name, object_info, {"noise_seed": 7, "steps": 3, knob: value})
    by_type = {node["class_type"]: node["inputs"] for node in prompt.values()}
    assert by_type["RandomNoise"]["noise_seed"] == 7
    assert by_type["BasicScheduler"] == {"model": ["unet", 0], "scheduler": "normal", "steps": 3, "denoise": 1.0}
    assert by_type[guider_type][knob] == value
    assert by_type[guider_type]["model"] == ["unet", 0] and by_type[guider_type]["positive"] == ["positive", 0]
    assert by_type["SamplerCustomAdvanced"]["latent_image"] == ["latent", 0]
    assert all(":" in key for key, node in prompt.items() if node["class_type"] in
               {guider_type, "BasicScheduler", "KSamplerSelect", "RandomNoise", "SamplerCustomAdvanced"})
    entry = comfy_server.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"], indent=1)
    latent = load_file(str(comfy_server.output_file(entry["outputs"]["save"]["latents"][0])))["latent_tensor"]
    assert list(latent.shape) == [1, 16, 8, 8] and torch.isfinite(latent).all()
    assert len(entry["outputs"]["preview"]["images"]) == 1


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_knob_is_rejected_by_the_server(comfy_server, name):
    """The conversion reaches the server's validation: a blueprint widget past its max is refused."""
    object_info = comfy_server.object_info()
    guider_type, _, exposed = EXPECTED[name]
    knob = exposed[-1]
    too_big = object_info[guider_type]["input"]["required"][knob][1]["max"] + 1.0
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.post_prompt(tiny_prompt(name, object_info, {knob: too_big}))
    (node_id,) = rejected.value.node_errors
    assert node_id.endswith(f":{next(n['id'] for n in parts(load(name))[1]['nodes'] if n['type'] == guider_type)}")
    assert knob in json.dumps(rejected.value.node_errors[node_id])


# -- the real frontend (optional: needs Chromium, playwright and the frontend package) ------------------
def ui_node(node_id: int, class_type: str, info: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A UI-format node with the live definition's sockets and widgets (no links yet)."""
    inputs, widgets, widget_values = [], [], []
    for input_name, spec, _optional in make_workflows.input_specs(info):
        entry = {"name": input_name, "type": "COMBO" if isinstance(spec[0], list) else spec[0], "link": None}
        if make_workflows.is_widget(spec):
            entry["widget"] = {"name": input_name}
            widgets.append(entry)
            widget_values.append(values[input_name])
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if options.get("control_after_generate") or input_name in ("seed", "noise_seed"):
                widget_values.append("fixed")  # the frontend gives any seed this choice
        else:
            inputs.append(entry)
    names = info.get("output_name") or info["output"]
    return {"id": node_id, "type": class_type, "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0,
            "mode": 0, "inputs": inputs + widgets,
            "outputs": [{"name": n, "type": t, "links": []} for n, t in zip(names, info["output"])],
            "properties": {}, "widgets_values": widget_values}


def ui_workflow(name: str, object_info: dict[str, Any]) -> tuple[dict[str, Any], dict[int, str]]:
    """The blueprint node between the tiny SD3 nodes (as :func:`tiny_prompt`), in UI format; and the
    UI id of each outer node -> its id in :func:`tiny_prompt`."""
    workflow = load(name)
    instance, _ = parts(workflow)
    stock = tiny_prompt(name, object_info)
    outer = ["unet", "positive", "negative", "latent", "save", "plot", "preview"]
    ids = {key: instance["id"] + 1 + i for i, key in enumerate(outer)}
    nodes = {instance["id"]: instance}
    for key in outer:
        values = {k: v for k, v in stock[key]["inputs"].items() if not isinstance(v, list)}
        nodes[ids[key]] = ui_node(ids[key], stock[key]["class_type"], object_info[stock[key]["class_type"]], values)
    blueprint_id = str(instance["id"])

    def connect(origin: int, slot: int, target: int, input_name: str) -> None:
        link_id = len(workflow["links"]) + 1
        target_slot = [i["name"] for i in nodes[target]["inputs"]].index(input_name)
        kind = nodes[origin]["outputs"][slot]["type"]
        workflow["links"].append([link_id, origin, slot, target, target_slot, kind])
        nodes[target]["inputs"][target_slot]["link"] = link_id
        nodes[origin]["outputs"][slot]["links"].append(link_id)

    for input_name, key in (("model", "unet"), ("positive", "positive"), ("negative", "negative"),
                            ("latent_image", "latent")):
        connect(ids[key], 0, instance["id"], input_name)
    for key in ("save", "plot", "preview"):
        for input_name, value in stock[key]["inputs"].items():
            if isinstance(value, list):
                origin = instance["id"] if value[0].startswith(f"{blueprint_id}:") else ids[value[0]]
                slot = value[1] if origin != instance["id"] else (0 if input_name in ("samples", "latent") else 1)
                connect(origin, slot, ids[key], input_name)
    workflow["nodes"] = list(nodes.values())
    workflow["last_node_id"] = max(nodes)
    workflow["last_link_id"] = len(workflow["links"])
    return workflow, {ui: key for key, ui in ids.items()}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


FRONTENDS = browser.frontends()


@pytest.fixture(scope="module", params=list(FRONTENDS))
def frontend(tmp_path_factory, request):
    """The server and app with the frontend the running ComfyUI pins, then with the newest one checked."""
    import os

    import tiny_models
    from comfy_server import ComfyServer

    missing = browser.missing_requirements()
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"the blueprint browser check cannot run in CI: {missing}", pytrace=False)
    if missing:
        pytest.skip(f"browser check skipped: {missing}")
    base = tmp_path_factory.mktemp("blueprint_browser")
    server = ComfyServer(base, frontend=FRONTENDS[request.param],
                         extra_custom_nodes=[Path(__file__).parent / "comfy_nodes"])
    tiny_models.write_tiny_sd3_checkpoint(server.model_path("diffusion_models", "tiny_sd3.safetensors"))
    browser.write_settings(base / "user")
    with server, browser.chromium(base / "chromium-profile") as context:
        yield server, browser.ComfyApp(context.new_page(), server.url).open()


@pytest.mark.e2e
def test_frontend_loads_both_blueprints(frontend):
    release_features.require("global_subgraphs")  # the frontend fetches them from there
    _, app = frontend
    app.page.wait_for_function(
        "(n) => app.extensionManager.workflow.workflows.filter(w => w.path.startsWith('subgraphs/')"
        " && w.isLoaded).length >= n", arg=len(NAMES), timeout=60_000)
    loaded = app.page.evaluate("() => app.extensionManager.workflow.workflows.filter(w => w.isLoaded)"
                               ".map(w => w.path)")
    ours = [f"subgraphs/{n}.json" for n in NAMES]  # newer ComfyUI adds its own blueprints
    assert set(ours) <= set(loaded), loaded
    assert not [c for c in app.console if "Failed to load subgraph blueprint" in c], app.console


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_frontend_flattens_the_blueprint_node_like_the_test(frontend, name):
    """The frontend's own graphToPrompt on the blueprint node (its steps widget set to 3) gives the
    prompt :func:`flatten` builds, and the server runs it."""
    server, app = frontend
    object_info = server.object_info()
    workflow, outer_ids = ui_workflow(name, object_info)
    report = app.load_workflow(workflow, name)
    instance, _ = parts(load(name))
    assert report["missingNodeDialog"] == [] and report["unregistered"] == [instance["type"]]
    # (a frontend older than the ComfyUI's pin says so in a toast: not about the blueprint)
    toasts = [t for t in report["toasts"] if "Version Compatibility Warning" not in t]
    assert report["widgetProblems"] == [] and toasts == [], report["toasts"]
    shown = app.page.evaluate("""([id, steps]) => {
        const node = app.graph.getNodeById(id);
        const w = (node.widgets ?? []).find(w => w.name === 'steps' || w.name.endsWith(': steps'));
        if (w) { w.value = steps; w.callback?.(steps); }
        return (node.widgets ?? []).map(w => [w.name, w.value, w.label ?? null, w.type]);
    }""", [instance["id"], 3])
    _, steps, exposed = EXPECTED[name]
    # the widgets of the blueprint node: the promoted inner ones, named "<inner id>: <widget>" by older
    # frontends and "<widget>" by newer ones (which show no separate control widget)
    names = [w[0].split(": ", 1)[-1] for w in shown if not w[0].endswith("control_after_generate")]
    assert names == exposed, shown
    assert [w[1] for w in shown if w[0].split(": ", 1)[-1] == "steps"] == [3], shown
    submitted = app.submit_prompt()
    assert submitted["status"] == 200, submitted["body"]
    expected = tiny_prompt(name, object_info, {"steps": 3})
    got = {}
    for key, node in submitted["output"].items():
        inputs = {k: ([outer_ids.get(int(v[0]), v[0]) if v[0].isdigit() else v[0], v[1]]
                      if isinstance(v, list) else v) for k, v in node["inputs"].items()}
        got[key if ":" in key else outer_ids[int(key)]] = {"class_type": node["class_type"], "inputs": inputs}
    assert sorted(got) == sorted(expected)
    for key, node in expected.items():
        assert got[key]["class_type"] == node["class_type"], key
        assert sorted(got[key]["inputs"]) == sorted(node["inputs"]), key
        for input_name, value in node["inputs"].items():
            if input_name == "noise_seed":
                continue  # the blueprint node randomizes its seed when a prompt is queued
            assert _same(got[key]["inputs"][input_name], value), (key, input_name, got[key]["inputs"][input_name])
    entry = server.wait_history(submitted["body"]["prompt_id"], timeout=300)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"], indent=1)
    # Queued as a user queues it, the seed changes afterwards (its control after generate is "randomize")
    seeds = app.page.evaluate("""async (id) => {
        const seed = () => app.graph.getNodeById(id).widgets.find(w => /(^|: )noise_seed$/.test(w.name)).value;
        const before = seed();
        await app.queuePrompt(0, 1);
        return [before, seed()];
    }""", instance["id"])
    assert seeds[0] != seeds[1], f"the blueprint node's seed stayed {seeds[0]} after a queued run"
    deadline = time.monotonic() + 300
    while (queue := server.get("/queue"))["queue_running"] or queue["queue_pending"]:
        assert time.monotonic() < deadline, "the queued run did not end"
        time.sleep(0.2)
