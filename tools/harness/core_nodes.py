"""Runs one of core ComfyUI's nodes in-process, whichever node API it has on the running version.

Core moved its nodes from the V1 API (an instance method named by ``FUNCTION``, returning a tuple) to V3
(a classmethod ``execute`` returning a ``NodeOutput``) over several releases: 0.3.64's custom-sampler
nodes are V1, 0.3.75's are V3. Tests and tools call ``run(Node, **inputs)`` and get the outputs as a
tuple either way.
"""

from __future__ import annotations

from typing import Any


def run(node_class: type, **inputs: Any) -> tuple:
    if callable(getattr(node_class, "define_schema", None)):  # V3
        output = node_class.execute(**inputs)
        return tuple(output.result if hasattr(output, "result") else output)
    return tuple(getattr(node_class(), node_class.FUNCTION)(**inputs))


def first(node_class: type, **inputs: Any) -> Any:
    """The node's first output."""
    return run(node_class, **inputs)[0]
