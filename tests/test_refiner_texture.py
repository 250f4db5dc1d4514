"""The refiner keeps flat regions flat: no pixel-periodic (dotted) texture from its decoder."""

import pytest
import torch

from lpmatte.model.config import ModelConfig, RefinerConfig
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.refiner import Refiner
from lpmatte.model.two_stage import refine_cells


def perturb(module: torch.nn.Module, generator: torch.Generator, scale: float = 0.2) -> None:
    """Random weights and BatchNorm statistics, as after some training."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator) * scale
                tensor.copy_(noise.abs() + 0.5 if name.endswith("running_var") else
                             tensor + noise)


def flat_crops(count: int, generator: torch.Generator, alpha: float = 0.5) -> torch.Tensor:
    """Flat 8x8 regions: one random colour each, coarse alpha ``alpha`` everywhere."""
    colours = torch.rand(count, 3, 1, 1, generator=generator).expand(-1, -1, 8, 8)
    return torch.cat([colours, torch.full((count, 1, 8, 8), alpha)], 1)


def spread(patches: torch.Tensor) -> float:
    """Largest spread of values inside one 8x8 patch relative to the values' size: 0 for flat
    patches (up to float rounding), whatever the pattern (checkerboard, tiles, a border)."""
    flat = patches.flatten(1)
    size = flat.abs().max(1).values.clamp(min=1.0)
    return float(((flat.max(1).values - flat.min(1).values) / size).max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flat_uncertain_region_stays_flat_for_any_weights(seed):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    refiner = Refiner(RefinerConfig(use_cra=False))
    perturb(refiner, generator)
    refiner.eval().double()  # float64: rounding far below what a pattern would show
    crops = flat_crops(16, generator).double()
    with torch.no_grad():
        residual = refiner.decoder(refiner.encoder(crops),
                                   torch.randn(16, 128, generator=generator).double(),
                                   crops)
        refined = refiner(crops, torch.zeros(16, 3, dtype=torch.long), None, None)
    assert residual.abs().max() > 1e-3  # the decoder does respond: the test is not vacuous
    assert spread(residual) < 1e-4
    assert spread(refined) < 1e-4


def test_flat_image_refines_to_a_flat_matte_through_the_whole_model():
    """The full second stage on a flat image with a uniformly uncertain coarse alpha."""
    torch.manual_seed(3)
    model = LightweightPortraitMatting(ModelConfig(refiner=RefinerConfig(num_neighbors=4)))
    perturb(model.refiner, torch.Generator().manual_seed(3))
    model.eval()
    image = torch.full((1, 3, 64, 64), 0.4)
    coarse = torch.full((1, 1, 8, 8), 0.5)
    probs = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8)  # all unknown
    with torch.no_grad():
        alpha, regions, patches = refine_cells(model, image, coarse, probs, None, (8, 8))
    assert len(regions) == 64
    assert spread(patches) < 1e-4


def test_weights_of_the_former_decoder_keep_it(tmp_path):
    """Files from before the texture fix (no 'decoder' in their config) run as trained."""
    from dataclasses import replace

    from lpmatte.model.weights import config_to_dict, load_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(refiner=RefinerConfig(decoder="transposed"))
    old = LightweightPortraitMatting(config)
    stored = config_to_dict(config)
    del stored["refiner"]["decoder"]  # as written before the field existed
    torch.save({"model": old.state_dict(), "config": stored}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded.config.refiner.decoder == "transposed"
    LightweightPortraitMatting(loaded.config).load_state_dict(loaded.state_dict)
    assert RefinerConfig().decoder == "resize"  # new models get the flat-preserving one
    new = LightweightPortraitMatting(replace(config, refiner=RefinerConfig()))
    torch.save({"model": new.state_dict(), "config": config_to_dict(new.config)},
               tmp_path / "new.pt")
    assert load_checkpoint(tmp_path / "new.pt").config.refiner.decoder == "resize"


def test_the_former_decoder_is_what_made_the_texture():
    """The same flat input through the transposed decoder is not flat (the measured cause)."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    refiner = Refiner(RefinerConfig(use_cra=False, decoder="transposed"))
    perturb(refiner, generator)
    refiner.eval().double()
    crops = flat_crops(16, generator).double()
    with torch.no_grad():
        residual = refiner.decoder(refiner.encoder(crops),
                                   torch.randn(16, 128, generator=generator).double(), crops)
    assert spread(residual) > 0.05


def test_converted_former_decoder_keeps_each_tile_mean_and_loses_the_tile():
    """resize_state_from_transposed: up1's linear map on spatially constant features gives
    the mean of the transposed kernel's 2x2 tile at every pixel, and the converted refiner
    keeps flat regions flat (the starting point of a fine-tune that removes the texture)."""
    import torch.nn.functional as F

    from lpmatte.model.refiner import resize_state_from_transposed, upsample2

    generator = torch.Generator().manual_seed(4)
    old = Refiner(RefinerConfig(use_cra=False, decoder="transposed"))
    perturb(old, generator)
    channels = RefinerConfig().encoder_channels[-1]
    state = resize_state_from_transposed(old.state_dict(), channels, prefix="decoder.")
    new = Refiner(RefinerConfig(use_cra=False))
    new.load_state_dict(state)
    old.double().eval()
    new.double().eval()
    features = torch.randn(5, channels, 1, 1, generator=generator).double().expand(-1, -1, 2, 2)
    token = torch.randn(5, 128, generator=generator).double()
    with torch.no_grad():
        broadcast = token[:, :, None, None].expand(-1, -1, 2, 2)
        tiled = old.decoder.up1[0](torch.cat([features, broadcast], 1))  # a 2x2 tile, repeated
        tile_mean = F.avg_pool2d(tiled, 2)
        converted = (new.decoder.up1[0](upsample2(features))
                     + new.decoder.token_in(token)[:, :, None, None])
    assert spread(tiled) > 0.05
    assert torch.allclose(converted, tile_mean.repeat(1, 1, 2, 2), atol=1e-9)
    crops = flat_crops(8, generator).double()
    with torch.no_grad():
        refined = new(crops, torch.zeros(8, 3, dtype=torch.long), None, None)
    assert spread(refined) < 1e-4
