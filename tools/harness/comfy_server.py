"""Starts a real ComfyUI server process and talks to it over HTTP (stdlib only; never a mock).

The pack is loaded from *outside* the ComfyUI folder, as users of a shared install do:
``<base>/custom_nodes/raag_s2_guidance`` is a symlink to this repository, and that folder (plus any
test-only node folders) is listed under ``custom_nodes:`` in a generated extra-model-paths file,
next to model folders under ``<base>/models``. Everything the server writes goes under ``<base>``.

    with ComfyServer(base) as server:
        entry = server.run(prompt)              # POST /prompt, then poll /history
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterable

from comfy_env import PACK_NAME, REPO, comfy_root, stub_paths

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_IMPORT_ROW = re.compile(r"\d+(?:\.\d+)? seconds(?P<failed> \(IMPORT FAILED\))?: (?P<path>.+)$")
MODEL_FOLDERS = ("checkpoints", "diffusion_models", "vae", "text_encoders", "loras", "clip_vision",
                 "controlnet", "upscale_models", "embeddings")


class ComfyServerError(RuntimeError):
    pass


class PromptRejected(ComfyServerError):
    """``POST /prompt`` answered HTTP 400: validation failed. ``node_errors`` maps node id to errors."""

    def __init__(self, body: dict[str, Any]):
        self.body = body
        self.error: dict[str, Any] = body.get("error", {})
        self.node_errors: dict[str, Any] = body.get("node_errors", {})
        super().__init__(f"prompt rejected: {json.dumps(self.error)}\nnode_errors: "
                         f"{json.dumps(self.node_errors, indent=1)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyServer:
    def __init__(self, base: str | Path, *, frontend: bool | Path = False, extra_custom_nodes: Iterable[Path] = (),
                 pack: Path = REPO, port: int | None = None, startup_timeout: float = 240.0):
        self.base = Path(base).resolve()
        self.frontend = frontend
        self.extra_custom_nodes = [Path(p).resolve() for p in extra_custom_nodes]
        self.pack = Path(pack).resolve()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.log_path = self.base / "server.log"
        self.output_dir = self.base / "output"
        self.startup_seconds: float | None = None
        self.proc: subprocess.Popen | None = None
        for folder in MODEL_FOLDERS:
            (self.base / "models" / folder).mkdir(parents=True, exist_ok=True)

    @property
    def database_url(self) -> str:
        """A file database under the server's own folder, as a user's server has (the default path ignores
        ``--base-directory``). Not ``:memory:``: some releases' asset code (0.9-0.16) opens another connection
        than its migrations did and finds no tables there ("no such table", /object_info answering 500)."""
        (self.base / "user").mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.base / 'user' / 'comfyui.db').resolve()}"

    def model_path(self, folder: str, name: str) -> Path:
        """Where a model file must be placed (before or after start) to appear in ``folder``'s list."""
        return self.base / "models" / folder / name

    # -- process ------------------------------------------------------------------------------------
    def _write_config(self) -> Path:
        nodes = self.base / "custom_nodes"
        nodes.mkdir(parents=True, exist_ok=True)
        link = nodes / PACK_NAME
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(self.pack, target_is_directory=True)
        section: dict[str, Any] = {"base_path": str(self.base / "models")}
        section.update({folder: folder for folder in MODEL_FOLDERS})
        section["custom_nodes"] = "\n".join(str(p) for p in [nodes, *self.extra_custom_nodes])
        config = self.base / "extra_model_paths.yaml"
        config.write_text(json.dumps({PACK_NAME: section}, indent=1))  # JSON is valid YAML
        return config

    def command(self) -> list[str]:
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--disable-api-nodes", "--database-url", self.database_url,
               "--extra-model-paths-config", str(self._write_config())]
        for flag in ("output", "input", "temp", "user"):
            (self.base / flag).mkdir(parents=True, exist_ok=True)
            cmd += [f"--{flag}-directory", str(self.base / flag)]
        if isinstance(self.frontend, Path):  # another frontend build than the pinned package's
            cmd += ["--front-end-root", str(self.frontend)]
        elif not self.frontend:
            web = self.base / "web"
            web.mkdir(parents=True, exist_ok=True)
            (web / "index.html").write_text("<!doctype html><title>ComfyUI (no frontend)</title>\n")
            cmd += ["--front-end-root", str(web)]
        return cmd

    def start(self) -> ComfyServer:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*stub_paths(), env.get("PYTHONPATH")]))
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=comfy_root(), env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            while time.monotonic() - started < self.startup_timeout:
                self._check_alive()
                try:
                    self.get("/system_stats", timeout=2)
                    self.startup_seconds = time.monotonic() - started
                    return self
                except OSError:  # URLError is an OSError: not listening yet
                    time.sleep(0.25)
            raise ComfyServerError(f"no answer within {self.startup_timeout:.0f} s\n{self.log_tail()}")
        except BaseException:  # also Ctrl-C: never leave a server behind
            self.stop()
            raise

    def _check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise ComfyServerError(f"ComfyUI server is not running (exit code {code})\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "--- server.log (tail) ---\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def custom_node_imports(self) -> dict[str, bool]:
        """Custom-node folders from the log's "Import times" table: path -> imported without error.

        Read by the shape of a row ("<seconds> seconds[ (IMPORT FAILED)]: <path>") wherever it stands in
        a line, with terminal colours removed: newer releases prefix log lines with a coloured level."""
        found = {}
        for line in self.log_text().splitlines():
            match = _IMPORT_ROW.search(_ANSI.sub("", line))
            if match:
                found[match["path"].strip()] = match["failed"] is None
        return found

    # -- HTTP ---------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def get(self, path: str, timeout: float = 30) -> Any:
        return self.request("GET", path, timeout=timeout)

    def post_prompt(self, prompt: dict[str, Any], client_id: str | None = None) -> dict[str, Any]:
        """Queues an API-format prompt; returns ``{prompt_id, number, node_errors}``.

        Raises :class:`PromptRejected` (with ``node_errors``) when validation fails.
        """
        try:
            body = {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex}
            return self.request("POST", "/prompt", body)
        except urllib.error.HTTPError as err:
            if err.code == 400:
                raise PromptRejected(json.loads(err.read() or b"{}")) from None
            raise

    def wait_history(self, prompt_id: str, timeout: float = 120, poll: float = 0.15) -> dict[str, Any]:
        """Polls ``/history/{id}`` until the prompt finished; returns its history entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry:  # an entry appears only once the prompt has finished
                return entry
            self._check_alive()
            time.sleep(poll)
        raise TimeoutError(f"prompt {prompt_id} not finished after {timeout:.0f} s\n{self.log_tail()}")

    def run(self, prompt: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        return self.wait_history(self.post_prompt(prompt)["prompt_id"], timeout)

    def object_info(self, node_id: str | None = None) -> dict[str, Any]:
        return self.get("/object_info" + (f"/{node_id}" if node_id else ""))

    def interrupt(self, prompt_id: str | None = None) -> None:
        self.request("POST", "/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def output_file(self, ref: dict[str, str]) -> Path:
        """The file behind an output reference ``{filename, subfolder, type: "output"}``."""
        return self.output_dir / ref.get("subfolder", "") / ref["filename"]
