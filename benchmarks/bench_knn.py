"""Neighbour search at inference: pairwise top-k vs grid search vs scipy's cKDTree.

Regions are the boundary cells of a synthetic portrait (lpmatte.data.synthetic) at HD and 4K.
cKDTree is timed for reference only: it does not break distance ties by region index, so
its neighbours can differ from the training-time search (counted in the last column).

    python benchmarks/bench_knn.py [--k 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch
from scipy.spatial import cKDTree

from lpmatte.data.synthetic import boundary_region_mask, portrait_alpha
from lpmatte.model.nearest_regions import knn_grid, knn_pairwise

SIZES = {"hd": (1792, 1152), "4k": (3456, 2304)}


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def kdtree_knn(regions: torch.Tensor, k: int) -> np.ndarray:
    points = regions[:, 1:].numpy()
    _, index = cKDTree(points).query(points, k=k + 1)
    return index[:, 1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("size  regions  pairwise_ms  grid_ms  kdtree_ms  kdtree_rows_differing")
    for name, (height, width) in SIZES.items():
        mask = boundary_region_mask(portrait_alpha(height, width))
        regions = mask[:, 0].nonzero()
        grid = tuple(mask.shape[-2:])
        pairwise = best_ms(partial(knn_pairwise, regions, args.k), args.repeat)
        gridded = best_ms(partial(knn_grid, regions, args.k, grid), args.repeat)
        kdtree = best_ms(partial(kdtree_knn, regions, args.k), args.repeat)
        exact = knn_grid(regions, args.k, grid)[0].numpy()
        differing = int((np.sort(kdtree_knn(regions, args.k), 1) != np.sort(exact, 1)).any(1).sum())
        print(f"{name:4}  {len(regions):7d}  {pairwise:11.1f}  {gridded:7.1f}  {kdtree:9.1f}  "
              f"{differing}")


if __name__ == "__main__":
    main()
