"""Crops of the bilinearly upsampled coarse alpha, made for the refined regions alone."""

import pytest
import torch
import torch.nn.functional as F

from lpmatte.inference.pipeline import transition_cells
from lpmatte.model.region_selection import crop_regions, upsampled_regions


@pytest.mark.parametrize("size", [8, 4, 16, 5])
def test_region_crops_equal_crops_of_the_whole_upsampled_map(size):
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(2, 1, 5, 7, generator=generator)
    every_cell = torch.ones(2, 5, 7, dtype=torch.bool).nonzero()  # borders and corners too
    whole = F.interpolate(coarse, scale_factor=size, mode="bilinear", align_corners=False)
    expected = crop_regions(whole, every_cell, size)
    got = upsampled_regions(coarse, every_cell, size)
    assert got.shape == (70, 1, size, size)
    assert (got - expected).abs().max() < 1e-6


def test_transition_cells_are_the_cells_with_a_pixel_strictly_inside_the_margins():
    alpha = torch.zeros(1, 1, 16, 24)
    alpha[0, 0, 3, 3] = 0.5  # cell (0, 0)
    alpha[0, 0, 9, 20] = 0.1  # on the margin: not in transition
    alpha[0, 0, 12, 10] = 0.89  # cell (1, 1)
    alpha[0, 0, 0:8, 16:24] = 1.0  # opaque cell (0, 2)
    cells = transition_cells(alpha, 8, margin=0.1)
    assert cells.shape == (1, 1, 2, 3)
    assert cells[0, 0].tolist() == [[True, False, False], [False, True, False]]
