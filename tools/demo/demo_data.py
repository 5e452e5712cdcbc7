"""The demo model's data: scikit-learn's load_digits (1,797 8x8 digits, shipped inside the
scikit-learn wheel), split once into 1,500 training and 297 held-out digits by a fixed seed, and
rendered in named colours. Used by train_demo.py, bench_repro.py and the tests."""

from __future__ import annotations

import torch

HELD_OUT = 297
SPLIT_SEED = 20250812
JITTER = 0.05  # each rendered colour is moved by up to this much per channel


def load_split() -> dict[str, torch.Tensor]:
    """{"train_x", "train_y", "test_x", "test_y"}: intensities [N, 8, 8] in [0, 1], labels [N]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, train = order[:HELD_OUT], order[HELD_OUT:]
    return {"train_x": x[train], "train_y": y[train], "test_x": x[test], "test_y": y[test]}


def random_colours(n: int, colours: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n (fg, bg) index pairs, uniformly over ordered pairs of different colours."""
    fg = torch.randint(colours, (n,), generator=generator)
    bg = (fg + torch.randint(1, colours, (n,), generator=generator)) % colours
    return fg, bg


def render(spec, intensity, fg, bg, generator: torch.Generator, jitter: float = JITTER) -> torch.Tensor:
    """[N, 8, 8] intensities + colour indices -> [N, 3, 8, 8] RGB, colours jittered."""
    palette = spec.palette

    def shade(idx):
        noise = (torch.rand((len(idx), 3), generator=generator) * 2 - 1) * jitter
        return (palette[idx] + noise).clamp(0, 1)

    return spec.render(intensity, shade(fg), shade(bg))
