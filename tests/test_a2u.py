"""A2U (thesis ch. 4): the low-rank bilinear kernel, its normalisation, its special cases."""

import pytest
import torch
import torch.nn.functional as F

from lpmatte.model.a2u import AffinityAwareUpsampling


@pytest.mark.parametrize("rank", [1, 3])
def test_affinity_matrices_have_at_most_the_rank(rank):
    up = AffinityAwareUpsampling(guide_channels=4, rank=rank).double()
    matrices = up.affinity_matrices()  # (4 s^2, G, N, N), N = 25
    assert matrices.shape == (4 * 9, 4, 25, 25)
    ranks = torch.linalg.matrix_rank(matrices.flatten(0, 1))
    assert ranks.max() <= rank and ranks.max() == rank


def test_raw_kernel_is_the_bilinear_form_of_the_guide_windows():
    torch.manual_seed(0)
    up = AffinityAwareUpsampling(guide_channels=3, rank=2).double()
    guide = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    # x_k: channel k's 5x5 window around each stride-2 position, (G, N, h, w)
    windows = F.unfold(guide, 5, padding=2, stride=2).view(3, 25, 4, 4)
    forms = torch.einsum("knhw,tknm,kmhw->thw", windows, up.affinity_matrices(), windows)
    expected = F.pixel_shuffle(forms[None], 2)  # P's channel t = tap * 4 + position
    assert torch.allclose(up.raw_kernels(guide), expected)


def test_kernels_are_normalised_over_the_taps():
    up = AffinityAwareUpsampling(guide_channels=2, mode="hybrid")
    kernels = up.kernels(torch.randn(2, 2, 8, 12))
    assert kernels.shape == (2, 9, 8, 12)
    assert torch.allclose(kernels.sum(1), torch.ones(2, 8, 12), atol=1e-6)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_constant_affinity_is_a_box_filter_then_nearest_upsampling(kernel_size):
    up = AffinityAwareUpsampling(guide_channels=2, kernel_size=kernel_size)
    with torch.no_grad():
        up.u.weight.zero_()  # every window's affinity is 0: all taps equal
    low = torch.randn(1, 3, 5, 7)
    box = F.avg_pool2d(low, kernel_size, 1, kernel_size // 2, count_include_pad=True)
    expected = F.interpolate(box, scale_factor=2, mode="nearest")
    assert torch.allclose(up(low, torch.randn(1, 2, 10, 14)), expected, atol=1e-6)


def test_output_follows_the_guide():
    up = AffinityAwareUpsampling(guide_channels=2)
    low = torch.randn(1, 4, 6, 6)
    a, b = up(low, torch.randn(1, 2, 12, 12)), up(low, torch.randn(1, 2, 12, 12))
    assert a.shape == (1, 4, 12, 12) and not torch.allclose(a, b)
