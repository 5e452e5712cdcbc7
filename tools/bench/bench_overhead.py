"""Overhead of the pack's guiders over ComfyUI's CFGGuider (issue #5): a benchmark that prints figures.

    make bench-overhead                                  # CPU; writes docs/bench_overhead.md
    make bench-overhead BENCH_ARGS="--clock cpu"         # a shared, noisy CPU machine
    .venv/bin/python tools/bench/bench_overhead.py --device cuda --real-size --archs sd3 --out docs/bench_overhead_gpu.md

CFGGuider, a second CFGGuider (the control: its ratio to the first is the noise of the run), RAAG, S²,
S² in a [0.2, 0.8] window and RAAG + S² sample the same random-weight models of REAL ComfyUI
architectures (``comfy.supported_models.<Arch>(unet_config).get_model``) through the real
``SamplerCustomAdvanced`` node, alternating in one process (the order rotates every repeat). Per guider:

- per-step time: from the sampler callback of step 0 to that of the last step, divided by the steps in
  between (per-run setup and the first step are left out); the median over repeats, and its ratio to
  CFGGuider's median from the same run. Wall time (the issue's measure; on a GPU every callback
  synchronises first) or, with ``--clock cpu``, this thread's CPU time (steadier on a shared CPU
  machine; torch runs single-threaded there). The other clock's ratio is shown next to it.
- time inside ``apply_model`` (an APPLY_MODEL wrapper; CUDA events on a GPU) and outside it: the
  outside part is ComfyUI's sampler code plus the guider's own code, so its growth over CFGGuider's is
  what our code costs, free of model-cost effects.
- model calls and batch rows per step, counted by an APPLY_MODEL wrapper on a clone of the patcher
  (an untimed probe run), and S²'s dropped fraction p (dropped / all blocks) and window fraction f,
  read from the guider's trace over the timed steps.
- peak memory of the probe run above what was allocated before it: on a GPU
  ``torch.cuda.max_memory_allocated`` (reset before each guider); on the CPU the peak of live tensor
  bytes allocated during the run (the torch profiler's CPU allocator events). Plus the peak of
  Python's own heap (``tracemalloc``).

Targets (issue #5): RAAG <= 1.02x CFGGuider; S² <= (1 + 0.5 (1 - p) f) x CFGGuider + 0.03; the peak
memory of S² equal to CFGGuider's (tolerance: 1 %). RAAG + S² is held to S²'s bound + 0.02.

Model sizes: ``--real-size`` (GPU only) builds SD3.5-Large's MMDiT (38 blocks, hidden 2432) at 1024²,
Flux.1-dev (19 + 38 blocks, hidden 3072) at 1024² and Wan 2.1 1.3B at 480p x 33 frames, directly on the
GPU with random weights (never allocated on the CPU); one architecture per call keeps a run within a
few minutes. Without it, "medium" configurations (same classes, a few hundred hidden units, 6-9 blocks)
keep a CPU run to a few minutes while the model costs ~99 % of a step, as on a real GPU; the tiny test
models would not (Python overhead would dominate every ratio).

The CUDA code paths (``--device cuda``, ``--real-size``) were written without a GPU at hand and have not
been run yet. ``TORCH_CPP_LOG_LEVEL=ERROR`` (the Makefile sets it) keeps torch's C++ warnings about the
profiler out of the output; the "USDT ... profiler_start / profiler_stop" lines it may still print are harmless.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import shlex
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

CONTROL = "CFGGuider (control)"  # a second CFGGuider: its ratio to the first is the noise of the run
CFG_SCALE = 5.0  # CFGGuider's and S²'s scale; RAAG uses its defaults (w_max 18, alpha 12)
S2_WINDOW = (0.2, 0.8)
RAAG_BOUND = 1.02
S2_SLACK = 0.03
MEMORY_TOLERANCE = 0.01


@dataclass(frozen=True)
class ModelSpec:
    arch: str  # tiny_models / blocks architecture name
    label: str
    config: str  # class in comfy.supported_models
    unet_config: dict
    latent: tuple  # without the batch dim
    ctx_tokens: int
    ctx_dim: int
    extras: dict = field(default_factory=dict)  # cond key -> shape without batch


def _sd3_config(depth: int, ctx_dim: int, pooled: int, pos_embed_max: int) -> dict:
    return dict(
        in_channels=16, out_channels=16, patch_size=2, depth=depth, input_size=None, adm_in_channels=pooled,
        context_embedder_config={"target": "torch.nn.Linear",
                                 "params": {"in_features": ctx_dim, "out_features": 64 * depth}},
        num_patches=pos_embed_max * pos_embed_max, pos_embed_max_size=pos_embed_max,
        pos_embed_scaling_factor=None, x_block_self_attn_layers=[], qk_norm="rms",
    )


def _flux_config(hidden: int, depth: int, single: int, axes: list, ctx_dim: int, vec: int) -> dict:
    return dict(
        image_model="flux", in_channels=16, out_channels=16, hidden_size=hidden, num_heads=hidden // sum(axes),
        mlp_ratio=4.0, depth=depth, depth_single_blocks=single, axes_dim=axes, theta=10000, patch_size=2,
        qkv_bias=True, context_in_dim=ctx_dim, vec_in_dim=vec, guidance_embed=True,
    )


def _wan_config(dim: int, ffn: int, heads: int, layers: int, text_dim: int) -> dict:
    return dict(
        image_model="wan2.1", model_type="t2v", dim=dim, ffn_dim=ffn, num_heads=heads, num_layers=layers,
        in_dim=16, out_dim=16, text_dim=text_dim, freq_dim=256, patch_size=(1, 2, 2), window_size=(-1, -1),
        qk_norm=True, cross_attn_norm=True, eps=1e-6,
    )


# Same classes as the real models; a CFG step costs ~0.1-0.2 s on one CPU core.
MEDIUM: dict[str, ModelSpec] = {
    "sd3": ModelSpec("sd3", "SD3 MMDiT, 6 blocks, hidden 384", "SD3", _sd3_config(6, 64, 64, 16),
                     (16, 24, 24), 16, 64, {"pooled_output": (64,)}),
    "flux": ModelSpec("flux", "Flux, 3 + 6 blocks, hidden 256", "Flux",
                      _flux_config(256, 3, 6, [16, 24, 24], 64, 64), (16, 24, 24), 16, 64,
                      {"pooled_output": (64,)}),
    "wan21": ModelSpec("wan21", "Wan 2.1, 8 blocks, dim 256", "WAN21_T2V", _wan_config(256, 1024, 4, 8, 64),
                       (16, 3, 16, 16), 16, 64),
}

# The real sizes (random weights). SD3.5 Large: 77 CLIP + 256 T5 tokens; Flux / Wan: 512 T5 tokens.
REAL: dict[str, ModelSpec] = {
    "sd3": ModelSpec("sd3", "SD3.5-Large MMDiT (38 blocks, hidden 2432), 1024x1024", "SD3",
                     _sd3_config(38, 4096, 2048, 192), (16, 128, 128), 333, 4096, {"pooled_output": (2048,)}),
    "flux": ModelSpec("flux", "Flux.1-dev (19 + 38 blocks, hidden 3072), 1024x1024", "Flux",
                      _flux_config(3072, 19, 38, [16, 56, 56], 4096, 768), (16, 128, 128), 512, 4096,
                      {"pooled_output": (768,)}),
    "wan21": ModelSpec("wan21", "Wan 2.1 1.3B (30 blocks, dim 1536), 832x480 x 33 frames", "WAN21_T2V",
                       _wan_config(1536, 8960, 12, 30, 4096), (16, 9, 60, 104), 512, 4096),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                        help="model weights and compute; default float32 on cpu, bfloat16 on cuda")
    parser.add_argument("--real-size", action="store_true",
                        help="GPU only: SD3.5-Large / Flux.1-dev / Wan 2.1 1.3B sizes with random weights")
    parser.add_argument("--archs", default="sd3,flux,wan21", help="comma-separated, from: sd3, flux, wan21")
    parser.add_argument("--steps", type=int, default=8, help="sampler steps per run (>= 3)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per guider (interleaved)")
    parser.add_argument("--sampler", default="euler", help="KSamplerSelect sampler name")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what the ratios are judged on: wall time (the issue's measure), or this thread's "
                             "CPU time (CPU only; steadier on a shared machine). The other is shown too.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown report here")
    args = parser.parse_args(argv)
    args.archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = set(args.archs) - set(MEDIUM)
    if unknown:
        parser.error(f"unknown --archs {sorted(unknown)}; choose from {sorted(MEDIUM)}")
    if args.steps < 3:
        parser.error("--steps must be >= 3")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.clock == "cpu" and args.device == "cuda":
        parser.error("--clock cpu measures host CPU time; on a GPU use --clock wall")
    if args.real_size and args.device == "cpu":
        parser.error("--real-size needs --device cuda (the real-size models do not fit a CPU run)")
    return args


# ----------------------------------------------------------------------------------------------------
# Everything below runs after comfy_env.bootstrap() (main() imports torch and ComfyUI lazily, so that
# --device cpu can hide a GPU before torch is loaded).


def _randomize(module, seed: int) -> None:
    """Seeded random weights in place, on the module's own device (matrices ~ randn / sqrt(fan_in),
    biases 0, norm scales 1; SD3's ``pos_embed`` buffer gets its sincos table), as tiny_models does."""
    import torch
    from comfy.ldm.modules.diffusionmodules.mmdit import get_2d_sincos_pos_embed_torch

    with torch.no_grad():
        for index, (name, param) in enumerate(module.named_parameters()):
            gen = torch.Generator(device=param.device).manual_seed(seed * 100_003 + index)
            if param.ndim >= 2:
                noise = torch.randn(param.shape, generator=gen, device=param.device, dtype=torch.float32)
                param.copy_(noise / math.sqrt(param[0].numel()))
                del noise
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.fill_(1.0)
        for name, buf in module.named_buffers():
            if name == "pos_embed" and buf.ndim == 3:
                side = math.isqrt(buf.shape[1])
                table = get_2d_sincos_pos_embed_torch(buf.shape[2], side, side, device=buf.device)
                buf.copy_(table.reshape(buf.shape))
            elif buf.is_floating_point() and not bool(torch.isfinite(buf).all()):
                raise RuntimeError(f"uninitialised buffer {name} in {type(module).__name__}")


def build_case(spec: ModelSpec, device, dtype, seed: int):
    import comfy.model_patcher
    import comfy.supported_models
    import tiny_models
    import torch

    config = getattr(comfy.supported_models, spec.config)(tiny_models.fit_config(spec.arch, dict(spec.unet_config)))
    config.set_inference_dtype(dtype, None)
    model = config.get_model({}, device=device)  # weights allocated where they will run
    _randomize(model.diffusion_model, seed)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)

    def conditioning(cond_seed: int) -> list:
        gen = torch.Generator().manual_seed(cond_seed)
        cross_attn = torch.randn((1, spec.ctx_tokens, spec.ctx_dim), generator=gen)
        return [[cross_attn, {key: torch.randn((1, *shape), generator=gen) for key, shape in spec.extras.items()}]]

    return tiny_models.TinyCase(arch=spec.arch, patcher=patcher, positive=conditioning(seed + 1),
                                negative=conditioning(seed + 2), latent=torch.zeros((1, *spec.latent)))


WHOLE = "S² (whole pass)"  # a diagnostic: S² with its sub-network pass run whole (no prefix reuse)


def _whole_pass(guider):
    """``guider`` sampling as before prefix reuse: the full pass keeps nothing (benchmark-only, scoped to its
    own runs)."""
    from raag_s2_guidance.guiders import blocks

    original = guider.sample

    def sample(*args, **kwargs):
        plan = blocks.prefix_plan
        blocks.prefix_plan = lambda arch, options, *rest: (options, None)
        try:
            return original(*args, **kwargs)
        finally:
            blocks.prefix_plan = plan

    guider.sample = sample
    return guider


def make_guiders(patcher, case, extras: tuple[str, ...] = ()) -> dict:
    """The guiders, alternated in one run. ``extras``: "patches", the MODEL patches as KSampler samples them
    (core's CFGGuider over the patched MODEL, rows "... (patch)"); "whole", S² with its sub-network pass
    run whole (``WHOLE``), to measure what starting at the first dropped block saves."""
    import comfy.samplers
    from raag_s2_guidance.guiders import GuidanceGuider, RAAGConfig, S2Config, StepWindow, apply

    def cfg_guider(model):
        guider = comfy.samplers.CFGGuider(model)
        guider.set_cfg(CFG_SCALE)
        return guider

    guiders = {
        "CFGGuider": cfg_guider(patcher),
        CONTROL: cfg_guider(patcher),
        "RAAG": GuidanceGuider(patcher, cfg=CFG_SCALE, raag=RAAGConfig()),
        "S²": GuidanceGuider(patcher, cfg=CFG_SCALE, s2=S2Config()),
        "S² [0.2, 0.8]": GuidanceGuider(patcher, cfg=CFG_SCALE, s2=S2Config(window=StepWindow(*S2_WINDOW))),
        "RAAG + S²": GuidanceGuider(patcher, cfg=CFG_SCALE, raag=RAAGConfig(), s2=S2Config()),
    }
    if "whole" in extras:
        guiders[WHOLE] = _whole_pass(GuidanceGuider(patcher, cfg=CFG_SCALE, s2=S2Config()))
    if "patches" in extras:
        guiders |= {"RAAG (patch)": cfg_guider(apply(patcher, raag=RAAGConfig())),
                    "S² (patch)": cfg_guider(apply(patcher, s2=S2Config())),
                    "RAAG + S² (patch)": cfg_guider(apply(patcher, raag=RAAGConfig(), s2=S2Config()))}
    for guider in guiders.values():
        guider.set_conds(case.positive, case.negative)
    return guiders


def _now() -> tuple[float, float]:
    """(wall, this thread's CPU time). With one torch thread, all model work runs on this thread."""
    return time.perf_counter(), time.thread_time()


class StepTimer:
    """Wraps a guider's ``sample`` (on the instance) so the sampler callback stamps the time of every
    step; ``marks`` holds, per stamp, whatever ``mark()`` returns then (e.g. a call count)."""

    def __init__(self, guider, sync, mark=lambda: None):
        self.stamps: list[tuple[float, float]] = []
        self.marks: list = []
        self._mark = mark
        original = guider.sample

        def sample(noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                   disable_pbar=False, seed=None):
            def on_step(step, x0, x, total_steps):
                sync()
                self.stamps.append(_now())
                self.marks.append(self._mark())
                if callback is not None:
                    return callback(step, x0, x, total_steps)

            return original(noise, latent_image, sampler, sigmas, denoise_mask, on_step, disable_pbar, seed)

        guider.sample = sample

    def clear(self) -> None:
        self.stamps.clear()
        self.marks.clear()

    @property
    def timed_steps(self) -> int:
        return len(self.stamps) - 1

    def per_step(self, which: int) -> float:
        """Seconds per step after the first; ``which``: 0 wall, 1 CPU time."""
        return (self.stamps[-1][which] - self.stamps[0][which]) / self.timed_steps


class CallCounter:
    """An APPLY_MODEL wrapper: one entry (batch rows, is the S² sub-network pass) per model evaluation."""

    def __init__(self):
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, executor, x, *args, **kwargs):
        self.calls.append((int(x.shape[0]), _is_subnetwork_pass(args, kwargs)))
        return executor(x, *args, **kwargs)


class ModelClock:
    """An APPLY_MODEL wrapper on the timed runs' patcher: the time spent inside each model evaluation,
    marked full or sub-network pass. On a GPU, CUDA events (nothing waits for the device; device time)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.records: list[tuple[bool, object, object]] = []  # (sub-network pass, start, end)

    def __call__(self, executor, x, *args, **kwargs):
        import torch

        sub = _is_subnetwork_pass(args, kwargs)
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = executor(x, *args, **kwargs)
            end.record()
        else:
            start = _now()
            out = executor(x, *args, **kwargs)
            end = _now()
        self.records.append((sub, start, end))
        return out

    def seconds(self, first: int, last: int, which: int) -> list[tuple[bool, float]]:
        """(sub-network pass, seconds) of the evaluations between two marks (``which``: 0 wall, 1 CPU)."""
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            return [(sub, start.elapsed_time(end) / 1000) for sub, start, end in self.records[first:last]]
        return [(sub, end[which] - start[which]) for sub, start, end in self.records[first:last]]


def _is_subnetwork_pass(args, kwargs) -> bool:
    from raag_s2_guidance.guiders.blocks import PASS_MARKER

    transformer_options = args[4] if len(args) > 4 else kwargs.get("transformer_options", {})
    return PASS_MARKER in transformer_options


@dataclass
class Probe:
    calls_per_step: float
    rows_per_step: float
    p: float | None  # mean dropped / all blocks over the S² passes
    f: float | None  # fraction of the timed steps with an S² pass
    peak_bytes: int  # above what was allocated before the run (the weights)
    python_peak_bytes: int
    finite: bool
    # mean fraction of the blocks the S² passes computed: 1 - p, less the prefix a pass reused
    q: float | None = None
    reused: float | None = None  # fraction of the S² passes that started at their first dropped block
    total_peak_bytes: int = 0  # the whole peak, weights included
    # S²'s sub-network deviation ||D_sub - D_c|| / ||D_c - D_u|| over the timed S² passes: (median, min, max)
    deviation: tuple[float, float, float] | None = None


def _sync_fn(device):
    import torch

    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _cpu_tensor_peak(prof) -> int:
    """Peak of live CPU tensor bytes allocated while ``prof`` recorded (frees of older blocks are not
    reported by the allocator, so the running sum starts at 0)."""
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type().name == "CPU"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def _methods(name: str) -> set[str]:
    return {m for m, label in (("raag", "RAAG"), ("s2", "S²")) if label in name}


def trace_of(guider):
    from raag_s2_guidance.guiders import guidance_of

    return guidance_of(guider.model_patcher).trace


def probe(case, name, guider_on_counted, timer, counter, order, args, device) -> Probe:
    """One untimed run: model calls, S² p and f, peak memory (``timer`` marks counter positions)."""
    import tiny_models
    import torch
    from torch.profiler import ProfilerActivity, profile

    sync = _sync_fn(device)
    timer.clear()
    counter.calls.clear()
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    python_base = tracemalloc.get_traced_memory()[0]
    if device.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = tiny_models.sample(case, guider_on_counted, sampler_name=args.sampler, steps=args.steps,
                                 seed=args.seed)
        sync()
        total = torch.cuda.max_memory_allocated(device)
        peak = total - base
    else:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = tiny_models.sample(case, guider_on_counted, sampler_name=args.sampler, steps=args.steps,
                                     seed=args.seed)
        peak = _cpu_tensor_peak(prof)
        weights = case.patcher.model.diffusion_model
        total = peak + sum(t.numel() * t.element_size() for t in [*weights.parameters(), *weights.buffers()])
    python_peak = tracemalloc.get_traced_memory()[1] - python_base
    tracemalloc.stop()

    first, last = timer.marks[0], timer.marks[-1]
    timed_steps = timer.timed_steps
    calls = counter.calls[first:last]
    p = f = q = reused = deviation = None
    if "s2" in _methods(name):
        rows = [r for r in trace_of(guider_on_counted).rows() if 1 <= r["step"] <= timed_steps]
        s2_rows = [r for r in rows if r["dropped"]]
        f = len({r["step"] for r in s2_rows}) / timed_steps
        p = statistics.fmean(len(r["dropped"]) / len(order) for r in s2_rows) if s2_rows else 0.0
        q = statistics.fmean(computed_fraction(r, order) for r in s2_rows) if s2_rows else 1.0
        reused = statistics.fmean(bool(r["reused"]) for r in s2_rows) if s2_rows else 0.0
        values = [v for r in s2_rows for v in (r["deviation"] or []) if v is not None and math.isfinite(v)]
        if values:
            deviation = (statistics.median(values), min(values), max(values))
    return Probe(
        calls_per_step=len(calls) / timed_steps,
        rows_per_step=sum(rows for rows, _ in calls) / timed_steps,
        p=p, f=f, q=q, reused=reused, peak_bytes=int(peak), total_peak_bytes=int(total),
        python_peak_bytes=int(python_peak), finite=bool(torch.isfinite(out).all()), deviation=deviation,
    )


def computed_fraction(row: dict, order: list) -> float:
    """The fraction of the model's blocks an S² pass computed, from the mask it drew: all but the dropped
    ones, and, where it started at its first dropped block, but those before it."""
    dropped = [tuple(d) for d in row["dropped"]]
    skipped = order.index(dropped[0]) if row["reused"] else 0
    return (len(order) - skipped - len(dropped)) / len(order)


def bound_for(name: str, pr: Probe) -> float | None:
    """RAAG: 1.02. S²: 1 + 0.5 q f + 0.03, q the fraction of the blocks its passes computed (from the masks
    drawn), a one-row pass costing half the batched two-row pass per block; RAAG + S²: + 0.02 more."""
    methods = _methods(name)
    if methods == {"raag"}:
        return RAAG_BOUND
    if pr.q is None:
        return None
    s2 = 1.0 + 0.5 * pr.q * pr.f + S2_SLACK
    return s2 + (RAAG_BOUND - 1.0) if "raag" in methods else s2


def bench_arch(spec: ModelSpec, args, device, dtype, extras: tuple[str, ...] = ("whole",)) -> dict:
    import comfy.model_management
    import comfy.patcher_extension
    import tiny_models
    import torch
    from raag_s2_guidance.guiders import blocks

    started = time.perf_counter()
    case = build_case(spec, device, dtype, args.seed)
    dm = case.patcher.model.diffusion_model
    arch = blocks.architecture_of(dm)
    order = [(group.name, i) for group in arch.groups for i in range(len(group.find(dm)))]  # the loop's order
    total_blocks = len(order)
    params = sum(p.numel() for p in dm.parameters())
    sync = _sync_fn(device)

    clock = ModelClock(device)
    timed = case.patcher.clone()
    timed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "bench_overhead.time", clock)
    guiders = make_guiders(timed, case, extras)
    counter = CallCounter()
    counted = case.patcher.clone()
    counted.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "bench_overhead.count", counter)
    counted_guiders = make_guiders(counted, case, extras)
    timers = {name: StepTimer(g, sync, mark=lambda: len(clock.records)) for name, g in guiders.items()}
    probe_timers = {name: StepTimer(g, sync, mark=lambda: len(counter.calls)) for name, g in counted_guiders.items()}

    print(f"\n== {spec.label}: {params / 1e6:.1f}M parameters, latent {list(spec.latent)}, "
          f"{total_blocks} blocks", flush=True)
    for name, guider in guiders.items():  # warm-up: allocator, caches, lazy imports
        tiny_models.sample(case, guider, sampler_name=args.sampler, steps=3, seed=args.seed)
    probe_args = (counter, order, args, device)
    probe(case, "CFGGuider", counted_guiders["CFGGuider"], probe_timers["CFGGuider"], *probe_args)  # warm-up
    probes = {}
    for name, guider in counted_guiders.items():
        probes[name] = probe(case, name, guider, probe_timers[name], *probe_args)
        if not probes[name].finite:
            print(f"   note: {name} produced non-finite values (random weights); timings still count")

    judge = 1 if args.clock == "cpu" else 0
    names = list(guiders)
    times = {name: ([], []) for name in names}  # per run: (wall, CPU) seconds per step
    model_times: dict[str, list[float]] = {name: [] for name in names}
    full_passes: list[float] = []
    sub_passes: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        rotation = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in rotation:
            timer = timers[name]
            timer.clear()
            clock.records.clear()
            gc.collect()
            tiny_models.sample(case, guiders[name], sampler_name=args.sampler, steps=args.steps, seed=args.seed)
            evaluations = clock.seconds(timer.marks[0], timer.marks[-1], judge)
            for which in (0, 1):
                times[name][which].append(timer.per_step(which))
            model_times[name].append(sum(t for _, t in evaluations) / timer.timed_steps)
            full_passes += [t for sub, t in evaluations if not sub]
            sub_passes[name] += [t for sub, t in evaluations if sub]
        summary = ", ".join(f"{n} {times[n][judge][-1] * 1000:.1f}" for n in names)
        print(f"   repeat {repeat + 1}/{args.repeats} (ms/step, {args.clock}): {summary}", flush=True)

    rows = []
    for name in names:
        ratios = []
        for which in (0, 1):
            ratios.append(statistics.median(times[name][which]) / statistics.median(times["CFGGuider"][which]))
        judged = times[name][judge]
        per_repeat = [t / c for t, c in zip(judged, times["CFGGuider"][judge], strict=True)]
        outside = [t - m for t, m in zip(judged, model_times[name], strict=True)]
        pr = probes[name]
        rows.append(dict(guider=name, ms=statistics.median(judged) * 1000, ratio=ratios[judge],
                         other_ratio=ratios[1 - judge], low=min(per_repeat), high=max(per_repeat),
                         bound=bound_for(name, pr), probe=pr, model_ms=statistics.median(model_times[name]) * 1000,
                         outside_ms=statistics.median(outside) * 1000))
    cfg_peak = probes["CFGGuider"].total_peak_bytes
    for row in rows:
        row["memory_ok"] = row["probe"].total_peak_bytes <= cfg_peak * (1 + MEMORY_TOLERANCE)
        row["time_ok"] = row["bound"] is None or row["ratio"] <= row["bound"]

    del guiders, counted_guiders, counted, timed, timers, probe_timers, case, dm
    comfy.model_management.unload_all_models()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    tokens = _tokens(spec)
    s2 = probes["S²"]
    # mean pass times: the passes' lengths vary with each step's mask, as q (a mean) does
    whole = statistics.fmean(sub_passes[WHOLE]) * 1000 if sub_passes.get(WHOLE) else None
    return dict(spec=spec, params=params, total_blocks=total_blocks, tokens=tokens, rows=rows,
                full_ms=statistics.median(full_passes) * 1000, sub_ms=statistics.fmean(sub_passes["S²"]) * 1000,
                sub_whole_ms=whole, ideal_sub=0.5 * s2.q, ideal_sub_whole=0.5 * (1 - s2.p), q=s2.q,
                reused=s2.reused, seconds=time.perf_counter() - started)


def _tokens(spec: ModelSpec) -> int:
    if spec.config == "WAN21_T2V":
        t, h, w = spec.latent[1:]
        return t * (h // 2) * (w // 2)
    return (spec.latent[-2] // 2) * (spec.latent[-1] // 2)


def _machine(device) -> str:
    import torch

    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu} ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _result(row) -> str:
    if row["guider"] == "CFGGuider":
        return "reference"
    if row["guider"] == CONTROL:
        return "noise check (ideal 1.000)"
    failed = [what for what, ok in (("time", row["time_ok"]), ("memory", row["memory_ok"])) if not ok]
    return "pass" if not failed else "**FAIL** (" + ", ".join(failed) + ")"


def _bound(value) -> str:
    return "—" if value is None else f"≤ {value:.3f}"


def _opt(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def render(results: list[dict], args, device, dtype, command: str, load: tuple) -> str:
    import comfy_env
    import torch

    cpu = device.type == "cpu"
    clock, other = ("CPU time", "wall") if args.clock == "cpu" else ("wall", "CPU time")
    main_table = [
        "| model | guider | ms / step | × CFGGuider | bound | result "
        + (f"| × CFGGuider ({other}) " if cpu else "")
        + "| model calls (rows) / step | p | q | f | peak tensor memory | total peak (weights included) "
        "| Python heap peak |",
        "|---|---|---:|---:|---:|---|" + ("---:|" if cpu else "") + "---|---:|---:|---:|---:|---:|---:|",
    ]
    detail = [
        "| model | guider | per-repeat × | in model, ms / step | outside model, ms / step "
        "| outside model − CFGGuider's, % of its step |",
        "|---|---|---|---:|---:|---:|",
    ]
    passes = [
        "| model | batched CFG pass (2 rows), ms | S² sub-network pass (1 row), ms | sub / batched "
        "| predicted by the masks: 0.5 q | passes reused | whole pass, ms | fall measured | fall predicted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    models = ["| model | configuration | parameters | latent | image tokens | blocks |", "|---|---|---:|---|---:|---:|"]
    for res in results:
        arch = res["spec"].arch
        cfg_row = res["rows"][0]
        for row in res["rows"]:
            pr = row["probe"]
            main_table.append(
                f"| {arch} | {row['guider']} | {row['ms']:.1f} | {row['ratio']:.3f} "
                f"| {_bound(row['bound'])} "
                f"| {_result(row)} " + (f"| {row['other_ratio']:.3f} " if cpu else "")
                + f"| {pr.calls_per_step:.2f} ({pr.rows_per_step:.2f}) | {_opt(pr.p, '.3f')} | {_opt(pr.q, '.3f')} "
                f"| {_opt(pr.f, '.2f')} | {_mib(pr.peak_bytes)} | {_mib(pr.total_peak_bytes)} "
                f"| {pr.python_peak_bytes / 1024:.0f} KiB |"
            )
            own = (row["outside_ms"] - cfg_row["outside_ms"]) / cfg_row["ms"] * 100
            detail.append(
                f"| {arch} | {row['guider']} | {row['low']:.3f}–{row['high']:.3f} | {row['model_ms']:.1f} "
                f"| {row['outside_ms']:.1f} | {own:+.2f} % |"
            )
        whole = res["sub_whole_ms"]
        fall = f"{1 - res['sub_ms'] / whole:.1%}" if whole else "—"
        passes.append(f"| {arch} | {res['full_ms']:.1f} | {res['sub_ms']:.1f} | {res['sub_ms'] / res['full_ms']:.3f} "
                      f"| {res['ideal_sub']:.3f} | {res['reused']:.0%} | {_opt(whole, '.1f')} | {fall} "
                      f"| {1 - res['ideal_sub'] / res['ideal_sub_whole']:.1%} |")
        spec = res["spec"]
        models.append(f"| {arch} | {spec.label} (`comfy.supported_models.{spec.config}`) "
                      f"| {res['params'] / 1e6:.1f}M | {list(spec.latent)} | {res['tokens']} | {res['total_blocks']} |")
    memory_kind = ("`torch.cuda.max_memory_allocated` above the allocation before the run" if not cpu
                   else "peak of live CPU tensor bytes allocated during the run (torch profiler allocator events)")
    gpu_note = (" On the GPU every step ends with `torch.cuda.synchronize()` and in-model time comes from CUDA "
                "events." if not cpu else "")
    return "\n".join([
        "## Overhead over CFGGuider",
        "",
        f"- Machine: {_machine(device)}; torch {torch.__version__}; ComfyUI {comfy_env.comfy_version()}; "
        f"Python {platform.python_version()}; dtype {str(dtype).removeprefix('torch.')}; "
        f"load average {load[0]:.2f} before, {load[1]:.2f} after.",
        f"- Command: `{command}`",
        f"- {args.steps} {args.sampler} steps per run (the {args.steps - 1} after the first are timed), "
        f"{args.repeats} repeats per guider in rotating order, medians, times in {clock}. CFG scale (and S²'s λ) "
        f"{CFG_SCALE:g}; RAAG w_max 18, α 12; S² ω 0.25, drop ratio 0.1.",
        "",
        *models,
        "",
        *main_table,
        "",
        f"Where the time goes ({clock}):",
        "",
        *detail,
        "",
        f"Cost of one model evaluation ({clock} inside `apply_model`; batched pass: median; sub-network passes: "
        "mean, as their length varies with each step's mask):",
        "",
        *passes,
        "",
        "- × CFGGuider: the guider's median per-step time over CFGGuider's, both from the same run. "
        f"{CONTROL} is a second CFGGuider timed like the others: its distance from 1.000 is the noise of the run. "
        "Per-repeat ×: the range of the ratio within single repeats. In / outside model: time inside "
        "`apply_model` (an APPLY_MODEL wrapper) and the rest of the step (ComfyUI's sampler code and the "
        "guider's own code)." + gpu_note,
        "- Bounds: RAAG ≤ 1.02; S² ≤ 1 + 0.5 q f + 0.03 with q the fraction of all blocks the sub-network "
        "passes computed (from the masks drawn: all but the dropped ones p, less the blocks before the first "
        "dropped one where the pass started there) and f the fraction of timed steps with a sub-network pass; "
        "RAAG + S²: S²'s bound + 0.02. The bound assumes a one-row pass through q of the blocks costs 0.5 q of "
        f"the batched two-row pass; the last table shows what it costs on this machine. {WHOLE}: a diagnostic, "
        "S² with its pass run whole as before prefix reuse (predicted fall: 1 − q / (1 − p)). \"(patch)\" rows: "
        "the MODEL patches under core's CFGGuider, as KSampler samples them.",
        f"- Peak memory: {memory_kind}, in an untimed run that also counts the model calls; Python heap: "
        f"`tracemalloc` peak of that run. Total peak: the same run's peak with the weights (on the GPU "
        "`torch.cuda.max_memory_allocated`, everything allocated). Memory fails when a total peak exceeds "
        f"CFGGuider's by more than {MEMORY_TOLERANCE:.0%}.",
        "",
    ])


def start_comfy(device: str | None) -> None:
    """Boots ComfyUI and the pack for a benchmark run: on ``device="cpu"`` CUDA is hidden before torch
    is imported (ComfyUI then runs --cpu); progress bars off."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""

    import comfy_env

    comfy_env.bootstrap()
    comfy_env.load_pack()
    import comfy.utils

    comfy.utils.PROGRESS_BAR_ENABLED = False


def main(argv=None) -> int:
    args = parse_args(argv)
    start_comfy(args.device)
    import comfy.model_management
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available")
    if args.real_size and args.device != "cuda":
        sys.exit("--real-size needs a CUDA device")
    if args.clock == "cpu" and args.device == "cuda":
        sys.exit("--clock cpu measures host CPU time; on a GPU use --clock wall")
    device = comfy.model_management.get_torch_device()
    if device.type != args.device:
        sys.exit(f"ComfyUI chose {device}, not {args.device}")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    command = shlex.join([os.path.relpath(sys.executable, REPO), os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    if os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    specs = REAL if args.real_size else MEDIUM
    load_before = os.getloadavg()[0]
    results = [bench_arch(specs[arch], args, device, dtype, ("whole", "patches")) for arch in args.archs]
    report = render(results, args, device, dtype, command, (load_before, os.getloadavg()[0]))
    print()
    print(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"wrote {args.out}")
    failed = [(res["spec"].arch, row["guider"]) for res in results for row in res["rows"]
              if not (row["time_ok"] and row["memory_ok"])]
    print("all targets met" if not failed else f"targets missed: {failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
