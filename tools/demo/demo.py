"""`make demo`: runs the shipped demo workflow (workflows/Demo 1 - ....json) in a real ComfyUI server (this pack
installed, nothing else) and lays its saved images out as one grid.

    OMP_NUM_THREADS=1 .venv/bin/python tools/demo/demo.py [--thumbnail]

Rows: the prompts of the workflow's "Prompts" node (one per line); columns: the workflow's SaveImage
nodes (no guidance at 30 steps, CFG at 10 and 30, RAAG, S² and RAAG + S² at 10), all from the same
noise. Every cell is an image the graph saved. Also copies the guidance trace plots the graph saved and
prints each column's accuracy by the benchmark's measure (demo_model/measure.py). --thumbnail also
writes the grid as its thumbnail (the same name, .jpg).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import comfy_env  # noqa: E402

comfy_env.load_pack()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from comfy_server import ComfyServer  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from raag_s2_guidance.demo_model import SPEC, measure  # noqa: E402
from workflow_api import to_api  # noqa: E402
from workflow_files import path as workflow_path  # noqa: E402

WORKFLOW = workflow_path("demo_tiny")  # "Demo 1 - ..." in the template browser
OUT = REPO / "output" / "demo"
PROMPT_NODE_TITLE = "Prompts (one grid row each)"


def saved_images(entry: dict, prompt: dict, server: ComfyServer) -> dict[str, tuple[str, list[Path]]]:
    """filename_prefix -> (column title, saved files in batch order) for every SaveImage node."""
    found = {}
    for node_id, outputs in entry["outputs"].items():
        node = prompt[node_id]
        if node["class_type"] != "SaveImage" or "images" not in outputs:
            continue
        title = node["_meta"]["title"].removeprefix("Save trace: ").removeprefix("Save: ")
        found[node["inputs"]["filename_prefix"]] = (title, [server.output_file(ref) for ref in outputs["images"]])
    return found


def to_pixels(path: Path) -> torch.Tensor:
    """A saved (nearest-upscaled) image back to its 8x8 pixels: the centre of every square."""
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    step = image.shape[0] // SPEC.image_size
    centre = image[step // 2::step, step // 2::step][: SPEC.image_size, : SPEC.image_size]
    return torch.from_numpy(centre.copy()).permute(2, 0, 1)


def grid(columns: list[tuple[str, list[Path]]], prompts: list[str], scores: list) -> Image.Image:
    cell = Image.open(columns[0][1][0]).size[0]
    pad, label_w, head_h, foot_h = 6, 120, 34, 30
    width = label_w + len(columns) * (cell + pad) + pad
    height = head_h + len(prompts) * (cell + pad) + pad + foot_h
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, (title, files) in enumerate(columns):
        x = label_w + pad + c * (cell + pad)
        words = title.replace("²", "2").split(", ")
        for i, part in enumerate(words[:2]):
            draw.text((x, 4 + 13 * i), part, fill="black", font=font)
        for r, file in enumerate(files):
            canvas.paste(Image.open(file).convert("RGB"), (x, head_h + pad + r * (cell + pad)))
        s = scores[c]
        draw.text((x, height - foot_h + 2), f"attr {s.attributes:.0%}", fill="black", font=font)
        draw.text((x, height - foot_h + 15), f"digit {s.digit:.0%}", fill="black", font=font)
    for r, text in enumerate(prompts):
        draw.text((6, head_h + pad + r * (cell + pad) + cell // 2 - 6), text, fill="black", font=font)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thumbnail", action="store_true", help="also write the workflow's thumbnail (.jpg)")
    args = parser.parse_args()
    workflow = json.loads(WORKFLOW.read_text())
    prompt_node = next(n for n in workflow["nodes"] if n.get("title") == PROMPT_NODE_TITLE)
    prompts = [line.strip() for line in prompt_node["widgets_values"][0].splitlines() if line.strip()]
    parsed = [SPEC.parse(p) for p in prompts]
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="comfy_demo_") as base:
        server = ComfyServer(base)
        print(f"Starting ComfyUI {comfy_env.comfy_version()} from {comfy_env.comfy_root()} with this pack ...")
        with server:
            print(f"Server ready at {server.url} after {server.startup_seconds:.1f} s; running {WORKFLOW.name}")
            api = to_api(workflow, server.object_info())
            started = time.monotonic()
            entry = server.run(api, timeout=900)
            if entry["status"]["status_str"] != "success":
                sys.exit(f"The workflow failed: {json.dumps(entry['status']['messages'])}\n{server.log_tail()}")
            print(f"The graph ran in {time.monotonic() - started:.1f} s")
            saved = saved_images(entry, api, server)
            columns = [saved[k] for k in sorted(saved, key=lambda k: list(api).index(
                next(i for i, n in api.items() if n["inputs"].get("filename_prefix") == k)))
                       if not k.startswith("demo/trace_")]
            scores = [measure.score(torch.stack([to_pixels(f) for f in files]), parsed) for _, files in columns]
            picture = grid(columns, prompts, scores)
            picture.save(OUT / "grid.png")
            if args.thumbnail:
                picture.save(WORKFLOW.with_suffix(".jpg"), quality=92)
            traces = []
            for prefix, (title, files) in saved.items():
                if prefix.startswith("demo/trace_"):
                    target = OUT / f"{prefix.removeprefix('demo/')}.png"
                    shutil.copyfile(files[0], target)
                    traces.append(target)
    print(f"\nAccuracy of each column on its {len(prompts)} prompts (attributes = digit, foreground, background):")
    for (title, _), s in zip(columns, scores):
        print(f"  {title:28s} attributes {s.attributes:6.1%}   digit {s.digit:6.1%}   colours {s.colours:6.1%}")
    print(f"\nGrid:   {(OUT / 'grid.png').relative_to(REPO)}")
    for t in sorted(traces):
        print(f"Trace:  {t.relative_to(REPO)}")
    if args.thumbnail:
        print(f"Thumbnail: {WORKFLOW.with_suffix('.jpg').relative_to(REPO)}")


if __name__ == "__main__":
    main()
