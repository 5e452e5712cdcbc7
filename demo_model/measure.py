"""Scoring samples of the demo model against their prompts (demo, benchmark, tests; not the nodes).

- Colours are read from the pixels: load_digits' columns 0 and 7 are background in every image, so
  the background colour is the median of those 16 pixels; the foreground colour is the mean of the
  6 pixels farthest from it. Each is named by the nearest palette colour. Exact on real renders.
- The digit is named by a small MLP classifier (shipped, trained by tools/train_demo.py on the
  training digits rendered in random colours); its 64 hidden features feed a Frechet distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from .spec import CLASSIFIER_FILE, SPEC, DemoSpec, Prompt

FG_PIXELS = 6


def measure_colours(pixels: torch.Tensor, spec: DemoSpec = SPEC) -> tuple[torch.Tensor, torch.Tensor]:
    """pixels [B, 3, 8, 8] in [0, 1] -> (fg index [B], bg index [B]) into the palette."""
    x = pixels.float().clamp(0, 1)
    border = torch.cat([x[:, :, :, 0], x[:, :, :, -1]], dim=2)  # [B, 3, 16]
    bg = border.median(dim=2).values  # [B, 3]
    flat = x.flatten(2)  # [B, 3, 64]
    dist = (flat - bg[:, :, None]).norm(dim=1)  # [B, 64]
    far = dist.topk(FG_PIXELS, dim=1).indices
    fg = torch.gather(flat, 2, far[:, None, :].expand(-1, 3, -1)).mean(dim=2)
    palette = spec.palette
    return torch.cdist(fg, palette).argmin(1), torch.cdist(bg, palette).argmin(1)


class DigitClassifier(torch.nn.Module):
    """RGB 8x8 -> digit (and, to shape the features, fg/bg colour): 192 -> 256 -> 64 -> heads."""

    def __init__(self, colours: int = len(SPEC.colour_names)):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 256), torch.nn.ReLU(),
                                        torch.nn.Linear(256, 64), torch.nn.ReLU())
        self.digit = torch.nn.Linear(64, 10)
        self.fg = torch.nn.Linear(64, colours)
        self.bg = torch.nn.Linear(64, colours)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.body(pixels.float().clamp(0, 1) * 2 - 1)

    def forward(self, pixels):
        f = self.features(pixels)
        return self.digit(f), self.fg(f), self.bg(f)


@lru_cache(maxsize=1)
def classifier() -> DigitClassifier:
    import safetensors.torch

    net = DigitClassifier()
    net.load_state_dict(safetensors.torch.load_file(str(CLASSIFIER_FILE)))
    return net.eval().requires_grad_(False)


@dataclass
class Scores:
    n: int
    digit: float  # fraction with the prompted digit (classifier)
    fg: float  # fraction with the prompted foreground colour (pixels)
    bg: float
    colours: float  # fg and bg pooled
    attributes: float  # digit, fg and bg pooled: the fraction of the 3n prompted attributes that are right
    all_correct: float  # fraction of images right on all three


def score(pixels: torch.Tensor, prompts: list[Prompt], spec: DemoSpec = SPEC) -> Scores:
    """Accuracy of samples against full prompts (all three slots given)."""
    if len(prompts) != pixels.shape[0]:
        raise ValueError(f"{pixels.shape[0]} images but {len(prompts)} prompts")
    fg, bg = measure_colours(pixels, spec)
    with torch.no_grad():
        digit = classifier()(pixels)[0].argmax(1)
    want = spec.token_ids(prompts)
    ok_d, ok_f, ok_b = digit == want[:, 0], fg == want[:, 1], bg == want[:, 2]
    n = len(prompts)
    def rate(*oks):
        return torch.cat(oks).float().mean().item()

    return Scores(n=n, digit=rate(ok_d), fg=rate(ok_f), bg=rate(ok_b), colours=rate(ok_f, ok_b),
                  attributes=rate(ok_d, ok_f, ok_b), all_correct=rate(ok_d & ok_f & ok_b))


def features(pixels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return classifier().features(pixels)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [N, D] (float64 throughout)."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * middle)
