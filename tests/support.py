"""Helpers shared by the guider tests: guider factories, and probes that watch ComfyUI's real model
calls (an APPLY_MODEL wrapper and forward hooks on the blocks) or record core's hook arguments."""

from __future__ import annotations

import comfy.model_management
import comfy.patcher_extension
import comfy.samplers
import pytest
import tiny_models
import torch
from raag_s2_guidance.guiders import GuidanceGuider, RAAGConfig, S2Config, StepWindow
from raag_s2_guidance.guiders.blocks import PASS_MARKER, architecture_of


def cfg_guider(case, cfg=5.0, patcher=None):
    guider = comfy.samplers.CFGGuider(patcher or case.patcher)
    guider.set_conds(case.positive, case.negative)
    guider.set_cfg(cfg)
    return guider


def raag_guider(case, patcher=None, cfg=5.0, window=(0.0, 1.0), positive=None, negative=None, **config):
    guider = GuidanceGuider(patcher or case.patcher, cfg=cfg, raag=RAAGConfig(window=StepWindow(*window), **config))
    guider.set_conds(positive or case.positive, negative or case.negative)
    return guider


def s2_guider(case, patcher=None, cfg=5.0, window=(0.0, 1.0), **config):
    guider = GuidanceGuider(patcher or case.patcher, cfg=cfg, s2=S2Config(window=StepWindow(*window), **config))
    guider.set_conds(case.positive, case.negative)
    return guider


def raag_s2_guider(case, patcher=None, raag=None, window=(0.0, 1.0), **s2):
    guider = GuidanceGuider(patcher or case.patcher, raag=RAAGConfig(**(raag or {})),
                            s2=S2Config(window=StepWindow(*window), **s2))
    guider.set_conds(case.positive, case.negative)
    return guider


def conditioning_row(conditioning: list, i: int) -> list:
    """Row ``i`` of a batched CONDITIONING (one prompt of a batch of prompts)."""
    out = []
    for tensor, extras in conditioning:
        rows = {k: (v[i:i + 1] if torch.is_tensor(v) and v.shape[0] > 1 else v) for k, v in extras.items()}
        out.append([tensor[i:i + 1], rows])
    return out


def block_modules(patcher) -> dict[tuple[str, int], torch.nn.Module]:
    """(group, index) -> block module, for every block S² could consider (first ones included)."""
    dm = patcher.model.diffusion_model
    arch = architecture_of(dm)
    return {(g.name, i): m for g in arch.groups for i, m in enumerate(g.find(dm))}


def forward_overrides(patcher) -> list[str]:
    """Modules of the model that carry an instance-level ``forward`` (there should be none)."""
    return [name for name, m in patcher.model.named_modules() if "forward" in m.__dict__]


class ModelCalls:
    """Counts ComfyUI's real model evaluations on a patcher clone, the batch rows of each, whether it
    was S²'s sub-network pass, and which blocks really ran in it (forward hooks on every submodule of
    each block: a skipped or passed-through block runs none of them).

    Hooks and wrappers are closures, not bound methods: ModelPatcher.clone() deep-copies
    model_options, and a deep-copied bound method would record into a copy of this object."""

    def __init__(self, patcher, watch_blocks: bool = True):
        calls: list[dict] = []
        self.calls = calls
        ran: list[set] = []  # the set of blocks that ran in the current call, while one is running

        def count(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
            ran.append(set())
            try:
                out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
            finally:
                calls.append({"rows": x.shape[0], "dropped": transformer_options.get(PASS_MARKER),
                              "cond_or_uncond": list(transformer_options.get("cond_or_uncond", [])),
                              "ran": ran.pop(), "sigma": float(t[0]), "output": None})
            calls[-1]["output"] = out.detach().clone()
            return out

        def hit(key):
            def hook(module, args, output):
                if ran:
                    ran[-1].add(key)
            return hook

        self.patcher = patcher.clone()
        self.patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test-count", count)
        self._handles = []
        if watch_blocks:
            for key, block in block_modules(patcher).items():
                for sub in block.modules():
                    if sub is not block:
                        self._handles.append(sub.register_forward_hook(hit(key)))

    def close(self):
        for handle in self._handles:
            handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class HookRecorder:
    """Registers a pre-cfg and a post-cfg function (as users' model patches do) that record the
    arguments core hands them and change nothing."""

    def __init__(self, patcher):
        pre: list[dict] = []
        post: list[dict] = []
        self.pre, self.post = pre, post

        def record_pre(args):
            pre.append({"x": args["input"].clone(), "sigma": args["sigma"].clone(),
                        "cond": args["conds_out"][0].clone(), "uncond": args["conds_out"][1].clone(),
                        "cond_scale": args["cond_scale"]})
            return args["conds_out"]

        def record_post(args):
            post.append({"denoised": args["denoised"].clone(), "cond_scale": args["cond_scale"],
                         "keys": set(args)})
            return args["denoised"]

        self.patcher = patcher.clone()
        self.patcher.set_model_sampler_pre_cfg_function(record_pre)
        self.patcher.set_model_sampler_post_cfg_function(record_post)


def fail_inside(patcher, which: str, failure: str, seen_overrides: list | None = None):
    """Makes the model fail from inside a pass, ``which`` = "full" or "subnetwork": a forward pre-hook
    on the diffusion model's first leaf outside its blocks (the input embedding, which every pass runs,
    also a sub-network pass that starts at its first dropped block) raises, with an exception or as a
    user's interrupt.
    An APPLY_MODEL wrapper on the returned patcher clone tells the hook which pass is running.
    ``seen_overrides`` receives the blocks' forward overrides in place when it fails.
    Returns (patcher, hook handle): remove the handle afterwards."""
    state = {"sub": False}

    def mark(executor, *args, **kwargs):
        state["sub"] = bool(args[5].get(PASS_MARKER))
        return executor(*args, **kwargs)

    def fail(module, args):
        if state["sub"] == (which == "subnetwork"):
            if seen_overrides is not None:
                seen_overrides.extend(forward_overrides(patcher))
            if failure == "interrupt":
                comfy.model_management.interrupt_current_processing(True)
                comfy.model_management.throw_exception_if_processing_interrupted()
            raise RuntimeError(f"boom in the {which} pass")

    in_blocks = {id(m) for block in block_modules(patcher).values() for m in block.modules()}
    leaf = next(m for m in patcher.model.diffusion_model.modules()
                if not list(m.children()) and id(m) not in in_blocks and list(m.parameters()))
    marked = patcher.clone()
    marked.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test-mark", mark)
    return marked, leaf.register_forward_pre_hook(fail)


def sample_expecting_failure(case, guider, failure: str, handle, steps: int) -> None:
    """Samples and expects the failure ``fail_inside`` set up (then removes its hook)."""
    expected = comfy.model_management.InterruptProcessingException if failure == "interrupt" else RuntimeError
    try:
        with pytest.raises(expected):
            tiny_models.sample(case, guider, steps=steps)
    finally:
        handle.remove()
