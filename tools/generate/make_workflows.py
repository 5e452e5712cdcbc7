"""Writes the example workflows in ``workflows/`` (UI format, the files a user drags onto the canvas).

    .venv/bin/python tools/generate/make_workflows.py           # (re)write them
    .venv/bin/python tools/generate/make_workflows.py --check   # exit 1 if a file differs from what it would write

The sockets, widget order and default values come from the node definitions of the real ComfyUI
(imported in-process, like the tests do) and of this pack, so a file always matches the nodes it uses.
The demo workflow (``workflow_files.path("demo_tiny")``) is not written here (it is made with the demo
model); every other top-level ``.json`` file of ``workflows/`` is, under the name ``workflow_files``
gives it (what the template browser shows), with a same-name ``.jpg`` thumbnail: a drawing of the graph.

Model file names and download links are the ones of ComfyUI's own templates
(``comfyui-workflow-templates`` 0.7.25, the version ComfyUI 0.3.75 pins).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import workflow_files  # noqa: E402
from workflow_files import WORKFLOWS  # noqa: E402

PACK_PREFIX = "RAAGS2Guidance_"
PACK_CNR_ID = "raag-s2-guidance"  # [project] name in pyproject.toml: the registry id
FRONTEND_ONLY = {"Note", "MarkdownNote"}  # virtual nodes of the frontend (never sent to the server)
SEED = 42  # the official RAAG example's seed

# File name -> (models/ folder, download link), as in ComfyUI's templates.
HF = "https://huggingface.co"
MODELS: dict[str, tuple[str, str]] = {
    "sd3.5_large_fp8_scaled.safetensors": (
        "checkpoints", f"{HF}/Comfy-Org/stable-diffusion-3.5-fp8/resolve/main/sd3.5_large_fp8_scaled.safetensors"),
    "Chroma1-HD-fp8_scaled_rev2.safetensors": (
        "diffusion_models",
        f"{HF}/silveroxides/Chroma1-HD-fp8-scaled/resolve/main/Chroma1-HD-fp8_scaled_rev2.safetensors"),
    "t5xxl_fp8_e4m3fn_scaled.safetensors": (
        "text_encoders", f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp8_e4m3fn_scaled.safetensors"),
    "ae.safetensors": (
        "vae", f"{HF}/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/split_files/vae/ae.safetensors"),
    "qwen_image_fp8_e4m3fn.safetensors": (
        "diffusion_models",
        f"{HF}/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/diffusion_models/qwen_image_fp8_e4m3fn.safetensors"),
    "qwen_2.5_vl_7b_fp8_scaled.safetensors": (
        "text_encoders",
        f"{HF}/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors"),
    "qwen_image_vae.safetensors": (
        "vae", f"{HF}/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/vae/qwen_image_vae.safetensors"),
    "wan2.1_t2v_1.3B_fp16.safetensors": (
        "diffusion_models",
        f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/diffusion_models/"
        "wan2.1_t2v_1.3B_fp16.safetensors"),
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors": (
        "text_encoders",
        f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/text_encoders/"
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
    "wan_2.1_vae.safetensors": (
        "vae", f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/vae/wan_2.1_vae.safetensors"),
    "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors": (
        "diffusion_models",
        f"{HF}/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/diffusion_models/"
        "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"),
    "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors": (
        "diffusion_models",
        f"{HF}/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/diffusion_models/"
        "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"),
    "lumina_2.safetensors": (
        "checkpoints", f"{HF}/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/all_in_one/lumina_2.safetensors"),
}
# Widget inputs that name a model file (their options are the files found on the user's disk).
MODEL_WIDGETS = {"ckpt_name", "unet_name", "clip_name", "vae_name"}

# Heights the frontend (1.32.9) computes for each node at its default width; a smaller size would be
# enlarged on load, so the layout below uses these to stack nodes without overlaps.
HEIGHTS = {
    "CheckpointLoaderSimple": 98, "UNETLoader": 82, "CLIPLoader": 106, "VAELoader": 58,
    "T5TokenizerOptions": 82, "ModelSamplingAuraFlow": 58, "ModelSamplingSD3": 58, "CLIPTextEncode": 200,
    "EmptySD3LatentImage": 106, "EmptyHunyuanLatentVideo": 130, "RandomNoise": 82, "KSamplerSelect": 58,
    "BasicScheduler": 106, "CFGGuider": 98, "SamplerCustomAdvanced": 106, "VAEDecode": 46, "SaveImage": 58,
    "PreviewImage": 26, "SaveWEBM": 130, "KSamplerAdvanced": 334, "SplitSigmas": 78, "DisableNoise": 26,
    PACK_PREFIX + "RAAGGuider": 242, PACK_PREFIX + "S2Guider": 194, PACK_PREFIX + "RAAGS2Guider": 266,
    PACK_PREFIX + "RAAGModelPatch": 178, PACK_PREFIX + "S2ModelPatch": 130, PACK_PREFIX + "RAAGS2ModelPatch": 226,
    PACK_PREFIX + "TracePlot": 46,
}
# Heights (title bar included) of the nodes in Nodes 2.0, the Vue node renderer, at these widths: the
# largest that ``measure_node_heights.py`` measured in the frontends where Nodes 2.0 is a user setting
# (``node_heights.json``); a node keeps its own size where that is larger. ``Node.bottom`` is the lower
# of the two, so the layout has room for both renderers in every one of those frontends.
NODE_HEIGHTS = Path(__file__).with_name("node_heights.json")


def vue_heights(measured: dict[str, dict]) -> dict[str, int]:
    """The largest height of each node type over the frontends measured with Nodes 2.0 as a user
    setting (those where it is a hidden experiment, or that were not measured, do not count)."""
    heights: dict[str, int] = {}
    for found in measured.values():
        if not found.get("experimental"):
            for node_type, height in found.get("heights", {}).items():
                heights[node_type] = max(heights.get(node_type, 0), height)
    return heights


VUE_HEIGHTS = vue_heights(json.loads(NODE_HEIGHTS.read_text(encoding="utf-8")))
WIDTH = 300
LOADER_WIDTH = 390  # long file names stay readable
TITLE_H = 30  # the title bar is drawn above a node's pos
GAP = 30 + TITLE_H

# LiteGraph colour pairs (colour, bgcolor), as ComfyUI's templates use them.
GREEN, RED, BLUE, YELLOW = ("#232", "#353"), ("#322", "#533"), ("#223", "#335"), ("#432", "#653")
GROUP_COLOUR = "#3f789e"


# -- node definitions ---------------------------------------------------------------------------------
def load_node_infos() -> dict[str, dict[str, Any]]:
    """``/object_info``-style definitions of ComfyUI's built-in nodes and of this pack's nodes."""
    import comfy_env

    comfy_env.bootstrap()
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # ComfyUI's import warnings are not ours
    import nodes

    if "CFGGuider" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    pack = comfy_env.load_pack()
    from importlib import import_module

    classes = dict(nodes.NODE_CLASS_MAPPINGS)
    for cls in import_module(pack.__name__ + ".nodes").NODES:
        classes[cls.define_schema().node_id] = cls
    return {name: _info(name, cls) for name, cls in classes.items()}


def _info(name: str, cls: type) -> dict[str, Any]:
    if hasattr(cls, "GET_NODE_INFO_V1"):
        return cls.GET_NODE_INFO_V1()
    inputs = cls.INPUT_TYPES()
    return {"input": inputs, "input_order": {k: list(v) for k, v in inputs.items()},
            "output": list(cls.RETURN_TYPES), "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)),
            "name": name}


def is_widget(spec: tuple) -> bool:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def input_specs(info: dict[str, Any]) -> list[tuple[str, tuple, bool]]:
    """(name, spec, optional) of each visible input, in the order the node declares them."""
    found = []
    for section in ("required", "optional"):
        for name in info.get("input_order", {}).get(section, []):
            found.append((name, tuple(info["input"][section][name]), section == "optional"))
    return found


def combo_options(spec: tuple) -> list | None:
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1:
        return spec[1].get("options")
    return None


def lowest_point(node_type: str, y: float, height: float) -> float:
    """Where a node at ``y`` (its body's top) with body ``height`` ends in either renderer: its own
    size, or its Nodes 2.0 height (title bar included) where that is larger."""
    return y - TITLE_H + max(height + TITLE_H, VUE_HEIGHTS.get(node_type, 0))


# -- graph building -----------------------------------------------------------------------------------
@dataclass
class Node:
    id: int
    type: str
    pos: tuple[float, float]
    size: tuple[float, float]
    widgets: dict[str, Any]
    title: str | None = None
    colour: tuple[str, str] | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bottom(self) -> float:
        """The lowest point of the node in either renderer (``lowest_point``)."""
        return lowest_point(self.type, self.pos[1], self.size[1])

    @property
    def right(self) -> float:
        return self.pos[0] + self.size[0]


class Workflow:
    def __init__(self, name: str, infos: dict[str, dict[str, Any]]):
        self.name = name
        self.infos = infos
        self.nodes: list[Node] = []
        self.links: list[list[Any]] = []
        self.groups: list[dict[str, Any]] = []

    # nodes
    def add(self, type_: str, x: float, y: float, *, box_w: float | None = None, box_h: float | None = None,
            title: str | None = None, colour: tuple[str, str] | None = None, **widgets: Any) -> Node:
        """A node at (x, y), ``box_w`` x ``box_h`` big, with its widget values given by name."""
        node = Node(len(self.nodes) + 1, type_, (x, y), (box_w or WIDTH, 0), {}, title, colour)
        if type_ in FRONTEND_ONLY:
            node.widgets = {"text": widgets.pop("text")}
        else:
            self._set_sockets_and_widgets(node, widgets)
        if widgets:
            raise ValueError(f"{self.name}: {type_} has no widget(s) {sorted(widgets)}")
        node.size = (node.size[0], box_h or HEIGHTS.get(type_) or self._estimated_height(node))
        self.nodes.append(node)
        return node

    def below(self, node: Node, type_: str, **kwargs: Any) -> Node:
        """A node in the same column, under ``node``."""
        kwargs.setdefault("box_w", node.size[0])
        return self.add(type_, node.pos[0], node.bottom + GAP, **kwargs)

    def note(self, text: str, x: float, y: float, box_w: float = 460, box_h: float = 600) -> Node:
        return self.add("MarkdownNote", x, y, box_w=box_w, box_h=box_h, colour=YELLOW, text=text.strip() + "\n")

    def _set_sockets_and_widgets(self, node: Node, given: dict[str, Any]) -> None:
        info = self.infos[node.type]
        sockets, widget_inputs = [], []
        for name, spec, optional in input_specs(info):
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            entry = {"name": name, "type": kind, "link": None}
            if optional:
                entry["shape"] = 7
            if is_widget(spec):
                entry["widget"] = {"name": name}
                widget_inputs.append(entry)
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                value = given.pop(name) if name in given else self._default(node.type, name, spec, options)
                self._check_value(node.type, name, spec, options, value)
                node.widgets[name] = value
                if options.get("control_after_generate"):
                    node.widgets[f"{name}.control_after_generate"] = given.pop("control_after_generate", "fixed")
            else:
                sockets.append(entry)
        node.inputs = sockets + widget_inputs
        names = info.get("output_name") or info["output"]
        node.outputs = [{"name": n, "type": t, "links": None} for n, t in zip(names, info["output"])]

    @staticmethod
    def _estimated_height(node: Node) -> float:
        """The frontend's height for a node not in HEIGHTS: slot rows, then one row per widget."""
        sockets = sum(1 for i in node.inputs if "widget" not in i)
        widgets = sum(1 for i in node.inputs if "widget" in i) + sum(1 for k in node.widgets if "." in k)
        return max(sockets, len(node.outputs), 1) * 20 + widgets * 24 + 6

    def _default(self, type_: str, name: str, spec: tuple, options: dict) -> Any:
        if "default" in options:
            return options["default"]
        choices = combo_options(spec)
        if choices and name not in MODEL_WIDGETS:
            return choices[0]
        raise ValueError(f"{self.name}: {type_}.{name} needs a value")

    def _check_value(self, type_: str, name: str, spec: tuple, options: dict, value: Any) -> None:
        where = f"{self.name}: {type_}.{name} = {value!r}"
        if name in MODEL_WIDGETS:
            if value not in MODELS:
                raise ValueError(f"{where}: not a model file of MODELS")
            return
        choices = combo_options(spec)
        if choices is not None and value not in choices:
            raise ValueError(f"{where}: not one of {choices}")
        if spec[0] in ("INT", "FLOAT"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{where}: not a number")
            if value < options.get("min", float("-inf")) or value > options.get("max", float("inf")):
                raise ValueError(f"{where}: outside [{options.get('min')}, {options.get('max')}]")

    # links
    def connect(self, source: Node, output: str | int, target: Node, input_name: str) -> None:
        slot = output if isinstance(output, int) else [o["name"] for o in source.outputs].index(output)
        target_slot = [i["name"] for i in target.inputs].index(input_name)
        target_input = target.inputs[target_slot]
        if target_input["link"] is not None:
            raise ValueError(f"{self.name}: {target.type}.{input_name} is already linked")
        kind = source.outputs[slot]["type"]
        if kind not in target_input["type"].split(","):  # an input may accept several types: "GUIDER,MODEL"
            raise ValueError(f"{self.name}: {source.type}[{slot}] is {kind}, {target.type}.{input_name} wants "
                             f"{target_input['type']}")
        link_id = len(self.links) + 1
        self.links.append([link_id, source.id, slot, target.id, target_slot, kind])
        target_input["link"] = link_id
        source.outputs[slot]["links"] = (source.outputs[slot]["links"] or []) + [link_id]

    def group(self, title: str, members: list[Node], pad: float = 20) -> None:
        left = min(n.pos[0] for n in members) - pad
        top = min(n.pos[1] - TITLE_H for n in members) - pad - 36
        right = max(n.right for n in members) + pad
        bottom = max(n.bottom for n in members) + pad
        self.groups.append({"id": len(self.groups) + 1, "title": title, "bounding": [left, top, right - left,
                            bottom - top], "color": GROUP_COLOUR, "font_size": 24, "flags": {}})

    # output
    def _order(self) -> dict[int, int]:
        """Execution order the frontend would compute: a topological order, ties by id."""
        parents = {n.id: {link[1] for link in self.links if link[3] == n.id} for n in self.nodes}
        order, done = {}, set()
        while len(done) < len(self.nodes):
            ready = [n.id for n in self.nodes if n.id not in done and parents[n.id] <= done]
            for node_id in ready:
                order[node_id] = len(order)
            done.update(ready)
        return order

    def to_json(self) -> dict[str, Any]:
        order = self._order()
        nodes = []
        for node in self.nodes:
            entry: dict[str, Any] = {"id": node.id, "type": node.type, "pos": list(node.pos),
                                     "size": list(node.size), "flags": {}, "order": order[node.id], "mode": 0,
                                     "inputs": node.inputs, "outputs": node.outputs}
            if node.title:
                entry["title"] = node.title
            entry["properties"] = self._properties(node)
            entry["widgets_values"] = list(node.widgets.values())
            if node.colour:
                entry["color"], entry["bgcolor"] = node.colour
            nodes.append(entry)
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PACK_CNR_ID}/workflows/{self.name}")),
            "revision": 0, "last_node_id": len(self.nodes), "last_link_id": len(self.links),
            "nodes": nodes, "links": self.links, "groups": self.groups, "config": {}, "extra": {},
            "version": 0.4,
        }

    def _properties(self, node: Node) -> dict[str, Any]:
        if node.type in FRONTEND_ONLY:
            return {}
        props: dict[str, Any] = {"Node name for S&R": node.type}
        if node.type.startswith(PACK_PREFIX):
            props["cnr_id"] = PACK_CNR_ID
        else:
            props["cnr_id"] = "comfy-core"
        models = [{"name": v, "url": MODELS[v][1], "directory": MODELS[v][0]}
                  for k, v in node.widgets.items() if k in MODEL_WIDGETS]
        if models:
            props["models"] = models  # the frontend offers these downloads when a file is missing
        return props


def model_links(*names: str) -> str:
    lines = []
    for name in names:
        folder, url = MODELS[name]
        lines.append(f"- `models/{folder}/` [{name}]({url})")
    return "\n".join(lines)


# -- shared pieces ------------------------------------------------------------------------------------
GUIDERS_MENU = "Add Node → sampling → custom_sampling → guiders"
# The display names of the pack's RAAG nodes (RAAG is MAMBO-G since the paper's v4): the titles of those
# nodes in the graphs and the names the notes use (tests/test_workflows.py checks them against the nodes).
RAAG_GUIDER = "RAAG / MAMBO-G Guider"
RAAG_S2_GUIDER = "RAAG / MAMBO-G + S² Guider"
RAAG_PATCH = "RAAG / MAMBO-G (model patch)"
RAAG_S2_PATCH = "RAAG / MAMBO-G + S² (model patch)"
LUMINA2_CKPT = "lumina_2.safetensors"
# ComfyUI's Lumina 2 template puts this system prompt in front of the user's (Lumina 2's own sample code's)
LUMINA2_SYSTEM_PROMPT = ("You are an assistant designed to generate superior images with the superior degree of "
                         "image-text alignment based on textual prompts or user prompts. <Prompt Start> ")
WAN22_HIGH = "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"
WAN22_LOW = "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"
WAN_PROMPT = "a fox moving quickly in a beautiful winter scenery nature trees mountains daytime tracking camera"
# Wan 2.2 14B with RAAG (ours: no official Wan settings): 12 steps, the experts switching half-way; cfg 3.5
# (the template's) only outside RAAG's window
WAN22_STEPS, WAN22_SWITCH, WAN22_CFG = 12, 6, 3.5
WAN22_RAAG = {"w_max": 8.0, "alpha": 12.0, "ratio_mode": "per_sample", "start_percent": 0.0, "end_percent": 1.0,
              "rescale": 0.0}
SD35_CKPT = "sd3.5_large_fp8_scaled.safetensors"
NEGATIVE = ""  # an empty negative prompt: the papers' unconditional branch


@dataclass
class Common:
    """The nodes every text-to-image / video graph shares: loaders, prompts, latent, seed, sampler."""

    model: tuple[Node, int]
    clip: tuple[Node, int]
    vae: tuple[Node, int]
    positive: Node
    negative: Node
    latent: Node
    noise: Node
    sampler: Node
    right: float  # x where the guider columns start


def prompts_and_latent(wf: Workflow, clip: tuple[Node, int], x: float, prompt: str, latent_type: str,
                       **latent: Any) -> tuple[Node, Node, Node]:
    """The positive and the (empty) negative prompt on ``clip``, and the empty latent under them."""
    positive = wf.add("CLIPTextEncode", x, 0, box_w=420, box_h=220, title="Positive prompt", colour=GREEN,
                      text=prompt)
    negative = wf.below(positive, "CLIPTextEncode", box_h=120, title="Negative prompt (empty, as in the papers)",
                        colour=RED, text=NEGATIVE)
    for node in (positive, negative):
        wf.connect(clip[0], clip[1], node, "clip")
    return positive, negative, wf.below(negative, latent_type, **latent)


def prompts_seed_sampler(wf: Workflow, clip: tuple[Node, int], x: float, prompt: str, latent_type: str,
                         sampler: str = "euler", seed_title: str = "Seed (shared by every branch)",
                         **latent: Any) -> tuple[Node, Node, Node, Node, Node]:
    positive, negative, empty = prompts_and_latent(wf, clip, x, prompt, latent_type, **latent)
    noise = wf.below(empty, "RandomNoise", title=seed_title, noise_seed=SEED)
    pick = wf.below(noise, "KSamplerSelect", sampler_name=sampler)
    wf.group("Prompt, size, seed, sampler", [positive, negative, empty, noise, pick])
    return positive, negative, empty, noise, pick


def sd35_common(wf: Workflow, prompt: str) -> Common:
    ckpt = wf.add("CheckpointLoaderSimple", 0, 0, box_w=LOADER_WIDTH, ckpt_name=SD35_CKPT)
    wf.group("Model", [ckpt])
    x = LOADER_WIDTH + 80
    positive, negative, empty, noise, pick = prompts_seed_sampler(
        wf, (ckpt, "CLIP"), x, prompt, "EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    return Common((ckpt, "MODEL"), (ckpt, "CLIP"), (ckpt, "VAE"), positive, negative, empty, noise, pick,
                  x + 420 + 100)


def branch(wf: Workflow, c: Common, guider_type: str, x: float, y: float, *, steps: int, scheduler: str = "simple",
           title: str, prefix: str, trace: bool = True, video_fps: float | None = None, group: str | None = None,
           **guider_widgets: Any) -> dict[str, Node]:
    """guider + BasicScheduler → SamplerCustomAdvanced → VAEDecode → SaveImage (+ trace plot)."""
    colour = BLUE if guider_type.startswith(PACK_PREFIX) else None
    guider = wf.add(guider_type, x, y, title=title, colour=colour, **guider_widgets)
    for name in ("model", "positive", "negative"):
        source = {"model": c.model, "positive": (c.positive, 0), "negative": (c.negative, 0)}[name]
        wf.connect(source[0], source[1], guider, name)
    sigmas = wf.below(guider, "BasicScheduler", title=f"{steps} steps", scheduler=scheduler, steps=steps, denoise=1.0)
    wf.connect(c.model[0], c.model[1], sigmas, "model")
    sample = wf.add("SamplerCustomAdvanced", x + WIDTH + 60, y, box_w=260)
    for source, name in ((c.noise, "noise"), (guider, "guider"), (c.sampler, "sampler"), (sigmas, "sigmas"),
                         (c.latent, "latent_image")):
        wf.connect(source, 0, sample, name)
    decode = wf.below(sample, "VAEDecode", box_w=260)
    wf.connect(sample, "output", decode, "samples")
    wf.connect(c.vae[0], c.vae[1], decode, "vae")
    out_x = sample.right + 60
    nodes = {"guider": guider, "sigmas": sigmas, "sample": sample, "decode": decode}
    if video_fps is None:
        save = wf.add("SaveImage", out_x, y, box_w=420, box_h=460, filename_prefix=prefix)
        wf.connect(decode, 0, save, "images")
    else:
        # SaveWEBM: the same inputs on every supported ComfyUI (SaveVideo's format/codec inputs changed
        # kind in newer releases, so one file could not validate on both).
        save = wf.add("SaveWEBM", out_x, y, box_w=420, box_h=460, filename_prefix=prefix, codec="vp9",
                      fps=video_fps, crf=32.0)
        wf.connect(decode, 0, save, "images")
    nodes["save"] = save
    if trace:
        plot = wf.below(decode, "RAAGS2Guidance_TracePlot", title="Guidance Trace Plot")
        wf.connect(guider, 0, plot, "guider")
        wf.connect(sample, "output", plot, "latent")
        preview = wf.below(plot, "PreviewImage", box_h=300, title="Trace: rho and w per step")
        wf.connect(plot, 0, preview, "images")
        nodes.update(plot=plot, preview=preview)
    if group:
        wf.group(group, list(nodes.values()))
    return nodes


# -- the workflows ------------------------------------------------------------------------------------
def raag_sd35(infos) -> Workflow:
    wf = Workflow("raag_sd35", infos)
    c = sd35_common(wf, "a photo of an astronaut on a moon")
    # scheduler "normal": the sigmas of diffusers' FlowMatchEulerDiscreteScheduler at SD3.5's shift 3,
    # which the official RAAG and S² runs used (at 10 steps: 1, .960, .913, ..., .278, .009)
    raag = branch(wf, c, PACK_PREFIX + "RAAGGuider", c.right, 0, steps=10, scheduler="normal", title=RAAG_GUIDER,
                  prefix="raag_sd35/raag_10_steps", group="RAAG / MAMBO-G: 10 steps", w_max=18.0, alpha=12.0,
                  ratio_mode="per_sample", start_percent=0.0, end_percent=1.0, cfg=7.0, rescale=0.0)
    y = max(n.bottom for n in raag.values()) + 140
    branch(wf, c, "CFGGuider", c.right, y, steps=30, scheduler="normal", title="CFG Guider (comparison)",
           prefix="raag_sd35/cfg_30_steps",
           trace=False, group="CFG: 30 steps (3x the model calls)", cfg=7.0)
    wf.note(f"""
# RAAG / MAMBO-G on SD3.5 Large: 10 RAAG steps against 30 CFG steps

**RAAG** (ratio-aware adaptive guidance, arXiv 2508.03442; its authors renamed it **MAMBO-G**) picks the
guidance scale of every step from the ratio **rho = ‖v_c − v_u‖ / ‖v_u‖** of the conditional and unconditional velocities:
**w = 1 + (w_max − 1) · exp(−alpha · rho)**. Gentle in the first steps (where the prompt already moves
the prediction a lot), strong later. The paper's claim: 10 RAAG steps match 30 CFG steps.

Both branches share the prompt, the latent and the seed ({SEED}, fixed), so only the guidance differs:
- **top**: *{RAAG_GUIDER}*, w_max 18, alpha 12, rescale 0 (the authors' official SD3.5-Large setting),
  **10 steps**;
- **bottom**: *CFGGuider* at 7 (the paper's CFG baseline), **30 steps**.

The *Guidance Trace Plot* shows rho and w at each step of the RAAG run.

## Model (one file: it holds the three text encoders and the VAE)
{model_links(SD35_CKPT)}

SD3.5 Medium works too: swap the loader's file for `sd3.5_medium.safetensors` (+ a TripleCLIPLoader).

## Tips
- Over-saturated or burnt? Lower **w_max** (8-12), or raise **rescale** (MAMBO-G's guidance rescale,
  0-1). Weak prompt adherence? Raise w_max or lower **alpha**.
- RAAG's own nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=760)
    return wf


def s2_sd35(infos) -> Workflow:
    wf = Workflow("s2_sd35", infos)
    c = sd35_common(wf, "a red fox reading a newspaper on a park bench in autumn, detailed fur, soft morning light")
    branch(wf, c, PACK_PREFIX + "S2Guider", c.right, 0, steps=28, scheduler="normal", title="S² Guider (paper: SD3.5)",
           prefix="s2_sd35/s2", group="S²-Guidance: 28 steps", cfg=7.5, omega=0.25, drop_ratio=0.1,
           start_percent=0.0, end_percent=1.0)
    wf.note(f"""
# S²-Guidance on SD3.5 Large

**S²-Guidance** (stochastic self-guidance, arXiv 2508.12880) is CFG plus one extra conditional pass per
step through a *sub-network*: the same model with ~10% of its transformer blocks skipped at random (a new
draw every step). The result steers away from that weaker prediction:

**D = D_u + lambda (D_c − D_u) − omega (D_sub − D_c)**

Settings of the paper for SD3 / SD3.5: **lambda (cfg) 7.5, omega 0.25**, ~10% of the blocks dropped
(drop_ratio 0.1), 28 steps (its timing table). Cost: 3 model passes per step instead of 2.

The *Guidance Trace Plot* shades the steps that ran the sub-network pass.

## Model (one file: it holds the three text encoders and the VAE)
{model_links(SD35_CKPT)}

## Tips
- omega 0.1-0.5; large values over-correct. omega 0 is plain CFG (no extra pass).
- Limit the extra cost with start_percent / end_percent (outside the window: plain CFG).
- Compare with CFG and RAAG on the same seed: the `ab_compare_sd35` workflow.
- The pack's nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=640)
    return wf


def raag_s2_flux(infos) -> Workflow:
    wf = Workflow("raag_s2_flux", infos)
    unet = wf.add("UNETLoader", 0, 0, box_w=LOADER_WIDTH, unet_name="Chroma1-HD-fp8_scaled_rev2.safetensors",
                  weight_dtype="default")
    shift = wf.below(unet, "ModelSamplingAuraFlow", title="ModelSamplingAuraFlow (Chroma: shift 1)", shift=1.0)
    wf.connect(unet, 0, shift, "model")
    clip = wf.below(shift, "CLIPLoader", clip_name="t5xxl_fp8_e4m3fn_scaled.safetensors", type="chroma",
                    device="default")
    tokens = wf.below(clip, "T5TokenizerOptions", min_padding=1, min_length=0)
    wf.connect(clip, 0, tokens, "clip")
    vae = wf.below(tokens, "VAELoader", vae_name="ae.safetensors")
    wf.group("Models (Chroma1-HD)", [unet, shift, clip, tokens, vae])
    x = LOADER_WIDTH + 80
    positive, negative, empty, noise, pick = prompts_seed_sampler(
        wf, (tokens, 0), x,
        "A nature documentary close-up photograph of a snow leopard resting on a rocky ledge at dusk, "
        "detailed fur, shallow depth of field, natural light.",
        "EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    c = Common((shift, 0), (tokens, 0), (vae, 0), positive, negative, empty, noise, pick, x + 520)
    branch(wf, c, PACK_PREFIX + "RAAGS2Guider", c.right, 0, steps=10, scheduler="beta",
           title=RAAG_S2_GUIDER, prefix="raag_s2_chroma/raag_s2", group="RAAG / MAMBO-G + S²: 10 steps",
           w_max=10.0, alpha=12.0, ratio_mode="per_sample", omega=0.25, drop_ratio=0.1, start_percent=0.0,
           end_percent=1.0, rescale=0.0)
    wf.note(f"""
# RAAG / MAMBO-G + S² on Chroma1-HD (a Flux-family model with real CFG)

Both methods need a model that takes a real negative / unconditional branch. Flux.1-dev is
guidance-distilled (it has no real CFG), so this workflow uses **Chroma1-HD**: a Flux-schnell-derived
8.9B model trained for real CFG (ComfyUI's own Chroma template uses the same files and settings:
shift 1, beta schedule, T5 `min_padding` 1). A de-distilled Flux.1-dev checkpoint works the same way.

The *{RAAG_S2_GUIDER}* takes the CFG scale of each step from RAAG's ratio schedule
(w = 1 + (w_max − 1) exp(−alpha rho)) and adds S²'s sub-network term − omega (D_sub − D_c):
Chroma's double and single blocks are the ones dropped at random.

Settings (*ours*: the papers give none for Chroma; the README's presets): w_max 10, alpha 12, rescale 0
(RAAG's SD3.5 values scaled to Chroma's lower usual CFG: its template uses CFG 3.5 at 26 steps), S²'s
omega 0.25 and ~10% of the blocks, at RAAG's 10 steps.

## Models
{model_links("Chroma1-HD-fp8_scaled_rev2.safetensors", "t5xxl_fp8_e4m3fn_scaled.safetensors", "ae.safetensors")}

(Full-precision alternative: `Chroma1-HD.safetensors` from huggingface.co/lodestones/Chroma1-HD.)

## Tips
- Over-saturated? Lower w_max to 6-8. Too few details? 15-20 steps.
- The pack's nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=760)
    return wf


def raag_qwen_image(infos) -> Workflow:
    wf = Workflow("raag_qwen_image", infos)
    unet = wf.add("UNETLoader", 0, 0, box_w=LOADER_WIDTH, unet_name="qwen_image_fp8_e4m3fn.safetensors",
                  weight_dtype="default")
    shift = wf.below(unet, "ModelSamplingAuraFlow", title="ModelSamplingAuraFlow (Qwen-Image: shift 3.1)",
                     shift=3.1)
    wf.connect(unet, 0, shift, "model")
    clip = wf.below(shift, "CLIPLoader", clip_name="qwen_2.5_vl_7b_fp8_scaled.safetensors", type="qwen_image",
                    device="default")
    vae = wf.below(clip, "VAELoader", vae_name="qwen_image_vae.safetensors")
    wf.group("Models (Qwen-Image)", [unet, shift, clip, vae])
    x = LOADER_WIDTH + 80
    positive, negative, empty, noise, pick = prompts_seed_sampler(
        wf, (clip, 0), x,
        "A cosy bookshop on a rainy evening, warm light through the window, a hand-painted wooden sign above "
        "the door that reads \"RAAG BOOKS\", reflections on the wet street.",
        "EmptySD3LatentImage", width=1328, height=1328, batch_size=1)
    c = Common((shift, 0), (clip, 0), (vae, 0), positive, negative, empty, noise, pick, x + 520)
    branch(wf, c, PACK_PREFIX + "RAAGGuider", c.right, 0, steps=10, title=RAAG_GUIDER,
           prefix="raag_qwen_image/raag", group="RAAG / MAMBO-G: 10 steps (official setting)", w_max=10.0,
           alpha=8.0, ratio_mode="per_sample", start_percent=0.0, end_percent=1.0, cfg=2.5, rescale=1.0)
    wf.note(f"""
# RAAG / MAMBO-G on Qwen-Image (the authors' official setting)

**RAAG** (arXiv 2508.03442; its authors renamed it **MAMBO-G**) sets each step's guidance scale from the
ratio rho = ‖v_c − v_u‖ / ‖v_u‖: w = 1 + (w_max − 1) exp(−alpha rho).

Settings (**official**: the authors' `qwen_sample.py` and diffusers' `MagnitudeAwareGuidance` example for
Qwen-Image): **w_max 10, alpha 8, rescale 1.0, 10 steps**, against a baseline of CFG 4. The **rescale**
(MAMBO-G's guidance rescale, diffusers' `guidance_rescale`) pulls each step's guided velocity back to the
conditional one's spread: at w_max 10 it keeps Qwen-Image from over-saturating. The rest is ComfyUI's
Qwen-Image template (shift 3.1, 1328×1328; it samples with CFG 2.5 at 20 steps).

The *Guidance Trace Plot* shows rho and the resulting w per step: check where w lands before tuning.

## Models
{model_links("qwen_image_fp8_e4m3fn.safetensors", "qwen_2.5_vl_7b_fp8_scaled.safetensors",
             "qwen_image_vae.safetensors")}

## Tips
- Over-cooked? Lower w_max (6-8) or raise alpha. Weak prompt adherence? Raise w_max (12-14).
- `cfg` (2.5, the template's) is only used outside start_percent / end_percent (no effect with the
  default window).
- The pack's nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=720)
    return wf


def wan21_models(wf: Workflow) -> tuple[Node, Node, Node]:
    """The Wan 2.1 T2V 1.3B loaders (model with shift 8, text encoder, VAE) in their group."""
    unet = wf.add("UNETLoader", 0, 0, box_w=LOADER_WIDTH, unet_name="wan2.1_t2v_1.3B_fp16.safetensors",
                  weight_dtype="default")
    shift = wf.below(unet, "ModelSamplingSD3", title="ModelSamplingSD3 (Wan: shift 8)", shift=8.0)
    wf.connect(unet, 0, shift, "model")
    clip = wf.below(shift, "CLIPLoader", clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan",
                    device="default")
    vae = wf.below(clip, "VAELoader", vae_name="wan_2.1_vae.safetensors")
    wf.group("Models (Wan 2.1 T2V 1.3B)", [unet, shift, clip, vae])
    return shift, clip, vae


def s2_wan21_t2v(infos) -> Workflow:
    wf = Workflow("s2_wan21_t2v", infos)
    shift, clip, vae = wan21_models(wf)
    x = LOADER_WIDTH + 80
    positive, negative, empty, noise, pick = prompts_seed_sampler(
        wf, (clip, 0), x,
        "a fox moving quickly in a beautiful winter scenery nature trees mountains daytime tracking camera",
        "EmptyHunyuanLatentVideo", sampler="uni_pc", width=832, height=480, length=33, batch_size=1)
    c = Common((shift, 0), (clip, 0), (vae, 0), positive, negative, empty, noise, pick, x + 520)
    branch(wf, c, PACK_PREFIX + "S2Guider", c.right, 0, steps=30, title="S² Guider (paper: Wan)",
           prefix="s2_wan21/s2", video_fps=16.0, group="S²-Guidance: 30 steps", cfg=5.0, omega=0.25,
           drop_ratio=0.1, start_percent=0.0, end_percent=1.0)
    wf.note(f"""
# S²-Guidance on Wan 2.1 text-to-video (1.3B)

**S²-Guidance** (arXiv 2508.12880): CFG plus one extra conditional pass per step through a sub-network
with ~10% of Wan's 30 DiT blocks skipped at random (a new draw every step):
D = D_u + lambda (D_c − D_u) − omega (D_sub − D_c).

Settings of the paper for Wan 1.3B and 14B: **lambda (cfg) 5, omega 0.25**, ~10% of the blocks; the rest
is ComfyUI's Wan 2.1 template (shift 8, uni_pc, 30 steps, 832×480, 33 frames at 16 fps).
Cost: 3 model passes per step instead of 2.

The negative prompt is empty as in the paper; Wan's usual long negative prompt works too.

## Models
{model_links("wan2.1_t2v_1.3B_fp16.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
             "wan_2.1_vae.safetensors")}

14B: `wan2.1_t2v_14B_fp16.safetensors` (or fp8) in the same loader, same settings.

## Tips
- Save time with the window start_percent 0.1, end_percent 0.9 (the paper reports the central 80% of the
  schedule as robust): about a fifth fewer sub-network passes.
- The pack's nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=680)
    return wf


def raag_lumina2(infos) -> Workflow:
    wf = Workflow("raag_lumina2", infos)
    ckpt = wf.add("CheckpointLoaderSimple", 0, 0, box_w=LOADER_WIDTH, ckpt_name=LUMINA2_CKPT)
    shift = wf.below(ckpt, "ModelSamplingAuraFlow", title="ModelSamplingAuraFlow (Lumina 2: shift 6)", shift=6.0)
    wf.connect(ckpt, "MODEL", shift, "model")
    wf.group("Model (Lumina Image 2.0)", [ckpt, shift])
    x = LOADER_WIDTH + 80
    positive, negative, empty, noise, pick = prompts_seed_sampler(
        wf, (ckpt, "CLIP"), x,
        LUMINA2_SYSTEM_PROMPT + "A watercolour painting of a lighthouse on a cliff at sunrise, seagulls over "
        "the waves, soft pastel colours, fine paper texture.",
        "EmptySD3LatentImage", sampler="res_multistep", width=1024, height=1024, batch_size=1)
    c = Common((shift, 0), (ckpt, "CLIP"), (ckpt, "VAE"), positive, negative, empty, noise, pick, x + 520)
    branch(wf, c, PACK_PREFIX + "RAAGGuider", c.right, 0, steps=10, title=RAAG_GUIDER, prefix="raag_lumina2/raag",
           group="RAAG / MAMBO-G: 10 steps", w_max=8.0, alpha=12.0, ratio_mode="per_sample", start_percent=0.0,
           end_percent=1.0, cfg=4.0, rescale=0.0)
    wf.note(f"""
# RAAG / MAMBO-G on Lumina Image 2.0 at 10 steps

**RAAG** (arXiv 2508.03442; its authors renamed it **MAMBO-G**) sets each step's guidance scale from the
ratio rho = ‖v_c − v_u‖ / ‖v_u‖: w = 1 + (w_max − 1) exp(−alpha rho). The authors report 4× fewer steps
on Lumina but publish no Lumina settings.

Settings (*ours*): **w_max 8, alpha 12, rescale 0, 10 steps** (RAAG's SD3.5 alpha, w_max scaled to
Lumina 2's usual CFG 4), `cfg` 4 outside RAAG's window (no effect with the default window). The rest is
ComfyUI's Lumina 2 template: the all-in-one checkpoint, shift 6, res_multistep, simple, 1024×1024, and its
system prompt in front of the positive prompt ("You are an assistant designed to generate superior
images ... <Prompt Start> "): Lumina 2's Gemma encoder expects it, keep it and write after it.

The *Guidance Trace Plot* shows rho and the resulting w per step.

## Model (one file: it holds the Gemma 2 text encoder and the VAE)
{model_links(LUMINA2_CKPT)}

## Tips
- Over-saturated? Lower w_max (5-6) or raise **rescale** (0.5-1). Weak prompt adherence? Raise w_max.
- The pack's nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=700)
    return wf


def wan22_models(wf: Workflow) -> tuple[Node, Node, Node, Node]:
    """The Wan 2.2 T2V 14B loaders in their group: the high-noise and the low-noise expert (each with shift
    8, as ComfyUI's template), the text encoder and the VAE."""
    high = wf.add("UNETLoader", 0, 0, box_w=LOADER_WIDTH, title="High-noise expert", unet_name=WAN22_HIGH,
                  weight_dtype="default")
    high_shift = wf.below(high, "ModelSamplingSD3", title="ModelSamplingSD3 (Wan: shift 8)", shift=8.0)
    wf.connect(high, 0, high_shift, "model")
    low = wf.below(high_shift, "UNETLoader", title="Low-noise expert", unet_name=WAN22_LOW, weight_dtype="default")
    low_shift = wf.below(low, "ModelSamplingSD3", title="ModelSamplingSD3 (Wan: shift 8)", shift=8.0)
    wf.connect(low, 0, low_shift, "model")
    clip = wf.below(low_shift, "CLIPLoader", clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan",
                    device="default")
    vae = wf.below(clip, "VAELoader", vae_name="wan_2.1_vae.safetensors")
    wf.group("Models (Wan 2.2 T2V 14B: two experts)", [high, high_shift, low, low_shift, clip, vae])
    return high_shift, low_shift, clip, vae


def decode_to_webm(wf: Workflow, sample: Node, output: str | int, vae: Node, x: float, y: float, prefix: str,
                   **decode_box: Any) -> list[Node]:
    """VAEDecode of ``sample`` → SaveWEBM (the same inputs on every supported ComfyUI, see branch)."""
    decode = wf.below(sample, "VAEDecode", **decode_box)
    wf.connect(sample, output, decode, "samples")
    wf.connect(vae, 0, decode, "vae")
    save = wf.add("SaveWEBM", x, y, box_w=420, box_h=460, filename_prefix=prefix, codec="vp9", fps=16.0, crf=32.0)
    wf.connect(decode, 0, save, "images")
    return [decode, save]


def wan22_trace(wf: Workflow, source: Node, latent: Node, x: float, y: float, expert: str) -> list[Node]:
    """Guidance Trace Plot of one expert (its guider or patched MODEL, and the LATENT its sampler made) → PreviewImage."""
    plot = wf.add(PACK_PREFIX + "TracePlot", x, y, box_w=420, title=f"Guidance Trace Plot: {expert}")
    wf.connect(source, 0, plot, "guider")
    wf.connect(latent, 0, plot, "latent")
    preview = wf.below(plot, "PreviewImage", box_h=300, title=f"Trace: rho and w per step ({expert})")
    wf.connect(plot, 0, preview, "images")
    return [plot, preview]


def raag_wan22_t2v(infos) -> Workflow:
    """Wan 2.2 14B with SamplerCustomAdvanced: one schedule split between the two experts, a RAAG guider on each."""
    wf = Workflow("raag_wan22_t2v", infos)
    high_model, low_model, clip, vae = wan22_models(wf)
    x = LOADER_WIDTH + 80
    positive, negative, empty, noise, pick = prompts_seed_sampler(
        wf, (clip, 0), x, WAN_PROMPT, "EmptyHunyuanLatentVideo", sampler="euler",
        seed_title="Seed (the high-noise expert adds the noise)", width=832, height=480, length=33, batch_size=1)
    x_schedule = x + 520
    sigmas = wf.add("BasicScheduler", x_schedule, 0, title=f"{WAN22_STEPS} steps (both experts)",
                    scheduler="simple", steps=WAN22_STEPS, denoise=1.0)
    wf.connect(high_model, 0, sigmas, "model")
    split = wf.below(sigmas, "SplitSigmas", title=f"Split at step {WAN22_SWITCH}", step=WAN22_SWITCH)
    wf.connect(sigmas, 0, split, "sigmas")
    wf.group("Split schedule", [sigmas, split])
    x_guider = x_schedule + WIDTH + 60
    x_sample = x_guider + WIDTH + 60
    x_save = x_sample + 260 + 60
    x_trace = x_save + 420 + 60
    y = 0
    rows = (("high", high_model, "high_sigmas", "High-noise expert", f"steps 0-{WAN22_SWITCH}"),
            ("low", low_model, "low_sigmas", "Low-noise expert", f"steps {WAN22_SWITCH}-{WAN22_STEPS}"))
    previous = None
    for key, model, part, expert, steps in rows:
        guider = wf.add(PACK_PREFIX + "RAAGGuider", x_guider, y, title=RAAG_GUIDER, colour=BLUE, cfg=WAN22_CFG,
                        **WAN22_RAAG)
        wf.connect(model, 0, guider, "model")
        wf.connect(positive, 0, guider, "positive")
        wf.connect(negative, 0, guider, "negative")
        sample = wf.add("SamplerCustomAdvanced", x_sample, y, box_w=260)
        if previous is None:  # the first expert adds the seed's noise to the empty latent
            wf.connect(noise, 0, sample, "noise")
            wf.connect(empty, 0, sample, "latent_image")
            members = [guider, sample]
        else:  # the second continues from the first one's output (its leftover noise), adding none
            silent = wf.below(guider, "DisableNoise", title="No new noise (DisableNoise)")
            wf.connect(silent, 0, sample, "noise")
            wf.connect(previous, "output", sample, "latent_image")
            members = [guider, silent, sample]
        wf.connect(guider, 0, sample, "guider")
        wf.connect(pick, 0, sample, "sampler")
        wf.connect(split, part, sample, "sigmas")
        if previous is not None:
            members += decode_to_webm(wf, sample, "output", vae, x_save, y, "raag_wan22/raag", box_w=260)
        members += wan22_trace(wf, guider, sample, x_trace, y, expert.lower())
        wf.group(f"{expert}: {RAAG_GUIDER}, {steps}", members)
        previous = sample
        y = max(n.bottom for n in members) + 140
    wf.note(f"""
# RAAG / MAMBO-G on Wan 2.2 14B text-to-video: two experts on split sigmas

Wan 2.2 14B samples with two models: the **high-noise expert** takes the first steps, the **low-noise
expert** the rest. One *BasicScheduler* ({WAN22_STEPS} steps, simple; on the high-noise model: both experts
use shift 8, so the same sigmas) feeds *SplitSigmas* at step {WAN22_SWITCH}:
- **high_sigmas** → *SamplerCustomAdvanced* with a *{RAAG_GUIDER}* on the high-noise expert and the seed
  (*RandomNoise*);
- **low_sigmas** → a second one with a *{RAAG_GUIDER}* on the low-noise expert and *DisableNoise*, from
  the first one's output (the latent with its leftover noise).
Both use euler (one *KSamplerSelect*). The same job through two KSamplerAdvanced:
"{workflow_files.TITLES['raag_ksampler_wan22_t2v']}".

Settings (*ours*: the authors publish no Wan settings; they report 2× fewer steps on Wan 2.1 14B):
**w_max {WAN22_RAAG['w_max']:g}, alpha {WAN22_RAAG['alpha']:g}, rescale {WAN22_RAAG['rescale']:g}, {WAN22_STEPS} steps** (ComfyUI's Wan 2.2 14B
template: 20 steps split at 10, CFG 3.5, euler / simple, shift 8). The guiders' `cfg` ({WAN22_CFG:g}, the template's)
is only used outside RAAG's step window (no effect with the default window). 832×480, 33 frames at 16 fps.

A *Guidance Trace Plot* per expert shows rho and w of the steps that expert ran.

## Models
{model_links(WAN22_HIGH, WAN22_LOW, "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan_2.1_vae.safetensors")}

## Tips
- More steps: set the scheduler's steps and split about half-way (15 steps: split at 7 or 8).
- Over-saturated? Lower w_max (6) or raise **rescale**. Longer clips: the latent's length (81 = 5 s).
- The pack's nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=900)
    return wf


def ab_compare_sd35(infos) -> Workflow:
    wf = Workflow("ab_compare_sd35", infos)
    c = sd35_common(wf, "a cozy wooden cabin by a frozen lake under the northern lights, cinematic photo")
    sigmas = wf.add("BasicScheduler", c.right, 0, title="Shared schedule (20 steps)", scheduler="normal",
                    steps=20, denoise=1.0)
    wf.connect(c.model[0], c.model[1], sigmas, "model")
    wf.group("One schedule for all four", [sigmas])
    guiders = [
        ("CFGGuider", "A: CFG 7.5", "ab_sd35/a_cfg", {"cfg": 7.5}),
        (PACK_PREFIX + "RAAGGuider", "B: RAAG / MAMBO-G", "ab_sd35/b_raag",
         {"w_max": 18.0, "alpha": 12.0, "ratio_mode": "per_sample", "start_percent": 0.0, "end_percent": 1.0,
          "cfg": 7.5, "rescale": 0.0}),
        (PACK_PREFIX + "S2Guider", "C: S²", "ab_sd35/c_s2",
         {"cfg": 7.5, "omega": 0.25, "drop_ratio": 0.1, "start_percent": 0.0, "end_percent": 1.0}),
        (PACK_PREFIX + "RAAGS2Guider", "D: RAAG / MAMBO-G + S²", "ab_sd35/d_raag_s2",
         {"w_max": 18.0, "alpha": 12.0, "ratio_mode": "per_sample", "omega": 0.25, "drop_ratio": 0.1,
          "start_percent": 0.0, "end_percent": 1.0, "rescale": 0.0}),
    ]
    x0 = c.right + WIDTH + 80
    column = 480
    sample_y = max(lowest_point(kind, 0, HEIGHTS[kind]) for kind, *_ in guiders) + GAP  # under the tallest guider
    for i, (kind, title, prefix, widgets) in enumerate(guiders):
        x = x0 + i * column
        colour = BLUE if kind.startswith(PACK_PREFIX) else None
        guider = wf.add(kind, x, 0, box_w=column - 60, title=title, colour=colour, **widgets)
        wf.connect(c.model[0], c.model[1], guider, "model")
        wf.connect(c.positive, 0, guider, "positive")
        wf.connect(c.negative, 0, guider, "negative")
        sample = wf.add("SamplerCustomAdvanced", x, sample_y, box_w=column - 60)
        for source, name in ((c.noise, "noise"), (guider, "guider"), (c.sampler, "sampler"), (sigmas, "sigmas"),
                             (c.latent, "latent_image")):
            wf.connect(source, 0, sample, name)
        decode = wf.below(sample, "VAEDecode")
        wf.connect(sample, "output", decode, "samples")
        wf.connect(c.vae[0], c.vae[1], decode, "vae")
        save = wf.below(decode, "SaveImage", box_h=460, title=f"{title}: image", filename_prefix=prefix)
        wf.connect(decode, 0, save, "images")
        members = [guider, sample, decode, save]
        if kind.startswith(PACK_PREFIX):
            plot = wf.below(save, PACK_PREFIX + "TracePlot", title=f"{title}: trace")
            wf.connect(guider, 0, plot, "guider")
            wf.connect(sample, "output", plot, "latent")
            preview = wf.below(plot, "PreviewImage", box_h=300, title=f"{title}: rho / w per step")
            wf.connect(plot, 0, preview, "images")
            members += [plot, preview]
        wf.group(title, members)
    wf.note(f"""
# A/B: CFG, RAAG / MAMBO-G, S² and both on one seed (SD3.5 Large)

One prompt, one latent, one seed ({SEED}, fixed), one sampler and **one schedule** feed four guiders,
so the four images differ only by the guidance:

- **A: CFGGuider**, cfg 7.5 (S²'s lambda, so A → C isolates S²'s term);
- **B: {RAAG_GUIDER}**, w_max 18, alpha 12, rescale 0 (arXiv 2508.03442: w = 1 + (w_max − 1)
  exp(−alpha rho); the authors' official SD3.5 setting);
- **C: S²**, lambda 7.5, omega 0.25, 10% of the blocks dropped (arXiv 2508.12880);
- **D: {RAAG_S2_GUIDER}**, RAAG's schedule as lambda plus S²'s term.

Under B, C and D the *Guidance Trace Plot* shows rho and w per step, with S²'s steps shaded.

20 steps is a middle ground: RAAG is made for few steps (set the shared schedule to 10 to see its
claim), S² for the model's usual count (28 in its paper). C and D cost 1.5× A and B (one extra pass).

## Model (one file: it holds the three text encoders and the VAE)
{model_links(SD35_CKPT)}

The pack's nodes: {GUIDERS_MENU}.
""", -500, 0, box_h=700)
    return wf


# -- KSampler graphs: the pack's MODEL patches -----------------------------------------------------------
PATCH_MENU = "Add Node → advanced → guidance (beside CFGZeroStar)"


def ksampler_prompts(wf: Workflow, clip: tuple[Node, int], x: float, prompt: str, latent_type: str,
                     **latent: Any) -> tuple[Node, Node, Node]:
    """Prompts and latent of a KSampler graph (KSampler holds the seed and the sampler itself)."""
    positive, negative, empty = prompts_and_latent(wf, clip, x, prompt, latent_type, **latent)
    wf.group("Prompt and size", [positive, negative, empty])
    return positive, negative, empty


def ksampler_branch(wf: Workflow, model: tuple[Node, int], vae: tuple[Node, int], prompts: tuple[Node, Node, Node],
                    patch_type: str, x: float, *, title: str, prefix: str, group: str, patch: dict[str, Any],
                    sampler: dict[str, Any], video_fps: float | None = None) -> dict[str, Node]:
    """MODEL patch → KSampler → VAEDecode → SaveImage / SaveWEBM."""
    positive, negative, latent = prompts
    patched = wf.add(patch_type, x, 0, title=title, colour=BLUE, **patch)
    wf.connect(model[0], model[1], patched, "model")
    sample = wf.add("KSampler", x + WIDTH + 60, 0, box_w=300, seed=SEED, **sampler)
    wf.connect(patched, 0, sample, "model")
    wf.connect(positive, 0, sample, "positive")
    wf.connect(negative, 0, sample, "negative")
    wf.connect(latent, 0, sample, "latent_image")
    decode = wf.below(sample, "VAEDecode")
    wf.connect(sample, 0, decode, "samples")
    wf.connect(vae[0], vae[1], decode, "vae")
    if video_fps is None:
        save = wf.add("SaveImage", sample.right + 60, 0, box_w=420, box_h=460, filename_prefix=prefix)
    else:
        save = wf.add("SaveWEBM", sample.right + 60, 0, box_w=420, box_h=460, filename_prefix=prefix, codec="vp9",
                      fps=video_fps, crf=32.0)
    wf.connect(decode, 0, save, "images")
    nodes = {"patch": patched, "sample": sample, "decode": decode, "save": save}
    wf.group(group, list(nodes.values()))
    return nodes


def raag_ksampler_sd35(infos) -> Workflow:
    wf = Workflow("raag_ksampler_sd35", infos)
    ckpt = wf.add("CheckpointLoaderSimple", 0, 0, box_w=LOADER_WIDTH, ckpt_name=SD35_CKPT)
    wf.group("Model", [ckpt])
    x = LOADER_WIDTH + 80
    prompts = ksampler_prompts(wf, (ckpt, "CLIP"), x, "a photo of an astronaut on a moon", "EmptySD3LatentImage",
                               width=1024, height=1024, batch_size=1)
    ksampler_branch(wf, (ckpt, "MODEL"), (ckpt, "VAE"), prompts, PACK_PREFIX + "RAAGModelPatch", x + 520,
                    title=RAAG_PATCH, prefix="raag_ksampler_sd35/raag_10_steps",
                    group="RAAG / MAMBO-G through KSampler: 10 steps",
                    patch={"w_max": 18.0, "alpha": 12.0, "ratio_mode": "per_sample", "start_percent": 0.0,
                           "end_percent": 1.0, "rescale": 0.0},
                    sampler={"steps": 10, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                             "denoise": 1.0})
    wf.note(f"""
# RAAG / MAMBO-G on SD3.5 Large with the stock KSampler

The same guidance as the *{RAAG_GUIDER}* workflow ("{workflow_files.TITLES['raag_sd35']}"), for graphs built
around **KSampler**: the *{RAAG_PATCH}* node patches the MODEL, any sampler node that takes a MODEL then
samples with RAAG. **w = 1 + (w_max − 1) · exp(−alpha · rho)** at every step, rho = ‖v_c − v_u‖ / ‖v_u‖;
w_max 18, alpha 12, rescale 0 (the authors' official SD3.5-Large setting), **10 steps**.

**The KSampler's cfg** is the plain CFG scale outside RAAG's step window: with the default window (the
whole schedule) it has no effect. The unconditional pass runs every step, also at cfg 1.

## Model (one file: it holds the three text encoders and the VAE)
{model_links(SD35_CKPT)}

## Tips
- Over-saturated or burnt? Lower **w_max** (8-12). Weak prompt adherence? Raise it or lower **alpha**.
- Do not also feed the patched MODEL to the pack's guider nodes (that stops with an error).
- The patch nodes: {PATCH_MENU}.
""", -500, 0, box_h=620)
    return wf


def s2_ksampler_wan21_t2v(infos) -> Workflow:
    wf = Workflow("s2_ksampler_wan21_t2v", infos)
    shift, clip, vae = wan21_models(wf)
    x = LOADER_WIDTH + 80
    prompts = ksampler_prompts(
        wf, (clip, 0), x,
        "a fox moving quickly in a beautiful winter scenery nature trees mountains daytime tracking camera",
        "EmptyHunyuanLatentVideo", width=832, height=480, length=33, batch_size=1)
    ksampler_branch(wf, (shift, 0), (vae, 0), prompts, PACK_PREFIX + "S2ModelPatch", x + 520,
                    title="S² (model patch)", prefix="s2_ksampler_wan21/s2", group="S² through KSampler: 30 steps",
                    patch={"omega": 0.25, "drop_ratio": 0.1, "start_percent": 0.0, "end_percent": 1.0},
                    sampler={"steps": 30, "cfg": 5.0, "sampler_name": "uni_pc", "scheduler": "simple",
                             "denoise": 1.0},
                    video_fps=16.0)
    wf.note(f"""
# S²-Guidance on Wan 2.1 text-to-video with the stock KSampler

The same guidance as the *S² Guider* workflow ("{workflow_files.TITLES['s2_wan21_t2v']}"), for graphs built around **KSampler**:
after the KSampler's CFG, one extra conditional pass per step through a sub-network with ~10% of Wan's
DiT blocks skipped at random, D = CFG − omega (D_sub − D_c).

- **The KSampler's cfg** is S²'s lambda (paper: 5 for Wan), omega 0.25.
- **Seed**: the KSampler's seed also seeds S²'s random block masks: the same seed gives the same video.

Cost: 3 model passes per step instead of 2.

## Models
{model_links("wan2.1_t2v_1.3B_fp16.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
             "wan_2.1_vae.safetensors")}

## Tips
- Save time with the window start_percent 0.1, end_percent 0.9: about a fifth fewer sub-network passes.
- The patch nodes: {PATCH_MENU}.
""", -500, 0, box_h=620)
    return wf


def raag_ksampler_wan22_t2v(infos) -> Workflow:
    """Wan 2.2 14B as ComfyUI's template runs it (two KSamplerAdvanced, one per expert), each expert patched."""
    wf = Workflow("raag_ksampler_wan22_t2v", infos)
    high_model, low_model, clip, vae = wan22_models(wf)
    x = LOADER_WIDTH + 80
    positive, negative, latent = ksampler_prompts(wf, (clip, 0), x, WAN_PROMPT, "EmptyHunyuanLatentVideo",
                                                  width=832, height=480, length=33, batch_size=1)
    x_patch = x + 520
    x_sample = x_patch + WIDTH + 60
    x_save = x_sample + WIDTH + 60
    x_trace = x_save + 420 + 60
    common = {"noise_seed": SEED, "steps": WAN22_STEPS, "cfg": WAN22_CFG, "sampler_name": "euler",
              "scheduler": "simple"}
    rows = (("High-noise expert", high_model, {"add_noise": "enable", "start_at_step": 0,
                                               "end_at_step": WAN22_SWITCH, "return_with_leftover_noise": "enable"}),
            ("Low-noise expert", low_model, {"add_noise": "disable", "start_at_step": WAN22_SWITCH,
                                             "end_at_step": 10000, "return_with_leftover_noise": "disable"}))
    y, previous = 0, None
    for expert, model, split in rows:
        patched = wf.add(PACK_PREFIX + "RAAGModelPatch", x_patch, y, title=RAAG_PATCH, colour=BLUE, **WAN22_RAAG)
        wf.connect(model, 0, patched, "model")
        sample = wf.add("KSamplerAdvanced", x_sample, y, box_w=300, title=f"KSamplerAdvanced ({expert.lower()})",
                        **common, **split)
        wf.connect(patched, 0, sample, "model")
        wf.connect(positive, 0, sample, "positive")
        wf.connect(negative, 0, sample, "negative")
        wf.connect(previous or latent, 0, sample, "latent_image")
        members = [patched, sample]
        if previous is not None:
            members += decode_to_webm(wf, sample, 0, vae, x_save, y, "raag_ksampler_wan22/raag")
        members += wan22_trace(wf, patched, sample, x_trace, y, expert.lower())
        first, last = split["start_at_step"], min(split["end_at_step"], WAN22_STEPS)
        wf.group(f"{expert}: {RAAG_PATCH} → KSamplerAdvanced, steps {first}-{last}", members)
        previous = sample
        y = max(n.bottom for n in members) + 140
    wf.note(f"""
# RAAG / MAMBO-G on Wan 2.2 14B text-to-video with two KSamplerAdvanced

Wan 2.2 14B samples with two models, as in ComfyUI's Wan 2.2 14B template: the **high-noise expert**
takes the first steps, the **low-noise expert** the rest. Each goes through its own *{RAAG_PATCH}*,
then two **KSamplerAdvanced** share the {WAN22_STEPS} steps:
- **top**: the high-noise expert, add_noise enable, steps 0-{WAN22_SWITCH}, return_with_leftover_noise enable;
- **bottom**: the low-noise expert from the top one's latent, add_noise disable, steps {WAN22_SWITCH}-end,
  the same seed.
The same job on split sigmas with guider nodes: "{workflow_files.TITLES['raag_wan22_t2v']}".

Settings (*ours*: the authors publish no Wan settings; they report 2× fewer steps on Wan 2.1 14B):
**w_max {WAN22_RAAG['w_max']:g}, alpha {WAN22_RAAG['alpha']:g}, rescale {WAN22_RAAG['rescale']:g}, {WAN22_STEPS} steps** (the template: 20 steps
split at 10, CFG 3.5, euler / simple, shift 8). **The KSamplerAdvanced's cfg** ({WAN22_CFG:g}, the template's)
is only used outside RAAG's step window: with the default window it has no effect. 832×480, 33 frames at
16 fps.

A *Guidance Trace Plot* on each expert's patched MODEL shows rho and w of the steps that expert ran.

## Models
{model_links(WAN22_HIGH, WAN22_LOW, "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan_2.1_vae.safetensors")}

## Tips
- More steps: set steps in both samplers and move the switch (end_at_step of the top one = start_at_step
  of the bottom one) to about half-way.
- Over-saturated? Lower w_max (6) or raise **rescale**. Longer clips: the latent's length (81 = 5 s).
- The patch nodes: {PATCH_MENU}.
""", -500, 0, box_h=900)
    return wf


def demo_ksampler(infos) -> Workflow:
    """The embedded demo model in plain KSampler graphs, one per model patch (runs on any CPU)."""
    wf = Workflow("demo_ksampler", infos)
    model = wf.add(PACK_PREFIX + "DemoModelLoader", 0, 0, box_w=LOADER_WIDTH)
    prompts = wf.below(model, PACK_PREFIX + "DemoPrompt", box_h=220, title="Prompts (one image each)", colour=GREEN,
                       prompts="red 7 on blue\nyellow 3 on black\nwhite 0 on purple")
    empty = wf.below(prompts, PACK_PREFIX + "DemoPrompt", box_h=120, title="Unconditional (empty prompt)",
                     colour=RED, prompts="")
    wf.group("Demo model and prompts", [model, prompts, empty])
    x, y = LOADER_WIDTH + 80, 0
    branches = [
        ("RAAGModelPatch", RAAG_PATCH, {"w_max": 8.0, "alpha": 4.0, "ratio_mode": "per_sample",
                                        "start_percent": 0.0, "end_percent": 1.0, "rescale": 0.0}),
        ("S2ModelPatch", "S² (model patch)", {"omega": 0.25, "drop_ratio": 0.1, "start_percent": 0.0,
                                              "end_percent": 1.0}),
        ("RAAGS2ModelPatch", RAAG_S2_PATCH, {"w_max": 8.0, "alpha": 4.0, "ratio_mode": "per_sample",
                                             "omega": 0.25, "drop_ratio": 0.1, "start_percent": 0.0,
                                             "end_percent": 1.0, "rescale": 0.0}),
    ]
    for patch_type, title, widgets in branches:
        patched = wf.add(PACK_PREFIX + patch_type, x, y, title=title, colour=BLUE, **widgets)
        wf.connect(model, 0, patched, "model")
        sample = wf.add("KSampler", x + WIDTH + 60, y, box_w=300, seed=SEED, steps=10, cfg=4.0, sampler_name="euler",
                        scheduler="simple", denoise=1.0)
        wf.connect(patched, 0, sample, "model")
        wf.connect(prompts, 0, sample, "positive")
        wf.connect(empty, 0, sample, "negative")
        wf.connect(prompts, 1, sample, "latent_image")
        decode = wf.add(PACK_PREFIX + "DemoDecode", sample.right + 60, y, upscale=8)
        wf.connect(sample, 0, decode, "samples")
        save = wf.below(decode, "SaveImage", box_h=300, filename_prefix=f"demo_ksampler/{patch_type}")
        wf.connect(decode, 0, save, "images")
        plot = wf.add(PACK_PREFIX + "TracePlot", decode.right + 60, y, title=f"{title}: trace")
        wf.connect(patched, 0, plot, "guider")
        wf.connect(sample, 0, plot, "latent")
        plot_save = wf.below(plot, "SaveImage", box_w=420, box_h=340,
                             filename_prefix=f"demo_ksampler/{patch_type}_trace")
        wf.connect(plot, 0, plot_save, "images")
        members = [patched, sample, decode, save, plot, plot_save]
        wf.group(f"{title} through KSampler: 10 steps", members)
        y = max(n.bottom for n in members) + 140
    wf.note(f"""
# The demo model through KSampler

The pack's embedded demo model (no download) in the graph most workflows use: a MODEL patch between the
model and a stock **KSampler**. Each row patches the same model with one method and samples the same
prompts with the same seed; press **Run** and compare the rows.

- **{RAAG_PATCH}**: the CFG scale of every step follows the ratio rho (w_max 8, alpha 4 suit
  this small model; the paper's 18 / 12 are for SD3.5-Large). KSampler's `cfg` is only used outside
  RAAG's window.
- **S² (model patch)**: KSampler's `cfg` is lambda; S² adds one extra conditional pass per step.
  Its random block masks come from KSampler's `seed`: the same seed, the same picture.
- **{RAAG_S2_PATCH}**: both: RAAG's scale every step (KSampler's `cfg` has no effect) plus S²'s term.
- **Guidance Trace Plot** (right): the patched MODEL and KSampler's output feed it; it draws what that
  KSampler run did (RAAG's ratio and scale per image, the steps that ran S²'s extra pass).
- Change the prompts in the green node: one per line, `[colour] [digit] [on colour]`.
""", -500, 0, box_h=580)
    return wf


BUILDERS = [demo_ksampler, raag_sd35, s2_sd35, raag_s2_flux, raag_qwen_image, s2_wan21_t2v, ab_compare_sd35, raag_ksampler_sd35,
            s2_ksampler_wan21_t2v, raag_lumina2, raag_wan22_t2v, raag_ksampler_wan22_t2v]


def render(wf: Workflow) -> str:
    return json.dumps(wf.to_json(), indent=1, ensure_ascii=False) + "\n"


def _without_unlinked_outputs(text: str) -> dict[str, Any]:
    graph = json.loads(text)
    for node in graph.get("nodes", []):
        node["outputs"] = [slot for slot in node.get("outputs", []) if slot.get("links")]
    return graph


def is_current(path: Path, text: str) -> bool:
    """Whether the committed ``path`` is what this script writes (``text``) on the running ComfyUI.

    The files are written on the default runtime (the oldest supported ComfyUI). Newer releases give
    some core nodes extra output slots (SaveImage and PreviewImage pass their images on); unlinked
    slots are not part of a workflow's meaning (the frontend builds them from the node definitions
    when it loads the file), so they are left out of the comparison. Everything else must match."""
    if not path.is_file():
        return False
    committed = path.read_text(encoding="utf-8")
    return committed == text or _without_unlinked_outputs(committed) == _without_unlinked_outputs(text)


def build_all(infos: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """File name -> the text this script writes for it."""
    infos = infos or load_node_infos()
    return {workflow_files.path(builder.__name__).name: render(builder(infos)) for builder in BUILDERS}


THUMBNAIL_SIZE = (512, 384)
LINK_COLOURS = {"MODEL": "#b39ddb", "CONDITIONING": "#ffa931", "LATENT": "#ff9cf9", "GUIDER": "#66ffff",
                "SIGMAS": "#cdffcd", "IMAGE": "#64b5f6", "VAE": "#ff6e6e", "CLIP": "#ffd500"}


def thumbnail(graph: dict[str, Any], title: str):
    """The template browser's picture of a workflow: its title over a drawing of the graph (groups,
    nodes, links coloured by type as in the frontend, this pack's nodes highlighted). Pillow only."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = THUMBNAIL_SIZE
    image = Image.new("RGB", THUMBNAIL_SIZE, "#202020")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=22)
    words, lines = title.split(), [""]
    for word in words:  # wrap the title to the picture's width
        trial = f"{lines[-1]} {word}".strip()
        if draw.textlength(trial, font=font) > width - 32 and lines[-1]:
            lines.append(word)
        else:
            lines[-1] = trial
    for i, line in enumerate(lines):
        draw.text((16, 12 + 28 * i), line, fill="#f0f0f0", font=font)
    top = 24 + 28 * len(lines)
    boxes = [n for n in graph["nodes"] if n["type"] not in FRONTEND_ONLY]
    rects = [(*n["pos"], n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1]) for n in boxes]
    rects += [(g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2],
               g["bounding"][1] + g["bounding"][3]) for g in graph.get("groups", [])]
    x0, y0 = min(r[0] for r in rects), min(r[1] for r in rects)
    x1, y1 = max(r[2] for r in rects), max(r[3] for r in rects)
    scale = min((width - 32) / (x1 - x0), (height - top - 16) / (y1 - y0))

    def at(x: float, y: float) -> tuple[float, float]:
        return 16 + (x - x0) * scale, top + (y - y0) * scale

    for g in graph.get("groups", []):
        bx, by, bw, bh = g["bounding"]
        draw.rectangle((*at(bx, by), *at(bx + bw, by + bh)), outline=g.get("color", "#555555"), width=2)
    by_id = {n["id"]: n for n in boxes}
    for _link, origin, _, target, _, kind in graph["links"]:
        if origin in by_id and target in by_id:
            a, b = by_id[origin], by_id[target]
            start = at(a["pos"][0] + a["size"][0], a["pos"][1] + 15)
            end = at(b["pos"][0], b["pos"][1] + 15)
            draw.line((*start, *end), fill=LINK_COLOURS.get(kind, "#9e9e9e"), width=2)
    for n in boxes:
        ours = n["type"].startswith(PACK_PREFIX)
        x, y = n["pos"]
        draw.rounded_rectangle((*at(x, y), *at(x + n["size"][0], y + n["size"][1])), radius=4,
                               fill="#2f6f4f" if ours else "#353535", outline="#8fd19e" if ours else "#666666",
                               width=2)
    return image


def write_thumbnail(path: Path, text: str) -> None:
    thumbnail(json.loads(text), path.stem).save(path, quality=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build_all().items():
        path = WORKFLOWS / name
        picture = path.with_suffix(".jpg")
        if not picture.is_file():
            stale.append(picture.name)
            if not args.check:
                write_thumbnail(picture, text)
        if is_current(path, text):
            continue
        stale.append(name)
        if not args.check:
            WORKFLOWS.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            write_thumbnail(picture, text)
    verb = "out of date" if args.check else "written"
    print(f"{len(stale)} workflow file(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
