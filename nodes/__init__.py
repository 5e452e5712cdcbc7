"""Node definitions (schema, tooltips, validation). Everything else lives in ../guiders."""

from .demo import DemoDecodeNode, DemoModelLoaderNode, DemoPromptNode
from .guidance import (
    RAAGGuiderNode,
    RAAGModelPatchNode,
    RAAGS2GuiderNode,
    RAAGS2ModelPatchNode,
    S2GuiderNode,
    S2ModelPatchNode,
)
from .trace_plot import GuidanceTracePlotNode

NODES = [RAAGGuiderNode, S2GuiderNode, RAAGS2GuiderNode, GuidanceTracePlotNode,
         DemoModelLoaderNode, DemoPromptNode, DemoDecodeNode,
         RAAGModelPatchNode, S2ModelPatchNode, RAAGS2ModelPatchNode]
