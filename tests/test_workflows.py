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
    "raag_lumina2": {"checkpoints/lumina_2.safetensors"},
    "raag_wan22_t2v": {"diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                       "diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
                       "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "vae/wan_2.1_vae.safetensors"},
    "raag_ksampler_wan22_t2v": {"diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                                "diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
                                "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                "vae/wan_2.1_vae.safetensors"},
}
RAAG_TYPES = {P + t for t in ("RAAGGuider", "RAAGS2Guider", "RAAGModelPatch", "RAAGS2ModelPatch")}


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
    return upstream_slot(workflow, node, input_name)[0]


def upstream_slot(workflow: dict, node: dict, input_name: str) -> tuple[dict, str]:
    """The node feeding ``input_name`` of ``node``, and the name of its output slot."""
    link_id = next(i["link"] for i in node["inputs"] if i["name"] == input_name)
    origin, slot = next((link[1], link[2]) for link in workflow["links"] if link[0] == link_id)
    source = next(n for n in workflow["nodes"] if n["id"] == origin)
    return source, source["outputs"][slot]["name"]


def note_of(workflow: dict) -> str:
    return next(n for n in workflow["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]


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


def test_nodes_2_heights_were_measured_for_every_node_in_every_frontend_that_counts():
    """The layout makes room for the tallest Nodes 2.0 node among the frontends the supported releases pin
    (``measure_node_heights.py``): each of them was measured (or recorded with why not), and each one
    measured has every node type of the shipped workflows (a new node type needs a new measurement)."""
    import measure_node_heights

    measured = json.loads(make_workflows.NODE_HEIGHTS.read_text(encoding="utf-8"))
    assert set(measure_node_heights.FRONTENDS) <= set(measured), "a frontend was not measured"
    counted = [v for v, found in measured.items() if "heights" in found and not found.get("experimental")]
    assert measure_node_heights.FRONTENDS[-1] in counted and len(counted) >= len(measure_node_heights.FRONTENDS) // 2
    used = {n["type"] for path in FILES for n in json.loads(path.read_text(encoding="utf-8"))["nodes"]}
    for version in counted:
        missing = used - measure_node_heights.NOTES - set(measured[version]["heights"])
        assert not missing, f"frontend {version} has no Nodes 2.0 height for {sorted(missing)}"


# Nodes whose Nodes 2.0 height follows the size the file gives them (an image or video they show, a
# multiline text, a note): their measured height is that of the largest one measured, not their own.
CONTENT_SIZED = {"SaveImage", "PreviewImage", "SaveWEBM", "CLIPTextEncode", P + "DemoPrompt", "Note", "MarkdownNote"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_workflow_has_room_for_the_tallest_nodes_2_heights(path):
    """Every shipped workflow, generated or laid out by hand, has room for each node at the tallest height
    measured in a frontend where Nodes 2.0 is a setting: the check the browser test makes in the frontend it
    runs, made here for all of them (the demo once overlapped in 1.41-1.44 only)."""
    import browser

    workflow = json.loads(path.read_text(encoding="utf-8"))
    nodes = []
    for node in workflow["nodes"]:
        (x, y), (width, height) = node["pos"], node["size"]
        bottom = y + height if node["type"] in CONTENT_SIZED else make_workflows.lowest_point(node["type"], y, height)
        nodes.append({"name": f"#{node['id']} {node['type']}", "box": [x, y - make_workflows.TITLE_H, x + width, bottom]})
    groups = [{"name": f'group "{g["title"]}"', "box": [g["bounding"][0], g["bounding"][1],
                                                        g["bounding"][0] + g["bounding"][2],
                                                        g["bounding"][1] + g["bounding"][3]]}
              for g in workflow.get("groups", [])]
    assert browser.layout_problems({"nodes": nodes, "groups": groups}) == []


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


def test_qwen_image_workflow_uses_the_official_setting():
    """The authors' qwen_sample.py and diffusers' MagnitudeAwareGuidance example: w_max 10, alpha 8, rescale 1."""
    wf = load("raag_qwen_image")
    (raag,) = of_type(wf, P + "RAAGGuider")
    values = widgets(raag)
    assert (values["w_max"], values["alpha"], values["rescale"], steps_of(wf, raag)) == (10.0, 8.0, 1.0, 10)
    assert values["cfg"] == 2.5  # only outside RAAG's window: ComfyUI's Qwen-Image template's CFG
    assert "**official**" in note_of(wf) and "qwen_sample.py" in note_of(wf)


@pytest.mark.parametrize("name", GENERATED)
def test_raag_nodes_carry_rescale_and_their_display_names(name, infos):
    """Every RAAG node has its rescale value in the file, and its title names it as the node's display name
    does (RAAG / MAMBO-G); a note that gives RAAG settings says whether they are official or ours."""
    wf = load(name)
    nodes = [n for n in wf["nodes"] if n["type"] in RAAG_TYPES]
    for node in nodes:
        assert "rescale" in widgets(node), f"#{node['id']} {node['type']}"
        assert "RAAG / MAMBO-G" in node["title"], node["title"]
    for node in nodes if name != "ab_compare_sd35" else []:  # (there: "B: RAAG / MAMBO-G", ...)
        assert node["title"] == infos[node["type"]]["display_name"], node["title"]
    if nodes and name != "demo_ksampler":  # (the demo model's settings are its own)
        note = note_of(wf)
        assert "official" in note or "*ours*" in note


def test_display_names_in_the_generator_are_the_nodes(infos):
    for constant, node in (("RAAG_GUIDER", "RAAGGuider"), ("RAAG_S2_GUIDER", "RAAGS2Guider"),
                           ("RAAG_PATCH", "RAAGModelPatch"), ("RAAG_S2_PATCH", "RAAGS2ModelPatch")):
        assert getattr(make_workflows, constant) == infos[P + node]["display_name"]


def wan22_expert(wf: dict, sampler: dict) -> str:
    """Which Wan 2.2 14B expert ("high" or "low") the MODEL of ``sampler`` (a guider or a patched MODEL,
    through ModelSamplingSD3 at shift 8) comes from."""
    guided = upstream(wf, sampler, "guider" if sampler["type"] == "SamplerCustomAdvanced" else "model")
    assert guided["type"] in (P + "RAAGGuider", P + "RAAGModelPatch")
    values = widgets(guided)
    assert (values["w_max"], values["alpha"], values["rescale"]) == (8.0, 12.0, 0.0)  # ours
    shift = upstream(wf, guided, "model")
    assert shift["type"] == "ModelSamplingSD3" and widgets(shift)["shift"] == 8.0
    name = widgets(upstream(wf, shift, "model"))["unet_name"]
    assert name.startswith("wan2.2_t2v_") and name.endswith("_14B_fp8_scaled.safetensors")
    return name.split("_")[2]  # wan2.2_t2v_<high|low>_noise_14B_...


def assert_traced(wf: dict, pairs: set[tuple[int, int]]) -> None:
    """A Guidance Trace Plot on each (guider or patched MODEL, sampler) pair, shown by a PreviewImage."""
    plots = of_type(wf, P + "TracePlot")
    assert {(upstream(wf, p, "guider")["id"], upstream(wf, p, "latent")["id"]) for p in plots} == pairs
    for plot in plots:
        assert any(upstream(wf, n, "images") is plot for n in of_type(wf, "PreviewImage"))


def test_wan22_ksampler_workflow_splits_the_steps_between_the_experts():
    wf = load("raag_ksampler_wan22_t2v")
    first, second = sorted(of_type(wf, "KSamplerAdvanced"), key=lambda n: widgets(n)["start_at_step"])
    assert (wan22_expert(wf, first), wan22_expert(wf, second)) == ("high", "low")
    a, b = widgets(first), widgets(second)
    assert (a["add_noise"], a["start_at_step"], a["end_at_step"], a["return_with_leftover_noise"]) == (
        "enable", 0, 6, "enable")
    assert (b["add_noise"], b["start_at_step"], b["end_at_step"], b["return_with_leftover_noise"]) == (
        "disable", 6, 10000, "disable")
    for key in ("noise_seed", "steps", "cfg", "sampler_name", "scheduler"):
        assert a[key] == b[key], key
    assert (a["steps"], a["cfg"], a["sampler_name"], a["scheduler"]) == (12, 3.5, "euler", "simple")
    assert upstream(wf, first, "latent_image")["type"] == "EmptyHunyuanLatentVideo"
    assert upstream(wf, second, "latent_image") is first
    (decode,) = of_type(wf, "VAEDecode")
    assert upstream(wf, decode, "samples") is second and of_type(wf, "SaveWEBM")
    assert_traced(wf, {(upstream(wf, k, "model")["id"], k["id"]) for k in (first, second)})
    assert "*ours*" in note_of(wf)


def test_wan22_split_sigmas_workflow_gives_each_expert_its_part():
    wf = load("raag_wan22_t2v")
    samplers = of_type(wf, "SamplerCustomAdvanced")
    by_expert = {wan22_expert(wf, s): s for s in samplers}
    assert sorted(by_expert) == ["high", "low"]
    high, low = by_expert["high"], by_expert["low"]
    (split,) = of_type(wf, "SplitSigmas")
    assert widgets(split)["step"] == 6
    schedule = upstream(wf, split, "sigmas")
    assert widgets(schedule) == {"scheduler": "simple", "steps": 12, "denoise": 1.0}
    assert upstream_slot(wf, high, "sigmas") == (split, "high_sigmas")
    assert upstream_slot(wf, low, "sigmas") == (split, "low_sigmas")
    assert upstream(wf, high, "noise")["type"] == "RandomNoise"
    assert upstream(wf, low, "noise")["type"] == "DisableNoise"
    assert upstream(wf, high, "latent_image")["type"] == "EmptyHunyuanLatentVideo"
    assert upstream_slot(wf, low, "latent_image") == (high, "output")
    picked = {upstream(wf, s, "sampler")["id"] for s in samplers}
    assert len(picked) == 1 and widgets(of_type(wf, "KSamplerSelect")[0])["sampler_name"] == "euler"
    assert {widgets(upstream(wf, s, "guider"))["cfg"] for s in samplers} == {3.5}
    (decode,) = of_type(wf, "VAEDecode")
    assert upstream(wf, decode, "samples") is low and of_type(wf, "SaveWEBM")
    assert_traced(wf, {(upstream(wf, s, "guider")["id"], s["id"]) for s in samplers})
    assert "*ours*" in note_of(wf)


def test_lumina2_workflow_follows_comfyuis_template_with_raag_at_10_steps():
    wf = load("raag_lumina2")
    (raag,) = of_type(wf, P + "RAAGGuider")
    values = widgets(raag)
    assert (values["w_max"], values["alpha"], values["rescale"], values["cfg"]) == (8.0, 12.0, 0.0, 4.0)
    assert steps_of(wf, raag) == 10
    shift = upstream(wf, raag, "model")
    assert shift["type"] == "ModelSamplingAuraFlow" and widgets(shift)["shift"] == 6.0
    assert widgets(upstream(wf, shift, "model"))["ckpt_name"] == "lumina_2.safetensors"
    sample = sampler_of(wf, raag)
    assert widgets(upstream(wf, sample, "sampler"))["sampler_name"] == "res_multistep"
    assert widgets(upstream(wf, sample, "sigmas"))["scheduler"] == "simple"
    assert widgets(upstream(wf, sample, "latent_image")) == {"width": 1024, "height": 1024, "batch_size": 1}
    prompt = widgets(upstream(wf, raag, "positive"))["text"]
    assert prompt.startswith(make_workflows.LUMINA2_SYSTEM_PROMPT) and prompt.endswith(".")
    assert prompt.startswith("You are an assistant designed to generate superior images") and "<Prompt Start> " in prompt
    assert_traced(wf, {(raag["id"], sample["id"])})
    assert "*ours*" in note_of(wf)


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
