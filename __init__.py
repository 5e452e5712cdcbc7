"""RAAG and S²-Guidance guiders for ComfyUI, registered with the V3 node schema.

Importing the pack does nothing else: the node modules are imported when ComfyUI asks for the list.
(No NODE_CLASS_MAPPINGS here: ComfyUI would then ignore comfy_entrypoint.)
"""

from comfy_api.latest import ComfyExtension, io

# Served by ComfyUI at /extensions/<this folder's name>/: the node help pages the frontend's node library
# shows (web/docs/<node id>.md). No JavaScript in it. The repository's own docs/ (benchmark reports)
# stays out of it.
WEB_DIRECTORY = "./web"


class RAAGS2GuidanceExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from .nodes import NODES

        return list(NODES)


async def comfy_entrypoint() -> ComfyExtension:
    return RAAGS2GuidanceExtension()
