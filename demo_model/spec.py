"""What the demo model knows: digits 0-9, a palette of named colours, and prompts made of them.

A prompt is ``[colour] [digit] [on colour]``, every part optional: "red 7 on blue", "7", "red 7",
"7 on blue", "on blue"; "" is the unconditional prompt. Each of the three slots (digit, foreground,
background) has its own embedding table with a last "null" row for an absent slot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE / "config.json"
WEIGHTS_FILE = HERE / "flux_digits.safetensors"
EMBEDDINGS_FILE = HERE / "prompt_embeddings.safetensors"
CLASSIFIER_FILE = HERE / "classifier.safetensors"


@dataclass(frozen=True)
class Prompt:
    """Indices into the slot tables; None = slot absent (the null embedding)."""

    digit: int | None = None
    fg: int | None = None
    bg: int | None = None

    def text(self, spec: DemoSpec) -> str:
        parts = []
        if self.fg is not None:
            parts.append(spec.colour_names[self.fg])
        if self.digit is not None:
            parts.append(str(self.digit))
        if self.bg is not None:
            parts += ["on", spec.colour_names[self.bg]]
        return " ".join(parts)


class DemoSpec:
    def __init__(self, config_file: Path = CONFIG_FILE):
        self.config = json.loads(Path(config_file).read_text())
        self.colour_names: list[str] = list(self.config["colours"])
        self.digit_words: list[str] = list(self.config["digit_words"])
        self.image_size: int = int(self.config["image_size"])
        self.embedding_dim: int = int(self.config["embedding_dim"])

    @property
    def architecture(self) -> dict:
        return dict(self.config["architecture"])

    @cached_property
    def palette(self) -> torch.Tensor:
        """[K, 3] RGB in [0, 1], in the order of ``colour_names``."""
        return torch.tensor([self.config["colours"][n] for n in self.colour_names], dtype=torch.float32)

    @property
    def null_digit(self) -> int:
        return 10

    @property
    def null_colour(self) -> int:
        return len(self.colour_names)

    def grammar(self) -> str:
        return (f"'[colour] [digit] [on colour]', every part optional (e.g. 'red 7 on blue'; '' is the "
                f"unconditional prompt); colours: {', '.join(self.colour_names)}; digits: 0-9 or zero-nine")

    def parse(self, text: str) -> Prompt:
        if not isinstance(text, str):
            raise ValueError(f"prompt must be a string in the form {self.grammar()}, got {text!r}")
        words = text.lower().replace(",", " ").split()
        digit = fg = bg = None
        i = 0

        def fail(why: str):
            raise ValueError(f"prompt {text!r}: {why}. Expected {self.grammar()}")

        while i < len(words):
            word = words[i]
            if word == "on":
                if bg is not None:
                    fail("'on' appears twice")
                if i + 1 >= len(words) or words[i + 1] not in self.colour_names:
                    fail("'on' must be followed by a colour")
                bg = self.colour_names.index(words[i + 1])
                i += 2
                continue
            if bg is not None:
                fail(f"unexpected {word!r} after the background colour")
            if word in self.colour_names:
                if fg is not None or digit is not None:
                    fail(f"the foreground colour ({word!r}) must come first and only once")
                fg = self.colour_names.index(word)
            elif word.isdigit() and len(word) == 1 or word in self.digit_words:
                if digit is not None:
                    fail("more than one digit")
                digit = int(word) if word.isdigit() else self.digit_words.index(word)
            else:
                fail(f"unknown word {word!r}")
            i += 1
        return Prompt(digit, fg, bg)

    def token_ids(self, prompts: list[Prompt]) -> torch.Tensor:
        """[B, 3] long: digit, fg, bg slot indices (null rows for absent slots)."""
        rows = [[self.null_digit if p.digit is None else p.digit,
                 self.null_colour if p.fg is None else p.fg,
                 self.null_colour if p.bg is None else p.bg] for p in prompts]
        return torch.tensor(rows, dtype=torch.long)

    def render(self, intensity: torch.Tensor, fg_rgb: torch.Tensor, bg_rgb: torch.Tensor) -> torch.Tensor:
        """Digits [B, 8, 8] in [0, 1] coloured: pixel = bg + intensity * (fg - bg). -> [B, 3, 8, 8]."""
        t = intensity.unsqueeze(1)
        return bg_rgb[:, :, None, None] + t * (fg_rgb - bg_rgb)[:, :, None, None]


SPEC = DemoSpec()


def parse_prompt(text: str) -> Prompt:
    return SPEC.parse(text)
