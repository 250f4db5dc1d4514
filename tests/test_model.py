import math
from dataclasses import replace

import pytest
import torch

from lpmatte.inference.cost import measure_cost
from lpmatte.model.cross_region_attention import CrossRegionAttention, relative_bias_index
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.nearest_regions import knn_pairwise
from lpmatte.model.refiner import Refiner
from lpmatte.model.registry import create_config, list_models
from lpmatte.model.two_stage import run_two_stages
from lpmatte.model.weights import config_from_dict, config_to_dict


def _model(name: str, seed: int = 0, **refiner_options) -> LightweightPortraitMatting:
    torch.manual_seed(seed)
    return LightweightPortraitMatting(create_config(name, **refiner_options))


# distinct backbones / refiners
FAMILIES = ["lpm", "lpm-nocra", "lpm-s", "lpm-s-nocra", "lpm-e0", "lpm-e1", "lpm-e2",
            "lpm-e0-lite", "lpm-e0-mid"]
SHIPPED_ALIASES = {"lpm-e0-groups": "lpm-e0"}  # an architecture's name for its own weights
TWO_STAGE = [name for name in list_models() if create_config(name).kind == "two-stage"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_forward_backward_finite(name):
    model = _model(name).train()
    image = torch.rand(2, 3, 64, 48)
    mask = torch.zeros(2, 1, 8, 6, dtype=torch.bool)
    mask[:, :, 2:5, 1:4] = True
    output = model(image, region_mask=mask)
    assert output.alpha.shape == (2, 1, 64, 48)
    assert len(output.regions) == 2 * 9 and output.patches.shape == (18, 1, 8, 8)
    loss = output.alpha.mean() + output.side_outputs[0].alpha_logits.mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_choose_regions_sees_the_predicted_cells_and_decides_what_is_refined():
    model = _model("lpm-s").eval()
    image = torch.rand(1, 3, 50, 70)  # padded to 64x80: grid 8x10, image cells 7x9
    seen = []

    def first_column(predicted):
        seen.append(predicted)
        chosen = torch.zeros_like(predicted)
        chosen[..., 0] = True
        return chosen

    with torch.no_grad():
        output = model(image, choose_regions=first_column)
        plain = model(image)
    trimap = plain.trimap_probs
    assert seen[0].shape == (1, 1, 8, 10)
    assert torch.equal(seen[0][..., :7, :9], trimap.argmax(1, keepdim=True) == 1)
    assert output.regions[:, 2].eq(0).all() and len(output.regions) == 7  # padding rows dropped


def test_shipped_aliases_are_their_architecture():
    for alias, family in SHIPPED_ALIASES.items():
        assert replace(create_config(alias), name=family) == create_config(family)


@pytest.mark.parametrize("name", sorted(set(TWO_STAGE) - set(FAMILIES) - set(SHIPPED_ALIASES)))
def test_ablation_refiners_forward_backward(name):
    """Table 5 variants differ from ``lpm`` only in the refiner (s, k)."""
    config = create_config(name)
    assert config.lowres == create_config("lpm").lowres
    torch.manual_seed(0)
    refiner = Refiner(config.refiner).train()
    regions = (torch.rand(1, 12, 12) < 0.3).nonzero()
    neighbours, valid = knn_pairwise(regions, config.refiner.num_neighbors)
    patches = refiner(torch.rand(len(regions), 4, 8, 8), regions, neighbours, valid)
    patches.mean().backward()
    table = refiner.attention.bias_table
    assert table.shape == ((2 * config.refiner.search_range - 1) ** 2 + 1, 8)
    assert torch.isfinite(table.grad).all() and table.grad.abs().sum() > 0


@pytest.mark.parametrize("name,size", [("lpm", (100, 60)), ("lpm", (333, 517)),
                                       ("lpm-s", (1080, 1920)), ("lpm-nocra", (37, 251))])
def test_output_shapes_and_ranges(name, size):
    model = _model(name).eval()
    with torch.no_grad():  # untrained trimaps are noise: cap the work
        output = run_two_stages(model, torch.rand(1, 3, *size), max_regions=1500)
    rows, cols = math.ceil(size[0] / 8), math.ceil(size[1] / 8)
    assert output.alpha.shape == (1, 1, *size)
    assert output.coarse_alpha.shape == (1, 1, rows, cols)
    assert output.trimap_probs.shape == (1, 3, rows, cols)
    assert torch.allclose(output.trimap_probs.sum(1), torch.ones(1, rows, cols))
    assert 0 <= output.alpha.min() and output.alpha.max() <= 1
    assert (output.regions[:, 1] < rows).all() and (output.regions[:, 2] < cols).all()
    assert len(output.regions) <= 1500


def test_inference_is_deterministic():
    model = _model("lpm-s").eval()
    image = torch.rand(1, 3, 96, 80)
    with torch.no_grad():
        assert torch.equal(model(image).alpha, model(image).alpha)


def test_refined_patches_are_pasted_where_selected():
    model = _model("lpm-s").eval()
    with torch.no_grad():
        output = model(torch.rand(1, 3, 64, 64))
    for (b, r, c), patch in zip(output.regions.tolist()[:5], output.patches):
        assert torch.equal(output.alpha[b, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8], patch)


def test_relative_bias_index_out_of_range_entry():
    regions = torch.tensor([[0, 10, 10], [0, 13, 7], [0, 14, 10], [0, 10, 6]])
    neighbours = torch.tensor([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    index = relative_bias_index(regions, neighbours, search_range=4)
    side = 7
    # centre -> middle slot; (+3, -3) -> corner slot; (+4, 0) and (0, -4) -> shared last slot
    assert index[0].tolist() == [3 * side + 3, 6 * side + 0, side * side, side * side]
    assert index[1].tolist() == [3 * side + 3, 0 * side + 6, 4 * side + 6, 0 * side + 2]


def test_cross_region_attention_ignores_invalid_neighbours():
    torch.manual_seed(0)
    attention = CrossRegionAttention(dim=16, num_heads=2, mlp_dim=16, search_range=4).eval()
    regions = torch.tensor([[0, 0, 0], [0, 0, 1]])
    neighbours = torch.tensor([[1, 0], [0, 1]])
    valid = torch.tensor([[True, False], [True, False]])
    features = torch.randn(2, 16)
    out = attention(features, regions, neighbours, valid)
    neighbours_other = torch.tensor([[1, 1], [0, 0]])  # the invalid slot points elsewhere
    assert torch.allclose(out, attention(features, regions, neighbours_other, valid), atol=1e-5)


def test_config_round_trips_through_dict():
    for name in TWO_STAGE:  # the whole-image models round-trip in their own tests
        config = create_config(name, num_neighbors=12)
        assert config_from_dict(config_to_dict(config)) == config


def _swin_reference_macs(tokens_hw, config) -> float:
    """Multiply-adds of the reference design, from the layer formulas (no code shared)."""
    window = config.lowres.backbone.window_size
    dims = [config.lowres.backbone.embed_dim * 2**i for i in range(4)]
    h, w = tokens_hw
    macs = h * w * 3 * 16 * 16 * dims[0]  # patch embedding
    sizes = []
    for i, (dim, depth) in enumerate(zip(dims, config.lowres.backbone.depths)):
        if i:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
            macs += h * w * 4 * dims[i - 1] * dim  # patch merging
        padded = math.ceil(h / window) * window * math.ceil(w / window) * window
        attention = padded * (4 * dim * dim + 2 * window * window * dim)
        macs += depth * (attention + h * w * 8 * dim * dim)
        sizes.append((h, w))
    channels = (dims[-1], *config.lowres.decoder_channels)
    for i, (h, w) in enumerate(reversed(sizes[:-1])):
        macs += h * w * 9 * (channels[i] + dims[-2 - i]) * channels[i + 1]  # fusion conv
        macs += h * w * 9 * channels[i + 1] * 16  # pixel-shuffle head
    return macs


@pytest.mark.parametrize("name", ["lpm", "lpm-s"])
def test_lowres_flops_match_reference_design(name):
    config = create_config(name)
    model = LightweightPortraitMatting(config)
    report = measure_cost(model, torch.rand(1, 3, 448, 288))
    reference_flops = 2 * _swin_reference_macs((448 // 16, 288 // 16), config)
    assert abs(report.flops["lowres"] / reference_flops - 1) < 0.15
    assert report.params["refiner"] < report.params["lowres"] / 20
