"""Interim demo: the tiny SD3 graph with the RAAG Guider node, end to end through a real ComfyUI server; writes a PNG of the latent.

    OMP_NUM_THREADS=1 .venv/bin/python tools/demo.py

The tiny model has random weights and no VAE, so the picture shows the first three latent channels
(each min-max normalised, upscaled 16x). A trained demo model will replace this placeholder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tools"), str(REPO / "tests")]

import comfy_env  # noqa: E402

comfy_env.bootstrap()  # tiny_models builds the checkpoint with ComfyUI's own classes

import tiny_models  # noqa: E402
import torch  # noqa: E402
from comfy_server import ComfyServer  # noqa: E402
from graphs import SAVE, TINY_SD3, build_graph, guider  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def latent_to_image(latent: torch.Tensor, scale: int = 16) -> Image.Image:
    rgb = latent[0, :3].float()
    lo = rgb.amin(dim=(1, 2), keepdim=True)
    hi = rgb.amax(dim=(1, 2), keepdim=True)
    rgb = ((rgb - lo) / (hi - lo).clamp_min(1e-8) * 255).round().to(torch.uint8)
    image = Image.fromarray(rgb.permute(1, 2, 0).numpy(), "RGB")
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def main() -> None:
    out_dir = REPO / "output" / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="comfy_demo_") as base:
        server = ComfyServer(base, extra_custom_nodes=[REPO / "tests" / "comfy_nodes"])
        tiny_models.write_tiny_sd3_checkpoint(server.model_path("diffusion_models", TINY_SD3))
        print("Starting ComfyUI", comfy_env.comfy_version(), "from", comfy_env.comfy_root(), "...")
        with server:
            print(f"Server ready at {server.url} after {server.startup_seconds:.1f} s")
            started = time.monotonic()
            entry = server.run(build_graph(guider("RAAGS2Guidance_RAAGGuider", w_max=18.0, alpha=12.0, ratio_mode="per_sample",
                                                  start_percent=0.0, end_percent=1.0, cfg=5.0)), timeout=300)
            if entry["status"]["status_str"] != "success":
                sys.exit(f"The prompt failed: {entry['status']['messages']}\n{server.log_tail()}")
            latent = load_file(str(server.output_file(entry["outputs"][SAVE]["latents"][0])))["latent_tensor"]
            print(f"Sampled a {list(latent.shape)} latent in {time.monotonic() - started:.1f} s")
    path = out_dir / "tiny_sd3_raag.png"
    latent_to_image(latent).save(path)
    print(f"Wrote {path.relative_to(REPO)} (latent channels 0-2 as RGB; the tiny model has no VAE)")


if __name__ == "__main__":
    main()
