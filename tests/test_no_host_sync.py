"""The per-step path of our guiders never waits for the device (issue #5).

A host synchronisation per step (``.item()``, ``.cpu()``, ``.tolist()``, ``float(t)``, ``if t:``, boolean
masks...) stalls the GPU queue at every model call. ``sample()`` may read the (CPU) sigma schedule
once per run; nothing after that may read a device tensor on the host.

Two checks, both on real ComfyUI sampling of the tiny real-architecture models:

- CPU (always runs): while a guider samples, every host read of tensor values is intercepted, at the
  Python level (``Tensor.item``, ``.tolist``, ``.cpu``, ``.numpy``, ``__bool__``, ``__float__``,
  ``__int__``, ``__index__``, ``__array__``) and at the ATen level (a ``TorchDispatchMode``:
  ``_local_scalar_dense``, which backs item/bool/float/int, ``equal``, ``is_nonzero``, ``nonzero``,
  ``masked_select``, unique, boolean-mask indexing). A read fails the test when (1) the first caller
  outside torch is code in the pack's ``guiders/`` directory (ComfyUI's own code may do what it
  likes) and (2) the tensor would live on the GPU in a real run: the mode marks as "device" the
  sampler's ``x`` and ``sigma``, the conditioning, the model's parameters and buffers, and everything
  computed from them. Tensors our code creates from scratch on the host (the S² mask's ``randperm``
  with a CPU generator) may be read; ``Tensor.to(cpu)`` cannot be told from a no-op on a CPU-only
  machine and is left to the GPU check, as is a device tensor made from scratch inside the guider.
  The whole ``sample()`` run is checked (the engine's ``predict`` behind every guider node and model
  patch, the step callback, the S² hooks) except the once-per-run ``Run.start``.
- GPU (skipped without CUDA): the same runs with ``torch.cuda.set_sync_debug_mode("error")`` on while
  the engine's ``predict`` runs, and off inside the calls into ComfyUI (``calc_cond_batch``,
  ``cfg_function``), whose own model code may synchronise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import types
import weakref
from pathlib import Path

import comfy.model_patcher
import comfy.samplers
import pytest
import tiny_models
import torch
from raag_s2_guidance import guiders as pack_guiders
from raag_s2_guidance.guiders import (
    GuidanceGuider,
    RAAGConfig,
    S2Config,
    StepWindow,
    apply,
    engine,
    guidance_of,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GUIDERS_DIR = str(Path(pack_guiders.__file__).resolve().parent) + os.sep
TORCH_DIR = str(Path(torch.__file__).resolve().parent) + os.sep
THIS_FILE = str(Path(__file__).resolve())
STEPS = 6


class HostSyncError(AssertionError):
    pass


def _tensors_in(value, depth: int = 0):
    """Tensors in nested dicts / lists / tuples and in ComfyUI's CONDRegular-like objects (``.cond``)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif depth > 8:
        return
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item, depth + 1)
    elif hasattr(value, "cond"):
        yield from _tensors_in(value.cond, depth + 1)


def _first_caller_outside_torch(frame):
    """The first frame, from ``frame`` outwards, whose code is neither torch's nor this file's."""
    while frame is not None:
        filename = str(Path(frame.f_code.co_filename).resolve()) if frame.f_code.co_filename else ""
        if not (filename.startswith(TORCH_DIR) or filename == THIS_FILE):
            return frame, filename
        frame = frame.f_back
    return None, ""


class HostSyncCheck(TorchDispatchMode):
    """Marks device-resident tensors and fails on a host read of one from code in guiders/."""

    SYNC_OPS = {  # ATen ops whose result needs the tensor's values on the host
        "aten::_local_scalar_dense", "aten::item", "aten::equal", "aten::allclose", "aten::is_nonzero",
        "aten::nonzero", "aten::nonzero_static", "aten::masked_select", "aten::_unique", "aten::_unique2",
        "aten::unique_dim", "aten::unique_consecutive", "aten::unique_dim_consecutive",
    }
    TENSOR_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__", "__array__")

    def __init__(self):
        super().__init__()
        # id -> weak reference (a WeakSet would compare tensors with ==); a dead entry never matches
        self.device_tensors: dict[int, weakref.ref] = {}
        self.violations: list[str] = []
        self.host_reads: list[str] = []  # reads of host tensors by our code: allowed, kept for the tests
        self.suspended = 0

    # -- marking ---------------------------------------------------------------------------------
    def mark(self, *values) -> None:
        for t in _tensors_in(values):
            self.device_tensors[id(t)] = weakref.ref(t)

    def is_device(self, t) -> bool:
        ref = self.device_tensors.get(id(t)) if isinstance(t, torch.Tensor) else None
        return ref is not None and ref() is t

    # -- checking --------------------------------------------------------------------------------
    def check(self, what: str, tensors, frame) -> None:
        if self.suspended:
            return
        caller, filename = _first_caller_outside_torch(frame)
        if caller is None or not filename.startswith(GUIDERS_DIR):
            return
        where = f"{Path(filename).name}:{caller.f_lineno} in {caller.f_code.co_name}"
        if not any(self.is_device(t) for t in tensors):
            self.host_reads.append(f"{what} at {where}")
            return
        self.violations.append(f"{what} at {where}")
        raise HostSyncError(f"host synchronisation in the per-step path: {what} at {where}")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        name = func._schema.name
        bool_mask_index = name == "aten::index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in tree_flatten(args[1:])[0])
        tensor_repeats = (name == "aten::repeat_interleave" and func._overloadname in ("Tensor", "self_Tensor")
                          and kwargs.get("output_size") is None)
        if name in self.SYNC_OPS or bool_mask_index or tensor_repeats:
            self.check(name, inputs, sys._getframe(1))
        out = func(*args, **kwargs)
        if any(self.is_device(t) for t in inputs):
            self.mark(out)
        return out

    @contextlib.contextmanager
    def patched_tensor_methods(self):
        """Python-level host reads that never reach the dispatcher (tolist, numpy, cpu)."""
        originals = {name: getattr(torch.Tensor, name) for name in self.TENSOR_METHODS}
        own = {name for name in self.TENSOR_METHODS if name in torch.Tensor.__dict__}

        def make(name, original):
            def method(t, *args, **kwargs):
                self.check(f"Tensor.{name}", [t], sys._getframe(1))
                return original(t, *args, **kwargs)
            return method

        try:
            for name, original in originals.items():
                setattr(torch.Tensor, name, make(name, original))
            yield
        finally:
            for name, original in originals.items():
                if name in own:
                    setattr(torch.Tensor, name, original)
                else:  # inherited from torch._C.TensorBase: drop the override
                    delattr(torch.Tensor, name)

    @contextlib.contextmanager
    def suspend(self):
        self.suspended += 1
        try:
            yield
        finally:
            self.suspended -= 1


@contextlib.contextmanager
def checking_host_syncs(monkeypatch):
    """Runs the block under the check; the engine (behind the guider nodes and the model patches alike)
    is instrumented to mark its inputs as device tensors and to exempt the once-per-run ``Run.start``."""
    check = HostSyncCheck()
    original_predict = engine.predict
    original_start = engine.Run.start.__func__
    marked_models = set()

    def predict(guider, run, x, timestep, model_options={}, seed=None):  # noqa: B006 (core's signature)
        check.mark(x, timestep, guider.conds)
        if id(guider.inner_model) not in marked_models:  # weights and buffers (sigmas) live on the device too
            check.mark(list(guider.inner_model.parameters()), list(guider.inner_model.buffers()))
            marked_models.add(id(guider.inner_model))
        return original_predict(guider, run, x, timestep, model_options, seed)

    def start_run(cls, *args, **kwargs):
        with check.suspend():
            return original_start(cls, *args, **kwargs)

    monkeypatch.setattr(engine, "predict", predict)
    monkeypatch.setattr(engine.Run, "start", classmethod(start_run))
    with check.patched_tensor_methods(), check:
        yield check


# ------------------------------------------------------------------------------------------------
# The check itself can fail: a function whose code "lives" in guiders/ (its code object's filename
# is set there) reading a device tensor is caught; the same read from elsewhere, or of a host tensor,
# is not.

def _in_guiders(fn):
    """A copy of ``fn`` whose code object says it was compiled from a file in guiders/."""
    code = fn.__code__.replace(co_filename=GUIDERS_DIR + "_sync_probe.py")
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


HOST_READS = {
    "item": lambda t: t.sum().item(),
    "tolist": lambda t: t.tolist(),
    "cpu": lambda t: t.cpu(),
    "numpy": lambda t: t.numpy(),
    "bool": lambda t: bool(t.sum() > 0),
    "if": lambda t: 1 if t.sum() > 0 else 0,
    "float": lambda t: float(t.sum()),
    "int": lambda t: int(t.sum()),
    "index": lambda t: list(range(10))[t.sum().long()],
    "format": lambda t: f"{t.sum():.3f}",
    "equal": lambda t: torch.equal(t, t),
    "allclose": lambda t: torch.allclose(t, t),
    "nonzero": lambda t: t.nonzero(),
    "mask": lambda t: t[t > 0],
}


@pytest.mark.parametrize("read", sorted(HOST_READS))
def test_the_check_catches_a_host_read_from_guiders_code(read, monkeypatch):
    in_guiders = _in_guiders(HOST_READS[read])
    elsewhere = HOST_READS[read]
    with checking_host_syncs(monkeypatch) as check:
        device = torch.ones(3)
        check.mark(device)
        derived = device * 2  # computed from a device tensor: a device tensor too
        host = torch.ones(3)
        with pytest.raises(HostSyncError, match="_sync_probe.py"):
            in_guiders(derived)
        in_guiders(host)  # a host tensor may be read
        elsewhere(derived)  # ComfyUI's (or anyone else's) code is not ours to police
    assert len(check.violations) == 1
    assert "item" not in torch.Tensor.__dict__ and "__bool__" not in torch.Tensor.__dict__  # restored


# ------------------------------------------------------------------------------------------------
# Our guiders, sampling real tiny models.

def _patched(cfg: float, **methods):
    """KSampler's guider on a MODEL patched by the pack: core's CFGGuider over ``apply``'s clone."""
    def make(patcher):
        guider = comfy.samplers.CFGGuider(apply(patcher, **methods))
        guider.set_cfg(cfg)
        return guider
    return make


def _cases():
    window = StepWindow(0.2, 0.8)
    raag_window = StepWindow(0.0, 0.6)
    return {
        "raag_per_sample": lambda p: GuidanceGuider(
            p, cfg=4.0, raag=RAAGConfig(ratio_mode="per_sample", window=raag_window)),
        "raag_batch": lambda p: GuidanceGuider(p, cfg=4.0, raag=RAAGConfig(ratio_mode="batch", window=raag_window)),
        "raag_cfg1_outside_window": lambda p: GuidanceGuider(p, cfg=1.0, raag=RAAGConfig(window=StepWindow(0.3, 0.7))),
        "s2": lambda p: GuidanceGuider(p, cfg=4.0, s2=S2Config(window=window)),
        "raag_s2": lambda p: GuidanceGuider(p, cfg=4.0, raag=RAAGConfig(ratio_mode="batch"), s2=S2Config(window=window)),
        # the MODEL patches under KSampler's guider: the same engine, reached through core's CFGGuider
        "raag_patch": _patched(4.0, raag=RAAGConfig(window=raag_window)),
        "s2_patch": _patched(4.0, s2=S2Config(window=window)),
        "raag_s2_patch": _patched(4.0, raag=RAAGConfig(), s2=S2Config(window=window)),
    }


def trace_rows(guider) -> list[dict]:
    return guidance_of(guider.model_patcher).trace.rows()


GUIDER_CASES = sorted(_cases())
RUNS = [("sd3", case, sampler) for case in GUIDER_CASES for sampler in ("euler", "heun")] + [
    # the other block-dropping paths: two-stream dit patches, a 5-D latent, forward overrides
    ("flux", "raag_s2", "euler"), ("wan21", "raag_s2", "heun"), ("lumina2", "s2", "euler"), ("sd15", "s2", "euler"),
    ("flux", "raag_s2_patch", "euler"),
]


@pytest.mark.parametrize("arch,case,sampler", RUNS)
def test_no_host_sync_in_the_per_step_path(arch, case, sampler, monkeypatch):
    model = tiny_models.build(arch)
    guider = _cases()[case](model.patcher)
    guider.set_conds(model.positive, model.negative)
    with checking_host_syncs(monkeypatch) as check:
        out = tiny_models.sample(model, guider, sampler_name=sampler, steps=STEPS, seed=3)
    assert check.violations == []
    assert torch.isfinite(out).all()
    rows = trace_rows(guider)
    assert len(rows) >= STEPS  # it really sampled through the engine's predict
    if "s2" in case:
        assert any(r["dropped"] for r in rows) and not all(r["dropped"] for r in rows)  # inside and outside
        # the S² mask is drawn on the host (CPU generator): the check saw that read and allowed it
        assert any(read.startswith("Tensor.tolist at s2.py") for read in check.host_reads), check.host_reads


def _syncing(original):
    """``original`` plus the kind of host read a careless edit might add, as code of guiders/."""
    def syncing(*args, **kwargs):
        out = original(*args, **kwargs)
        float(out.flatten()[0])
        return out
    return _in_guiders(syncing)


@pytest.mark.parametrize("target,case", [("guidance_ratio", "raag_per_sample"), ("s2_term", "s2")])
def test_a_sync_added_to_our_per_step_code_is_caught(target, case, monkeypatch):
    """The real sampling path hands our code tensors the check knows are device tensors."""
    monkeypatch.setattr(engine, target, _syncing(getattr(engine, target)))
    model = tiny_models.build("sd3")
    guider = _cases()[case](model.patcher)
    guider.set_conds(model.positive, model.negative)
    with checking_host_syncs(monkeypatch) as check, pytest.raises(HostSyncError, match="_sync_probe.py"):
        tiny_models.sample(model, guider, steps=STEPS, seed=3)
    assert len(check.violations) == 1


# ------------------------------------------------------------------------------------------------
# GPU: CUDA's own sync detector.

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="needs a CUDA device (torch.cuda.set_sync_debug_mode)")


@contextlib.contextmanager
def cuda_sync_errors_in_our_code(monkeypatch):
    """set_sync_debug_mode("error") while the engine's predict runs (every guider node and model patch), except
    inside ComfyUI's calc_cond_batch and cfg_function (the model, ComfyUI's memory queries and hooks)."""
    state = {"depth": 0}

    def set_mode():
        torch.cuda.set_sync_debug_mode("error" if state["depth"] > 0 else 0)

    original_predict = engine.predict

    def predict(*args, **kwargs):
        state["depth"] += 1
        set_mode()
        try:
            return original_predict(*args, **kwargs)
        finally:
            state["depth"] -= 1
            set_mode()

    def comfy_call(fn):
        def call(*args, **kwargs):
            saved, state["depth"] = state["depth"], 0
            set_mode()
            try:
                return fn(*args, **kwargs)
            finally:
                state["depth"] = saved
                set_mode()
        return call

    monkeypatch.setattr(engine, "predict", predict)
    monkeypatch.setattr(comfy.samplers, "calc_cond_batch", comfy_call(comfy.samplers.calc_cond_batch))
    monkeypatch.setattr(comfy.samplers, "cfg_function", comfy_call(comfy.samplers.cfg_function))
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


def _on_gpu(model):
    patcher = comfy.model_patcher.ModelPatcher(model.patcher.model, load_device=torch.device("cuda"),
                                               offload_device=torch.device("cpu"))
    return dataclasses.replace(model, patcher=patcher)


@requires_cuda
def test_cuda_sync_debug_mode_catches_a_sync():
    t = torch.ones(3, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError, match="synchroniz"):
            t.sum().item()
    finally:
        torch.cuda.set_sync_debug_mode(0)


@requires_cuda
def test_cuda_sync_in_our_per_step_code_is_caught(monkeypatch):
    monkeypatch.setattr(engine, "guidance_ratio", _syncing(engine.guidance_ratio))
    model = _on_gpu(tiny_models.build("sd3"))
    guider = _cases()["raag_per_sample"](model.patcher)
    guider.set_conds(model.positive, model.negative)
    with cuda_sync_errors_in_our_code(monkeypatch), pytest.raises(RuntimeError, match="synchroniz"):
        tiny_models.sample(model, guider, steps=STEPS, seed=3)


@requires_cuda
def test_no_cuda_sync_in_the_engines_predict(monkeypatch):
    for arch, case, sampler in RUNS:  # one test (one skip line on CPU machines) for all the runs
        model = _on_gpu(tiny_models.build(arch))
        guider = _cases()[case](model.patcher)
        guider.set_conds(model.positive, model.negative)
        tiny_models.sample(model, guider, sampler_name=sampler, steps=2, seed=3)  # warm-up: lazy CUDA init
        with cuda_sync_errors_in_our_code(monkeypatch):
            out = tiny_models.sample(model, guider, sampler_name=sampler, steps=STEPS, seed=3)
        assert torch.isfinite(out).all(), (arch, case, sampler)
    assert len(trace_rows(guider)) >= STEPS
