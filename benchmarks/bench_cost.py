"""Parameters and FLOPs per stage of every registered variant at HD and 4K.

The refined-region count depends on content; an untrained model's trimap is noise, so the
refined cells are forced to the boundary band of a synthetic portrait
(lpmatte.data.synthetic), the band a trained trimap head marks "unknown".

    python benchmarks/bench_cost.py [--models lpm lpm-s] [--markdown]
"""

from __future__ import annotations

import argparse

import torch

from lpmatte.data.synthetic import boundary_region_mask, synthetic_portrait
from lpmatte.inference.cost import measure_cost
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.registry import create_config, list_models
from lpmatte.model.two_stage import pad_to_multiple

SIZES = {"hd": (1792, 1152), "4k": (3456, 2304)}  # portrait H x W, as the reference profiler


def cost_row(name: str, size: str) -> dict:
    height, width = SIZES[size]
    image, alpha = synthetic_portrait(height, width)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    mask = boundary_region_mask(alpha)
    padded_cells = [s // 8 for s in pad_to_multiple(x).shape[-2:]]
    mask = torch.nn.functional.pad(mask, (0, padded_cells[1] - mask.shape[-1],
                                          0, padded_cells[0] - mask.shape[-2]))
    torch.manual_seed(0)
    model = LightweightPortraitMatting(create_config(name))
    report = measure_cost(model, x, region_mask=mask)
    return {"model": name, "size": size, "params_m": report.total_params / 1e6,
            "lowres_gflops": report.flops["lowres"] / 1e9,
            "refiner_gflops": report.flops["refiner"] / 1e9, "regions": report.regions,
            "total_gflops": report.gflops, "total_gmacs": report.gflops / 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    two_stage = [name for name in list_models() if create_config(name).kind == "two-stage"]
    parser.add_argument("--models", nargs="+", default=two_stage)  # zoo: bench_zoo_cost.py
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    header = ["model", "size", "params_m", "lowres_gflops", "refiner_gflops", "regions",
              "total_gflops", "total_gmacs"]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    for name in args.models:
        for size in args.sizes:
            row = cost_row(name, size)
            cells = [f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k in header]
            print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(cells),
                  flush=True)


if __name__ == "__main__":
    main()
