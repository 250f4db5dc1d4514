"""IndexNet (thesis ch. 3): index blocks' shapes and normalisation, indexed pooling and
unpooling against max pooling / max unpooling."""

import pytest
import torch
import torch.nn.functional as F

from lpmatte.model.indexnet import (
    IndexBlock,
    IndexUpsampling,
    encoder_indices,
    index_pool,
    index_unpool,
)


def one_hot_max_index(x: torch.Tensor) -> torch.Tensor:
    """The indicator of each 2x2 region's maximum (Eq. 3.1), (B, C, H, W)."""
    _, flat = F.max_pool2d(x, 2, return_indices=True)
    index = torch.zeros_like(x).flatten(2)
    index.scatter_(2, flat.flatten(2), 1.0)
    return index.view_as(x)


@pytest.mark.parametrize("kind, shared, expected", [("holistic", False, 1), ("o2o", False, 6),
                                                    ("o2o", True, 6), ("m2o", False, 5)])
@pytest.mark.parametrize("nonlinear, context", [(True, True), (False, False)])
def test_index_maps_have_the_taxonomy_shapes(kind, shared, expected, nonlinear, context):
    block = IndexBlock(6, 6 if kind == "o2o" else 5, kind, nonlinear, context, shared).eval()
    maps = block(torch.rand(2, 6, 8, 12))
    assert maps.encoder.shape == maps.decoder.shape == (2, expected, 8, 12)
    assert 0 < maps.decoder.min() and maps.decoder.max() < 1  # sigmoid
    region_sums = F.avg_pool2d(maps.encoder, 2) * 4  # softmax per 2x2 region
    assert torch.allclose(region_sums, torch.ones_like(region_sums), atol=1e-6)


def test_shared_one_to_one_parameters_do_not_grow_with_channels():
    def count(channels):
        return sum(p.numel() for p in IndexBlock(channels, channels, "o2o", shared=True)
                   .parameters())

    assert count(4) == count(64)
    unshared = sum(p.numel() for p in IndexBlock(64, 64, "o2o").parameters())
    assert unshared > count(64)


def test_one_to_one_slices_see_only_their_own_slice():
    block = IndexBlock(4, 4, "o2o").eval()
    x = torch.rand(1, 4, 8, 8)
    changed = x.clone()
    changed[:, 2] += 1.0
    difference = (block.scores(changed) - block.scores(x)).abs().amax((0, 2, 3))
    assert difference[2] > 0 and torch.all(difference[[0, 1, 3]] == 0)
    many = IndexBlock(4, 4, "m2o").eval()
    assert torch.all((many.scores(changed) - many.scores(x)).abs().amax((0, 2, 3)) > 0)


def test_each_column_predicts_its_own_position_of_the_region():
    block = IndexBlock(3, 1, "holistic", nonlinear=False, context=False)
    with torch.no_grad():
        block.columns[0].weight.zero_()
        block.columns[0].bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))  # top-left .. bottom-right
    scores = block.scores(torch.rand(1, 3, 4, 4))
    assert scores[0, 0, :2, :2].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_index_unpooling_with_one_hot_indices_is_max_unpooling():
    x = torch.randn(2, 3, 8, 10)
    pooled, flat = F.max_pool2d(x, 2, return_indices=True)
    index = one_hot_max_index(x)
    assert torch.equal(index_pool(x, index), pooled)
    assert torch.equal(index_unpool(pooled, index), F.max_unpool2d(pooled, flat, 2))


def test_uniform_encoder_indices_make_index_pooling_average_pooling():
    x = torch.randn(1, 2, 6, 6)
    index = encoder_indices(torch.zeros(1, 1, 6, 6))  # holistic, broadcast over channels
    assert torch.allclose(index_pool(x, index), F.avg_pool2d(x, 2), atol=1e-6)


def test_index_upsampling_doubles_the_decoder_map():
    up = IndexUpsampling(guide_channels=5, channels=7)
    out = up(torch.rand(2, 7, 4, 6), torch.rand(2, 5, 8, 12))
    assert out.shape == (2, 7, 8, 12)


def test_mismatched_one_to_one_is_refused():
    with pytest.raises(ValueError, match="one-to-one"):
        IndexBlock(4, 8, "o2o")
