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


@pytest.mark.parametrize("name", ["mmnet-0.5", "mmnet-128", "pspm-b3"])
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
    # the mirror is taken of the padded input: exact only when no padding is needed
    # (128 x 96 goes in at 256 x 192, whole multiples of 16)
    unpadded = (np.random.default_rng(2).random((128, 96, 3)) * 255).astype(np.uint8)
    flipped = mirrored.predict(unpadded[:, ::-1].copy())[:, ::-1]
    np.testing.assert_allclose(mirrored.predict(unpadded), flipped, atol=1e-5)


@pytest.fixture(scope="module")
def mmnet_onnx(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from lpmatte.inference.onnx.export import export_onnx

    torch.manual_seed(0)
    matter = lpmatte.load("mmnet", device="cpu", backend="eager-fp32")
    path = tmp_path_factory.mktemp("onnx") / "mmnet.onnx"
    export_onnx(matter.model, path, (128, 96), name="mmnet", untrained=True)
    return matter, path


def test_onnx_export_matches_pytorch_at_any_size(mmnet_onnx, image):
    matter, path = mmnet_onnx
    exported = lpmatte.load(path, device="cpu")
    assert exported.backend.name == "onnx" and exported.untrained
    np.testing.assert_allclose(exported.predict(image), matter.predict(image), atol=1e-4)
    tall = np.ascontiguousarray(image.transpose(1, 0, 2))  # another aspect than traced
    np.testing.assert_allclose(exported.predict(tall), matter.predict(tall), atol=1e-4)


@pytest.mark.parametrize("name", ["pspm-b3", "pspm"])
def test_pspm_exports_its_trimap_too(name, image, tmp_path):
    pytest.importorskip("onnxruntime")
    from lpmatte.inference.backends import check_export
    from lpmatte.inference.onnx.export import export_graphs

    matter = lpmatte.load(name, device="cpu", backend="eager-fp32")
    graphs = export_graphs(matter.model, (64, 64))
    assert graphs.refiner is None
    assert [o.name for o in graphs.lowres.graph.output] == ["alpha", "trimap_logits"]
    assert check_export(matter.model, graphs, (64, 64)) < 1e-4


def test_onnx_cli_round_trip_and_no_int8(mmnet_onnx, tmp_path, capsys):
    from lpmatte.cli import main

    target = tmp_path / "m.onnx"
    assert main(["export", "onnx", "--model", "mmnet", "--size", "96x80", "-o",
                 str(target)]) == 0
    assert "differ from PyTorch by at most" in capsys.readouterr().err
    assert main(["matte", str(_write_png(tmp_path)), "-o", str(tmp_path / "out"),
                 "--model", str(target), "--quiet"]) == 0
    assert (tmp_path / "out").is_dir() and any((tmp_path / "out").iterdir())
    assert main(["export", "onnx", "--model", "mmnet", "--int8", "-o",
                 str(tmp_path / "q.onnx")]) == 2
    assert "fp32 only" in capsys.readouterr().err
    assert not (tmp_path / "q.onnx").exists()
    with pytest.raises(LpmatteError, match="fp32 only"):
        lpmatte.load("mmnet", device="cpu", backend="onnx-int8")


def _write_png(folder):
    from PIL import Image

    path = folder / "photo.png"
    Image.fromarray((np.random.default_rng(1).random((70, 90, 3)) * 255).astype(np.uint8)
                    ).save(path)
    return path


def test_a_registered_name_loads_its_shipped_weights(tmp_path, monkeypatch, image):
    import lpmatte.api

    torch.manual_seed(3)
    trained = lpmatte.load("mmnet-128", device="cpu", backend="eager-fp32")
    save_safetensors(tmp_path / "mmnet-128.safetensors", trained.model, trained.config,
                     untrained="false")
    monkeypatch.setattr(lpmatte.api, "WEIGHTS_DIR", tmp_path)
    shipped = lpmatte.load("mmnet-128", device="cpu", backend="eager-fp32")
    assert not shipped.untrained and shipped.warning is None
    np.testing.assert_allclose(shipped.predict(image), trained.predict(image), atol=1e-6)
    assert lpmatte.load("mmnet", device="cpu").untrained  # nothing shipped for it here
