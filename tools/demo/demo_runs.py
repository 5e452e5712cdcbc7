"""Sampling the demo model in-process through ComfyUI's real SamplerCustomAdvanced node, with the stock
CFGGuider or this pack's guiders; shared by bench_repro.py, demo.py and the tests.

Every call counts the model evaluations per image (a unet function wrapper on a clone of the MODEL),
so "model calls per image" is measured, not assumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import comfy.samplers
import torch
from demo_data import random_colours
from raag_s2_guidance import guiders
from raag_s2_guidance.demo_model import SPEC, Prompt, model, spec
from raag_s2_guidance.guiders import blocks
from raag_s2_guidance.guiders.s2 import draw_mask
from tiny_models import sample_latent


@dataclass(frozen=True)
class Method:
    """One guidance setting. kind: cfg | raag | s2 | raag_s2 | s2_towards (the premise test below)."""

    label: str
    kind: str
    cfg: float = 1.0
    w_max: float = 6.0
    alpha: float = 2.0
    omega: float = 0.25
    drop_ratio: float = 0.1


@dataclass
class Run:
    pixels: torch.Tensor  # [B, 3, 8, 8] in [0, 1]
    calls_per_image: float
    seconds: float
    trace: list = field(default_factory=list)  # GuidanceTrace.rows() (pack guiders only)


class TowardsSubnetwork(comfy.samplers.CFGGuider):
    """A diagnostic, not a feature: S² with the sign of its term flipped, D = CFG + omega (D_sub - D_c),
    a step *towards* the sub-network. S² assumes the sub-network is the worse predictor; where this
    beats S² on a model, that premise fails there. Built here from the pack's pieces (S²'s mask for the
    call's seed and sigma, its sub-network pass), so the product has no switch for it."""

    def __init__(self, model_patcher, s2: guiders.S2Config, cfg: float):
        super().__init__(model_patcher)
        self.s2 = s2
        self.set_cfg(cfg)

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006 (core's signature)
        positive, negative = self.conds["positive"], self.conds["negative"]
        model = self.inner_model
        cond, uncond = comfy.samplers.calc_cond_batch(model, [positive, negative], x, timestep, model_options)
        arch = blocks.architecture_of(model.diffusion_model)
        dropped = draw_mask(blocks.eligible_blocks(arch, model.diffusion_model), self.s2.drop_ratio, seed or 0,
                            float(timestep.reshape(-1)[0]))
        sub = blocks.subnetwork_prediction(model, arch, model_options, dropped, positive, negative, x, timestep)
        return uncond + (cond - uncond) * self.cfg + (sub - cond) * self.s2.omega


class DemoModel:
    def __init__(self, folder: Path | None = None):
        folder = Path(folder) if folder else spec.HERE
        self.patcher = model.load_patcher(folder / spec.WEIGHTS_FILE.name)
        self.embeddings = folder / spec.EMBEDDINGS_FILE.name
        self.calls = 0

        def counting(apply_model, args):
            self.calls += args["input"].shape[0]
            return apply_model(args["input"], args["timestep"], **args["c"])

        self.counted = self.patcher.clone()
        self.counted.set_model_unet_function_wrapper(counting)

    def conditioning(self, prompts: list[Prompt]) -> list:
        return model.conditioning(prompts, self.embeddings)

    def guider(self, method: Method, positive, negative):
        m = self.counted
        if method.kind == "cfg":
            g = comfy.samplers.CFGGuider(m)
            g.set_cfg(method.cfg)
        elif method.kind == "raag":
            g = guiders.GuidanceGuider(m, cfg=method.cfg, raag=guiders.RAAGConfig(method.w_max, method.alpha))
        elif method.kind == "s2":
            g = guiders.GuidanceGuider(m, cfg=method.cfg, s2=guiders.S2Config(method.omega, method.drop_ratio))
        elif method.kind == "s2_towards":
            g = TowardsSubnetwork(m, guiders.S2Config(method.omega, method.drop_ratio), cfg=method.cfg)
        elif method.kind == "raag_s2":
            g = guiders.GuidanceGuider(m, raag=guiders.RAAGConfig(method.w_max, method.alpha),
                                       s2=guiders.S2Config(method.omega, method.drop_ratio))
        else:
            raise ValueError(f"unknown method kind {method.kind!r}")
        g.set_conds(positive, negative)
        return g

    def sample(self, method: Method, prompts: list[Prompt], steps: int, seed: int,
               sampler: str = "euler", scheduler: str = "simple") -> Run:
        positive = self.conditioning(prompts)
        negative = self.conditioning([Prompt()] * len(prompts))
        g = self.guider(method, positive, negative)
        latent = torch.zeros((len(prompts), 3, SPEC.image_size, SPEC.image_size))
        self.calls = 0
        started = time.perf_counter()
        out = sample_latent(g, latent, sampler_name=sampler, steps=steps, seed=seed, scheduler=scheduler)
        seconds = time.perf_counter() - started
        trace = g.trace.rows() if isinstance(g, guiders.GuidanceGuider) else []
        return Run(out.float().clamp(0, 1), self.calls / len(prompts), seconds, trace)


def full_prompts(n: int, seed: int) -> list[Prompt]:
    """n random full prompts (digit, fg, bg with fg != bg), deterministic in seed."""
    gen = torch.Generator().manual_seed(seed)
    digits = torch.randint(10, (n,), generator=gen)
    fg, bg = random_colours(n, len(SPEC.colour_names), gen)
    return [Prompt(int(d), int(f), int(b)) for d, f, b in zip(digits, fg, bg)]
