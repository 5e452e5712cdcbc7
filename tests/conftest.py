"""Test bootstrap: a real ComfyUI (tools/runtime/comfy_env.py) and this pack, imported as ComfyUI would.

Nothing here replaces a `comfy` module: every test runs ComfyUI's own code on tiny models.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import comfy_env  # noqa: E402

try:
    comfy_env.bootstrap()
except RuntimeError as exc:  # no ComfyUI: say how to get one instead of failing on imports
    pytest.exit(str(exc), returncode=2)

PACK = comfy_env.load_pack()

import comfy.utils  # noqa: E402

comfy.utils.PROGRESS_BAR_ENABLED = False  # no tqdm bars in the test log


def pytest_report_header(config):
    return f"ComfyUI {comfy_env.comfy_version()} at {comfy_env.comfy_root()}"


def pytest_terminal_summary(terminalreporter):
    """Says which ComfyUI ran, and which model families it lacks (their tests do not exist here)."""
    import release_features
    import tiny_models

    terminalreporter.write_line(f"ComfyUI {comfy_env.comfy_version()} ({comfy_env.comfy_root()})")
    if release_features.ABSENT:
        terminalreporter.write_line("features this ComfyUI (or its frontend) does not have (a test that needs one skips, saying so): "
                                    + ", ".join(sorted(set(release_features.ABSENT.values()))))
    missing = tiny_models.MISSING_ARCHS
    if missing:
        terminalreporter.write_line(
            "model families this ComfyUI does not have (not tested here): "
            + ", ".join(f"{arch} (needs {need})" for arch, need in missing.items()))


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: uses a real ComfyUI server process (started once per session)")


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    """One real ComfyUI server for the session (started by the first test that asks for it).

    It loads this pack from outside the ComfyUI folder, the test nodes of ``tests/comfy_nodes`` and
    serves ``models/diffusion_models/tiny_sd3.safetensors``. Logic: ``tools/harness/comfy_server.py``.
    """
    import tiny_models
    from comfy_server import ComfyServer

    server = ComfyServer(tmp_path_factory.mktemp("comfy_server"),
                         extra_custom_nodes=[REPO / "tests" / "comfy_nodes"])
    tiny_models.write_tiny_sd3_checkpoint(server.model_path("diffusion_models", "tiny_sd3.safetensors"))
    with server:
        yield server
