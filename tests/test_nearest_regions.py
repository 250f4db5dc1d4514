import pytest
import torch

from lpmatte.model.nearest_regions import knn_grid, knn_pairwise


def _brute_force(regions: torch.Tensor, k: int):
    """Plain Python reference: sort same-image regions by (distance, index)."""
    result = []
    for i, (b, r, c) in enumerate(regions.tolist()):
        others = [((r - r2) ** 2 + (c - c2) ** 2, j) for j, (b2, r2, c2) in
                  enumerate(regions.tolist()) if b2 == b and j != i]
        result.append([j for _, j in sorted(others)[:k]])
    return result


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 4, 8])
def test_pairwise_and_grid_equal_brute_force(seed, k):
    g = torch.Generator().manual_seed(seed)
    h, w = (int(v) for v in torch.randint(2, 30, (2,), generator=g))
    density = float(torch.rand(1, generator=g)) * 0.4
    regions = (torch.rand(2, h, w, generator=g) < density).nonzero()
    expected = _brute_force(regions, k)
    for neighbours, valid in (knn_pairwise(regions, k), knn_grid(regions, k, (h, w))):
        got = [[j for j, ok in zip(row, oks) if ok]
               for row, oks in zip(neighbours.tolist(), valid.tolist())]
        assert got == expected


def test_grid_search_falls_back_for_isolated_regions():
    regions = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 40, 40], [0, 41, 39]])
    neighbours, valid = knn_grid(regions, 2, (50, 50), radius=2)
    assert neighbours.tolist() == [[1, 2], [0, 2], [3, 1], [2, 1]]
    assert neighbours.tolist() == knn_pairwise(regions, 2)[0].tolist()
    assert valid.all()


def test_too_few_regions_pads_with_invalid_self():
    regions = torch.tensor([[0, 3, 3], [0, 3, 5], [1, 0, 0]])
    neighbours, valid = knn_grid(regions, 3, (8, 8))
    assert valid.tolist() == [[True, False, False], [True, False, False], [False] * 3]
    assert neighbours[2].tolist() == [2, 2, 2]
    assert torch.equal(neighbours, knn_pairwise(regions, 3)[0])
