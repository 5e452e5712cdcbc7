"""The GPU check's CPU mode (issue #15): ``tools/bench/gpu_check.py --quick`` runs, as ``make gpu-check`` would
run the full one, in a subprocess on tiny real-architecture models, and writes a report whose figures are
those of the runs (model calls, S²'s p, f, bound, deviation, pass costs) and which says that the CUDA sync
detector did not run rather than leaving it out. So the one GPU run the issue allows cannot fail on a typo.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "bench" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))
import gpu_check  # noqa: E402

GUIDERS = ["CFGGuider", "CFGGuider (control)", "RAAG", "S²", "S² [0.2, 0.8]", "RAAG + S²", "S² (whole pass)",
           "RAAG (patch)", "S² (patch)", "RAAG + S² (patch)"]
ARCHS = ["sd3", "flux", "wan21"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    env = dict(os.environ, OMP_NUM_THREADS="1", TORCH_CPP_LOG_LEVEL="ERROR")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    md = (out / "gpu_check.md").read_text()
    data = json.loads((out / "gpu_check.json").read_text())
    return md, data, proc.stdout


def test_json_has_every_section(quick):
    _, data, _ = quick
    for key in ("mode", "device", "machine", "torch", "comfyui", "dtype", "command", "seconds", "steps", "repeats",
                "sync", "overhead", "targets", "errors", "all_targets_met"):
        assert key in data, key
    assert data["mode"] == "quick" and data["device"] == "cpu" and data["errors"] == []
    assert [e["arch"] for e in data["overhead"]] == ARCHS
    assert all(e["status"] == "run" for e in data["overhead"])
    assert data["all_targets_met"] is None  # quick-mode timings are never judged
    assert any(t["result"] == "pass" for t in data["targets"])  # the host-read checks are


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the CUDA part (the next test)")
def test_cuda_sync_part_is_reported_not_run_on_cpu(quick):
    md, data, stdout = quick
    assert data["sync"]["status"] == "run"
    assert data["sync"]["cuda"] == {"status": "not run: no CUDA device", "checks": []}
    section = md.split("## 1.")[1].split("## 2.")[0]
    assert "set_sync_debug_mode" in section and "not run: no CUDA device" in section
    assert "CUDA sync detector not run: no CUDA device" in stdout
    sync_target = [t for t in data["targets"] if t["target"] == "no host sync in the per-step path"]
    assert len(sync_target) == 1 and "not run: no CUDA device" in sync_target[0]["value"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the previous test covers a CPU)")
def test_cuda_sync_part_runs_with_its_controls_on_a_cuda_machine(quick):
    _, data, _ = quick
    checks = data["sync"]["cuda"]["checks"]
    assert data["sync"]["cuda"]["status"] == "run" and checks[0]["check"].startswith("control")
    assert all(c["result"].startswith("pass") for c in checks), checks


def test_host_read_checks_ran_with_their_control(quick):
    md, data, _ = quick
    rows = data["sync"]["host_reads"]
    assert rows[0]["check"].startswith("control") and rows[0]["result"].startswith("pass (caught:"), rows[0]
    assert "_sync_probe.py" in rows[0]["result"]  # the injected read, located
    # the MODEL patches, sampled as KSampler samples them, are checked like the guider nodes
    assert sorted(r["guider"] for r in rows[1:]) == ["raag_per_sample", "raag_s2", "raag_s2_patch", "s2"]
    assert all(r["result"] == "pass" for r in rows[1:]), rows
    assert "MODEL-patch nodes: covered." in md


def test_overhead_figures_are_the_runs(quick):
    _, data, _ = quick
    for entry in data["overhead"]:
        rows = {r["guider"]: r for r in entry["rows"]}
        assert list(rows) == GUIDERS
        for name in ("CFGGuider", "CFGGuider (control)", "RAAG", "RAAG (patch)"):
            assert (rows[name]["calls_per_step"], rows[name]["rows_per_step"]) == (1.0, 2.0), (entry["arch"], name)
        for name in ("S²", "RAAG + S²", "S² (whole pass)", "S² (patch)", "RAAG + S² (patch)"):
            row = rows[name]
            assert row["f"] == 1.0 and (row["calls_per_step"], row["rows_per_step"]) == (2.0, 3.0)
            assert 0 < row["p"] < 1
            # the masks' bound: q, the computed fraction, is 1 - p less the prefix the passes reused
            assert row["reused"] == (0.0 if name == "S² (whole pass)" else 1.0)
            assert row["q"] == pytest.approx(1 - row["p"]) if name == "S² (whole pass)" else row["q"] < 1 - row["p"]
            s2_bound = 1 + 0.5 * row["q"] * row["f"] + 0.03  # bench_overhead's bound
            assert row["bound"] == pytest.approx(s2_bound + (0.02 if name.startswith("RAAG") else 0.0))
            median, low, high = row["deviation"]
            assert 0 < low <= median <= high and math.isfinite(high)
        assert rows["RAAG"]["bound"] == rows["RAAG (patch)"]["bound"] == 1.02 and rows["CFGGuider"]["bound"] is None
        window = rows["S² [0.2, 0.8]"]
        assert window["calls_per_step"] == pytest.approx(1 + window["f"])
        for row in entry["rows"]:
            assert row["ms_per_step"] > 0 and row["peak_memory_bytes"] > 0 and row["finite"]
            assert abs(row["peak_memory_vs_cfg"]) < 0.5
            assert row["total_peak_memory_bytes"] > row["peak_memory_bytes"]  # the weights are in it
        assert rows["CFGGuider"]["ratio_to_cfg"] == 1.0
        depth = entry["s2_depth"]
        assert depth["blocks"] == entry["blocks"] and depth["dropped_per_pass"] >= 1
        assert depth["assumed_by_bound"] == pytest.approx(0.5 * depth["q"])
        assert depth["assumed_without_reuse"] == pytest.approx(0.5 * (1 - depth["p"]))
        assert depth["batched_pass_ms"] > 0 and depth["sub_pass_ms"] > 0 and depth["whole_sub_pass_ms"] > 0
        assert depth["sub_over_batched"] == pytest.approx(depth["sub_pass_ms"] / depth["batched_pass_ms"])


def test_markdown_tables(quick):
    md, data, _ = quick
    assert md.startswith("# GPU check (quick: tiny models, cpu)")
    for heading in ("## 1. No host synchronisation", "## 2. Overhead over CFGGuider", "## 3. S² at real depth",
                    "## 4. The in-process suite on the CUDA device", "## Targets", "## bench_overhead's full report"):
        assert heading in md, heading
    overhead = md.split("## 2.")[1].split("## 3.")[0].splitlines()
    assert "| model | guider | ms / step | × CFGGuider | bound | model calls (rows) / step |" in overhead[2]
    table = [line for line in overhead if line.startswith(("| sd3 |", "| flux |", "| wan21 |"))]
    assert len(table) == len(ARCHS) * len(GUIDERS)
    assert all(line.count("|") == 15 for line in table)
    depth = [line for line in md.split("## 3.")[1].split("## Targets")[0].splitlines()
             if line.startswith(tuple(f"| {a} |" for a in ARCHS))]
    assert len(depth) == len(ARCHS)
    targets = md.split("## Targets")[1].split("## bench_overhead")[0]
    assert targets.count("not judged (quick)") == sum(1 for t in data["targets"] if t["result"] == "not judged (quick)")
    assert "| RAAG time × CFGGuider | sd3 |" in targets and "≤ 1.020" in targets
    assert "| S² time × CFGGuider | sd3 |" in targets and "≤ 1.38" in targets
    assert "| RAAG + S² time − S² time (× CFGGuider) | sd3 |" in targets
    assert data["suite"] == {"status": "not run: --quick"}
    assert "not run: --quick" in md.split("## 4.")[1].split("## Targets")[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a CUDA device the full check runs for minutes")
def test_full_check_without_cuda_says_so(tmp_path):
    assert gpu_check.main(["--out", str(tmp_path), "--archs", "sd3,wan21"]) == 2
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["mode"] == "full" and data["sync"]["cuda"]["status"] == "not run: no CUDA device"
    assert [(e["arch"], e["status"]) for e in data["overhead"]] == [("sd3", "not run: no CUDA device"),
                                                                   ("wan21", "not run: no CUDA device")]
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.count("not run: no CUDA device") >= 3 and "# GPU check (full: real sizes" in md


def test_arguments():
    args = gpu_check.parse_args(["--quick"])
    assert (args.device, args.steps, args.repeats, args.archs) == ("cpu", 4, 1, ARCHS)
    full = gpu_check.parse_args([])
    assert (full.device, full.steps, full.repeats) == ("cuda", 6, 3)
    assert full.out == REPO / "output" / "gpu_check"
    assert gpu_check.REAL["sd3"] is gpu_check.bo.REAL["sd3"]  # the real sizes are bench_overhead's
    for bad in (["--device", "cpu"], ["--archs", "sd3,nope"], ["--quick", "--steps", "2"]):
        with pytest.raises(SystemExit):
            gpu_check.parse_args(bad)


def test_readme_gpu_table_is_the_stored_report():
    """The README's GPU table is generated from the last GPU run's report in docs/gpu/ (tools/generate/gpu_table.py)."""
    sys.path.insert(0, str(REPO / "tools" / "generate"))
    import gpu_table

    report = REPO / "docs" / "gpu" / "gpu_check_h200.json"
    assert gpu_table.main(["--check", str(report)]) == 0, "run: python tools/generate/gpu_table.py " + str(report)
    data = json.loads(report.read_text())
    assert data["mode"] == "full" and data["machine"].startswith("GPU ") and data["commit"]
