"""The refiner's ONNX graph alone in onnxruntime, models taking turns call by call, with the
time per operator type (onnxruntime's own profiler).

    python benchmarks/bench_refiner_graph.py default src/lpmatte/weights/lpm-e0-groups.safetensors \
        --regions 2446 --runs 11 --threads 1

Each model's refiner is traced as the ONNX backends trace it (``export_refiner``: the
inference form of lpmatte/model/fused_refiner.py) and fed the same crops: ``--regions`` cells
drawn at random from an HD-sized 1/8 grid, with their real neighbour lists. This isolates
the cost of the decoder variants (``transposed`` vs ``resize``), which the end-to-end
profile mixes with the rest of the pipeline.

``--roofline`` also says how close the graph runs to this CPU's arithmetic limit: the
refiner's FLOPs per operator family (``torch.utils.flop_counter`` on the traced inference
form, a multiply-add = 2 FLOPs) over onnxruntime's time for that family, next to the rate
of one large fp32 matrix product and of one shaped like Cross Region Attention's
(21,600 x 128 by 128 x 128) on the same threads.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np
import torch

import lpmatte
from lpmatte.inference.onnx.export import export_refiner
from lpmatte.model.fused_refiner import fuse_refiner
from lpmatte.model.nearest_regions import find_neighbours

GRID = (1792 // 8, 1152 // 8)  # HD portrait, 1/8 cells


def sample_inputs(model, regions: int, seed: int = 0) -> list[np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    rows, cols = GRID
    cells = torch.randperm(rows * cols, generator=generator)[:regions].sort().values
    coords = torch.stack([torch.zeros_like(cells), cells // cols, cells % cols], 1)
    neighbours, valid = find_neighbours(model.config.refiner, coords, GRID)
    crops = torch.rand(regions, 4, 8, 8, generator=generator)
    return [crops.numpy(), coords.numpy(), neighbours.numpy(), valid.numpy()]


def session_for(name: str, regions: int, threads: int, profile_dir: Path):
    import onnxruntime

    model = lpmatte.load(name, backend="eager-fp32").model
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(profile_dir / Path(name).stem)
    session = onnxruntime.InferenceSession(export_refiner(model).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = dict(zip(names, sample_inputs(model, regions)))
    return model.config.refiner.decoder, session, feed


def operator_times(profile: str, runs: int) -> collections.Counter:
    """ms per call by operator type, from an onnxruntime profile."""
    totals = collections.Counter()
    for event in json.loads(Path(profile).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"] / 1e3 / runs
    return totals


# onnxruntime operator types that carry each family of counted FLOPs
FAMILIES = {"convolution": ("Conv",), "matrix products": ("Gemm", "MatMul", "FusedMatMul")}
ATEN_FAMILY = {"convolution": "convolution", "addmm": "matrix products",
               "mm": "matrix products", "bmm": "matrix products",
               "_scaled_dot_product_flash_attention": "matrix products",
               "_scaled_dot_product_efficient_attention": "matrix products"}


def counted_flops(model, feed: list[np.ndarray]) -> collections.Counter:
    """FLOPs of one call of the inference-form refiner on ``feed``, per family."""
    from torch.utils.flop_counter import FlopCounterMode

    refiner = fuse_refiner(model.refiner).eval()
    tensors = [torch.from_numpy(array) for array in feed]
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        refiner(*tensors)
    families = collections.Counter()
    for op, flops in counter.get_flop_counts()["Global"].items():
        families[ATEN_FAMILY.get(getattr(op, "__name__", str(op)).split(".")[0], "other")] += flops
    return families


def gemm_rate(rows: int, inner: int, cols: int, runs: int = 20) -> float:
    """GFLOP/s of an fp32 (rows x inner) @ (inner x cols) product in PyTorch (oneDNN/MKL)."""
    a, b = torch.rand(rows, inner), torch.rand(inner, cols)
    a @ b
    start = time.perf_counter()
    for _ in range(runs):
        a @ b
    return 2 * rows * inner * cols * runs / (time.perf_counter() - start) / 1e9


def print_roofline(name: str, model, feed, ops: collections.Counter) -> None:
    flops = counted_flops(model, feed)
    total_ms = sum(ops.values())
    print(f"\n{name}: {sum(flops.values()) / 1e9:.2f} GFLOPs per call "
          f"(onnxruntime operator time {total_ms:.1f} ms)")
    print("| family | GFLOPs | ms | GFLOP/s |")
    print("|---|---|---|---|")
    arithmetic_ms = 0.0
    for family, op_types in FAMILIES.items():
        ms = sum(ops[op] for op in op_types)
        arithmetic_ms += ms
        print(f"| {family} ({'/'.join(op_types)}) | {flops[family] / 1e9:.2f} | {ms:.1f} | "
              f"{flops[family] / 1e6 / max(ms, 1e-9):.0f} |")
    print(f"| everything else (layout, gathers, softmax, norms, activations) | - | "
          f"{total_ms - arithmetic_ms:.1f} | - |")
    print(f"reference fp32 products here: 2048^3 {gemm_rate(2048, 2048, 2048, 3):.0f} GFLOP/s, "
          f"attention-shaped 21600x128x128 {gemm_rate(21600, 128, 128):.0f} GFLOP/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="registered names or weights files")
    parser.add_argument("--regions", type=int, default=2446)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--roofline", action="store_true",
                        help="also FLOPs and GFLOP/s per operator family")
    parser.add_argument("--profile-dir", type=Path, default=Path("/tmp/lpmatte-refiner-graph"))
    args = parser.parse_args()
    args.profile_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    sessions = {name: session_for(name, args.regions, args.threads, args.profile_dir)
                for name in args.models}
    for _, session, feed in sessions.values():
        session.run(None, feed)  # warm-up
    times = {name: [] for name in sessions}
    for _ in range(args.runs):
        for name, (_, session, feed) in sessions.items():
            start = time.perf_counter()
            session.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1e3)
    print(f"refiner graph, {args.regions} regions, {args.threads} thread(s), {args.runs} "
          "interleaved calls")
    print("| model | decoder | median ms | min ms | top operators (ms per call) |")
    print("|---|---|---|---|---|")
    all_ops = {}
    for name, (decoder, session, _) in sessions.items():
        ops = all_ops[name] = operator_times(session.end_profiling(), args.runs + 1)
        top = ", ".join(f"{op} {ms:.1f}" for op, ms in ops.most_common(5))
        print(f"| {name} | {decoder} | {np.median(times[name]):.1f} | {min(times[name]):.1f} "
              f"| {top} |")
    if args.roofline:
        for name, (_, _, feed) in sessions.items():
            model = lpmatte.load(name, backend="eager-fp32").model
            print_roofline(name, model, list(feed.values()), all_ops[name])


if __name__ == "__main__":
    main()
