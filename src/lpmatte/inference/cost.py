"""Parameters and FLOPs per stage, counted by ``torch.utils.flop_counter``.

FlopCounterMode counts a multiply-add as 2 FLOPs (matmuls, convolutions, attention);
element-wise ops are not counted. The paper's "GFLOPS" match multiply-adds (MACs) more
closely, i.e. half of what is reported here: see the README's cost table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from lpmatte.inference.options import InferenceOptions
from lpmatte.model.config import WHOLE_IMAGE
from lpmatte.model.model import LightweightPortraitMatting


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


class _CountingBackend:
    """Wraps an eager backend and adds up the FLOPs of each network's calls."""

    def __init__(self, backend):
        self.inner, self.config = backend, backend.config
        self.flops = {"lowres": 0, "refiner": 0}

    def lowres(self, padded):
        result, flops = _count(self.inner.lowres, padded)
        self.flops["lowres"] += flops
        return result

    def refine(self, *args):
        result, flops = _count(self.inner.refine, *args)
        self.flops["refiner"] += flops
        return result

    def whole_image(self, padded):
        result, flops = _count(self.inner.whole_image, padded)
        self.flops["network"] = self.flops.get("network", 0) + flops
        return result

    def __getattr__(self, name: str):  # device, input_multiple, ...
        return getattr(self.inner, name)


@torch.inference_mode()
def measure_cost(model: LightweightPortraitMatting, image: torch.Tensor,
                 options: InferenceOptions = InferenceOptions(),
                 region_mask: torch.Tensor | None = None) -> CostReport:
    """Cost of ``model`` on ``image`` (1, 3, H, W): stages "lowres" and "refiner", counted
    on the inference path itself (:func:`lpmatte.inference.pipeline.run_inference` with
    ``options``: both passes of a large image, the mirrored view of mirror averaging).

    ``region_mask`` (1, 1, h, w) bool on the 1/8 grid forces the refined cells, so an
    untrained model can be costed on a realistic boundary.
    """
    from lpmatte.inference.backends import TorchBackend
    from lpmatte.inference.pipeline import StageClock, run_inference

    counting = _CountingBackend(TorchBackend(model.eval(), image.device))
    clock = StageClock()
    run_inference(counting, image, options, region_mask=region_mask, clock=clock)
    if model.config.kind == WHOLE_IMAGE:
        return CostReport(params={"network": count_params(model)},
                          flops={"network": counting.flops.get("network", 0)})
    return CostReport(
        params={"lowres": count_params(model.lowres), "refiner": count_params(model.refiner)},
        flops=counting.flops,
        regions=clock.counts.get("regions", 0),
    )


def flops_by_regions(config, size: tuple[int, int], lowres_runs: int = 1):
    """FLOPs as a function of the refined-region count, for a model known only by its
    ``config`` (an ONNX export, say): the low-res network's FLOPs depend only on the padded
    ``size`` (times ``lowres_runs``: 2 with mirror averaging), the refiner's are the same for
    every region."""
    from lpmatte.inference.onnx.export import sample_regions
    from lpmatte.model.factory import network_for
    from lpmatte.model.two_stage import pad_to_multiple

    model = network_for(config).eval()
    if config.kind == WHOLE_IMAGE:  # one pass at input_size, whatever the regions
        from lpmatte.inference.pipeline import working_size

        side = working_size(*size, config.input_size) or size
        padded = pad_to_multiple(torch.empty(1, 3, *side), model.input_multiple).shape
        with torch.no_grad():
            flops = _count(model.to("meta"), torch.empty(padded, device="meta"))[1]
        return lambda n: lowres_runs * flops
    count = 64
    with torch.no_grad():
        crops, regions, neighbours, valid = sample_regions(config, count)
        per_region = _count(model.refiner, crops, regions, neighbours, valid)[1] / count
        padded = pad_to_multiple(torch.empty(1, 3, *size)).shape
        lowres = _count(model.to("meta").lowres, torch.empty(padded, device="meta"))[1]
    return lambda n: lowres_runs * lowres + n * per_region
