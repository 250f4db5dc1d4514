import pytest
import torch
import torch.nn.functional as F

from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.region_selection import (
    any_in_cells,
    crop_regions,
    paste_regions,
    select_regions,
)
from lpmatte.model.registry import create_config


def _logits_for(classes: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(classes, 3).permute(0, 3, 1, 2).float()


def test_select_regions_takes_unknown_cells_inside_valid_area():
    classes = torch.zeros(1, 4, 5, dtype=torch.long)
    classes[0, 1, 2] = classes[0, 3, 4] = classes[0, 0, 0] = 1
    regions = select_regions(_logits_for(classes), valid_size=(3, 5))
    assert regions.tolist() == [[0, 0, 0], [0, 1, 2]]  # (3, 4) lies in the padding


def test_select_regions_cap_keeps_most_uncertain():
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1] = torch.tensor([[5.0, 1.0], [3.0, 4.0]])
    regions = select_regions(logits, max_regions=2)
    assert sorted(map(tuple, regions[:, 1:].tolist())) == [(0, 0), (1, 1)]


def test_region_mask_overrides_argmax():
    mask = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    mask[1, 0, 2, 1] = True
    regions = select_regions(torch.zeros(2, 3, 3, 3), region_mask=mask)
    assert regions.tolist() == [[1, 2, 1]]


def test_crop_then_paste_round_trip():
    image = torch.rand(2, 3, 32, 24)
    regions = torch.tensor([[0, 0, 0], [1, 3, 2], [0, 2, 1]])
    crops = crop_regions(image, regions)
    assert crops.shape == (3, 3, 8, 8)
    assert torch.equal(crops[1], image[1, :, 24:32, 16:24])
    onto_zeros = paste_regions(torch.zeros_like(image), regions, torch.ones_like(crops))
    assert onto_zeros.sum() == 3 * 3 * 64  # exactly the three 8x8 cells, all channels
    pasted = paste_regions(image, regions, crops)
    assert torch.equal(pasted, image)


class IdentityRefiner(torch.nn.Module):
    def forward(self, crops, regions, neighbours, valid):
        return crops[:, 3:]


def test_identity_refiner_reproduces_upsampled_coarse_alpha():
    torch.manual_seed(0)
    model = LightweightPortraitMatting(create_config("lpm-s")).eval()
    model.refiner = IdentityRefiner()
    image = torch.rand(1, 3, 72, 40)
    with torch.no_grad():
        output = model(image)
        upsampled = torch.nn.functional.interpolate(
            output.coarse_alpha, scale_factor=8, mode="bilinear", align_corners=False)
    assert len(output.regions) > 0
    # away from the padded border the coarse map matches the unpadded one exactly
    assert torch.allclose(output.alpha[..., :64, :32], upsampled[..., :64, :32], atol=1e-6)


@pytest.mark.parametrize("shape", [(16, 24), (13, 21), (1, 9)])
def test_any_in_cells_equals_a_max_pool_of_the_mask(shape):
    mask = torch.rand(2, 1, *shape) > 0.97
    pooled = F.max_pool2d(mask.float(), 8, 8, ceil_mode=True) > 0
    assert torch.equal(any_in_cells(mask), pooled)
    assert any_in_cells(mask).shape[-2:] == (-(-shape[0] // 8), -(-shape[1] // 8))
