"""Puts every role folder of ``tools/`` on ``sys.path``, so a script or test imports ``comfy_env``,
``tiny_models``, ``demo_data``... by name wherever it lives:

    runtime/   set-up scripts, pins, the ComfyUI bootstrap (comfy_env) and tests-only stubs
    harness/   tiny real-architecture models, the server and browser drivers, core-node calls
    demo/      the demo command, its data, and the demo model's training
    bench/     the benchmarks
    generate/  generators of committed files (workflows, subgraph blueprints, locales)

    sys.path.insert(0, str(REPO / "tools"))
    import toolpath
    toolpath.install()
"""

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROLES = ("runtime", "harness", "demo", "bench", "generate")



def install() -> None:
    for role in reversed(ROLES):
        if str(TOOLS / role) not in sys.path:
            sys.path.insert(0, str(TOOLS / role))
