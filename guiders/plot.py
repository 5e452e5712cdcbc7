"""Draws a guidance trace (RAAG's ratio and scale, S²'s sub-network passes) with Pillow alone:
ComfyUI does not ship matplotlib, and a plot is not worth a heavy dependency."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 800, 560
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, PANEL_GAP = 70, 20, 34, 46
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
S2_SHADE = (235, 235, 250)


def _positions(rows: list[dict]) -> list[float]:
    """x position of each model call: its step, plus a fraction for the 2nd, 3rd... call of a step."""
    counts: dict[int, int] = {}
    for row in rows:
        counts[row["step"]] = counts.get(row["step"], 0) + 1
    seen: dict[int, int] = {}
    xs = []
    for row in rows:
        k = seen.get(row["step"], 0)
        seen[row["step"]] = k + 1
        xs.append(row["step"] + k / counts[row["step"]])
    return xs


def _panel(draw, font, box, xs, series, title, x_max, shade):
    left, top, right, bottom = box
    values = [v for s in series for v in s if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5

    def px(x):
        return left + (right - left) * (x / x_max if x_max > 0 else 0.0)

    def py(y):
        return bottom - (bottom - top) * (y - low) / (high - low)

    for x, on in zip(xs, shade):
        if on:
            draw.rectangle([px(x) - 3, top, px(x) + 3, bottom], fill=S2_SHADE)
    draw.rectangle(box, outline=(0, 0, 0))
    draw.text((left, top - 16), title, fill=(0, 0, 0), font=font)
    for y in (low, (low + high) / 2, high):
        draw.line([left - 4, py(y), left, py(y)], fill=(0, 0, 0))
        draw.text((6, py(y) - 6), f"{y:.3g}", fill=(0, 0, 0), font=font)
    every = max(1, int(40 * x_max / (right - left)) + 1)  # step labels at least ~40 px apart
    for step in range(0, int(x_max) + 1, every):
        draw.line([px(step), bottom, px(step), bottom + 4], fill=(0, 0, 0))
        draw.text((px(step) - 3, bottom + 6), str(step), fill=(0, 0, 0), font=font)
    for i, ys in enumerate(series):
        points = [(px(x), py(y)) for x, y in zip(xs, ys) if y is not None]
        colour = COLOURS[i % len(COLOURS)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)


def _per_sample(rows: list[dict], key: str) -> list[list[float | None]]:
    batch = max((len(r[key]) for r in rows if r[key] is not None), default=0)
    return [[(r[key][b] if r[key] is not None else None) for r in rows] for b in range(batch)]


def draw_trace(rows: list[dict], title: str = "") -> np.ndarray:
    """An RGB uint8 image [H, W, 3] of ``GuidanceTrace.rows()``: the top panel is RAAG's ratio rho
    (or, without RAAG, S²'s sub-network deviation), the bottom panel the guidance scale w; one line per
    sample; shaded steps ran the S² sub-network pass."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    if not rows:
        draw.text((MARGIN_LEFT, HEIGHT // 2), "empty trace: run the sampler first", fill=(0, 0, 0), font=font)
        return np.asarray(image)
    xs = _positions(rows)
    x_max = max(xs[-1], 1.0)
    shade = [bool(r["dropped"]) for r in rows]
    has_rho = any(r["rho"] is not None for r in rows)
    top_key, top_title = ("rho", "rho = ||v_c - v_u|| / ||v_u||") if has_rho else (
        "deviation", "S2 sub-network deviation ||D_sub - D_c|| / ||D_c - D_u||")
    panel_h = (HEIGHT - MARGIN_TOP - 2 * PANEL_GAP) // 2
    right = WIDTH - MARGIN_RIGHT
    top_box = (MARGIN_LEFT, MARGIN_TOP, right, MARGIN_TOP + panel_h)
    bottom_box = (MARGIN_LEFT, MARGIN_TOP + panel_h + PANEL_GAP, right, MARGIN_TOP + 2 * panel_h + PANEL_GAP)
    _panel(draw, font, top_box, xs, _per_sample(rows, top_key), top_title, x_max, shade)
    _panel(draw, font, bottom_box, xs, _per_sample(rows, "w"), "guidance scale w", x_max, shade)
    label = f"step; {len(rows)} model calls; shaded: S2 sub-network pass"
    draw.text((MARGIN_LEFT, HEIGHT - 16), label, fill=(0, 0, 0), font=font)
    if title:
        draw.text((MARGIN_LEFT, 8), title, fill=(0, 0, 0), font=font)
    return np.asarray(image)
