"""Parameters and GFLOPs of the zoo's whole-image models (MMNet, PSPM).

GFLOPs are counted by ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs) on one
square image at the model's own ``input_size`` and at 224 x 224 (the size of the thesis'
Table 6.4); a whole-image model's cost does not depend on the photo, which the pipeline
resizes to ``input_size`` first.

    python benchmarks/bench_zoo_cost.py [--models mmnet pspm]
"""

from __future__ import annotations

import argparse

import torch

from lpmatte.model.factory import build_model
from lpmatte.model.registry import create_config, list_models
from lpmatte.model.whole_image import count_flops


def cost_row(name: str) -> str:
    config = create_config(name)
    model = build_model(config)
    parameters = sum(p.numel() for p in model.parameters())
    side = config.input_size
    own, thesis = count_flops(model, side, side) / 1e9, count_flops(model, 224, 224) / 1e9
    return (f"| {name} | {parameters / 1e6:.3f} | {side} | {own:.3f} | {thesis:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    zoo = [name for name in list_models() if create_config(name).kind == "whole-image"]
    parser.add_argument("--models", nargs="+", default=zoo)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| model | params (M) | input | GFLOPs at input | GFLOPs at 224 |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.models:
        print(cost_row(name), flush=True)


if __name__ == "__main__":
    main()
