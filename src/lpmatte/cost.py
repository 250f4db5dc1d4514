"""Parameters and FLOPs per stage, counted by ``torch.utils.flop_counter``.

FlopCounterMode counts a multiply-add as 2 FLOPs (matmuls, convolutions, attention);
element-wise ops are not counted. The paper's "GFLOPS" match multiply-adds (MACs) more
closely, i.e. half of what is reported here: see the README's cost table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from lpmatte.model import LightweightPortraitMatting, grid_size, pad_to_multiple


@dataclass
class CostReport:
    """Per-stage parameter counts and FLOPs of one forward pass."""

    params: dict[str, int] = field(default_factory=dict)
    flops: dict[str, int] = field(default_factory=dict)
    regions: int = 0

    @property
    def total_flops(self) -> int:
        return sum(self.flops.values())

    @property
    def total_params(self) -> int:
        return sum(self.params.values())

    @property
    def gflops(self) -> float:
        return self.total_flops / 1e9

    def as_dict(self) -> dict:
        return {"params": self.params, "flops": self.flops, "regions": self.regions,
                "total_flops": self.total_flops, "total_params": self.total_params}


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _count(fn, *args):
    with FlopCounterMode(display=False) as counter:
        result = fn(*args)
    return result, counter.get_total_flops()


@torch.inference_mode()
def measure_cost(model: LightweightPortraitMatting, image: torch.Tensor,
                 region_mask: torch.Tensor | None = None) -> CostReport:
    """Cost of ``model`` on ``image`` (1, 3, H, W): stages "lowres" and "refiner".

    ``region_mask`` (1, 1, h, w) bool on the padded 1/8 grid forces the refined cells, so
    an untrained model can be costed on a realistic boundary.
    """
    model = model.eval()
    height, width = image.shape[-2:]
    padded = pad_to_multiple(image)
    side_outputs, lowres_flops = _count(model.lowres, padded)
    main = side_outputs[-1]
    (_, regions, _), refine_flops = _count(model.refine, padded, main.alpha_logits.sigmoid(),
                                           main.trimap_logits, grid_size(height, width),
                                           region_mask)
    return CostReport(
        params={"lowres": count_params(model.lowres), "refiner": count_params(model.refiner)},
        flops={"lowres": lowres_flops, "refiner": refine_flops},
        regions=len(regions),
    )
