"""Reproduction benchmark of RAAG and S²-Guidance on the shipped demo model (not a test).

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench/bench_repro.py      # or: make bench   (~10-15 min, 2 cores)

Fixed prompts and seeds. For every method and every step count in --steps (plus a 100-step run of
the same method from the same noise) it samples a batch of --images prompts through ComfyUI's real
SamplerCustomAdvanced (tools/demo/demo_runs.py) and reports:
- attribute accuracy: the fraction of prompted attributes (digit, foreground, background) that are
  right; colours read from the pixels, the digit named by the shipped classifier; digit accuracy alone;
- FD: Frechet distance of the classifier's 64 features against held-out real digits rendered in
  random colours (the 297 digits the model never saw, rendered twice each);
- to-100: RMS pixel distance (0-1 scale) of each N-step sample to the same method's 100-step sample;
- model calls per image (counted) and wall time relative to CFG at the same step count, measured in
  the same run with the runs of one step count interleaved.
The CFG baselines include CFG at RAAG's measured mean scale (matched strength) and CFG at the step
counts that give S² equal compute (S² costs 3 calls per step, CFG 2). Per-step traces of RAAG's rho and
w and of S²'s sub-network deviation ||D_sub - D_c|| / ||D_c - D_u|| at 10 steps are reported too.
S²'s premise test, at 10 steps: an omega sweep at two lambdas, each setting also run with the sign of
S²'s term flipped (a step *towards* the sub-network, a diagnostic, not a feature). S² assumes the
sub-network is the worse predictor, so moving away from it should beat moving towards it.
Writes docs/bench_repro.md, docs/bench_repro.png and docs/bench_repro.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import comfy_env  # noqa: E402

comfy_env.load_pack()

import comfy.utils  # noqa: E402
import demo_data  # noqa: E402
import torch  # noqa: E402
from demo_runs import DemoModel, Method, full_prompts  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from raag_s2_guidance.demo_model import SPEC, measure  # noqa: E402

comfy.utils.PROGRESS_BAR_ENABLED = False

# The demo's settings (the demo workflow uses the same ones).
CFG = 4.0
RAAG = dict(w_max=8.0, alpha=4.0)
S2 = dict(omega=0.25, drop_ratio=0.1)
REFERENCE_STEPS = 100
# The premise test (10 steps): omega at two lambdas, away from the sub-network (S²) and towards it.
SWEEP_STEPS, SWEEP_LAMBDAS, SWEEP_OMEGAS, TOWARDS_OMEGAS = 10, (4.0, 7.0), (0.1, 0.25, 0.5, 1.0), (0.25, 0.5)
PROMPT_SEED, NOISE_SEED = 1234, 0


def methods() -> list[Method]:
    return [
        Method("no guidance (cfg 1)", "cfg", cfg=1.0),
        Method("CFG 2", "cfg", cfg=2.0),
        Method(f"CFG {CFG:g}", "cfg", cfg=CFG),
        Method("CFG 7", "cfg", cfg=7.0),
        Method(f"RAAG {RAAG['w_max']:g}/{RAAG['alpha']:g}", "raag", **RAAG),
        Method("RAAG 18/12 (paper)", "raag", w_max=18.0, alpha=12.0),
        Method(f"S² (cfg {CFG:g}, ω {S2['omega']:g})", "s2", cfg=CFG, **S2),
        Method(f"RAAG {RAAG['w_max']:g}/{RAAG['alpha']:g} + S²", "raag_s2", **RAAG, **S2),
    ]


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).square().flatten(1).mean(1).sqrt().mean().item()


def mean_w(trace: list) -> float:
    return statistics.mean(statistics.mean(r["w"]) for r in trace)


def per_step(trace: list, key: str) -> list[float]:
    out: dict[int, list[float]] = {}
    for r in trace:
        if r[key] is not None:
            out.setdefault(r["step"], []).extend(r[key])
    return [round(statistics.mean(v), 4) for _, v in sorted(out.items())]


def reference_features(seed: int = 7) -> torch.Tensor:
    data = demo_data.load_split()
    gen = torch.Generator().manual_seed(seed)
    x = torch.cat([data["test_x"]] * 2)
    fg, bg = demo_data.random_colours(len(x), len(SPEC.colour_names), gen)
    return measure.features(demo_data.render(SPEC, x, fg, bg, gen))


def real_row(prompts, ref_feats) -> dict:
    """The measures on real training digits rendered with the prompts: the ceiling and FD floor."""
    data = demo_data.load_split()
    gen = torch.Generator().manual_seed(11)
    ids = SPEC.token_ids(prompts)
    picks = []
    for d in ids[:, 0].tolist():
        pool = (data["train_y"] == d).nonzero().flatten()
        picks.append(int(pool[torch.randint(len(pool), (1,), generator=gen)]))
    images = demo_data.render(SPEC, data["train_x"][picks], ids[:, 1], ids[:, 2], gen)
    s = measure.score(images, prompts)
    return {"attributes": s.attributes, "digit": s.digit, "colours": s.colours,
            "fd": measure.frechet_distance(measure.features(images), ref_feats)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="prompts (one image each) per run")
    parser.add_argument("--steps", default="5,10,20,30,50")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps_list = [int(s) for s in args.steps.split(",")]
    started = time.monotonic()
    model = DemoModel()
    prompts = full_prompts(args.images, PROMPT_SEED)
    ref_feats = reference_features()
    real = real_row(prompts, ref_feats)
    print(f"real digits: attributes {real['attributes']:.3f}, digit {real['digit']:.3f}, FD {real['fd']:.2f}")

    base = methods()
    raag = base[4]
    # Matched strength: CFG at RAAG's mean scale, measured at 10 steps (the paper's setting).
    probe = model.sample(raag, prompts, 10, NOISE_SEED)
    matched = round(mean_w(probe.trace), 1)
    base.insert(4, Method(f"CFG {matched:g} (= RAAG's mean w)", "cfg", cfg=matched))
    cfg_ref = base[2]
    # Equal compute for S² at 10 and 20 steps (3 calls per step vs CFG's 2): CFG at 15 and 30 steps.
    plan = [(m, n) for n in steps_list for m in base]
    plan += [(cfg_ref, 15)] if 10 in steps_list and 15 not in steps_list else []
    rows, samples, traces = [], {}, {}
    for m, n in plan + [(m, REFERENCE_STEPS) for m in base]:
        run = model.sample(m, prompts, n, NOISE_SEED)
        samples[(m.label, n)] = run.pixels
        if n == 10 and run.trace:
            traces[m.label] = run.trace
        s = measure.score(run.pixels, prompts)
        rows.append({"method": m.label, "steps": n, "calls": run.calls_per_image, "seconds": run.seconds,
                     "attributes": s.attributes, "digit": s.digit, "colours": s.colours, "all": s.all_correct,
                     "fd": measure.frechet_distance(measure.features(run.pixels), ref_feats),
                     "mean_w": mean_w(run.trace) if m.kind in ("raag", "raag_s2") else m.cfg})
        print(f"{m.label:34s} {n:3d} steps  attr {s.attributes:.3f} digit {s.digit:.3f} "
              f"FD {rows[-1]['fd']:7.2f}  {run.seconds:6.1f} s  [{(time.monotonic() - started) / 60:.1f} min]",
              flush=True)
    sweep = premise_sweep(model, prompts, ref_feats, rows, started)
    for r in rows:
        ref = samples.get((r["method"], REFERENCE_STEPS))
        r["to_100"] = rms(samples[(r["method"], r["steps"])], ref) if ref is not None else None
        cfg_time = next((x["seconds"] for x in rows if x["method"] == cfg_ref.label and x["steps"] == r["steps"]),
                        None)
        r["time_vs_cfg"] = r["seconds"] / cfg_time if cfg_time else None
    step_traces = {label: {"rho": per_step(t, "rho"), "w": per_step(t, "w"), "deviation": per_step(t, "deviation")}
                   for label, t in traces.items()}
    result = {"images": args.images, "prompt_seed": PROMPT_SEED, "noise_seed": NOISE_SEED, "real": real,
              "cfg": CFG, "raag": RAAG, "s2": S2, "matched_cfg": matched, "rows": rows, "sweep": sweep, "traces_10_steps": step_traces,
              "methods": [asdict(m) for m in base], "minutes": (time.monotonic() - started) / 60,
              "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_repro.json").write_text(json.dumps(result, indent=1) + "\n")
    draw_plot(result, base, args.out / "bench_repro.png")
    (args.out / "bench_repro.md").write_text(report(result, base, cfg_ref))
    print(f"wrote {args.out / 'bench_repro.md'}, bench_repro.png, bench_repro.json "
          f"in {result['minutes']:.1f} min")


def premise_sweep(model, prompts, ref_feats, rows, started) -> list[dict]:
    """S² at every (lambda, omega) of the sweep, away from the sub-network (S²) and towards it; omega 0 is
    plain CFG at lambda (taken from ``rows`` where the main table has it)."""
    out = []
    for lam in SWEEP_LAMBDAS:
        plain = next((r for r in rows if r["method"] == f"CFG {lam:g}" and r["steps"] == SWEEP_STEPS), None)
        settings = [("away", om) for om in SWEEP_OMEGAS] + [("towards", om) for om in TOWARDS_OMEGAS]
        for direction, om in [("away", 0.0)] * (plain is None) + settings:
            kind = "cfg" if om == 0 else ("s2" if direction == "away" else "s2_towards")
            m = Method(f"lambda {lam:g} omega {om:g} {direction}", kind, cfg=lam, omega=om)
            run = model.sample(m, prompts, SWEEP_STEPS, NOISE_SEED)
            s = measure.score(run.pixels, prompts)
            out.append({"lambda": lam, "omega": om, "direction": direction, "attributes": s.attributes,
                        "fd": measure.frechet_distance(measure.features(run.pixels), ref_feats)})
            print(f"premise {m.label:34s} attr {s.attributes:.3f} FD {out[-1]['fd']:7.2f}  "
                  f"[{(time.monotonic() - started) / 60:.1f} min]", flush=True)
        if plain is not None:
            out.append({"lambda": lam, "omega": 0.0, "direction": "away", "attributes": plain["attributes"],
                        "fd": plain["fd"]})
    return sorted(out, key=lambda r: (r["lambda"], r["direction"] != "away", r["omega"]))


def premise_report(sweep: list[dict]) -> list[str]:
    lines = ["", f"## S²'s premise on this model ({SWEEP_STEPS} steps)", "",
             "S² steps *away* from a sub-network (blocks dropped) on the assumption that it is the worse "
             "predictor. Each setting is also run *towards* it (the sign of S²'s term flipped: a diagnostic, "
             "not a feature). omega 0 is plain CFG at lambda.", "",
             "| lambda | omega | direction | attr | FD |", "|---:|---:|---|---:|---:|"]
    lines += [f"| {r['lambda']:g} | {r['omega']:g} | {r['direction'] if r['omega'] else '(plain CFG)'} | "
              f"{r['attributes']:.3f} | {r['fd']:.2f} |" for r in sweep]
    lines.append("")
    for lam in sorted({r["lambda"] for r in sweep}):
        away = [r for r in sweep if r["lambda"] == lam and r["direction"] == "away"]
        fds = [r["fd"] for r in away]
        rising = all(b > a for a, b in zip(fds, fds[1:]))
        effect = "only hurts (FD rises with omega)" if rising else "helps somewhere (FD does not only rise)"
        lines.append(f"- lambda {lam:g}: FD {[round(f, 1) for f in fds]} at omega {[r['omega'] for r in away]}: "
                     f"S²'s term {effect}.")
        for t in (r for r in sweep if r["lambda"] == lam and r["direction"] == "towards"):
            a = next(r for r in away if r["omega"] == t["omega"])
            ok = a["fd"] < t["fd"] and a["attributes"] >= t["attributes"] - 0.01
            lines.append(f"- lambda {lam:g}, omega {t['omega']:g}: away (S²) FD {a['fd']:.2f}, attr "
                         f"{a['attributes']:.3f}; towards FD {t['fd']:.2f}, attr {t['attributes']:.3f}: the "
                         f"premise (away beats towards) {verdict(ok)}.")
    return lines


def find(result, label, steps):
    return next((r for r in result["rows"] if r["method"] == label and r["steps"] == steps), None)


def verdict(ok: bool) -> str:
    return "**holds**" if ok else "**does not hold**"


def report(result, base, cfg_ref) -> str:
    raag_l, s2_l = base[5].label, base[7].label
    matched_l = base[4].label
    lines = [
        "# Reproduction benchmark on the demo model",
        "",
        f"Command: `make bench` (`tools/bench/bench_repro.py`), {result['images']} prompts (random digit x foreground x "
        f"background, seed {result['prompt_seed']}), one image each, noise seed {result['noise_seed']}, euler sampler, "
        f"`simple` schedule, every image sampled through ComfyUI's SamplerCustomAdvanced. {result['machine']}; "
        f"the whole run took {result['minutes']:.1f} min.",
        "",
        "- **attr**: fraction of prompted attributes right (digit, foreground and background colour pooled); "
        "**digit**: digit accuracy alone (classifier); **colours**: the two colours (read from the pixels).",
        "- **FD**: Frechet distance of the classifier's features to held-out real digits (lower is better); "
        f"real training digits rendered with the same prompts score FD {result['real']['fd']:.2f}, attr "
        f"{result['real']['attributes']:.3f}, digit {result['real']['digit']:.3f}.",
        f"- **to-100**: RMS pixel distance (0-1) to the same method's {REFERENCE_STEPS}-step sample from the same "
        "noise (how far from converged). **calls**: model evaluations per image (counted). **time**: wall time "
        f"relative to {cfg_ref.label} at the same step count, same run.",
        "",
        "| method | steps | calls | attr | digit | colours | FD | to-100 | mean w | time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(result["rows"], key=lambda r: ([m.label for m in base].index(r["method"]), r["steps"])):
        if r["steps"] == REFERENCE_STEPS:
            continue
        to100 = f"{r['to_100']:.3f}" if r["to_100"] is not None else "-"
        t = f"{r['time_vs_cfg']:.2f}x" if r["time_vs_cfg"] else "-"
        lines.append(f"| {r['method']} | {r['steps']} | {r['calls']:.0f} | {r['attributes']:.3f} | {r['digit']:.3f} | "
                     f"{r['colours']:.3f} | {r['fd']:.2f} | {to100} | {r['mean_w']:.2f} | {t} |")
    tr = result["traces_10_steps"]
    lines += ["", "Per step at 10 steps (mean over the images):", ""]
    for label in (raag_l, base[6].label, s2_l, base[8].label):
        if label in tr:
            t = tr[label]
            if t["rho"]:
                lines.append(f"- {label}: rho {t['rho']}; w {t['w']}")
            if t["deviation"]:
                lines.append(f"- {label}: S² sub-network deviation ||D_sub - D_c|| / ||D_c - D_u|| {t['deviation']}")
    lines += ["", "## Paper claims on this model", ""]
    c = lambda label, n: find(result, label, n)  # noqa: E731
    cfg10, cfg30 = c(cfg_ref.label, 10), c(cfg_ref.label, 30)
    r10, m10, m30 = c(raag_l, 10), c(matched_l, 10), c(matched_l, 30)
    if r10 and cfg30 and m10 and m30:
        ok = r10["attributes"] >= cfg30["attributes"] - 0.02 and r10["fd"] <= cfg30["fd"] * 1.1
        lines.append(f"- RAAG at 10 steps matches CFG {result['cfg']:g} at 30 steps (attr {r10['attributes']:.3f} vs "
                     f"{cfg30['attributes']:.3f}, FD {r10['fd']:.2f} vs {cfg30['fd']:.2f}): {verdict(ok)}.")
        ok = r10["attributes"] >= m30["attributes"] - 0.02 and r10["fd"] <= m30["fd"] * 1.1
        lines.append(f"- Same at matched strength, against CFG {result['matched_cfg']:g} (RAAG's mean w) at 30 steps "
                     f"(attr {r10['attributes']:.3f} vs {m30['attributes']:.3f}, FD {r10['fd']:.2f} vs "
                     f"{m30['fd']:.2f}): {verdict(ok)}.")
        ok = r10["attributes"] > m10["attributes"] + 0.01 or r10["fd"] < m10["fd"] * 0.9
        lines.append(f"- RAAG beats constant CFG of the same mean strength at 10 steps (attr {r10['attributes']:.3f} vs "
                     f"{m10['attributes']:.3f}, FD {r10['fd']:.2f} vs {m10['fd']:.2f}): {verdict(ok)}.")
    for s_steps, c_steps in ((10, 15), (20, 30)):
        s, cf = c(s2_l, s_steps), c(cfg_ref.label, c_steps)
        if s and cf:
            ok = s["attributes"] >= cf["attributes"] and s["fd"] < cf["fd"]
            lines.append(f"- S² beats CFG at equal compute: S² {s_steps} steps ({s['calls']:.0f} calls) vs CFG "
                         f"{c_steps} steps ({cf['calls']:.0f} calls): attr {s['attributes']:.3f} vs "
                         f"{cf['attributes']:.3f}, FD {s['fd']:.2f} vs {cf['fd']:.2f}: {verdict(ok)}.")
    s10, s30 = c(s2_l, 10), c(s2_l, 30)
    if s10 and cfg10 and s30 and cfg30:
        ok = all(s["attributes"] >= cf["attributes"] and s["fd"] < cf["fd"] for s, cf in ((s10, cfg10), (s30, cfg30)))
        lines.append(f"- S² beats CFG at equal steps (the paper's comparison): attr at 10 steps {s10['attributes']:.3f} "
                     f"vs {cfg10['attributes']:.3f}, at 30 steps {s30['attributes']:.3f} vs {cfg30['attributes']:.3f}; "
                     f"FD {s10['fd']:.2f} vs {cfg10['fd']:.2f} and {s30['fd']:.2f} vs {cfg30['fd']:.2f}: {verdict(ok)}.")
    dev = tr.get(s2_l, {}).get("deviation")
    if dev:
        lines.append(f"- S² assumes dropping a block is a mild perturbation: the sub-network moved the prediction "
                     f"by {min(dev):.2f}-{max(dev):.2f}x the whole CFG signal per step (median "
                     f"{statistics.median(dev):.2f}): {verdict(statistics.median(dev) < 0.5)} (mild = median below 0.5).")
    rho = tr.get(raag_l, {}).get("rho")
    if rho:
        first = rho[0] == max(rho)
        lines.append(f"- RAAG's premise, the ratio rho is largest at the first step and falls: rho per step {rho}: "
                     f"{verdict(first and rho[-1] < rho[0])}.")
    lines += premise_report(result["sweep"])
    return "\n".join(lines) + "\n"


def draw_plot(result, base, path: Path) -> None:
    """Two panels with Pillow (no matplotlib in ComfyUI): attribute accuracy and FD against model calls
    per image, one line per method through its step counts."""
    colours = [(120, 120, 120), (31, 119, 180), (23, 190, 207), (44, 44, 160), (148, 103, 189),
               (214, 39, 40), (255, 127, 14), (44, 160, 44), (140, 86, 75)]
    width, height, legend_w, margin = 1240, 520, 250, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    rows = [r for r in result["rows"] if r["steps"] != REFERENCE_STEPS]
    max_calls = max(r["calls"] for r in rows) * 1.03
    panels = [("attribute accuracy (higher is better)", "attributes"), ("FD to held-out digits (lower is better)", "fd")]
    panel_w = (width - legend_w - 2 * margin - 30) // 2
    for p, (title, key) in enumerate(panels):
        left = margin + p * (panel_w + margin + 30)
        top, bottom, right = 40, height - 60, left + panel_w
        values = [r[key] for r in rows]
        low, high = min(values), max(values)
        pad = (high - low) * 0.05 or 0.5
        low, high = low - pad, high + pad
        draw.rectangle([left, top, right, bottom], outline="black")
        draw.text((left, 16), title, fill="black", font=font)
        for frac in (0, 0.25, 0.5, 0.75, 1):
            y = bottom - (bottom - top) * frac
            draw.line([left - 4, y, left, y], fill="black")
            draw.text((left - 52, y - 6), f"{low + (high - low) * frac:.3g}", fill="black", font=font)
        for calls in (0, 20, 40, 60, 100, 150):
            if calls <= max_calls:
                x = left + (right - left) * calls / max_calls
                draw.line([x, bottom, x, bottom + 4], fill="black")
                draw.text((x - 6, bottom + 8), str(calls), fill="black", font=font)
        draw.text((left + panel_w // 2 - 60, bottom + 26), "model calls per image", fill="black", font=font)
        for i, m in enumerate(base):
            pts = sorted((r["calls"], r[key]) for r in rows if r["method"] == m.label)
            xy = [(left + (right - left) * cx / max_calls, bottom - (bottom - top) * (v - low) / (high - low))
                  for cx, v in pts]
            colour = colours[i % len(colours)]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
            for x, y in xy:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    for i, m in enumerate(base):
        y = 50 + i * 20
        x = width - legend_w + 10
        draw.rectangle([x, y, x + 12, y + 10], fill=colours[i % len(colours)])
        draw.text((x + 18, y - 1), m.label.replace("²", "2").replace("ω", "omega"), fill="black", font=font)
    draw.text((width - legend_w + 10, 60 + len(base) * 20), "points: 5, 10, 20, 30, 50 steps", fill="black",
              font=font)
    image.save(path)


if __name__ == "__main__":
    main()
