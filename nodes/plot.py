"""Draws a guidance trace (RAAG's ratio and scale, S²'s sub-network passes) with Pillow alone:
ComfyUI does not ship matplotlib, and a plot is not worth a heavy dependency."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 800, 560
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, PANEL_GAP, MARGIN_BOTTOM = 70, 20, 76, 46, 40
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
S2_SHADE = (253, 219, 160)  # light amber: visible behind the lines, unlike any line colour
INK, GREY = (0, 0, 0), (90, 90, 90)
LEGEND_IMAGES = 8  # legend entries for at most this many images ("..." after)


def _font(size: int):
    """Pillow's own scalable font at ``size`` px where this Pillow has it (FreeType, Pillow >= 10.1),
    else its fixed bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _text(draw, xy, text, font, fill=INK):
    """Draws ``text``. Pillow's default fonts have no "²": it is drawn as a raised smaller "2" with a
    scalable font, as a plain "2" with the bitmap one."""
    size = getattr(font, "size", None)
    if "²" not in text:
        draw.text(xy, text, fill=fill, font=font)
        return
    if size is None:
        draw.text(xy, text.replace("²", "2"), fill=fill, font=font)
        return
    small = _font(max(6, int(size * 0.65)))
    x, y = xy
    for i, part in enumerate(text.split("²")):
        if i:
            draw.text((x, y - size * 0.12), "2", fill=fill, font=small)
            x += draw.textlength("2", font=small)
        draw.text((x, y), part, fill=fill, font=font)
        x += draw.textlength(part, font=font)


def call_counts(rows: list[dict]) -> dict[str, int]:
    """The model passes behind a trace, per image. Every row is one guidance evaluation: one full pass
    (the conditional and unconditional predictions, which core usually batches into one model call);
    a row whose ``dropped`` is non-empty also ran one S² sub-network pass. All images of a batch go
    through the same passes, so these are the counts for each image."""
    full = len(rows)
    sub = sum(1 for r in rows if r["dropped"])
    steps = len({r["step"] for r in rows})
    return {"steps": steps, "full": full, "subnetwork": sub, "total": full + sub}


def calls_label(rows: list[dict]) -> str:
    c = call_counts(rows)
    label = (f"x: sampler step ({c['steps']} steps). Per image: {c['total']} model passes = {c['full']} full "
             "(cond + uncond)")
    return label + (f" + {c['subnetwork']} S² sub-network" if c["subnetwork"] else "")


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

    # each call's band reaches from its position to the next call's (the last: half a step)
    ends = [*xs[1:], xs[-1] + 0.5] if xs else []
    for x, x_next, on in zip(xs, ends, shade):
        if on:
            draw.rectangle([px(x) - 1, top + 1, max(px(x_next), px(x) + 3) - 1, bottom - 1], fill=S2_SHADE)
    draw.rectangle(box, outline=INK)
    _text(draw, (left, top - 19), title, font)
    for y in (low, (low + high) / 2, high):
        draw.line([left - 4, py(y), left, py(y)], fill=INK)
        _text(draw, (6, py(y) - 7), f"{y:.3g}", font)
    every = max(1, int(40 * x_max / (right - left)) + 1)  # step labels at least ~40 px apart
    for step in range(0, int(x_max) + 1, every):
        draw.line([px(step), bottom, px(step), bottom + 4], fill=INK)
        _text(draw, (px(step) - 3, bottom + 6), str(step), font)
    for i, ys in enumerate(series):
        points = [(px(x), py(y)) for x, y in zip(xs, ys) if y is not None]
        colour = COLOURS[i % len(COLOURS)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colour)


def _legend(draw, font, y, batch: int, shaded: bool):
    """One entry per image line (its colour), then what the shading means."""
    x = MARGIN_LEFT
    for b in range(min(batch, LEGEND_IMAGES)):
        colour = COLOURS[b % len(COLOURS)]
        draw.line([x, y + 8, x + 18, y + 8], fill=colour, width=3)
        draw.ellipse([x + 6, y + 5, x + 12, y + 11], fill=colour)
        label = f"image {b + 1}"
        _text(draw, (x + 22, y), label, font)
        x += 30 + int(draw.textlength(label, font=font))
    if batch > LEGEND_IMAGES:
        _text(draw, (x, y), f"... ({batch} images)", font)
        x += 20 + int(draw.textlength(f"... ({batch} images)", font=font))
    if shaded:
        draw.rectangle([x + 6, y + 1, x + 24, y + 15], fill=S2_SHADE, outline=GREY)
        _text(draw, (x + 30, y), "shaded: calls that also ran the S² sub-network pass", font)


def _per_sample(rows: list[dict], key: str) -> list[list[float | None]]:
    batch = max((len(r[key]) for r in rows if r[key] is not None), default=0)
    return [[(r[key][b] if r[key] is not None else None) for r in rows] for b in range(batch)]


def draw_trace(rows: list[dict], title: str = "") -> np.ndarray:
    """An RGB uint8 image [H, W, 3] of ``GuidanceTrace.rows()``: the title (the guider node's name), a
    legend, the top panel RAAG's ratio rho (or, without RAAG, S²'s sub-network deviation), the bottom
    panel the guidance scale w; one line per image; shaded calls ran the S² sub-network pass; the footer
    counts the model passes per image (``call_counts``)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font, title_font = _font(14), _font(20)
    if title:
        _text(draw, (MARGIN_LEFT, 10), title, title_font)
    if not rows:
        _text(draw, (MARGIN_LEFT, HEIGHT // 2), "empty trace: not sampled yet (connect the guider or MODEL the sampler used, after it)", font)
        return np.asarray(image)
    xs = _positions(rows)
    x_max = max(xs[-1] + 0.5, 1.0)
    shade = [bool(r["dropped"]) for r in rows]
    has_rho = any(r["rho"] is not None for r in rows)
    top_key, top_title = ("rho", "RAAG's ratio rho = ||v_c - v_u|| / ||v_u||") if has_rho else (
        "deviation", "S² sub-network deviation ||D_sub - D_c|| / ||D_c - D_u||")
    top_series, w_series = _per_sample(rows, top_key), _per_sample(rows, "w")
    _legend(draw, font, 40, max(len(top_series), len(w_series)), any(shade))
    panel_h = (HEIGHT - MARGIN_TOP - PANEL_GAP - MARGIN_BOTTOM) // 2
    right = WIDTH - MARGIN_RIGHT
    top_box = (MARGIN_LEFT, MARGIN_TOP + 20, right, MARGIN_TOP + 20 + panel_h - 20)
    bottom_box = (MARGIN_LEFT, MARGIN_TOP + panel_h + PANEL_GAP, right, MARGIN_TOP + 2 * panel_h + PANEL_GAP)
    _panel(draw, font, top_box, xs, top_series, top_title, x_max, shade)
    _panel(draw, font, bottom_box, xs, w_series, "guidance scale w", x_max, shade)
    _text(draw, (MARGIN_LEFT, HEIGHT - 20), calls_label(rows), font)
    return np.asarray(image)
