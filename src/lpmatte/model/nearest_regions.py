"""KNN extraction (Sec. 3.3): the k nearest selected regions of each region, same image only.

Two exact searches with one tie rule (equal distances -> lower region index first), so
they return identical neighbours:

- :func:`knn_pairwise`, pairwise distances + top-k, as the paper does in training;
- :func:`knn_grid`, for inference: regions sit on an integer grid, so the candidates
  within a (2R+1)^2 window are gathered from an index map, and the rare region with fewer
  than k candidates within distance R falls back to the pairwise search. It is linear in
  the number of regions (a KD-tree is not needed; see benchmarks/bench_knn.py).

Both return ``(neighbours, valid)``: (N, k) indices into ``regions`` and a (N, k) bool that
is False where an image has fewer than k + 1 regions (those slots repeat the region itself).
"""

from __future__ import annotations

import torch

_NONE = torch.iinfo(torch.int64).max


def _smallest_keys(keys: torch.Tensor, k: int) -> torch.Tensor:
    """The k smallest keys (d2 * n + j, or _NONE) per row, ascending, padded with _NONE."""
    count = min(k, keys.shape[1])
    best = keys.topk(count, dim=1, largest=False).values if count else keys[:, :0]
    return torch.cat([best, best.new_full((len(best), k - count), _NONE)], 1)


def _take_k(keys: torch.Tensor, n: int, k: int, self_index: torch.Tensor):
    """Smallest-k of ``keys`` -> (indices, valid); invalid slots repeat the region itself."""
    best = _smallest_keys(keys, k)
    valid = best != _NONE
    return torch.where(valid, best % max(n, 1), self_index[:, None]), valid


def _pairwise_keys(queries: torch.Tensor, points: torch.Tensor, query_ids: torch.Tensor):
    d2 = ((queries[:, None, :] - points[None, :, :]) ** 2).sum(-1)  # [q, n]
    keys = d2 * len(points) + torch.arange(len(points), device=points.device)
    keys[torch.arange(len(queries)), query_ids] = _NONE  # a region is not its own neighbour
    return keys


def _knn_one_image(points: torch.Tensor, query_ids: torch.Tensor, k: int, chunk: int = 2048):
    """Neighbours (local indices) of points[query_ids] among ``points`` (n, 2)."""
    results = []
    for start in range(0, len(query_ids), chunk):
        ids = query_ids[start:start + chunk]
        keys = _pairwise_keys(points[ids], points, ids)
        results.append(_take_k(keys, len(points), k, ids))
    if not results:
        empty = query_ids.new_zeros(0, k)
        return empty, empty.bool()
    return torch.cat([r[0] for r in results]), torch.cat([r[1] for r in results])


def knn_pairwise(regions: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest regions by pairwise distances. ``regions``: (N, 3) (batch, row, col)."""
    neighbours = regions.new_zeros(len(regions), k)
    valid = torch.zeros(len(regions), k, dtype=torch.bool, device=regions.device)
    for b in regions[:, 0].unique():
        members = (regions[:, 0] == b).nonzero()[:, 0]
        local = torch.arange(len(members), device=regions.device)
        index, ok = _knn_one_image(regions[members, 1:], local, k)
        neighbours[members] = members[index]
        valid[members] = ok
    return neighbours, valid


def _window_offsets(radius: int, device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device)
    offsets = torch.stack(torch.meshgrid(r, r, indexing="ij"), -1).view(-1, 2)
    return offsets[(offsets != 0).any(1)]  # [(2R+1)^2 - 1, 2]


def knn_grid(regions: torch.Tensor, k: int, grid_size: tuple[int, int],
             radius: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest regions through a dense index map of the (h, w) grid."""
    n = len(regions)
    if n == 0:
        return regions.new_zeros(0, k), torch.zeros(0, k, dtype=torch.bool)
    h, w = grid_size
    batches = int(regions[:, 0].max()) + 1
    index_map = regions.new_full((batches, h + 2 * radius, w + 2 * radius), -1)
    b, r, c = regions.unbind(1)
    ids = torch.arange(n, device=regions.device)
    index_map[b, r + radius, c + radius] = ids
    offsets = _window_offsets(radius, regions.device)
    candidates = index_map[b[:, None], (r + radius)[:, None] + offsets[:, 0],
                           (c + radius)[:, None] + offsets[:, 1]]  # [N, W]
    d2 = (offsets ** 2).sum(1)[None]
    keys = torch.where(candidates >= 0, d2 * n + candidates, _NONE)
    kth = _smallest_keys(keys, k)[:, -1]
    neighbours, valid = _take_k(keys, n, k, ids)
    unsure = (kth == _NONE) | (kth // n > radius * radius)
    if unsure.any():
        _fall_back_to_pairwise(regions, k, unsure.nonzero()[:, 0], neighbours, valid)
    return neighbours, valid


def _fall_back_to_pairwise(regions, k, queries, neighbours, valid) -> None:
    """Exact search for regions whose k-th neighbour may lie outside the grid window."""
    for b in regions[queries, 0].unique():
        members = (regions[:, 0] == b).nonzero()[:, 0]
        local_of = torch.full((len(regions),), -1, dtype=torch.long, device=regions.device)
        local_of[members] = torch.arange(len(members), device=regions.device)
        wanted = queries[regions[queries, 0] == b]
        index, ok = _knn_one_image(regions[members, 1:], local_of[wanted], k)
        neighbours[wanted] = members[index]
        valid[wanted] = ok


def find_neighbours(config, regions: torch.Tensor, grid: tuple[int, int],
                    pairwise: bool = False):
    """(neighbours, valid) of ``regions`` for a refiner ``config`` (k = num_neighbors), or
    (None, None) when it has no Cross Region Attention. ``pairwise`` selects the training
    search; both return the same neighbours."""
    if not config.use_cra:
        return None, None
    if pairwise:
        return knn_pairwise(regions, config.num_neighbors)
    return knn_grid(regions, config.num_neighbors, tuple(grid))
