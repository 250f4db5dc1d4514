"""Whole-image models (MMNet, PSPM) through the same load / predict / cost / files path as
the two-stage model."""

import numpy as np
import pytest
import torch

import lpmatte
from lpmatte.errors import LpmatteError
from lpmatte.model.weights import save_safetensors


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return (rng.random((150, 97, 3)) * 255).astype(np.uint8)  # odd sides on purpose


@pytest.mark.parametrize("name", ["mmnet", "mmnet-128", "pspm-b3"])
def test_predict_at_the_image_size(name, image):
    matter = lpmatte.load(name, device="cpu")
    assert matter.untrained and "untrained" in matter.warning
    alpha, trimap = matter.predict(image, return_trimap=True)
    assert alpha.shape == trimap.shape == image.shape[:2]
    assert 0 <= alpha.min() and alpha.max() <= 1
    assert set(np.unique(trimap)) <= {0, 128, 255}
    output = matter.run(image)
    assert len(output.regions) == 0 and output.coarse_alpha.shape == (1, 1, 19, 13)


def test_the_network_sees_the_config_input_size(image):
    matter = lpmatte.load("mmnet-128", device="cpu", backend="eager-fp32")
    seen = []
    handle = matter.model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    matter.predict(image)
    handle.remove()
    assert seen == [torch.Size([1, 3, 128, 96])]  # long side 128, padded to a multiple of 16
    report = matter.cost(image)
    assert report.regions == 0 and report.flops["network"] > 0


def test_weights_file_round_trip_and_mirror_averaging(tmp_path, image):
    torch.manual_seed(0)
    trained = lpmatte.load("mmnet", device="cpu", backend="eager-fp32")
    path = tmp_path / "mmnet.safetensors"
    save_safetensors(path, trained.model, trained.config, untrained="false")
    loaded = lpmatte.load(path, device="cpu", backend="eager-fp32")
    assert not loaded.untrained and loaded.config == trained.config
    np.testing.assert_allclose(loaded.predict(image), trained.predict(image), atol=1e-6)
    mirrored = lpmatte.load(path, device="cpu", backend="eager-fp32", flip_tta=True)
    flipped = mirrored.predict(image[:, ::-1].copy())[:, ::-1]
    np.testing.assert_allclose(mirrored.predict(image), flipped, atol=1e-5)


def test_onnx_backends_say_they_are_not_there_yet():
    with pytest.raises(LpmatteError, match="PyTorch only"):
        lpmatte.load("mmnet", device="cpu", backend="onnx")
