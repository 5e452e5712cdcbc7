"""The example workflows in ``workflows/``, checked without a browser: generated files up to date,
consistent links, known node types, the papers' settings and ComfyUI's model file names.

(``tests/test_browser.py`` then loads each one in the real frontend and submits it to the server.)
"""

from __future__ import annotations

import json

import make_workflows
import pytest
import workflow_files

WORKFLOWS = workflow_files.WORKFLOWS
FILES = sorted(WORKFLOWS.glob("*.json"))
GENERATED = [builder.__name__ for builder in make_workflows.BUILDERS]
P = make_workflows.PACK_PREFIX

# The model files each generated workflow expects (names as in ComfyUI's own templates).
EXPECTED_MODELS = {
    "demo_ksampler": set(),  # the embedded demo model: nothing to download
    "raag_sd35": {"checkpoints/sd3.5_large_fp8_scaled.safetensors"},
    "s2_sd35": {"checkpoints/sd3.5_large_fp8_scaled.safetensors"},
    "ab_compare_sd35": {"checkpoints/sd3.5_large_fp8_scaled.safetensors"},
    "raag_s2_flux": {"diffusion_models/Chroma1-HD-fp8_scaled_rev2.safetensors",
                          "text_encoders/t5xxl_fp8_e4m3fn_scaled.safetensors", "vae/ae.safetensors"},
    "raag_qwen_image": {"diffusion_models/qwen_image_fp8_e4m3fn.safetensors",
                             "text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors",
                             "vae/qwen_image_vae.safetensors"},
    "s2_wan21_t2v": {"diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors",
                          "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "vae/wan_2.1_vae.safetensors"},
    "raag_ksampler_sd35": {"checkpoints/sd3.5_large_fp8_scaled.safetensors"},
    "s2_ksampler_wan21_t2v": {"diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors",
                                   "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                   "vae/wan_2.1_vae.safetensors"},
}


@pytest.fixture(scope="module")
def infos():
    return make_workflows.load_node_infos()


def load(key: str) -> dict:
    return json.loads(workflow_files.path(key).read_text(encoding="utf-8"))


def widgets(node: dict) -> dict:
    """Widget values by name (the frontend's order: widget inputs, a control value after a seed)."""
    names = [i["name"] for i in node["inputs"] if "widget" in i]
    values = list(node["widgets_values"])
    found = {}
    for name in names:
        found[name] = values.pop(0)
        if name in ("seed", "noise_seed"):
            found[f"{name}.control"] = values.pop(0)
    assert not values, f"#{node['id']} {node['type']}: {len(values)} widget values left over"
    return found


def upstream(workflow: dict, node: dict, input_name: str) -> dict:
    link_id = next(i["link"] for i in node["inputs"] if i["name"] == input_name)
    origin = next(link[1] for link in workflow["links"] if link[0] == link_id)
    return next(n for n in workflow["nodes"] if n["id"] == origin)


def of_type(workflow: dict, node_type: str) -> list[dict]:
    return [n for n in workflow["nodes"] if n["type"] == node_type]


def sampler_of(workflow: dict, guider: dict) -> dict:
    return next(n for n in of_type(workflow, "SamplerCustomAdvanced") if upstream(workflow, n, "guider") is guider)


def steps_of(workflow: dict, guider: dict) -> int:
    return widgets(upstream(workflow, sampler_of(workflow, guider), "sigmas"))["steps"]


# -- every file -----------------------------------------------------------------------------------------
def test_generated_workflows_are_up_to_date(infos):
    built = make_workflows.build_all(infos)
    stale = [name for name, text in built.items() if not make_workflows.is_current(WORKFLOWS / name, text)]
    assert set(built) == {workflow_files.path(key).name for key in GENERATED}
    assert not stale, (f"out of date: {stale}. Regenerate with `.venv/bin/python tools/generate/make_workflows.py` "
                       "(or `make workflows`); edit tools/generate/make_workflows.py, not the JSON")


def test_every_generated_file_has_expected_models():
    assert set(GENERATED) == set(EXPECTED_MODELS)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_links_and_node_types_are_consistent(path, infos):
    workflow = json.loads(path.read_text(encoding="utf-8"))
    assert workflow.get("version") == 0.4
    nodes = {n["id"]: n for n in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]), "duplicate node ids"
    assert workflow["last_node_id"] >= max(nodes)
    known = set(infos) | make_workflows.FRONTEND_ONLY
    unknown = sorted({n["type"] for n in nodes.values()} - known)
    assert not unknown, f"node types unknown to ComfyUI and this pack: {unknown}"
    for link_id, origin, origin_slot, target, target_slot, kind in workflow["links"]:
        out = nodes[origin]["outputs"][origin_slot]
        into = nodes[target]["inputs"][target_slot]
        assert link_id in (out.get("links") or []), f"link {link_id} not listed by its origin"
        assert into["link"] == link_id, f"link {link_id} not listed by its target"
        # an input may accept several types ("GUIDER,MODEL"), as the frontend reads it
        assert out["type"] == kind and kind in into["type"].split(","), (
            f"link {link_id}: {out['type']} -> {into['type']} ({kind})")
    listed = {i["link"] for n in nodes.values() for i in n.get("inputs", []) if i.get("link") is not None}
    assert listed == {link[0] for link in workflow["links"]}
    assert any(n["type"] in make_workflows.FRONTEND_ONLY for n in nodes.values()), "no Note explains it"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_required_inputs_are_linked_and_widget_values_valid(path, infos):
    workflow = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for node in workflow["nodes"]:
        if node["type"] in make_workflows.FRONTEND_ONLY:
            continue
        info = infos[node["type"]]
        linked = {i["name"] for i in node.get("inputs", []) if i.get("link") is not None}
        by_name = widgets(node) if any("widget" in i for i in node.get("inputs", [])) else {}
        for name, spec, optional in make_workflows.input_specs(info):
            if make_workflows.is_widget(spec):
                if name in by_name and name not in make_workflows.MODEL_WIDGETS:
                    options = spec[1] if len(spec) > 1 else {}
                    value = by_name[name]
                    choices = make_workflows.combo_options(spec)
                    if choices is not None and value not in choices:
                        problems.append(f"#{node['id']} {node['type']}.{name}={value!r} not in {choices}")
                    if spec[0] in ("INT", "FLOAT") and not (options.get("min", value) <= value
                                                             <= options.get("max", value)):
                        problems.append(f"#{node['id']} {node['type']}.{name}={value!r} out of range")
            elif not optional and name not in linked:
                problems.append(f"#{node['id']} {node['type']}.{name}: required input not linked")
    assert not problems, "\n".join(problems)


# -- the generated ones ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATED)
def test_model_files_are_comfyuis_and_downloadable(name):
    workflow = load(name)
    used, declared = set(), set()
    for node in workflow["nodes"]:
        if node["type"] in make_workflows.FRONTEND_ONLY:
            continue
        for widget, value in widgets(node).items():
            if widget in make_workflows.MODEL_WIDGETS:
                used.add(f"{make_workflows.MODELS[value][0]}/{value}")
        for model in node["properties"].get("models", []):
            assert model["url"].startswith("https://huggingface.co/") and model["url"].endswith(model["name"])
            declared.add(f"{model['directory']}/{model['name']}")
    assert used == declared == EXPECTED_MODELS[name]


def test_raag_sd35_follows_the_paper():
    wf = load("raag_sd35")
    (raag,) = of_type(wf, P + "RAAGGuider")
    values = widgets(raag)
    assert (values["w_max"], values["alpha"], steps_of(wf, raag)) == (18.0, 12.0, 10)
    (cfg,) = of_type(wf, "CFGGuider")
    assert steps_of(wf, cfg) == 30
    noises = {upstream(wf, n, "noise")["id"] for n in of_type(wf, "SamplerCustomAdvanced")}
    assert len(noises) == 1, "both branches must share the seed"
    assert of_type(wf, "SaveImage") and of_type(wf, "VAEDecode") and of_type(wf, "CheckpointLoaderSimple")


def test_s2_sd35_follows_the_paper():
    wf = load("s2_sd35")
    (s2,) = of_type(wf, P + "S2Guider")
    values = widgets(s2)
    assert (values["cfg"], values["omega"], values["drop_ratio"]) == (7.5, 0.25, 0.1)


def test_s2_wan_follows_the_paper():
    wf = load("s2_wan21_t2v")
    (s2,) = of_type(wf, P + "S2Guider")
    values = widgets(s2)
    assert (values["cfg"], values["omega"]) == (5.0, 0.25)
    assert of_type(wf, "SaveWEBM")


def test_flux_family_workflow_uses_a_real_cfg_model():
    wf = load("raag_s2_flux")
    assert of_type(wf, P + "RAAGS2Guider")
    (unet,) = of_type(wf, "UNETLoader")
    assert widgets(unet)["unet_name"].startswith("Chroma")
    note = next(n for n in wf["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]
    assert "Chroma" in note and "distilled" in note


def test_qwen_image_workflow_uses_raag():
    wf = load("raag_qwen_image")
    (raag,) = of_type(wf, P + "RAAGGuider")
    assert steps_of(wf, raag) == 10


def test_ab_compare_runs_four_guiders_on_one_seed_and_schedule():
    wf = load("ab_compare_sd35")
    samplers = of_type(wf, "SamplerCustomAdvanced")
    guider_types = sorted(upstream(wf, s, "guider")["type"] for s in samplers)
    assert guider_types == sorted(["CFGGuider", P + "RAAGGuider", P + "S2Guider", P + "RAAGS2Guider"])
    for shared in ("noise", "sigmas", "latent_image", "sampler"):
        assert len({upstream(wf, s, shared)["id"] for s in samplers}) == 1, f"{shared} differs between branches"
    traced = {upstream(wf, p, "guider")["type"] for p in of_type(wf, P + "TracePlot")}
    assert traced == {P + "RAAGGuider", P + "S2Guider", P + "RAAGS2Guider"}


@pytest.mark.parametrize("name", ["raag_sd35", "s2_sd35", "ab_compare_sd35"])
def test_sd35_workflows_use_the_papers_scheduler(name):
    """The official runs used diffusers' FlowMatchEulerDiscreteScheduler at shift 3: ComfyUI's "normal"."""
    schedulers = [widgets(n)["scheduler"] for n in of_type(load(name), "BasicScheduler")]
    assert schedulers and set(schedulers) == {"normal"}


def test_demo_ksampler_has_each_patch_before_a_stock_ksampler():
    wf = load("demo_ksampler")
    samplers = of_type(wf, "KSampler")
    patches = {upstream(wf, k, "model")["type"] for k in samplers}
    assert patches == {P + "RAAGModelPatch", P + "S2ModelPatch", P + "RAAGS2ModelPatch"}
