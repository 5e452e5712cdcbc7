"""Writes the README's S² architecture matrix from the block table (``guiders/blocks.py`` ``TABLE``).

    .venv/bin/python tools/generate/arch_matrix.py           # (re)write the README section
    .venv/bin/python tools/generate/arch_matrix.py --check   # exit 1 when it is out of date

Every row of the table is listed, also those the running ComfyUI lacks (the "needs ComfyUI" column says
from which release of the test matrix on a row exists); the text between the two markers is replaced.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
START = "<!-- arch-matrix:start (tools/generate/arch_matrix.py) -->"
END = "<!-- arch-matrix:end -->"
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/


def _blocks_module():
    import comfy_env

    comfy_env.bootstrap()
    comfy_env.load_pack()
    from importlib import import_module

    return import_module(comfy_env.PACK_NAME + ".guiders.blocks")


def _stack(group) -> str:
    name = getattr(group.find, "name", None)
    return f"`{name}`" if name else "BasicTransformerBlocks of the spatial transformers"


def _how(groups) -> str:
    keys = [f"`{g.name}`" for g in groups if g.passthrough is None]
    how = [f'`patches_replace["dit"]` {" / ".join(keys)} patch'] if keys else []
    if any(g.passthrough is not None for g in groups):
        how.append("pass-through `forward` (extra pass only)")
    return "; ".join(how)


def render() -> str:
    blocks = _blocks_module()
    lines = [
        "| architecture | ComfyUI model class | block stacks S² drops from (the first block of each is kept) "
        "| how | sub-network pass starts at the first dropped block | needs ComfyUI |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for arch in blocks.TABLE:
        stacks = ", ".join(_stack(g) for g in arch.groups)
        how = _how(arch.groups)
        reuse = "yes" if arch.reuse else ("no: forward overrides" if any(g.passthrough for g in arch.groups)
                                          else f"no: {arch.whole_pass}")
        lines.append(f"| {arch.label} | `{arch.model_class.removeprefix('comfy.ldm.')}` | {stacks} | {how} "
                     f"| {reuse} | {arch.since} |")
    return "\n".join(lines) + "\n"


def section(readme: str) -> str:
    start, end = readme.index(START) + len(START) + 1, readme.index(END)
    return readme[start:end]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    table = render()
    if args.check:
        if section(readme) != table:
            print("README architecture matrix is out of date: run tools/generate/arch_matrix.py", file=sys.stderr)
            return 1
        return 0
    start, end = readme.index(START) + len(START) + 1, readme.index(END)
    README.write_text(readme[:start] + table + readme[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
