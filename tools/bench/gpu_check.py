"""The GPU check (issue #15): the CUDA-only checks and the real-size overhead table, in one prepared run.

    make gpu-check                                   # set-up, then the full check on the CUDA device
    make gpu-check GPU_ARGS="--archs sd3,wan21"      # options pass through GPU_ARGS
    .venv/bin/python tools/bench/gpu_check.py --quick   # the same script on tiny models on the CPU (seconds)

Writes ``gpu_check.md`` and ``gpu_check.json`` under ``--out`` (default ``output/gpu_check/``), after every
section, so a run stopped at its time limit still leaves what it measured. Three sections:

1. **No host synchronisation in the per-step path.** ``tests/test_no_host_sync.py``'s own checks, imported
   from it (not copied): CUDA's sync detector (``torch.cuda.set_sync_debug_mode("error")`` while the
   engine's ``predict`` runs, off inside ComfyUI's ``calc_cond_batch`` / ``cfg_function``) on every guider
   and model-patch configuration and architecture that test lists, its tiny models moved to the GPU; and the host-read
   interception (``HostSyncCheck``, device independent). Each check first proves it can fail: a host read
   added to ``guidance_ratio`` must be caught. Without a CUDA device the CUDA part is reported as
   "not run: no CUDA device".
2. **Overhead over CFGGuider at real sizes** (random weights, bf16): SD3.5-Large's MMDiT (38 blocks, hidden
   2432) at 1024², Flux.1-dev's size (19 + 38 blocks) at 1024², Wan 2.1 1.3B at 480p x 33 frames
   (``--archs wan21_14b`` adds the 14B; not in the default set: it alone would take most of the time).
   ``tools/bench/bench_overhead.py`` does the measuring (``bench_arch``: guiders alternating in one process,
   per-step wall time and its ratio to CFGGuider's, model calls per step, ``torch.cuda.max_memory_allocated``
   per guider) and its full report is appended; its bound for S² is the one judged here.
3. **S² at real depth**: the sub-network deviation ``||D_sub - D_c|| / ||D_c - D_u||`` over the S² passes,
   and the cost of one sub-network pass over one batched CFG pass, against the ``0.5 (1 - p)`` the bound
   assumes.

Targets: RAAG <= 1.02x CFGGuider; S² <= 1 + 0.5 (1 - p) f + 0.03 (RAAG + S²: + 0.02 more); peak memory
of every guider within 1 % of CFGGuider's; no host sync. ``--quick`` (tiny models, CPU) exercises every code
path in CI-sized time; its timings are not the targets' measure (Python overhead dominates a tiny model's
step), so there the timing and memory targets are reported but not judged.

Time on one H200 (estimate, never measured): ~1 min of checks and warm-up plus 1-2 min per architecture
with the defaults (6 steps, 3 repeats); ``--budget-s`` (default 420) skips an architecture that would
start past that many seconds after the one before it took as long again. The exit status is 0 when every
section ran (missed targets are results, listed under "Targets"), 1 when a section failed to run, 2 when
the full check finds no CUDA device.

On a machine without the package index (e.g. an image with a CUDA torch): run
``python3 tools/bench/gpu_check.py`` with the provisioned ``.cache/ComfyUI`` present and ComfyUI's pure-Python
needs (e.g. ``torchsde``) installed; ``make gpu-check`` runs the set-up first, which needs the index.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import bench_overhead as bo  # noqa: E402  (imports no torch at module level)

DEFAULT_OUT = REPO / "output" / "gpu_check"
NOT_RUN_NO_CUDA = "not run: no CUDA device"
S2_GUIDERS = ("S²", "S² [0.2, 0.8]", "RAAG + S²")

# The real sizes are bench_overhead's; the 14B is an extra here (40 blocks, dim 5120).
REAL = dict(bo.REAL)
REAL["wan21_14b"] = bo.ModelSpec("wan21", "Wan 2.1 14B (40 blocks, dim 5120), 832x480 x 33 frames", "WAN21_T2V",
                                 bo._wan_config(5120, 13824, 40, 40, 4096), (16, 9, 60, 104), 512, 4096)
# --quick: the same classes at test size (a CFG step is a few ms on one CPU core).
QUICK = {
    "sd3": bo.ModelSpec("sd3", "SD3 MMDiT, 3 blocks, hidden 192 (quick)", "SD3", bo._sd3_config(3, 32, 32, 16),
                        (16, 8, 8), 8, 32, {"pooled_output": (32,)}),
    "flux": bo.ModelSpec("flux", "Flux, 2 + 4 blocks, hidden 64 (quick)", "Flux",
                         bo._flux_config(64, 2, 4, [8, 12, 12], 32, 32), (16, 8, 8), 8, 32,
                         {"pooled_output": (32,)}),
    "wan21": bo.ModelSpec("wan21", "Wan 2.1, 4 blocks, dim 64 (quick)", "WAN21_T2V", bo._wan_config(64, 128, 2, 4, 32),
                          (16, 2, 8, 8), 8, 32),
}
DEFAULT_ARCHS = "sd3,flux,wan21"
# The host-read interception in --quick: one run per guider (the full check runs all of the test's RUNS).
QUICK_SYNC_RUNS = [("sd3", "raag_per_sample", "euler"), ("sd3", "s2", "euler"), ("flux", "raag_s2", "euler"),
                   ("sd3", "raag_s2_patch", "euler")]


S2_LIMIT = 1.38  # S² at most 1.38x CFGGuider at real sizes (prefix reuse; the S² paper reports +38 %)
SUITE_LIMIT_S = 180
# The in-process test files (no server, no browser; test_gpu_check would run this script again).
SUITE_FILES = sorted(p.name for p in (REPO / "tests").glob("test_*.py")
                     if p.name not in {"test_browser.py", "test_e2e_server.py", "test_demo_workflow.py",
                                       "test_node_help.py", "test_subgraphs.py", "test_workflows.py",
                                       "test_gpu_check.py"})

PATCHES_COVERED = ("MODEL-patch nodes: covered. They run the same engine as the guider nodes (its `predict`, "
                   "which these checks instrument) under core's CFGGuider, as KSampler samples them: the `*_patch` "
                   "rows.")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny models (CPU unless --device cuda): every code path in seconds; timings not judged")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda for the full check, cpu with --quick")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (gpu_check.md, gpu_check.json)")
    parser.add_argument("--archs", default=DEFAULT_ARCHS,
                        help=f"comma-separated, from: {', '.join(REAL)} (--quick: {', '.join(QUICK)})")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps per timed run (default 6; quick 4)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per guider (default 3; quick 1)")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="skip an architecture that would likely end past this many seconds")
    parser.add_argument("--skip-sync", action="store_true", help="leave out section 1")
    parser.add_argument("--skip-suite", action="store_true", help="leave out section 4")
    parser.add_argument("--suite-only", action="store_true", help="section 4 alone")
    parser.add_argument("--suite-limit-s", type=float, default=float(SUITE_LIMIT_S),
                        help="section 4 stops the suite after this many seconds (what ran is reported)")
    parser.add_argument("--suite-workers", type=int, default=8, help="pytest-xdist workers of section 4")
    parser.add_argument("--whole", action="store_true",
                        help="also time S² with its sub-network pass run whole (as before prefix reuse)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.quick else "cuda")
    if not args.quick and args.device == "cpu":
        parser.error("the full check needs --device cuda (the real-size models do not fit a CPU run); use --quick")
    args.steps = args.steps or (4 if args.quick else 6)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    specs = QUICK if args.quick else REAL
    unknown = [a for a in args.archs if a not in specs]
    if unknown:
        parser.error(f"unknown --archs {unknown}; choose from {sorted(specs)}")
    if args.steps < 3:
        parser.error("--steps must be >= 3")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


# ----------------------------------------------------------------------------------------------------
# Section 1: host synchronisation (the checks of tests/test_no_host_sync.py, imported from it)


def _sync_module():
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import test_no_host_sync  # the same module pytest collects (tests/ has no __init__.py)

    return test_no_host_sync


def _where(exc: BaseException) -> str:
    """The exception, with the innermost frame of the pack's guiders/ it passed through."""
    import raag_s2_guidance.guiders as pack_guiders

    guiders_dir = str(Path(pack_guiders.__file__).resolve().parent)
    ours = [f for f in traceback.extract_tb(exc.__traceback__) if str(Path(f.filename).resolve()).startswith(guiders_dir)]
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    if ours:
        text += f" (at {Path(ours[-1].filename).name}:{ours[-1].lineno} in {ours[-1].name})"
    return text[:300]


def _guider(sync, arch: str, case: str, on_gpu: bool):
    import tiny_models

    model = tiny_models.build(arch)
    if on_gpu:
        model = sync._on_gpu(model)
    guider = sync._cases()[case](model.patcher)
    guider.set_conds(model.positive, model.negative)
    return model, guider


def cuda_sync_checks(runs) -> list[dict]:
    """``set_sync_debug_mode("error")`` around our per-step code; first the two controls (it can fail)."""
    import pytest
    import tiny_models
    import torch
    from raag_s2_guidance.guiders import engine

    sync = _sync_module()
    rows = []

    def record(check, arch, case, sampler, fn, expect_error: bool):
        started = time.perf_counter()
        try:
            fn()
            result = "FAIL: no error raised (the check cannot fail)" if expect_error else "pass"
        except RuntimeError as exc:
            if expect_error and "synchroniz" in str(exc):
                result = "pass (caught: " + _where(exc) + ")"
            else:
                result = "FAIL: " + _where(exc)
        except Exception as exc:  # noqa: BLE001 (a broken run is a result of the check)
            result = "FAIL: " + _where(exc)
        rows.append(dict(check=check, arch=arch, guider=case, sampler=sampler, result=result,
                         seconds=round(time.perf_counter() - started, 2)))

    def control_item():
        t = torch.ones(3, device="cuda")
        torch.cuda.set_sync_debug_mode("error")
        try:
            t.sum().item()
        finally:
            torch.cuda.set_sync_debug_mode(0)

    record("control: the sync detector raises on .item()", "—", "—", "—", control_item, True)

    def control_injected():
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(engine, "guidance_ratio", sync._syncing(engine.guidance_ratio))
            model, guider = _guider(sync, "sd3", "raag_per_sample", True)
            with sync.cuda_sync_errors_in_our_code(mp):
                tiny_models.sample(model, guider, steps=sync.STEPS, seed=3)

    record("control: a sync added to guidance_ratio is caught", "sd3", "raag_per_sample", "euler",
           control_injected, True)

    for arch, case, sampler in runs:
        def run(arch=arch, case=case, sampler=sampler):
            model, guider = _guider(sync, arch, case, True)
            tiny_models.sample(model, guider, sampler_name=sampler, steps=2, seed=3)  # warm-up: lazy CUDA init
            with pytest.MonkeyPatch.context() as mp, sync.cuda_sync_errors_in_our_code(mp):
                out = tiny_models.sample(model, guider, sampler_name=sampler, steps=sync.STEPS, seed=3)
            if not bool(torch.isfinite(out).all()):
                raise ValueError("non-finite output")
            if len(sync.trace_rows(guider)) < sync.STEPS:
                raise ValueError("the engine's predict did not run every step")

        record("no CUDA sync in the engine's predict", arch, case, sampler, run, False)
    return rows


def host_read_checks(runs) -> list[dict]:
    """``HostSyncCheck`` (host reads of device tensors from guiders/ code), first its control."""
    import pytest
    import tiny_models
    from raag_s2_guidance.guiders import engine

    sync = _sync_module()
    rows = []

    def control():
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(engine, "guidance_ratio", sync._syncing(engine.guidance_ratio))
            model, guider = _guider(sync, "sd3", "raag_per_sample", False)
            try:
                with sync.checking_host_syncs(mp):
                    tiny_models.sample(model, guider, steps=sync.STEPS, seed=3)
            except sync.HostSyncError as exc:
                return "pass (caught: " + str(exc).splitlines()[0][:200] + ")"
        return "FAIL: the injected host read was not caught (the check cannot fail)"

    def run(arch, case, sampler):
        model, guider = _guider(sync, arch, case, False)
        with pytest.MonkeyPatch.context() as mp:
            try:
                with sync.checking_host_syncs(mp) as check:
                    tiny_models.sample(model, guider, sampler_name=sampler, steps=sync.STEPS, seed=3)
            except sync.HostSyncError as exc:
                return "FAIL: " + str(exc).splitlines()[0][:200]
        if check.violations:
            return "FAIL: " + "; ".join(check.violations)[:200]
        if len(sync.trace_rows(guider)) < sync.STEPS:
            return "FAIL: the engine's predict did not run every step"
        return "pass"

    jobs = [("control: a host read added to guidance_ratio is caught", "sd3", "raag_per_sample", "euler", control)]
    jobs += [("no host read of a device tensor", a, c, s, lambda a=a, c=c, s=s: run(a, c, s)) for a, c, s in runs]
    for check, arch, case, sampler, fn in jobs:
        started = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001
            result = "FAIL: " + _where(exc)
        rows.append(dict(check=check, arch=arch, guider=case, sampler=sampler, result=result,
                         seconds=round(time.perf_counter() - started, 2)))
    return rows


# ----------------------------------------------------------------------------------------------------
# Section 4: the in-process suite with the tiny models on the CUDA device

def suite_on_cuda(out_dir: Path, limit_s: float, workers: int) -> dict:
    """``pytest -n workers -v`` of ``SUITE_FILES`` with ``TINY_MODELS_DEVICE=cuda`` and one torch thread per
    worker (tools/runtime/comfy_env.py: without that, every worker's CPU work takes every core). Stopped
    after ``limit_s``; the verbose lines say what ran, passed and failed, also then."""
    import re
    import subprocess

    env = dict(os.environ, TINY_MODELS_DEVICE="cuda", OMP_NUM_THREADS="1", TORCH_CPP_LOG_LEVEL="ERROR")
    command = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-n", str(workers),
               *[f"tests/{name}" for name in SUITE_FILES]]
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit_s)
        output, complete = proc.stdout + proc.stderr, True
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        complete = False
    seconds = time.perf_counter() - started
    (out_dir / "suite.log").write_text(output)
    # one verdict per test (the summary at the end repeats the failures)
    results = dict((test, kind) for kind, test in re.findall(
        r"\b(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (tests/\S+)", output))
    count = {kind: sum(1 for k in results.values() if k == kind) for kind in ("PASSED", "FAILED", "ERROR", "SKIPPED")}
    failures = [test for test, kind in results.items() if kind in ("FAILED", "ERROR")]
    return dict(status="run" if complete else f"stopped after {limit_s:.0f} s", complete=complete,
                seconds=seconds, workers=workers, files=SUITE_FILES, passed=count["PASSED"],
                failed=count["FAILED"], errors=count["ERROR"], skipped=count["SKIPPED"], failures=failures[:50],
                tail=output[-2000:])


def _suite_section(suite: dict | None) -> list[str]:
    lines = ["## 4. The in-process suite on the CUDA device", ""]
    if not suite or suite["status"].startswith("not run"):
        return lines + [suite["status"] if suite else "not run"]
    lines += [f"`pytest -n {suite['workers']}` of {len(suite['files'])} files with the tiny models on the GPU "
              f"(`TINY_MODELS_DEVICE=cuda`), one torch thread per worker: {suite['status']}, "
              f"{suite['seconds']:.0f} s; {suite['passed']} passed, {suite['failed']} failed, {suite['errors']} "
              f"errors, {suite['skipped']} skipped. Log: `suite.log` beside this report."]
    lines += [f"- failed: `{test}`" for test in suite["failures"]]
    return lines


# ----------------------------------------------------------------------------------------------------
# Sections 2 and 3: overhead (bench_overhead.bench_arch) and S² at depth


def _row_json(row: dict, cfg_peak: int, cfg_total: int) -> dict:
    pr = row["probe"]
    return dict(
        guider=row["guider"], ms_per_step=row["ms"], ratio_to_cfg=row["ratio"], bound=row["bound"],
        per_repeat_ratio=[row["low"], row["high"]], model_ms_per_step=row["model_ms"],
        outside_model_ms_per_step=row["outside_ms"], calls_per_step=pr.calls_per_step,
        rows_per_step=pr.rows_per_step, p=pr.p, f=pr.f, peak_memory_bytes=pr.peak_bytes,
        peak_memory_vs_cfg=(pr.peak_bytes / cfg_peak - 1.0) if cfg_peak else None,
        total_peak_memory_bytes=pr.total_peak_bytes,
        total_peak_memory_vs_cfg=(pr.total_peak_bytes / cfg_total - 1.0) if cfg_total else None,
        q=pr.q, reused=pr.reused, python_heap_peak_bytes=pr.python_peak_bytes, finite=pr.finite,
        deviation=list(pr.deviation) if pr.deviation else None,
        time_ok=row["time_ok"], memory_ok=row["memory_ok"],
    )


def overhead(specs: dict, args, device, dtype, state: dict, write) -> list[dict]:
    import torch

    bargs = bo.parse_args(["--device", device.type, "--steps", str(args.steps), "--repeats", str(args.repeats),
                           "--seed", str(args.seed)])
    entries, raw = [], []
    last_seconds = 0.0
    for key in args.archs:
        spec = specs[key]
        elapsed = time.perf_counter() - state["started"]
        if not args.quick and elapsed + last_seconds > args.budget_s:
            entries.append(dict(arch=key, label=spec.label, status=f"not run: time budget ({elapsed:.0f} s spent, "
                                f"the last architecture took {last_seconds:.0f} s, --budget-s {args.budget_s:g})"))
            continue
        try:
            res = bo.bench_arch(spec, bargs, device, dtype, ("whole", "patches") if args.quick or args.whole
                                else ("patches",))
        except Exception as exc:  # noqa: BLE001 (e.g. out of memory: report it, go on with the next)
            traceback.print_exc()
            entries.append(dict(arch=key, label=spec.label, status="error: " + _where(exc)))
            if device.type == "cuda":
                torch.cuda.empty_cache()
            write()
            continue
        last_seconds = res["seconds"]
        raw.append(res)
        cfg_peak, cfg_total = res["rows"][0]["probe"].peak_bytes, res["rows"][0]["probe"].total_peak_bytes
        s2 = res["rows"][[r["guider"] for r in res["rows"]].index("S²")]["probe"]
        entries.append(dict(
            arch=key, label=spec.label, status="run", seconds=res["seconds"], parameters=res["params"],
            blocks=res["total_blocks"], image_tokens=res["tokens"], latent=list(spec.latent),
            rows=[_row_json(row, cfg_peak, cfg_total) for row in res["rows"]],
            s2_depth=dict(blocks=res["total_blocks"], p=s2.p, dropped_per_pass=(s2.p or 0.0) * res["total_blocks"],
                          q=s2.q, reused=s2.reused, deviation=list(s2.deviation) if s2.deviation else None,
                          batched_pass_ms=res["full_ms"], sub_pass_ms=res["sub_ms"],
                          sub_over_batched=res["sub_ms"] / res["full_ms"] if res["full_ms"] else None,
                          assumed_by_bound=res["ideal_sub"], whole_sub_pass_ms=res["sub_whole_ms"],
                          assumed_without_reuse=res["ideal_sub_whole"]),
        ))
        state["overhead"], state["raw"] = entries, raw
        write()
    return entries


def targets(state: dict) -> list[dict]:
    out = []
    judged = not state["quick"]
    sync_rows = state["sync"]["cuda"]["checks"] + state["sync"]["host_reads"]
    if state["sync"]["status"] != "skipped":
        failed = [r for r in sync_rows if r["result"].startswith("FAIL")]
        cuda_run = state["sync"]["cuda"]["status"] == "run"
        out.append(dict(target="no host sync in the per-step path", model="tiny models, every guider",
                        value=f"{len(sync_rows) - len(failed)} / {len(sync_rows)} checks pass"
                        + ("" if cuda_run else f"; CUDA sync detector {state['sync']['cuda']['status']}"),
                        limit="all pass", result="pass" if not failed else "miss"))
    for entry in state["overhead"]:
        if entry["status"] != "run":
            out.append(dict(target="overhead", model=entry["arch"], value=entry["status"], limit="—",
                            result="not run"))
            continue
        for row in entry["rows"]:
            if row["guider"] in ("CFGGuider", bo.CONTROL):
                continue
            if row["bound"] is not None:
                out.append(dict(target=f"{row['guider']} time × CFGGuider", model=entry["arch"],
                                value=f"{row['ratio_to_cfg']:.3f}", limit=f"≤ {row['bound']:.3f}",
                                result=("pass" if row["time_ok"] else "miss") if judged else "not judged (quick)"))
            out.append(dict(target=f"{row['guider']} total peak memory vs CFGGuider", model=entry["arch"],
                            value=_pct(row["total_peak_memory_vs_cfg"]), limit=f"≤ +{bo.MEMORY_TOLERANCE:.0%}",
                            result=("pass" if row["memory_ok"] else "miss") if judged else "not judged (quick)"))
        rows = {row["guider"]: row for row in entry["rows"]}
        if {"S²", "RAAG + S²"} <= set(rows):
            gap = rows["RAAG + S²"]["ratio_to_cfg"] - rows["S²"]["ratio_to_cfg"]
            out.append(dict(target="RAAG + S² time − S² time (× CFGGuider)", model=entry["arch"], value=f"{gap:+.3f}",
                            limit="≤ +0.020", result=("pass" if gap <= 0.02 else "miss") if judged else
                            "not judged (quick)"))
        if "S²" in rows:
            out.append(dict(target="S² time × CFGGuider", model=entry["arch"], value=f"{rows['S²']['ratio_to_cfg']:.3f}",
                            limit=f"≤ {S2_LIMIT:.2f}", result=("pass" if rows["S²"]["ratio_to_cfg"] <= S2_LIMIT else "miss")
                            if judged else "not judged (quick)"))
    suite = state.get("suite")
    if suite and suite["status"] == "run":
        out.append(dict(target="in-process suite on the CUDA device", model="tiny models on cuda",
                        value=f"{suite['passed']} passed, {suite['failed']} failed, {suite['errors']} errors, "
                        f"{suite['skipped']} skipped in {suite['seconds']:.0f} s",
                        limit=f"none failing, < {SUITE_LIMIT_S} s",
                        result="pass" if suite["failed"] == suite["errors"] == 0 and suite["complete"] else "miss"))
    return out


# ----------------------------------------------------------------------------------------------------
# Report


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:+.2f} %"


def _fmt(value, spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def _sync_table(rows: list[dict]) -> list[str]:
    lines = ["| check | model | guider | sampler | result | s |", "|---|---|---|---|---|---:|"]
    lines += [f"| {r['check']} | {r['arch']} | {r['guider']} | {r['sampler']} | {r['result']} | {r['seconds']:.1f} |"
              for r in rows]
    return lines


def render(state: dict) -> str:
    quick = state["quick"]
    lines = [
        f"# GPU check ({'quick: tiny models' if quick else 'full: real sizes'}, {state['device']})",
        "",
        f"- Machine: {state['machine']}; torch {state['torch']}; ComfyUI {state['comfyui']}; Python "
        f"{state['python']}; dtype {state['dtype']}.",
        f"- Command: `{state['command']}`; {state['started_at']}; {state['seconds']:.0f} s; commit "
        f"`{state.get('commit') or 'unknown'}`.",
        f"- {state['steps']} steps per timed run, {state['repeats']} repeats per guider (alternating).",
    ]
    if quick:
        lines.append("- Quick mode: tiny models, so Python overhead dominates every step; the timing and memory "
                     "targets are reported but not judged. It checks that every part of the GPU run works.")
    lines += ["", "## 1. No host synchronisation in the per-step path", ""]
    sync = state["sync"]
    if sync["status"] == "skipped":
        lines += ["not run: --skip-sync", ""]
    else:
        lines += ["### CUDA sync detector (`torch.cuda.set_sync_debug_mode(\"error\")`)", ""]
        lines += _sync_table(sync["cuda"]["checks"]) if sync["cuda"]["status"] == "run" else [sync["cuda"]["status"]]
        lines += ["", "### Host-read interception (`tests/test_no_host_sync.py`'s `HostSyncCheck`)", ""]
        lines += _sync_table(sync["host_reads"])
        lines += ["", PATCHES_COVERED, ""]
    lines += ["## 2. Overhead over CFGGuider", ""]
    table = ["| model | guider | ms / step | × CFGGuider | bound | model calls (rows) / step | p | q | f "
             "| peak memory above weights | vs CFGGuider | total peak (weights included) | vs CFGGuider | result |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    notes = []
    for entry in state["overhead"]:
        if entry["status"] != "run":
            notes.append(f"- {entry['arch']} ({entry['label']}): {entry['status']}")
            continue
        for row in entry["rows"]:
            if row["guider"] == "CFGGuider":
                result = "reference"
            elif row["guider"] == bo.CONTROL:
                result = "noise check (ideal 1.000)"
            elif quick:
                result = "not judged (quick)"
            else:
                missed = [w for w, ok in (("time", row["time_ok"]), ("memory", row["memory_ok"])) if not ok]
                result = "pass" if not missed else "**miss** (" + ", ".join(missed) + ")"
            table.append(
                f"| {entry['arch']} | {row['guider']} | {row['ms_per_step']:.1f} | {row['ratio_to_cfg']:.3f} "
                f"| {'—' if row['bound'] is None else format(row['bound'], '.3f')} "
                f"| {row['calls_per_step']:.2f} ({row['rows_per_step']:.2f}) | {_fmt(row['p'], '.3f')} "
                f"| {_fmt(row['q'], '.3f')} | {_fmt(row['f'], '.2f')} | {row['peak_memory_bytes'] / 2**20:.1f} MiB "
                f"| {_pct(row['peak_memory_vs_cfg'])} | {row['total_peak_memory_bytes'] / 2**30:.2f} GiB "
                f"| {_pct(row['total_peak_memory_vs_cfg'])} | {result} |")
    lines += table + [""] + notes + ([""] if notes else [])
    lines += ["## 3. S² at real depth" + (" (quick: tiny depth)" if quick else ""), "",
              "| model | blocks | p | blocks dropped / pass | q | passes reused | deviation: median (min–max) "
              "| batched CFG pass, ms | sub-network pass, ms | sub / batched | the masks' bound: 0.5 q "
              "| without reuse: 0.5 (1 − p) | whole pass, ms |",
              "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for entry in state["overhead"]:
        if entry["status"] != "run":
            continue
        d = entry["s2_depth"]
        dev = d["deviation"]
        dev_text = "—" if not dev else f"{dev[0]:.3f} ({dev[1]:.3f}–{dev[2]:.3f})"
        lines.append(f"| {entry['arch']} | {d['blocks']} | {_fmt(d['p'], '.3f')} | {d['dropped_per_pass']:.1f} "
                     f"| {_fmt(d['q'], '.3f')} | {_pct(d['reused'])} | {dev_text} | {d['batched_pass_ms']:.2f} "
                     f"| {d['sub_pass_ms']:.2f} | {_fmt(d['sub_over_batched'], '.3f')} | {d['assumed_by_bound']:.3f} "
                     f"| {d['assumed_without_reuse']:.3f} | {_fmt(d['whole_sub_pass_ms'], '.2f')} |")
    lines += ["", "Deviation: `||D_sub − D_c|| / ||D_c − D_u||` per S² pass (the S² term relative to the CFG "
              "signal). q: the fraction of the blocks the sub-network passes computed, from the masks drawn (all "
              "but the dropped ones, less the blocks before the first dropped one where the pass started there: "
              "prefix reuse). Pass times: in-model time (CUDA events on a GPU), the batched pass's median and the "
              "sub-network passes' mean (their length varies with each step's mask). Whole pass: S² with its "
              "pass run whole, as before prefix reuse (only with --whole, and in --quick).", "",
              *_suite_section(state.get("suite")), "",
              "## Targets", "", "| target | model | value | limit | result |", "|---|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['model']} | {t['value']} | {t['limit']} | {t['result']} |"
              for t in state["targets"]]
    if state.get("bench_report"):
        lines += ["", "## bench_overhead's full report", ""]
        if quick:
            lines += ["(Its pass / FAIL column judges tiny-model timings, which are not the targets' measure: "
                      "ignore it in quick mode.)", ""]
        lines += [state["bench_report"].replace("## Overhead", "### Overhead")]
    return "\n".join(lines) + "\n"


def _git_commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _json_ready(state: dict) -> dict:
    return {k: v for k, v in state.items() if k not in ("raw", "started", "bench_report")}


def main(argv=None) -> int:
    args = parse_args(argv)
    bo.start_comfy(args.device)
    import comfy.model_management
    import comfy_env
    import torch

    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    device = comfy.model_management.get_torch_device()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    command = shlex.join([os.path.relpath(sys.executable, REPO), os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    state = dict(
        mode="quick" if args.quick else "full", quick=args.quick, device=str(device),
        machine=bo._machine(device), torch=torch.__version__, comfyui=comfy_env.comfy_version(),
        python=platform.python_version(), dtype=str(dtype).removeprefix("torch."), command=command,
        started_at=time.strftime("%Y-%m-%d %H:%M:%S %Z"), started=time.perf_counter(), seconds=0.0,
        commit=os.environ.get("GPU_CHECK_COMMIT") or _git_commit(),
        steps=args.steps, repeats=args.repeats, archs=args.archs,
        sync=dict(status="skipped", cuda=dict(status="skipped", checks=[]), host_reads=[]),
        overhead=[], targets=[], errors=[], all_targets_met=None,
    )
    md_path, json_path = out_dir / "gpu_check.md", out_dir / "gpu_check.json"

    def write():
        state["seconds"] = time.perf_counter() - state["started"]
        state["targets"] = targets(state)
        judged = [t for t in state["targets"] if t["result"] in ("pass", "miss")]
        state["all_targets_met"] = None if args.quick else (  # quick: timings are not judged
            bool(judged) and all(t["result"] == "pass" for t in judged)
            and not any(t["result"] == "not run" for t in state["targets"]))
        md_path.write_text(render(state))
        json_path.write_text(json.dumps(_json_ready(state), indent=2, default=str) + "\n")

    if args.device == "cuda" and (not cuda or device.type != "cuda"):
        state["sync"]["cuda"]["status"] = NOT_RUN_NO_CUDA
        state["errors"].append(f"--device cuda: {NOT_RUN_NO_CUDA} (torch {torch.__version__}); use --quick on a CPU")
        for key in args.archs:
            state["overhead"].append(dict(arch=key, label=REAL[key].label, status=NOT_RUN_NO_CUDA))
        write()
        print(f"{NOT_RUN_NO_CUDA}: the full check needs one (--quick runs the CPU mode); wrote {md_path}")
        return 2

    sync = _sync_module() if not (args.skip_sync or args.suite_only) else None
    if sync is not None:
        print("== 1. host synchronisation checks", flush=True)
        runs = list(sync.RUNS) if not args.quick else QUICK_SYNC_RUNS
        state["sync"]["status"] = "run"
        try:
            if cuda and device.type == "cuda":
                state["sync"]["cuda"] = dict(status="run", checks=cuda_sync_checks(runs))
            else:
                state["sync"]["cuda"] = dict(status=NOT_RUN_NO_CUDA, checks=[])
            state["sync"]["host_reads"] = host_read_checks(runs)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            state["errors"].append("sync checks: " + _where(exc))
        finally:
            with contextlib.suppress(Exception):
                torch.cuda.set_sync_debug_mode(0) if cuda else None
        write()
        for row in state["sync"]["cuda"]["checks"] + state["sync"]["host_reads"]:
            print(f"   {row['check']} [{row['arch']} {row['guider']} {row['sampler']}]: {row['result']}")
        if state["sync"]["cuda"]["status"] != "run":
            print(f"   CUDA sync detector: {state['sync']['cuda']['status']}")

    specs = QUICK if args.quick else REAL
    if not args.suite_only:
        print("== 2/3. overhead over CFGGuider, S² at depth", flush=True)
        try:
            overhead(specs, args, device, dtype, state, write)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            state["errors"].append("overhead: " + _where(exc))
    if args.quick or args.skip_suite:
        state["suite"] = dict(status="not run: --quick" if args.quick else "not run: --skip-suite")
    else:
        print(f"== 4. the in-process suite on the CUDA device (at most {args.suite_limit_s:.0f} s)", flush=True)
        state["suite"] = suite_on_cuda(out_dir, args.suite_limit_s, args.suite_workers)
        print(f"   {state['suite']['status']}: {state['suite'].get('passed')} passed, "
              f"{state['suite'].get('failed')} failed in {state['suite'].get('seconds', 0):.0f} s", flush=True)
    if state.get("raw"):
        load = os.getloadavg()[0]
        state["bench_report"] = bo.render(state["raw"], bo.parse_args(
            ["--device", device.type, "--steps", str(args.steps), "--repeats", str(args.repeats)]),
            device, dtype, command, (load, load))
    write()
    print()
    print(md_path.read_text())
    print(f"wrote {md_path} and {json_path}")
    missed = [f"{t['target']} ({t['model']}): {t['value']}, limit {t['limit']}" for t in state["targets"]
              if t["result"] in ("miss", "not run")]
    if not args.quick:
        print("all targets met" if state["all_targets_met"] else "targets missed or not run: " + "; ".join(missed))
    errors = state["errors"] + [f"{e['arch']}: {e['status']}" for e in state["overhead"] if e["status"].startswith("error")]
    if errors:
        print("sections that failed to run: " + "; ".join(errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
