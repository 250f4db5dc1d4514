"""Time all metrics of one protocol on a synthetic 2000x2000 matte (target: under 2 s each).

Run: ``python benchmarks/bench_metrics.py [--size 2000] [--repeat 3]``. Prints, per protocol,
the best and mean wall time of ``lpmatte.metrics.compute_metrics`` with a trimap.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from lpmatte.metrics import compute_metrics


def synthetic_case(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A portrait-like soft blob, a noisy shifted prediction with stray specks, a trimap."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    distance = np.hypot((rows - 0.6 * size) / 0.45, (cols - 0.5 * size) / 0.3) - 0.5 * size
    gt = np.clip(0.5 - distance / 20.0, 0, 1)
    pred = np.clip(0.5 - (distance + 5) / 25.0 + rng.normal(0, 0.05, gt.shape), 0, 1)
    pred[rng.random(gt.shape) < 1e-3] = 1.0  # disconnected specks for the connectivity error
    gt8, pred8 = np.rint(gt * 255).astype(np.uint8), np.rint(pred * 255).astype(np.uint8)
    trimap = np.zeros(gt.shape, np.uint8)
    trimap[ndimage.binary_dilation(gt8 > 0, iterations=15)] = 128
    trimap[ndimage.binary_erosion(gt8 == 255, iterations=15)] = 255
    return pred8, gt8, trimap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pred, gt, trimap = synthetic_case(args.size)
    for protocol in ("dim", "p3m"):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            values = compute_metrics(pred, gt, trimap, protocol=protocol)
            times.append(time.perf_counter() - start)
        print(f"{protocol}: {args.size}x{args.size}, {len(values)} metrics, "
              f"best {min(times):.3f} s, mean {np.mean(times):.3f} s over {args.repeat} runs")


if __name__ == "__main__":
    main()
