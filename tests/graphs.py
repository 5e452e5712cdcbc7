"""API-format prompts for the end-to-end runs (tests, demo): stock nodes on the tiny SD3 model.

The guider is a parameter, so the same graph runs CFGGuider or this pack's RAAG / S² guiders:

    build_graph(cfg_guider(4.0))
    build_graph(guider("SomeGuiderNode", cfg=4.0, other_option=...))

A guider node links its inputs to the fixed node ids below (``MODEL``, ``POSITIVE``, ``NEGATIVE``).
"""

from __future__ import annotations

from typing import Any

TINY_SD3 = "tiny_sd3.safetensors"
MODEL, POSITIVE, NEGATIVE = ["unet", 0], ["positive", 0], ["negative", 0]
SAVE = "save"  # id of the SaveLatent node, the graph's output


def guider(class_type: str, **inputs: Any) -> dict[str, Any]:
    """A guider node taking ``model``, ``positive`` and ``negative`` from the graph, plus ``inputs``."""
    return {"class_type": class_type,
            "inputs": {"model": MODEL, "positive": POSITIVE, "negative": NEGATIVE, **inputs}}


def cfg_guider(cfg: float = 4.0) -> dict[str, Any]:
    return guider("CFGGuider", cfg=cfg)


def build_graph(guider_node: dict[str, Any], *, steps: int = 4, noise_seed: int = 0, size: int = 64,
                cond_seeds: tuple[int, int] = (1, 2), arch: str = "sd3", unet_name: str = TINY_SD3,
                sampler: str = "euler", scheduler: str = "simple",
                filename_prefix: str = "latents/e2e") -> dict[str, Any]:
    """UNETLoader → guider → SamplerCustomAdvanced → SaveLatent; latent ``[1, 16, size/8, size/8]``."""
    def node(class_type: str, **inputs: Any) -> dict[str, Any]:
        return {"class_type": class_type, "inputs": inputs}

    return {
        "unet": node("UNETLoader", unet_name=unet_name, weight_dtype="default"),
        "positive": node("TinyTestConditioning", arch=arch, seed=cond_seeds[0], batch=1),
        "negative": node("TinyTestConditioning", arch=arch, seed=cond_seeds[1], batch=1),
        "guider": guider_node,
        "noise": node("RandomNoise", noise_seed=noise_seed),
        "sampler": node("KSamplerSelect", sampler_name=sampler),
        "sigmas": node("BasicScheduler", model=MODEL, scheduler=scheduler, steps=steps, denoise=1.0),
        "latent": node("EmptySD3LatentImage", width=size, height=size, batch_size=1),
        "sample": node("SamplerCustomAdvanced", noise=["noise", 0], guider=["guider", 0],
                       sampler=["sampler", 0], sigmas=["sigmas", 0], latent_image=["latent", 0]),
        SAVE: node("SaveLatent", samples=["sample", 0], filename_prefix=filename_prefix),
    }
