"""Drives the real ComfyUI frontend in headless Chromium (Playwright, Debian's /usr/bin/chromium).

Used by ``tests/test_browser.py``:

    with ComfyServer(base, frontend=True) as server, chromium(tmp_profile) as context:
        app = ComfyApp(context.new_page(), server.url).open()
        report = app.load_workflow(data, name)      # what the frontend made of the file
        submitted = app.submit_prompt()             # graphToPrompt() in the page, then POST /api/prompt

Needs: ``playwright`` (PyPI, no browser download), the ``comfyui-frontend-package`` ComfyUI pins and
Chromium (``make browser-deps`` installs all three). :func:`missing_requirements` says what is absent.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[2]

# Chromium on a machine with a closed network: without the background-networking flags it keeps
# retrying Google's hosts, which can stall start-up.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1920, "height": 1080}

# Settings written into the user folder before the page opens: no template browser on the first
# visit (it would cover the canvas), the missing nodes / models warnings on (their defaults), and for
# readable screenshots of a whole workflow: text at every zoom level, no minimap.
SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "LiteGraph.Canvas.MinFontSizeForLOD": 0,
    "Comfy.Minimap.Visible": False,
    "Comfy.Workflow.ShowMissingNodesWarning": True,
    "Comfy.Workflow.ShowMissingModelsWarning": True,
    "Comfy.Validation.Workflows": True,
    "Comfy.Workflow.Persist": False,  # a reload starts empty (the Nodes 2.0 check reloads the page)
}


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def missing_requirements() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    if chromium_path() is None:
        return "Chromium not found (apt-get install chromium, or `make browser-deps`; CHROMIUM=/path overrides)"
    for module, package in (("playwright", "playwright"), ("comfyui_frontend_package", "comfyui-frontend-package")):
        if importlib.util.find_spec(module) is None:
            return f"Python package {package} not installed (`make browser-deps`)"
    return None


def frontends() -> dict[str, bool | Path]:
    """The frontends the browser test runs: the package the running ComfyUI pins ("pinned", served by
    ComfyUI itself) and every newer one unpacked under .cache/frontends/<version>/ by setup_browser.sh
    (served with --front-end-root), as ComfyServer's ``frontend`` argument."""
    found: dict[str, bool | Path] = {"pinned": True}
    for static in sorted((REPO / ".cache" / "frontends").glob("*/comfyui_frontend_package/static")):
        found[static.parents[1].name] = static
    return found


def write_settings(user_dir: Path) -> None:
    """Settings of the default user, read by the frontend at start (``--user-directory``)."""
    folder = Path(user_dir) / "default"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "comfy.settings.json").write_text(json.dumps(SETTINGS, indent=1))


@contextlib.contextmanager
def chromium(profile_dir: Path, *, headless: bool = True) -> Iterator[Any]:
    """A Playwright browser context in Debian's Chromium, with an empty profile in ``profile_dir``."""
    from playwright.sync_api import sync_playwright

    Path(profile_dir).mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=chromium_path(), headless=headless, args=CHROMIUM_ARGS,
            viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


# Runs in the page: loads a workflow the way the app does for a dropped file, and reports what the
# frontend found. The app's missing-nodes / missing-models dialogs are intercepted (and recorded).
_LOAD_JS = """
async ([data, name]) => {
  const report = {missingNodeDialog: [], missingModelDialog: [], unregistered: [], widgetProblems: []};
  report.unregistered = [...new Set(data.nodes.map(n => n.type))]
      .filter(t => !(t in LiteGraph.registered_node_types));
  const showNodes = app.showMissingNodesError, showModels = app.showMissingModelsError;
  app.showMissingNodesError = (types) => {
    report.missingNodeDialog.push(...types.map(t => typeof t === 'string' ? t : t.type));
  };
  app.showMissingModelsError = (models) => {
    report.missingModelDialog.push(...models.map(m => `${m.directory}/${m.name}`));
  };
  try {
    await app.loadGraphData(data, true, true, name);
  } finally {
    app.showMissingNodesError = showNodes;
    app.showMissingModelsError = showModels;
  }
  for (const node of app.graph.nodes) {
    for (const w of node.widgets ?? []) {
      const o = w.options ?? {};
      const where = `#${node.id} ${node.type}.${w.name} = ${JSON.stringify(w.value)}`;
      if (w.type === 'combo') {
        const values = typeof o.values === 'function' ? o.values(w, node) : o.values;
        if (Array.isArray(values) && !values.includes(w.value))
          report.widgetProblems.push(`${where}: not one of ${JSON.stringify(values.slice(0, 12))}`);
      } else if (typeof w.value === 'number') {
        if (!Number.isFinite(w.value)) report.widgetProblems.push(`${where}: not a finite number`);
        if (o.min !== undefined && w.value < o.min) report.widgetProblems.push(`${where}: below min ${o.min}`);
        if (o.max !== undefined && w.value > o.max) report.widgetProblems.push(`${where}: above max ${o.max}`);
      }
    }
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  report.graph = app.graph.serialize();
  report.toasts = [...document.querySelectorAll('.p-toast-message')].map(e => e.innerText.trim());
  return report;
}
"""

_SUBMIT_JS = """
async (clientId) => {
  const p = await app.graphToPrompt();
  const response = await fetch('api/prompt', {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({prompt: p.output, client_id: clientId, extra_data: {extra_pnginfo: {workflow: p.workflow}}}),
  });
  return {status: response.status, body: await response.json(), output: p.output};
}
"""


class ComfyApp:
    """The ComfyUI web app in one page."""

    def __init__(self, page: Any, url: str):
        self.page = page
        self.url = url.rstrip("/") + "/"
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self.responses: list[tuple[int, str]] = []  # (status, decoded url) of every response
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("response", lambda r: self.responses.append((r.status, urllib.parse.unquote(r.url))))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def open(self, timeout_s: float = 120) -> ComfyApp:
        self.page.goto(self.url)
        self.page.wait_for_function(
            "() => window.app && window.app.graph && window.LiteGraph"
            " && Object.keys(LiteGraph.registered_node_types).length > 50"
            " && document.querySelector('canvas#graph-canvas')",
            timeout=timeout_s * 1000)
        # The app goes on checking the startup workflow's models after it is drawn; frontend 1.44.19 then
        # marks the node of the same id in a workflow loaded meanwhile (its "missing model" error ring
        # landed on our EmptySD3LatentImage, #4, as on the default graph's checkpoint loader). A user
        # loads a template seconds later: wait until the app asks the server nothing more.
        self.page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
        return self

    def frontend_version(self) -> str:
        return self.page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")

    def registered_node_types(self) -> list[str]:
        return self.page.evaluate("() => Object.keys(LiteGraph.registered_node_types)")

    def fetch_json(self, path: str) -> Any:
        """GET a server path from the page (same origin, as the app does)."""
        return self.page.evaluate("async (p) => (await fetch(p)).json()", path.lstrip("/"))

    def load_workflow(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """Loads ``data`` as a dropped file. ``missingNodeDialog`` lists the unknown node types the app
        told the user about: through its missing-nodes dialog (frontends up to 1.3x, intercepted), or
        in the errors panel that newer frontends open from their "View details" notice."""
        report = self.page.evaluate(_LOAD_JS, [data, name])
        untold = [t for t in report["unregistered"] if t not in report["missingNodeDialog"]]
        if untold:
            details = self.page.get_by_text("View details")
            if details.count():
                details.first.click()
                self.page.wait_for_timeout(500)
            text = self.page.evaluate("() => document.body.innerText")
            report["missingNodeDialog"] += [t for t in untold if t in text]
        return report

    def open_template_browser(self, pack: str, names: list[str], timeout_s: float = 30) -> list[str]:
        """Opens Workflow > Browse Templates (the app's own command) and picks ``pack``'s category; waits
        until the app asked for a thumbnail of each of ``names`` (scrolling the cards as a user would);
        returns the lines of the dialog that are one of ``names``, in the order shown."""
        self.page.evaluate("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
        self.page.get_by_text(pack, exact=True).first.click()
        deadline = time.monotonic() + timeout_s
        def missing() -> list[str]:
            return [n for n in names if not self.requested(f"/workflow_templates/{pack}/{n}.jpg")]

        size = self.page.viewport_size or {"width": 1280, "height": 720}
        self.page.mouse.move(size["width"] * 0.6, size["height"] * 0.6)  # over the cards
        while missing():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the template browser never asked for these thumbnails: {missing()}")
            self.page.mouse.wheel(0, 400)
            self.page.wait_for_timeout(250)
        lines = [line.strip() for line in self.page.evaluate("() => document.body.innerText").splitlines()]
        return list(dict.fromkeys(line for line in lines if line in names))

    def requested(self, path: str) -> list[int]:
        """The statuses of the responses so far whose URL ends with ``path``."""
        return [status for status, url in self.responses if url.split("?")[0].endswith(path)]

    def set_widget(self, node_id: int, name: str, value: Any) -> None:
        """Sets a widget of the loaded graph, as a user's edit would."""
        self.page.evaluate("([id, name, value]) => { const w = window.app.graph.getNodeById(id).widgets"
                           ".find((w) => w.name === name); w.value = value; w.callback?.(value); }",
                           [node_id, name, value])

    def submit_prompt(self, client_id: str = "browser-test") -> dict[str, Any]:
        """Converts the loaded graph with the frontend's ``app.graphToPrompt()`` and POSTs it."""
        return self.page.evaluate(_SUBMIT_JS, client_id)

    def screenshot(self, path: Path) -> Path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return Path(path)


    def search_nodes(self, term: str) -> list[str]:
        """Types ``term`` into the node search box (a double click on the empty canvas, as a user opens
        it) and returns the results' titles in the order shown."""
        self.page.keyboard.press("Escape")  # no dialog or menu left open over the canvas
        self.page.evaluate("() => { window.app.graph.clear(); window.app.canvas.setDirty(true, true); }")
        size = self.page.viewport_size or {"width": 1280, "height": 720}
        # a double click while the page still settles after a load (slower on a loaded CI machine) can go
        # unseen: try again, for up to 30 s
        deadline = time.monotonic() + 30
        while True:
            self.page.mouse.dblclick(size["width"] * 0.5, size["height"] * 0.5)
            try:
                self.page.wait_for_selector("input:focus", timeout=2_500)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                self.page.keyboard.press("Escape")
        self.page.keyboard.type(term)
        self.page.wait_for_timeout(1200)  # the search runs as the text changes
        titles = self.page.evaluate(
            "() => [...document.querySelectorAll('[role=option]')].map(e => e.innerText.split('\\n')[0].trim())"
            ".filter(t => t && t !== 'No results found')")
        self.page.keyboard.press("Escape")
        self.page.wait_for_timeout(400)  # the box closes
        return titles

    def open_node_help(self, node_type: str) -> str:
        """Puts one ``node_type`` node on an empty canvas, selects it and presses the selection toolbox's
        info button, which opens the node's help page; returns the page's text once the help arrived."""
        before = len(self.responses)
        self.page.evaluate("""(type) => { const g = window.app.graph; g.clear();
            const n = LiteGraph.createNode(type); n.pos = [300, 200]; g.add(n);
            window.app.canvas.selectNode(n); window.app.canvas.setDirty(true, true); }""", node_type)
        # (dispatched on the button itself: the help panel of an earlier node may cover the toolbox)
        self.page.locator("button[data-testid='info-button'], button[aria-label='Node Info']").first.dispatch_event("click")
        deadline = time.monotonic() + 15
        while not any(status == 200 and "/docs/" in url for status, url in self.responses[before:]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no help page fetched for {node_type}: {self.responses[before:]}")
            self.page.wait_for_timeout(200)
        self.page.wait_for_timeout(800)  # rendered from markdown
        return self.page.evaluate("() => document.body.innerText")

    def set_setting(self, setting_id: str, value: Any) -> None:
        self.page.evaluate("async ([k, v]) => await window.app.extensionManager.setting.set(k, v)",
                           [setting_id, value])

    def nodes_2_layout(self, workflow: dict[str, Any], name: str) -> dict[str, Any]:
        """Loads ``workflow`` in a fresh page with Nodes 2.0 (the Vue node renderer) on and returns the
        boxes the user sees, in graph units: every node's element (title bar included) and every group,
        plus ``rescaled``: whether the frontend moved the nodes away from the file's positions (its
        auto-scale of a classic layout), and ``scale``: by how much it spread them (1.0 when it did not).
        The page is left with Nodes 2.0 off again."""
        self.set_setting("Comfy.VueNodes.Enabled", True)
        try:
            self.open()
            self.load_workflow(workflow, name)
            self.page.wait_for_function(_VUE_READY_JS, arg=len(workflow["nodes"]), timeout=30_000)
            self.page.wait_for_timeout(500)  # the elements settle their size once their widgets mounted
            layout = self.page.evaluate(_VUE_LAYOUT_JS)
        finally:
            self.set_setting("Comfy.VueNodes.Enabled", False)
        in_file = {n["id"]: n["pos"] for n in workflow["nodes"]}
        pairs = [(pos, in_file[node_id]) for node_id, pos in layout.pop("positions") if node_id in in_file]
        layout["rescaled"] = any(abs(a - b) > 1 for pos, file_pos in pairs for a, b in zip(pos, file_pos))
        layout["scale"] = _spread([p for p, _ in pairs]) / max(_spread([f for _, f in pairs]), 1e-9) \
            if layout["rescaled"] else 1.0
        return layout


def _spread(points: list[list[float]]) -> float:
    """The root-mean-square distance of ``points`` from their centre."""
    centre = [sum(axis) / len(points) for axis in zip(*points)]
    return (sum((a - c) ** 2 for point in points for a, c in zip(point, centre)) / len(points)) ** 0.5


_VUE_READY_JS = """(n) => window.app.graph._nodes.length === n
  && [...document.querySelectorAll('[data-node-id]')].filter(e => !e.parentElement.closest('[data-node-id]')).length === n"""
_VUE_LAYOUT_JS = """() => {
  const ds = window.app.canvas.ds, c = window.app.canvas.canvas.getBoundingClientRect();
  const graphX = (x) => (x - c.left) / ds.scale - ds.offset[0], graphY = (y) => (y - c.top) / ds.scale - ds.offset[1];
  const nodes = [...document.querySelectorAll('[data-node-id]')].filter(e => !e.parentElement.closest('[data-node-id]'))
    .map(e => { const r = e.getBoundingClientRect(), n = window.app.graph.getNodeById(Number(e.dataset.nodeId));
      return {name: `#${e.dataset.nodeId} ${n ? n.title : '?'}`, box: [graphX(r.left), graphY(r.top), graphX(r.right), graphY(r.bottom)]}; });
  const groups = window.app.graph._groups.map(g => { const [x, y] = g.pos, [w, h] = g.size;
      return {name: `group "${g.title}"`, box: [x, y, x + w, y + h]}; });
  return {nodes, groups, positions: window.app.graph._nodes.map(n => [n.id, [n.pos[0], n.pos[1]]])};
}"""


def layout_problems(layout: dict[str, Any], groups: bool = True) -> list[str]:
    """Nodes 2.0 layout problems: nodes whose elements overlap, and (``groups``) nodes that cross a
    group's border (a node is inside a group or clear of it)."""
    def crossing(a: list[float], b: list[float]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    found = []
    nodes = layout["nodes"]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            if crossing(a["box"], b["box"]):
                depth = min(a["box"][3], b["box"][3]) - max(a["box"][1], b["box"][1])
                found.append(f"{a['name']} overlaps {b['name']} ({depth:.0f} px high)")
        for g in layout["groups"] if groups else []:
            inside = all(a["box"][k] >= g["box"][k] for k in (0, 1)) and all(a["box"][k] <= g["box"][k] for k in (2, 3))
            if crossing(a["box"], g["box"]) and not inside:
                found.append(f"{a['name']} crosses the border of {g['name']}")
    return found


# -- checks on a loaded graph (pure Python) ------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def changed_values(original: dict[str, Any], loaded: dict[str, Any]) -> list[str]:
    """Differences between a workflow file and the graph the app serialised after loading it:
    node types, widget values, and which link feeds which input."""
    problems = []
    after = {n["id"]: n for n in loaded["nodes"]}
    for node in original["nodes"]:
        got = after.get(node["id"])
        where = f"#{node['id']} {node['type']}"
        if got is None:
            problems.append(f"{where}: missing after load")
            continue
        if got["type"] != node["type"]:
            problems.append(f"{where}: became {got['type']}")
        if not _same(node.get("widgets_values", []), got.get("widgets_values", [])):
            problems.append(f"{where}: widgets_values {node.get('widgets_values')} -> {got.get('widgets_values')}")
        links_before = {i["name"]: i.get("link") for i in node.get("inputs", [])}
        links_after = {i["name"]: i.get("link") for i in got.get("inputs", [])}
        for name, link in links_before.items():
            if link is not None and links_after.get(name) != link:
                problems.append(f"{where}: input {name} link {link} -> {links_after.get(name)}")
    if len(loaded["nodes"]) != len(original["nodes"]):
        problems.append(f"{len(original['nodes'])} nodes in the file, {len(loaded['nodes'])} after load")
    return problems


def overlaps(graph: dict[str, Any], title_height: float = 30) -> list[str]:
    """Pairs of nodes whose boxes (title bar included) overlap: an untidy layout."""
    boxes = []
    for n in graph["nodes"]:
        (x, y), (w, h) = n["pos"], n["size"]
        boxes.append((f"#{n['id']} {n.get('title') or n['type']}", x, y - title_height, x + w, y + h))
    found = []
    for i, (a, ax0, ay0, ax1, ay1) in enumerate(boxes):
        for b, bx0, by0, bx1, by1 in boxes[i + 1:]:
            if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                found.append(f"{a} overlaps {b}")
    return found
