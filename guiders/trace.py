"""A per-run record of what the guider did at every model call, for plots, tests and benchmarks.

Entries keep the tensors as they were computed (on the model's device): nothing is copied to the
host while sampling. ``rows()`` converts them when someone reads the trace after the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TraceEntry:
    step: int  # sampler step the call belongs to (several calls per step for heun-like samplers)
    sigma: torch.Tensor  # [B]
    scale: torch.Tensor | float  # guidance scale applied: [B] (RAAG) or the fixed cfg
    rho: torch.Tensor | None  # [B] RAAG ratio, None where no unconditional pass ran
    dropped: tuple[tuple[str, int], ...]  # S² blocks dropped in this call; () if no sub-network pass
    deviation: torch.Tensor | None  # [B] ||D_sub - D_c|| / ||D_c - D_u||, None without S²
    reused: bool = False  # the sub-network pass started at the first dropped block (blocks.Prefix)


def _floats(value, batch: int) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return [float(v) for v in value.detach().float().cpu().reshape(-1).expand(batch)]
    return [float(value)] * batch


class GuidanceTrace:
    def __init__(self):
        self.entries: list[TraceEntry] = []

    def clear(self) -> None:
        self.entries = []

    def record(self, entry: TraceEntry) -> None:
        self.entries.append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def rows(self) -> list[dict]:
        """The trace as plain Python values (one dict per model call)."""
        rows = []
        for e in self.entries:
            batch = e.sigma.numel()
            rows.append({
                "step": e.step,
                "sigma": _floats(e.sigma, batch),
                "w": _floats(e.scale, batch),
                "rho": _floats(e.rho, batch),
                "dropped": [list(d) for d in e.dropped],
                "deviation": _floats(e.deviation, batch),
                "reused": e.reused,
            })
        return rows
