"""Writes the README's GPU table from a GPU check's report (``tools/bench/gpu_check.py``'s JSON).

    .venv/bin/python tools/generate/gpu_table.py docs/gpu/gpu_check_h200.json   # (re)write the README section
    .venv/bin/python tools/generate/gpu_table.py --check docs/gpu/gpu_check_h200.json

The run's commit: the report's ``commit`` (set by tools/bench/gpu_run.sh from the bundle), else ``--commit``.
The next GPU run: copy its gpu_check.json over docs/gpu/gpu_check_h200.json (or beside it) and rerun this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
START = "<!-- gpu-table:start (tools/generate/gpu_table.py) -->"
END = "<!-- gpu-table:end -->"
SHOWN = ("RAAG", "S²", "S² [0.2, 0.8]", "RAAG + S²", "RAAG (patch)", "S² (patch)", "RAAG + S² (patch)")


def render(report: dict, source: str, commit: str | None) -> str:
    commit = report.get("commit") or commit or "unknown"
    lines = [
        f"Measured on **{report['machine'].removeprefix('GPU ')}** on {report['started_at']}, commit `{commit}`, "
        f"ComfyUI {report['comfyui']}, torch {report['torch']}, {report['dtype']}, random weights at real sizes, "
        f"{report['steps']} euler steps x {report['repeats']} alternating repeats ([{source}]({source}), "
        "`make gpu-check`). Per step, × CFGGuider in the same run; the S² bound is computed from the masks drawn.",
        "",
        "| model | CFGGuider ms / step | " + " | ".join(SHOWN) + " | S² bound | S² pass / CFG pass (masks: 0.5 q) "
        "| total peak, S² vs CFG |",
        "| --- | ---: |" + " ---: |" * len(SHOWN) + " ---: | ---: | ---: |",
    ]
    for entry in report["overhead"]:
        if entry["status"] != "run":
            lines.append(f"| {entry['arch']} | {entry['status']} |" + " |" * (len(SHOWN) + 3))
            continue
        rows = {row["guider"]: row for row in entry["rows"]}
        depth = entry["s2_depth"]
        ratios = " | ".join(f"{rows[name]['ratio_to_cfg']:.3f}" if name in rows else "—" for name in SHOWN)
        lines.append(f"| {entry['label']} | {rows['CFGGuider']['ms_per_step']:.1f} | {ratios} "
                     f"| {rows['S²']['bound']:.3f} | {depth['sub_over_batched']:.3f} ({depth['assumed_by_bound']:.3f}) "
                     f"| {rows['S²']['total_peak_memory_vs_cfg'] * 100:+.2f} % |")
    suite = report.get("suite") or {}
    if suite.get("status") == "run":
        failed = sorted(set(suite["failures"]))  # a test once, however often its log line repeats
        lines += ["", f"The in-process suite on the GPU (`pytest -n {suite['workers']}`, tiny models on CUDA): "
                  f"{suite['passed']} passed, {len(failed)} failed, {suite['skipped']} skipped in "
                  f"{suite['seconds']:.0f} s" + (": " + ", ".join(f"`{t.split('::', 1)[1]}`" for t in failed)
                                                  if failed else "") + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--commit", default=None)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    source = args.report.resolve().relative_to(REPO).as_posix()
    table = render(json.loads(args.report.read_text(encoding="utf-8")), source, args.commit)
    readme = README.read_text(encoding="utf-8")
    start, end = readme.index(START) + len(START) + 1, readme.index(END)
    if args.check:
        if readme[start:end] != table:
            print("README GPU table is out of date: run tools/generate/gpu_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(readme[:start] + table + readme[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
