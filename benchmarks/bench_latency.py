"""End-to-end latency of every backend, interleaved in one process, as a markdown table.

Backends take turns run by run (A, B, C, A, B, C, ...), so a busy machine slows them
alike. On a machine shared with other jobs, the CPU-time columns (process CPU time per
frame, all threads) are the steadier measure of cost. Inputs are lpmatte.evaluation.profiler's: a
synthetic HD/4K portrait whose boundary cells are refined (about 1.9k regions at HD),
or --images. Speed-ups are against eager-fp32 measured in the same run.

    python benchmarks/bench_latency.py --model lpm lpm-s --size hd 4k \\
        --backends eager-fp32 onnx onnx-int8 auto --runs 10 [--out latency.md]

``--ab BASELINE`` compares two versions of the code instead of backends: this checkout and
the one at BASELINE (a checkout's root or its ``src`` folder, e.g. one made with ``git
worktree add /tmp/old <commit>``), each in its own worker process, taking turns image by
image (A B B A ...). It prints per-stage medians of both, their ratios, and how far the
two alphas lie apart (mean |alpha A - alpha B| per image, the largest over the images):

    python benchmarks/bench_latency.py --ab /tmp/old --model default --size hd 4k \\
        --images /work/shared/data/flickr-portraits/images --count 8 --runs 16

``--baseline-model`` gives the old side another model (``--ab .`` then compares two models
on this checkout, e.g. the default against a distilled refiner's weights file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
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


AB_STAGES = ("preprocess", "lowres", "selection", "refinement", "paste")
PAUSE_S = 0.2  # between turns of the A/B workers


def serve_worker() -> None:
    """``--worker``: load what the first line of stdin asks for, then time one run per line
    ("run I") and answer one JSON line each; "alpha I PATH" saves image I's alpha there."""
    from lpmatte.inference.pipeline import StageClock

    request = json.loads(sys.stdin.readline())
    torch.set_num_threads(request["threads"])
    inputs = profile_inputs(tuple(request["size"]), request["images"])
    inputs.images = inputs.images[:request["count"]]
    matter = lpmatte.load(request["model"], device="cpu", backend=request["backend"])
    for i in range(request["warmup"]):
        matter.run(inputs[i][0], region_mask=inputs[i][1])
    _answer({"backend": matter.backend.name, "images": len(inputs.images),
             "model": request["model"]})
    for line in sys.stdin:
        command, index, *rest = line.split()
        image, mask = inputs[int(index)]
        if command == "alpha":
            np.save(rest[0], matter.run(image, region_mask=mask).alpha_array())
            _answer({})
            continue
        clock = StageClock()
        begin, begin_cpu = time.perf_counter(), time.process_time()
        matter.run(image, region_mask=mask, clock=clock)
        _answer({"ms": (time.perf_counter() - begin) * 1e3,
                 "cpu_ms": (time.process_time() - begin_cpu) * 1e3,
                 "stages": clock.times, "regions": clock.counts.get("regions", 0)})


def _answer(message: dict) -> None:
    print(json.dumps(message), flush=True)


class Worker:
    """A worker process running the lpmatte found under ``source`` (its ``src`` folder)."""

    def __init__(self, source: Path, request: dict):
        env = {**os.environ, "PYTHONPATH": str(source)}
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self.info = self.ask(json.dumps(request))

    def ask(self, line: str) -> dict:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        for answer in self.process.stdout:
            if answer.startswith("{"):  # anything else is a library's own printing
                return json.loads(answer)
        raise SystemExit(f"a worker process failed (exit {self.process.wait()})")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def source_folder(path: str) -> Path:
    """The folder holding the ``lpmatte`` package of a checkout (its root or ``src``)."""
    root = Path(path).resolve()
    for candidate in (root / "src", root):
        if (candidate / "lpmatte" / "__init__.py").is_file():
            return candidate
    raise SystemExit(f"{path}: no lpmatte package under it (give a checkout or its src)")


def run_ab(baseline: Path, model: str, size, backend: str, args) -> str:
    """The A/B table of one model and size: this checkout (new) against ``baseline`` (old)."""
    request = {"model": model, "size": list(size), "backend": backend, "images": args.images,
               "count": args.count, "warmup": args.warmup, "threads": torch.get_num_threads()}
    old_request = {**request, "model": args.baseline_model or model}
    workers = {"old": Worker(baseline, old_request),
               "new": Worker(source_folder(Path(__file__).parents[1]), request)}
    results = {name: [] for name in workers}
    count = workers["new"].info["images"]
    for i in range(args.runs):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")  # cancels slow drifts
        for name in order:
            time.sleep(PAUSE_S)  # the other worker's idle threads stop spinning meanwhile
            results[name].append(workers[name].ask(f"run {i % count}"))
    differences = alpha_differences(workers, min(count, args.runs))
    for worker in workers.values():
        worker.close()
    return ab_table(size, workers, results, differences)


def alpha_differences(workers: dict, count: int) -> list[float]:
    """Mean |alpha old - alpha new| of each of the first ``count`` images."""
    differences = []
    with tempfile.TemporaryDirectory(prefix="lpmatte-ab-") as folder:
        for i in range(count):
            paths = {name: f"{folder}/{name}{i}.npy" for name in workers}
            for name, worker in workers.items():
                worker.ask(f"alpha {i} {paths[name]}")
            old, new = np.load(paths["old"]), np.load(paths["new"])
            differences.append(float(np.abs(old - new).mean()))
    return differences


def ab_table(size, workers: dict, results: dict, differences) -> str:
    def median(name: str, key: str, stage: str | None = None) -> float:
        values = [r["stages"].get(stage, 0.0) if stage else r[key] for r in results[name]]
        return float(np.median(values))

    rows = [("end to end ms", "ms", None), ("CPU ms (all threads)", "cpu_ms", None),
            *((f"{stage} ms", None, stage) for stage in AB_STAGES),
            ("regions", "regions", None)]
    lines = [f"at {size[1]}x{size[0]}: old = {workers['old'].info['model']} "
             f"({workers['old'].info['backend']}), new = {workers['new'].info['model']} "
             f"({workers['new'].info['backend']}); {len(results['new'])} runs each, "
             f"{workers['new'].info['images']} images",
             "", "| median | old | new | old / new |", "|---|---|---|---|"]
    for label, key, stage in rows:
        old, new = median("old", key, stage), median("new", key, stage)
        ratio = f"{old / new:.2f}" if new else "-"
        lines.append(f"| {label} | {old:.1f} | {new:.1f} | {ratio} |")
    lines.append(f"\nmean |alpha old - alpha new|: largest {max(differences):.2e} over "
                 f"{len(differences)} images")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:] == ["--worker"]:
        serve_worker()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", default=["lpm"])
    parser.add_argument("--size", nargs="+", default=["hd"])
    parser.add_argument("--backends", nargs="+", default=None,
                        help="default: eager-fp32 auto; with --ab, the first (auto)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", default=None, help="photos instead of the synthetic one")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    parser.add_argument("--ab", default=None, metavar="BASELINE",
                        help="compare this checkout with the one at BASELINE instead")
    parser.add_argument("--count", type=int, default=8, help="--ab: images from --images")
    parser.add_argument("--baseline-model", default=None,
                        help="--ab: the old side's model (default: --model's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ab:
        main_ab(args)
        return
    args.backends = args.backends or ["eager-fp32", "auto"]
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


def main_ab(args) -> None:
    baseline = source_folder(args.ab)
    backend = args.backends[0] if args.backends else "auto"
    tables = [run_ab(baseline, model, parse_size(size), backend, args)
              for model in args.model for size in args.size]
    header = (f"{hardware_name(torch.device('cpu'))}, {torch.get_num_threads()} threads, "
              f"torch {torch.__version__}; old = {baseline}; command: "
              f"python benchmarks/bench_latency.py {' '.join(sys.argv[1:])}\n\n")
    text = header + "\n\n".join(tables) + "\n"
    print(text)
    if args.out:
        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(text))


if __name__ == "__main__":
    main()
