"""Every workflow of ``workflows/`` in the real ComfyUI frontend, in headless Chromium.

One ComfyUI server and one browser page per frontend: the ``comfyui-frontend-package`` the running
ComfyUI pins, and the newest one the pack is checked with (unpacked by ``make browser-deps``).
Each workflow is fetched from the pack's template URL (what the template browser loads), loaded with
``app.loadGraphData``, checked (no missing node type, no widget value outside its range or options, no
value changed by the app, no overlapping nodes, no missing-model dialog), converted with the frontend's
own ``app.graphToPrompt()`` and POSTed to ``/api/prompt``: the server's validation must accept it.
Model files are zero-byte placeholders, so those prompts then fail in a loader, and only there;
the demo workflows (embedded model) run to the end and must save an image. The template browser
itself is opened too: the titles a user reads there, and no failed request for the pack's files.

Screenshots: ``test-artifacts/browser/<workflow key>.png`` and ``templates.png``. Needs Chromium, playwright and the frontend
package (``make browser-deps``, part of ``make test``); without them the file is skipped with the reason,
except in CI (``CI=true``), where a missing browser is a failure: CI must run this test.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import browser
import pytest
import release_features
import workflow_files
from comfy_env import PACK_NAME, REPO
from comfy_server import ComfyServer
from raag_s2_guidance.nodes import NODES
from test_node_help import ALIAS_TARGETS

pytestmark = pytest.mark.e2e

MISSING = browser.missing_requirements()
if MISSING and os.environ.get("CI") == "true":
    pytest.fail(f"the browser test cannot run in CI: {MISSING}", pytrace=False)
if MISSING:
    pytest.skip(f"browser test skipped: {MISSING}", allow_module_level=True)

WORKFLOWS = workflow_files.WORKFLOWS
FILES = sorted(WORKFLOWS.glob("*.json"))
NAMES = [p.stem for p in FILES]  # the template names: what the template browser shows as titles
# The demo model's workflows run for real: no placeholders, and each must end with an image.
DEMOS = {workflow_files.TITLES[key] for key in workflow_files.DEMOS}
ARTIFACTS = REPO / "test-artifacts" / "browser"
MODEL_WIDGETS = {"ckpt_name", "unet_name", "clip_name", "clip_name1", "clip_name2", "clip_name3", "vae_name",
                 "lora_name"}
FRONTEND_ONLY = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
HELP_NODES = sorted(cls.define_schema().node_id for cls in NODES)


def placeholder_models(workflow: dict) -> set[tuple[str, str]]:
    """(folder, file) of every model a workflow declares (``properties.models``, as ComfyUI's templates)."""
    return {(m["directory"], m["name"]) for n in workflow["nodes"] for m in n.get("properties", {}).get("models", [])}


FIXTURES = REPO / "tests" / "fixtures"
FRONTENDS = browser.frontends()
if len(FRONTENDS) < 2 and os.environ.get("CI") == "true":
    pytest.fail("the newest frontend is not unpacked (make browser-deps): CI must check it", pytrace=False)


@pytest.fixture(scope="module", params=list(FRONTENDS))
def ui(tmp_path_factory, request):
    base = tmp_path_factory.mktemp("browser")
    server = ComfyServer(base, frontend=FRONTENDS[request.param])
    for path in FILES:
        if path.stem not in DEMOS:
            for folder, name in placeholder_models(json.loads(path.read_text(encoding="utf-8"))):
                server.model_path(folder, name).parent.mkdir(parents=True, exist_ok=True)
                server.model_path(folder, name).write_bytes(b"")  # zero bytes: validation only
    browser.write_settings(base / "user")
    with server, browser.chromium(base / "chromium-profile") as context:
        app = browser.ComfyApp(context.new_page(), server.url).open()
        app.artifacts = ARTIFACTS / request.param
        yield server, app


def test_frontend_lists_every_workflow_as_a_template(ui):
    _, app = ui
    templates = app.fetch_json("api/workflow_templates")
    assert sorted(templates.get(PACK_NAME, [])) == sorted(NAMES), templates


def test_template_browser_shows_readable_titles_with_thumbnails(ui):
    """What a user sees under Workflow > Browse Templates > the pack: every workflow by its title, each
    thumbnail loaded, and no request for one of the pack's files failing (no 404 in the console)."""
    server, app = ui
    titles = app.open_template_browser(PACK_NAME, NAMES)
    app.screenshot(app.artifacts / "templates.png")
    ours = [(status, url) for status, url in app.responses if f"/workflow_templates/{PACK_NAME}/" in url]
    assert ours and all(status == 200 for status, _ in ours), [r for r in ours if r[0] != 200]
    assert sorted(titles) == sorted(workflow_files.TITLES.values()), titles
    assert all("_" not in t and t[0].isupper() for t in titles), titles
    # the frontend keeps the server's order: the folder's, which a checkout makes alphabetical (demos first)
    assert titles == app.fetch_json("api/workflow_templates")[PACK_NAME], titles
    assert sorted(titles)[:2] == [workflow_files.TITLES[key] for key in workflow_files.DEMOS]
    app.open()  # a fresh page (the dialog closed) for the next test


def test_every_workflow_has_a_thumbnail_and_a_portable_name():
    for path in FILES:
        assert path.with_suffix(".jpg").is_file(), f"no thumbnail for {path.name}"
        assert not set(path.stem) & workflow_files.FORBIDDEN and path.stem.isascii(), path.name
    assert sorted(p.stem for p in FILES) == sorted(workflow_files.TITLES.values())


def _served_frontend_reads(ui_server: ComfyServer, field: str) -> bool:
    """Whether the frontend this server serves knows ``field`` of a node definition (asked of its
    own files: older frontends ignore fields they do not know)."""
    import importlib.util

    root = ui_server.frontend if not isinstance(ui_server.frontend, bool) else \
        Path(importlib.util.find_spec("comfyui_frontend_package").submodule_search_locations[0]) / "static"
    return any(field in p.read_text(encoding="utf-8", errors="ignore") for p in root.glob("assets/*.js"))


@pytest.mark.parametrize("term", list(ALIAS_TARGETS))
def test_node_search_finds_our_nodes(ui, term):
    """What a user types for these methods finds the nodes, where the running ComfyUI sends search
    aliases and the frontend reads them; elsewhere the terms that are part of a node's name still do.
    "S2" puts the S² Guider above every core node (the newest search ranks core nodes by usage)."""
    server, app = ui
    titles = app.search_nodes(term)
    info = server.object_info()
    display = {node_id: info[node_id]["display_name"] for targets in ALIAS_TARGETS.values() for node_id in targets}
    aliases_work = bool(info["RAAGS2Guidance_RAAGGuider"].get("search_aliases")) and \
        _served_frontend_reads(server, "search_aliases")
    in_name = [n for n in ALIAS_TARGETS[term] if term.lower() in (display[n] + n).lower()]
    expected = ALIAS_TARGETS[term] if aliases_work else in_name
    missing = [display[n] for n in expected if display[n] not in titles]
    assert not missing, f"{term!r} does not find {missing}: {titles}"
    if term == "S2":
        ours = titles.index(display["RAAGS2Guidance_S2Guider"])
        core = [t for t in titles[:ours] if t in {v["display_name"] for k, v in info.items()
                                                   if v.get("python_module", "").startswith(("nodes", "comfy_"))}]
        assert core == [], f"core nodes ranked above the S² Guider: {core}"


@pytest.mark.parametrize("node_id", HELP_NODES)
def test_node_help_page_renders_in_the_app(ui, node_id):
    """The selection toolbox's info button opens the node's help page (web/docs/<node id>.md) in the
    app: its first paragraph and every input name show."""
    _, app = ui
    text = app.open_node_help(node_id)
    app.screenshot(app.artifacts / f"help-{node_id}.png")
    page = (REPO / "web" / "docs" / f"{node_id}.md").read_text(encoding="utf-8")
    paragraph = next(line for line in page.splitlines()[1:] if line.strip() and not line.startswith("#"))
    words = re.sub(r"[`*_\[\]]", "", paragraph).split()[:6]
    assert " ".join(words) in " ".join(text.split()), (words, text[:2000])
    schema = next(cls.define_schema() for cls in NODES if cls.define_schema().node_id == node_id)
    missing = [i.id for i in schema.inputs if i.id not in text]
    assert not missing, f"inputs not shown: {missing}"


def test_frontend_gets_the_pack_nodes_and_translations(ui):
    _, app = ui
    from raag_s2_guidance.nodes import NODES

    ids = [cls.define_schema().node_id for cls in NODES]
    registered = set(app.registered_node_types())
    assert set(ids) <= registered, set(ids) - registered
    served = app.fetch_json("api/i18n")["en"]["nodeDefs"]
    on_disk = json.loads((REPO / "locales" / "en" / "nodeDefs.json").read_text(encoding="utf-8"))
    assert {i: served.get(i) for i in ids} == {i: on_disk[i] for i in ids}


def test_checks_catch_a_broken_workflow(ui):
    """The checks below can fail: a missing node type and an out-of-range value are reported."""
    _, app = ui
    workflow = json.loads(workflow_files.path("raag_sd35").read_text(encoding="utf-8"))
    bad = next(n for n in workflow["nodes"] if n["type"] not in FRONTEND_ONLY and n.get("widgets_values"))
    ghost = next(n for n in workflow["nodes"] if n is not bad and n["type"] not in FRONTEND_ONLY)
    ghost["type"] = "RAAGS2Guidance_NoSuchNode"
    report = app.load_workflow(workflow, "broken")
    assert report["unregistered"] == ["RAAGS2Guidance_NoSuchNode"]  # the harness's own check, on every frontend
    if report["missingNodeDialog"] != ["RAAGS2Guidance_NoSuchNode"]:
        # Frontend 1.44.19 (ComfyUI 0.23-0.24) tells the user of no missing node type on load: no dialog, nothing
        # in its errors overlay or errors tab; the node is only drawn with UNKNOWN widgets.
        assert report["missingNodeDialog"] == [], report["missingNodeDialog"]
        release_features.note_absent("missing_node_notice", f"a notice of missing node types when a workflow "
                                     f"loads (frontend {app.frontend_version()})")
    workflow = json.loads(workflow_files.path("raag_sd35").read_text(encoding="utf-8"))
    numeric = next((n, i) for n in workflow["nodes"] if n["type"] not in FRONTEND_ONLY
                   for i, v in enumerate(n.get("widgets_values", [])) if isinstance(v, (int, float)))
    numeric[0]["widgets_values"][numeric[1]] = -1e9
    sampler = next(n for n in workflow["nodes"] if n["type"] == "KSamplerSelect")
    sampler["widgets_values"] = ["no_such_sampler"]
    report = app.load_workflow(workflow, "out-of-range")
    assert any("below min" in p for p in report["widgetProblems"]), report["widgetProblems"]
    assert any("KSamplerSelect.sampler_name" in p and "not one of" in p for p in report["widgetProblems"])


@pytest.mark.parametrize("name", NAMES)
def test_nodes_2_layout_has_room_for_every_node(ui, name):
    """With Nodes 2.0 (the Vue node renderer) nodes are taller than in the classic canvas: no two of them
    overlap and none crosses a group's border. Frontends that rescale a classic layout for Nodes 2.0
    (1.32.9's auto-scale moves the nodes by 1.2 but not the groups alike) get the node check only."""
    import measure_node_heights

    _, app = ui
    if app.frontend_version() in measure_node_heights.EXPERIMENTAL:
        pytest.skip(f"frontend {app.frontend_version()} has Nodes 2.0 only as a hidden experiment (a keybinding): "
                    "the workflows make room for it from 1.32 on, where it is a setting")
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    layout = app.nodes_2_layout(workflow, name)
    app.screenshot(app.artifacts / f"nodes2-{workflow_files.key_of(WORKFLOWS / f'{name}.json')}.png")
    assert len(layout["nodes"]) == len(workflow["nodes"]), "not every node was drawn"
    assert browser.layout_problems(layout, groups=not layout["rescaled"]) == []
    app.open()  # the classic renderer again, for the next test


def test_nodes_2_check_catches_a_cramped_layout(ui):
    """The check above can fail: the RAAG workflow with its scheduler moved up into the guider's widgets."""
    _, app = ui
    workflow = json.loads(workflow_files.path("raag_sd35").read_text(encoding="utf-8"))
    guider = next(n for n in workflow["nodes"] if n["type"] == "RAAGS2Guidance_RAAGGuider")
    below = min((n for n in workflow["nodes"] if n["pos"][0] == guider["pos"][0] and n["pos"][1] > guider["pos"][1]),
                key=lambda n: n["pos"][1])
    below["pos"][1] = guider["pos"][1] + guider["size"][1] * 0.6  # into the guider's lower part
    layout = app.nodes_2_layout(workflow, "cramped")
    assert any("overlaps" in p for p in browser.layout_problems(layout)), layout
    app.open()


@pytest.mark.parametrize("name", NAMES)
def test_workflow_loads_converts_and_is_accepted(ui, name):
    server, app = ui
    # What the template browser does: fetch the file from the pack's template URL, then load it.
    workflow = app.fetch_json(f"api/workflow_templates/{PACK_NAME}/{name}.json")
    assert workflow == json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    report = app.load_workflow(workflow, name)
    app.screenshot(app.artifacts / f"{workflow_files.key_of(WORKFLOWS / f'{name}.json')}.png")

    assert report["unregistered"] == [] and report["missingNodeDialog"] == [], "missing node types"
    assert report["missingModelDialog"] == [], "the frontend reports missing models"
    assert report["widgetProblems"] == []
    assert browser.changed_values(workflow, report["graph"]) == [], "the app changed the workflow on load"
    assert browser.overlaps(report["graph"]) == [], "nodes overlap once the frontend sized them"
    assert report["toasts"] == [], "the app showed warnings while loading"

    submitted = app.submit_prompt()
    assert submitted["status"] == 200, json.dumps(submitted["body"], indent=1)
    assert submitted["body"].get("node_errors") == {}, json.dumps(submitted["body"], indent=1)
    prompt = submitted["output"]
    expected_ids = {str(n["id"]) for n in workflow["nodes"] if n["type"] not in FRONTEND_ONLY and n["mode"] == 0}
    assert set(prompt) == expected_ids, "graphToPrompt dropped or added nodes"

    entry = server.wait_history(submitted["body"]["prompt_id"], timeout=600 if name in DEMOS else 120)
    status = entry["status"]
    errors = [data for event, data in status["messages"] if event == "execution_error"]
    if name in DEMOS:
        assert status["status_str"] == "success", json.dumps(errors, indent=1)[:4000]
        images = [ref for out in entry["outputs"].values() for ref in out.get("images", [])
                  if ref.get("type") == "output"]
        assert images, f"no saved image: {entry['outputs']}"
        for ref in images:
            file = server.output_file(ref)
            assert file.is_file() and file.stat().st_size > 0, file
        if name == workflow_files.TITLES["demo_ksampler"]:  # each KSampler's patched MODEL feeds a trace plot
            traces = [ref for ref in images if ref["filename"].split("_trace")[0].endswith("ModelPatch")
                      and "_trace" in ref["filename"]]
            assert len(traces) == 3, images
    else:
        # Validation passed; only loading the placeholder weights may fail.
        assert status["status_str"] == "error" and len(errors) == 1, json.dumps(status, indent=1)[:4000]
        failed = prompt[errors[0]["node_id"]]
        assert set(failed["inputs"]) & MODEL_WIDGETS, (
            f"failed in {failed['class_type']}, not in a model loader: {errors[0]['exception_message']}")


def test_a_workflow_saved_with_the_old_s2_seed_widgets_loads_and_runs(ui):
    """The S² patches had a seed widget (with its control_after_generate value) before they took the
    sampler's seed; widget values are positional. A workflow saved then (the shipped demo KSampler graph of
    that version) loads without a missing node; the S² patch keeps every other value and drops the two seed
    values. The RAAG + S² patch has gained ``rescale`` after its window, where the old seed lands: the
    queue rejects it naming rescale and saying why; set to 0, the workflow runs to its images."""
    server, app = ui
    workflow = json.loads((FIXTURES / "demo_ksampler_with_seed_widgets.json").read_text(encoding="utf-8"))
    old = {n["id"]: (n["type"], n["widgets_values"]) for n in workflow["nodes"] if n["type"].endswith("S2ModelPatch")}
    assert len(old) == 2 and all(values[-2:] == [42, "fixed"] for _, values in old.values())
    report = app.load_workflow(workflow, "demo_ksampler_with_seed_widgets")
    assert report["unregistered"] == [] and report["missingNodeDialog"] == []
    both = next(i for i, (kind, _) in old.items() if kind.endswith("RAAGS2ModelPatch"))
    assert report["widgetProblems"] == [f"#{both} RAAGS2Guidance_RAAGS2ModelPatch.rescale = 42: above max 1"], \
        report["widgetProblems"]
    loaded = {n["id"]: n for n in report["graph"]["nodes"]}
    for node_id, (_, values) in old.items():
        assert loaded[node_id]["widgets_values"][:len(values) - 2] == values[:-2]
    rejected = app.submit_prompt()
    text = json.dumps(rejected["body"], ensure_ascii=False)
    assert "rescale must be in [0, 1], got 42" in text and "old S² seed" in text, rejected["body"]
    assert set(rejected["body"].get("node_errors", {})) == {str(both)}
    app.set_widget(both, "rescale", 0.0)
    submitted = app.submit_prompt()
    assert submitted["status"] == 200 and submitted["body"].get("node_errors") == {}, submitted["body"]
    for node_id in old:
        assert "seed" not in submitted["output"][str(node_id)]["inputs"]
    entry = server.wait_history(submitted["body"]["prompt_id"], timeout=600)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert any(out.get("images") for out in entry["outputs"].values())
