"""The shipped example workflows: the key each one is built and tested under, and its file name.

ComfyUI's template browser shows a pack template's file name as its title (its subtitle is the same
name with ``-`` and ``_`` as spaces), lists the files in the folder's order (creation order on
common file systems: alphabetical after a git checkout or an unzip) and asks for a same-name ``.jpg``
as the thumbnail. So the names are titles a user can read, sorted demo first, and every workflow has
its ``.jpg``. Plain ASCII without ``: * ? " < > |`` so the names work on every file system. A file's
name is not part of a saved workflow, so renaming one never breaks a graph a user saved.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"

TITLES: dict[str, str] = {  # short: a template card shows about 28 characters of its title
    "demo_tiny": "Demo 1 - RAAG and S2 guiders",
    "demo_ksampler": "Demo 2 - KSampler patches",
    "raag_s2_flux": "RAAG + S2 - Chroma (Flux)",
    "raag_qwen_image": "RAAG - Qwen-Image",
    "raag_sd35": "RAAG - SD3.5 (10 steps)",
    "raag_ksampler_sd35": "RAAG - SD3.5 with KSampler",
    "raag_lumina2": "RAAG - Lumina 2 (10 steps)",
    "raag_wan22_t2v": "RAAG - Wan 2.2 text to video",
    "raag_ksampler_wan22_t2v": "RAAG - Wan 2.2 with KSampler",
    "s2_sd35": "S2 - SD3.5 (paper settings)",
    "s2_wan21_t2v": "S2 - Wan 2.1 text to video",
    "s2_ksampler_wan21_t2v": "S2 - Wan 2.1 with KSampler",
    "ab_compare_sd35": "Side by side - CFG, RAAG, S2",
}
DEMOS = ("demo_tiny", "demo_ksampler")  # the embedded demo model: nothing to download, they run anywhere
FORBIDDEN = set(':*?"<>|\\/')


def path(key: str) -> Path:
    return WORKFLOWS / f"{TITLES[key]}.json"


def thumbnail(key: str) -> Path:
    return WORKFLOWS / f"{TITLES[key]}.jpg"


def key_of(file: Path) -> str:
    """The key of a workflow file (``KeyError`` for a file this table does not name)."""
    return {title: key for key, title in TITLES.items()}[file.stem]
