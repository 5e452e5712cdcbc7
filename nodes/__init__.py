"""Node definitions (schema, tooltips, validation). Everything else lives in ../guiders."""

from .demo import DemoDecodeNode, DemoModelLoaderNode, DemoPromptNode
from .model_patch import RAAGModelPatchNode, RAAGS2ModelPatchNode, S2ModelPatchNode
from .raag import RAAGGuiderNode
from .s2 import RAAGS2GuiderNode, S2GuiderNode
from .trace_plot import GuidanceTracePlotNode

NODES = [RAAGGuiderNode, S2GuiderNode, RAAGS2GuiderNode, GuidanceTracePlotNode,
         DemoModelLoaderNode, DemoPromptNode, DemoDecodeNode,
         RAAGModelPatchNode, S2ModelPatchNode, RAAGS2ModelPatchNode]
