"""Writes the subgraph blueprints in ``subgraphs/``: one node a user drops instead of five.

    .venv/bin/python tools/generate/make_subgraphs.py           # (re)write them
    .venv/bin/python tools/generate/make_subgraphs.py --check   # exit 1 if a file differs from what it would write

ComfyUI serves every ``custom_nodes/<pack>/subgraphs/*.json`` at ``GET /global_subgraphs`` (core's
``app/subgraph_manager.py``) and the frontend lists each one as a node named after the file, under
*Subgraph Blueprints* in the node library. A file is a UI-format workflow (version 0.4) whose root graph
holds one node: an instance of the single subgraph of ``definitions.subgraphs``.

- ``RAAG sampler``: RAAG / MAMBO-G Guider (w_max 18, alpha 12, rescale 0: the official SD3.5 setting) +
  BasicScheduler (normal, 10 steps: the RAAG paper's setting) + KSamplerSelect (euler) + RandomNoise →
  SamplerCustomAdvanced;
- ``S2 sampler``: the same with the S² Guider (lambda 7.5, omega 0.25, drop_ratio 0.1, 28 steps: the
  S² paper's SD3 setting).

Each takes model, positive, negative and latent_image, shows its knobs as widgets (seed with its
control after generate, steps and the guider's main values; the other widgets are inside, one
double-click away) and returns the sampled LATENT and the GUIDER (for the Guidance Trace Plot).

The knobs are inner widgets promoted onto the blueprint node (``properties.proxyWidgets``), not subgraph
inputs. Every frontend of the supported range shows promoted inner widgets, and newer ones (1.47 on)
turn them into their own widget inputs when the node loads. A widget fed by a subgraph input is
drawn in no way that all of them share: frontends 1.38-1.39 drop the node's promoted widgets when one
names an inner widget that a subgraph input feeds (the node then shows bare input sockets), and
1.32-1.39 draw such an input's own widget without the seed's control after generate, so the seed
never changes.

Sockets, widget order and values come from the node definitions of the real ComfyUI (imported
in-process) and of this pack, as in ``make_workflows.py``; ids are fixed, so the output is
deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SUBGRAPHS = REPO / "subgraphs"
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

from make_workflows import (  # noqa: E402
    BLUE,
    HEIGHTS,
    PACK_CNR_ID,
    PACK_PREFIX,
    combo_options,
    input_specs,
    is_widget,
    load_node_infos,
    lowest_point,
)

INPUT_NODE, OUTPUT_NODE = -10, -20  # the ids LiteGraph gives a subgraph's input and output boxes
CATEGORY = "Sampling/RAAG + S² Guidance"  # newer frontends: "Subgraph Blueprints/<category>"
WIDTH = 300
GAP = 60  # vertical room between stacked nodes (their title bars included)


@dataclass
class Inner:
    """One node inside the subgraph."""

    id: int
    type: str
    pos: tuple[float, float]
    widgets: dict[str, Any]
    title: str | None = None
    colour: tuple[str, str] | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> tuple[float, float]:
        return (WIDTH, HEIGHTS.get(self.type, 106))

    @property
    def bottom(self) -> float:
        """The lowest point in either renderer (Nodes 2.0 draws some nodes taller)."""
        return lowest_point(self.type, self.pos[1], self.size[1])


@dataclass
class Port:
    """A subgraph input or output: a slot of the blueprint node."""

    name: str
    type: str
    link_ids: list[int] = field(default_factory=list)


class Blueprint:
    def __init__(self, name: str, description: str, aliases: list[str], infos: dict[str, dict[str, Any]]):
        self.name = name
        self.description = description
        self.aliases = aliases
        self.infos = infos
        self.nodes: list[Inner] = []
        self.links: list[dict[str, Any]] = []
        self.inputs: list[Port] = []
        self.outputs: list[Port] = []
        self.shown: list[tuple[Inner, str]] = []  # inner widgets promoted onto the blueprint node

    def uid(self, what: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PACK_CNR_ID}/subgraphs/{self.name}/{what}"))

    # nodes
    def add(self, type_: str, x: float, y: float, *, title: str | None = None,
            colour: tuple[str, str] | None = None, control: str = "fixed", **given: Any) -> Inner:
        node = Inner(len(self.nodes) + 1, type_, (x, y), {}, title, colour)
        sockets, widget_inputs = [], []
        for name, spec, optional in input_specs(self.infos[type_]):
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            entry: dict[str, Any] = {"localized_name": name, "name": name}
            if optional:
                entry["shape"] = 7
            entry["type"] = kind
            if is_widget(spec):
                entry["widget"] = {"name": name}
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                value = given.pop(name) if name in given else default(type_, name, spec, options)
                check(type_, name, spec, options, value)
                node.widgets[name] = value
                if options.get("control_after_generate"):
                    node.widgets[f"{name}.control_after_generate"] = control
                widget_inputs.append(entry)
            else:
                sockets.append(entry)
            entry["link"] = None
        if given:
            raise ValueError(f"{self.name}: {type_} has no widget(s) {sorted(given)}")
        node.inputs = sockets + widget_inputs
        info = self.infos[type_]
        names = info.get("output_name") or info["output"]
        node.outputs = [{"localized_name": n, "name": n, "type": t, "links": []} for n, t in zip(names, info["output"])]
        self.nodes.append(node)
        return node

    # links
    def _link(self, origin: int, slot: int, target: int, target_slot: int, kind: str) -> int:
        link_id = len(self.links) + 1
        self.links.append({"id": link_id, "origin_id": origin, "origin_slot": slot, "target_id": target,
                           "target_slot": target_slot, "type": kind})
        return link_id

    def _target(self, node: Inner, input_name: str) -> tuple[int, dict[str, Any]]:
        slot = [i["name"] for i in node.inputs].index(input_name)
        entry = node.inputs[slot]
        if entry["link"] is not None:
            raise ValueError(f"{self.name}: {node.type}.{input_name} is already linked")
        return slot, entry

    def connect(self, source: Inner, output: str, target: Inner, input_name: str) -> None:
        slot = [o["name"] for o in source.outputs].index(output)
        kind = source.outputs[slot]["type"]
        target_slot, entry = self._target(target, input_name)
        if entry["type"] != kind:
            raise ValueError(f"{self.name}: {source.type}.{output} is {kind}, {target.type}.{input_name} wants "
                             f"{entry['type']}")
        link_id = self._link(source.id, slot, target.id, target_slot, kind)
        entry["link"] = link_id
        source.outputs[slot]["links"].append(link_id)

    def expose(self, name: str, *targets: tuple[Inner, str]) -> None:
        """A subgraph input ``name`` (a socket of the blueprint node) feeding the sockets ``targets``."""
        entries = [self._target(node, input_name)[1] for node, input_name in targets]
        kinds = {entry["type"] for entry in entries}
        if len(kinds) != 1:
            raise ValueError(f"{self.name}: input {name} feeds different types {sorted(kinds)}")
        if any("widget" in entry for entry in entries):
            raise ValueError(f"{self.name}: input {name} feeds a widget: promote the widget instead")
        port = Port(name, kinds.pop())
        slot = len(self.inputs)
        self.inputs.append(port)
        for (node, input_name), entry in zip(targets, entries):
            target_slot = [i["name"] for i in node.inputs].index(input_name)
            link_id = self._link(INPUT_NODE, slot, node.id, target_slot, port.type)
            entry["link"] = link_id
            port.link_ids.append(link_id)

    def promote(self, node: Inner, widget: str) -> None:
        """Shows the inner widget ``widget`` of ``node`` on the blueprint node (its value stays the inner
        widget's)."""
        if widget not in node.widgets:
            raise ValueError(f"{self.name}: {node.type} has no widget {widget}")
        self.shown.append((node, widget))

    def output(self, name: str, source: Inner, output: str) -> None:
        slot = [o["name"] for o in source.outputs].index(output)
        kind = source.outputs[slot]["type"]
        port = Port(name, kind)
        link_id = self._link(source.id, slot, OUTPUT_NODE, len(self.outputs), kind)
        source.outputs[slot]["links"].append(link_id)
        port.link_ids.append(link_id)
        self.outputs.append(port)

    # output
    def _order(self) -> dict[int, int]:
        parents = {n.id: {link["origin_id"] for link in self.links if link["target_id"] == n.id
                          and link["origin_id"] > 0} for n in self.nodes}
        order: dict[int, int] = {}
        while len(order) < len(self.nodes):
            ready = [n.id for n in self.nodes if n.id not in order and parents[n.id] <= set(order)]
            for node_id in ready:
                order[node_id] = len(order)
        return order

    def _bounds(self) -> tuple[float, float, float, float]:
        return (min(n.pos[0] for n in self.nodes), min(n.pos[1] for n in self.nodes),
                max(n.pos[0] + n.size[0] for n in self.nodes), max(n.pos[1] + n.size[1] for n in self.nodes))

    def _ports(self, ports: list[Port], x: float, y: float) -> list[dict[str, Any]]:
        found = []
        for i, port in enumerate(ports):
            entry: dict[str, Any] = {"id": self.uid(f"{'in' if ports is self.inputs else 'out'}/{port.name}"),
                                     "name": port.name, "type": port.type, "linkIds": port.link_ids,
                                     "localized_name": port.name}
            entry["pos"] = [x, y + 20 * i]
            found.append(entry)
        return found

    def _inner_json(self) -> list[dict[str, Any]]:
        order = self._order()
        nodes = []
        for node in self.nodes:
            entry: dict[str, Any] = {"id": node.id, "type": node.type, "pos": list(node.pos), "size": list(node.size),
                                     "flags": {}, "order": order[node.id], "mode": 0, "inputs": node.inputs,
                                     "outputs": node.outputs}
            if node.title:
                entry["title"] = node.title
            entry["properties"] = {"Node name for S&R": node.type,
                                   "cnr_id": PACK_CNR_ID if node.type.startswith(PACK_PREFIX) else "comfy-core"}
            entry["widgets_values"] = list(node.widgets.values())
            if node.colour:
                entry["color"], entry["bgcolor"] = node.colour
            nodes.append(entry)
        return nodes

    def promoted(self) -> list[list[str]]:
        """``proxyWidgets`` of the blueprint node: [inner node id, widget name] of each widget it shows
        (a seed's "control after generate" choice too)."""
        found = []
        for node, widget in self.shown:
            found.append([str(node.id), widget])
            if f"{widget}.control_after_generate" in node.widgets:
                found.append([str(node.id), "control_after_generate"])
        return found

    def to_json(self) -> dict[str, Any]:
        left, top, right, bottom = self._bounds()
        rows_in, rows_out = len(self.inputs), len(self.outputs)
        in_box = [left - 240, top, 120, 40 + 20 * rows_in]
        out_box = [right + 120, top, 120, 40 + 20 * rows_out]
        subgraph_id = self.uid("definition")
        instance_id = len(self.nodes) + 1
        instance_inputs = []
        for port in self.inputs:
            instance_inputs.append({"localized_name": port.name, "name": port.name, "type": port.type,
                                    "link": None})
        promoted = self.promoted()
        instance = {
            "id": instance_id, "type": subgraph_id, "pos": [0, 0],
            "size": [WIDTH, 26 + 24 * len(promoted) + 20 * max(rows_in, rows_out)],
            "flags": {}, "order": 0, "mode": 0, "inputs": instance_inputs,
            "outputs": [{"localized_name": p.name, "name": p.name, "type": p.type, "links": []}
                        for p in self.outputs],
            "title": self.name,
            "properties": {"proxyWidgets": promoted, "cnr_id": PACK_CNR_ID},
            "widgets_values": [],
        }
        definition = {
            "id": subgraph_id, "version": 1,
            "state": {"lastGroupId": 0, "lastNodeId": len(self.nodes), "lastLinkId": len(self.links),
                      "lastRerouteId": 0},
            "revision": 0, "config": {}, "name": self.name,
            "inputNode": {"id": INPUT_NODE, "bounding": in_box},
            "outputNode": {"id": OUTPUT_NODE, "bounding": out_box},
            "inputs": self._ports(self.inputs, in_box[0] + in_box[2] - 20, in_box[1] + 20),
            "outputs": self._ports(self.outputs, out_box[0] + 20, out_box[1] + 20),
            "widgets": [], "nodes": self._inner_json(), "groups": [], "links": self.links,
            "extra": {}, "category": CATEGORY, "description": self.description,
        }
        return {
            "id": self.uid("workflow"), "revision": 0, "last_node_id": instance_id, "last_link_id": 0,
            "nodes": [instance], "links": [], "groups": [], "config": {},
            "extra": {"BlueprintDescription": self.description, "BlueprintSearchAliases": self.aliases},
            "version": 0.4, "definitions": {"subgraphs": [definition]},
        }


def default(type_: str, name: str, spec: tuple, options: dict) -> Any:
    if "default" in options:
        return options["default"]
    choices = combo_options(spec)
    if choices:
        return choices[0]
    raise ValueError(f"{type_}.{name} needs a value")


def check(type_: str, name: str, spec: tuple, options: dict, value: Any) -> None:
    where = f"{type_}.{name} = {value!r}"
    choices = combo_options(spec)
    if choices is not None and value not in choices:
        raise ValueError(f"{where}: not one of {choices}")
    if spec[0] in ("INT", "FLOAT"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{where}: not a number")
        if not options.get("min", value) <= value <= options.get("max", value):
            raise ValueError(f"{where}: outside [{options.get('min')}, {options.get('max')}]")


# -- the blueprints -----------------------------------------------------------------------------------
SEED = 42  # the official RAAG example's seed (the blueprint node randomizes it after each run)


def sampler_blueprint(name: str, description: str, aliases: list[str], infos: dict[str, dict[str, Any]], *,
                      guider_type: str, guider_title: str, guider: dict[str, Any], knobs: list[str],
                      steps: int) -> Blueprint:
    """guider + BasicScheduler + KSamplerSelect + RandomNoise → SamplerCustomAdvanced."""
    bp = Blueprint(name, description, aliases, infos)
    x1 = WIDTH + 80
    noise = bp.add("RandomNoise", 0, 0, title="Seed", control="randomize", noise_seed=SEED)
    pick = bp.add("KSamplerSelect", 0, noise.bottom + GAP, sampler_name="euler")
    sigmas = bp.add("BasicScheduler", 0, pick.bottom + GAP, title=f"Schedule ({steps} steps)",
                    scheduler="normal", steps=steps, denoise=1.0)
    guide = bp.add(guider_type, x1, 0, title=guider_title, colour=BLUE, **guider)
    sample = bp.add("SamplerCustomAdvanced", 2 * x1, 0)
    bp.expose("model", (guide, "model"), (sigmas, "model"))
    bp.expose("positive", (guide, "positive"))
    bp.expose("negative", (guide, "negative"))
    bp.expose("latent_image", (sample, "latent_image"))
    bp.promote(noise, "noise_seed")
    bp.promote(sigmas, "steps")
    for knob in knobs:
        bp.promote(guide, knob)
    for source, socket in ((noise, "noise"), (guide, "guider"), (pick, "sampler"), (sigmas, "sigmas")):
        bp.connect(source, source.outputs[0]["name"], sample, socket)
    bp.output("LATENT", sample, "output")
    bp.output("GUIDER", guide, "GUIDER")
    return bp


def raag_sampler(infos) -> Blueprint:
    return sampler_blueprint(
        "RAAG sampler",
        "RAAG / MAMBO-G (ratio-aware adaptive guidance, arXiv 2508.03442; MAMBO-G since the paper's v4) in one "
        "node: RAAG / MAMBO-G Guider, BasicScheduler (normal, 10 steps: the paper's setting), euler and a seed "
        "into SamplerCustomAdvanced. w = 1 + (w_max - 1) exp(-alpha rho); w_max 18, alpha 12, rescale 0: the "
        "authors' official SD3.5 Large setting (their Qwen-Image one: w_max 10, alpha 8, rescale 1). "
        "Outputs the sampled LATENT and the GUIDER (for the Guidance Trace Plot).",
        ["RAAG", "MAMBO-G", "MAMBO", "adaptive cfg", "ratio aware adaptive guidance", "magnitude-aware guidance",
         "few step sampler"], infos,
        guider_type=PACK_PREFIX + "RAAGGuider", guider_title="RAAG / MAMBO-G Guider",
        guider={"w_max": 18.0, "alpha": 12.0, "ratio_mode": "per_sample", "start_percent": 0.0,
                "end_percent": 1.0, "cfg": 5.0, "rescale": 0.0},
        knobs=["w_max", "alpha", "rescale"], steps=10)


def s2_sampler(infos) -> Blueprint:
    return sampler_blueprint(
        "S2 sampler",
        "S²-Guidance (stochastic self-guidance, arXiv 2508.12880) in one node: S² Guider, BasicScheduler "
        "(normal, 28 steps), euler and a seed into SamplerCustomAdvanced. cfg is lambda (7.5 for SD3 / "
        "SD3.5, 5 for Wan), omega 0.25, drop_ratio 0.1; one extra conditional pass per step. Outputs the "
        "sampled LATENT and the GUIDER (for the Guidance Trace Plot).",
        ["S2", "S²", "S2-Guidance", "stochastic self guidance", "self guidance sampler"], infos,
        guider_type=PACK_PREFIX + "S2Guider", guider_title="S² Guider",
        guider={"cfg": 7.5, "omega": 0.25, "drop_ratio": 0.1, "start_percent": 0.0, "end_percent": 1.0},
        knobs=["cfg", "omega", "drop_ratio"], steps=28)


BUILDERS = [raag_sampler, s2_sampler]


def render(bp: Blueprint) -> str:
    return json.dumps(bp.to_json(), indent=1, ensure_ascii=False) + "\n"


def build_all(infos: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """File name -> the text this script writes for it."""
    infos = infos or load_node_infos()
    built = {}
    for builder in BUILDERS:
        bp = builder(infos)
        built[f"{bp.name}.json"] = render(bp)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build_all().items():
        path = SUBGRAPHS / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            SUBGRAPHS.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    print(f"{len(stale)} subgraph file(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
