"""End-to-end latency of every backend, interleaved in one process, as a markdown table.

Backends take turns run by run (A, B, C, A, B, C, ...), so a busy machine slows them
alike. On a machine shared with other jobs, the CPU-time columns (process CPU time per
frame, all threads) are the steadier measure of cost. Inputs are lpmatte.evaluation.profiler's: a
synthetic HD/4K portrait whose boundary cells are refined (about 1.9k regions at HD),
or --images. Speed-ups are against eager-fp32 measured in the same run.

    python benchmarks/bench_latency.py --model lpm lpm-s --size hd 4k \\
        --backends eager-fp32 onnx onnx-int8 auto --runs 10 [--out latency.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import lpmatte
from lpmatte.evaluation.profiler import (
    Timings,
    hardware_name,
    parse_size,
    profile_inputs,
    summarize,
    timed_runs,
    warm_up,
)
from lpmatte.media.image_io import atomic_write

COLUMNS = ("model", "size", "backend", "e2e ms (median)", "p90", "FPS", "x eager",
           "CPU ms", "x eager (CPU)", "low-res ms", "refine ms", "regions", "GFLOPs",
           "mean abs d-alpha", "trimap agree")


def bench_one_size(model: str, size, backends, runs: int, warmup: int, images, device: str):
    """Reports of each backend on one model and size, runs interleaved."""
    inputs = profile_inputs(size, images)
    matters = {b: lpmatte.load(model, device=device, backend=b) for b in backends}
    timings = {b: Timings() for b in backends}
    for matter in matters.values():
        warm_up(matter, inputs, warmup)
    for i in range(runs):
        for backend, matter in matters.items():
            timed_runs(matter, inputs, 1, timings[backend], start=i)
    reports = {b: summarize(matters[b], size, inputs, timings[b]) for b in backends}
    return reports, agreement(matters, inputs)


def agreement(matters: dict, inputs) -> dict[str, tuple[float, float]]:
    """Per backend: (mean |alpha - eager alpha|, fraction of equal trimap cells), on the
    model's own trimap plus the forced boundary, like the agreement tests."""
    if "eager-fp32" not in matters:
        return {}
    image, mask = inputs[0]
    ref_alpha, ref_trimap = matters["eager-fp32"].predict(image, return_trimap=True)
    ref_forced = matters["eager-fp32"].run(image, region_mask=mask).alpha_array()
    result = {}
    for backend, matter in matters.items():
        alpha, trimap = matter.predict(image, return_trimap=True)
        forced = matter.run(image, region_mask=mask).alpha_array()
        error = max(np.abs(alpha - ref_alpha).mean(), np.abs(forced - ref_forced).mean())
        result[backend] = (float(error), float((trimap == ref_trimap).mean()))
    return result


def table_rows(reports: dict, agree: dict) -> list[list[str]]:
    eager = reports.get("eager-fp32")
    rows = []
    for label, r in reports.items():
        speedup = eager.e2e_ms_median / r.e2e_ms_median if eager else float("nan")
        cpu_speedup = eager.cpu_ms_median / r.cpu_ms_median if eager else float("nan")
        name = r.backend if label == r.backend else f"{label} ({r.backend})"
        error, same = agree.get(label, (float("nan"), float("nan")))
        rows.append([r.model, r.size, name, f"{r.e2e_ms_median:.0f}", f"{r.e2e_ms_p90:.0f}",
                     f"{r.fps:.2f}", f"{speedup:.2f}", f"{r.cpu_ms_median:.0f}",
                     f"{cpu_speedup:.2f}", f"{r.stages['lowres']:.0f}",
                     f"{r.stages['refinement']:.0f}", f"{r.regions:.0f}", f"{r.gflops:.1f}",
                     f"{error:.1e}", f"{100 * same:.2f}%"])
    return rows


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", default=["lpm"])
    parser.add_argument("--size", nargs="+", default=["hd"])
    parser.add_argument("--backends", nargs="+", default=["eager-fp32", "auto"])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", default=None, help="photos instead of the synthetic one")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for model in args.model:
        for size in args.size:
            reports, agree = bench_one_size(model, parse_size(size), args.backends, args.runs,
                                            args.warmup, args.images, args.device)
            rows += table_rows(reports, agree)
            print(markdown(rows[-len(reports):]).split("\n", 2)[-1], file=sys.stderr)
    device = torch.device(args.device)
    header = (f"{hardware_name(device)}, {torch.get_num_threads()} threads, torch "
              f"{torch.__version__}; {args.runs} interleaved runs; command: "
              f"python benchmarks/bench_latency.py {' '.join(sys.argv[1:])}\n\n")
    text = header + markdown(rows) + "\n"
    print(text)
    if args.out:
        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(text))


if __name__ == "__main__":
    main()
