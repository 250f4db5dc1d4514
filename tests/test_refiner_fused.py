"""The refiner's inference form computes what the trained module computes."""

import pytest
import torch

from lpmatte.model.config import RefinerConfig
from lpmatte.model.fused_refiner import fuse_refiner
from lpmatte.model.nearest_regions import find_neighbours
from lpmatte.model.refiner import Refiner


def trained_like(config: RefinerConfig, seed: int) -> Refiner:
    """A refiner whose BatchNorm statistics and affine parameters are far from the
    identity, so a wrongly folded scale or shift shows."""
    torch.manual_seed(seed)
    refiner = Refiner(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in refiner.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.3)
    return refiner.eval()


def region_batch(count: int, seed: int, config: RefinerConfig, columns: int = 9):
    generator = torch.Generator().manual_seed(seed)
    cells = torch.arange(count)
    regions = torch.stack([cells % 2, cells // columns, cells % columns], 1)  # two images
    neighbours, valid = find_neighbours(config, regions, (count // columns + 1, columns))
    return torch.rand(count, 4, 8, 8, generator=generator), regions, neighbours, valid


@pytest.mark.parametrize("decoder", ["resize", "transposed"])
@pytest.mark.parametrize("use_cra", [True, False])
@pytest.mark.parametrize("count", [1, 5, 200])
def test_fused_refiner_matches_the_module(decoder, use_cra, count):
    config = RefinerConfig(decoder=decoder, use_cra=use_cra)
    refiner = trained_like(config, seed=count)
    crops, regions, neighbours, valid = region_batch(count, count, config)
    if not use_cra:
        regions = neighbours = valid = None
    with torch.inference_mode():
        expected = refiner(crops, regions, neighbours, valid)
        got = fuse_refiner(refiner)(crops, regions, neighbours, valid)
    assert got.shape == expected.shape == (count, 1, 8, 8)
    assert expected.std() > 0.01  # the comparison is not between two constants
    assert (got - expected).abs().max() < 1e-5


def test_fusing_leaves_the_trained_module_as_it_was():
    config = RefinerConfig()
    refiner = trained_like(config, seed=0)
    before = {k: v.clone() for k, v in refiner.state_dict().items()}
    fuse_refiner(refiner)
    assert refiner.training is False
    assert all(torch.equal(before[k], v) for k, v in refiner.state_dict().items())
