"""ONNX export: one file, two graphs, any input size and region count, runnable from the CLI."""

import numpy as np
import pytest
import torch
from PIL import Image

import lpmatte
from lpmatte.cli import main
from lpmatte.errors import LpmatteError

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lpmatte.inference.backends import check_export  # noqa: E402
from lpmatte.inference.onnx.export import export_refiner  # noqa: E402
from lpmatte.inference.onnx.graphs import read_onnx  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """lpm-s exported through the CLI, traced at 128x96."""
    path = tmp_path_factory.mktemp("onnx") / "lpm-s.onnx"
    assert main(["export", "onnx", "--model", "lpm-s", "--size", "96x128", "-o", str(path)]) == 0
    return path


def test_file_holds_both_graphs_and_the_config(exported):
    graphs = read_onnx(exported)
    assert graphs.config == lpmatte.load("lpm-s", device="cpu", backend="eager-fp32").config
    assert graphs.metadata["lpmatte_untrained"] == "true"
    assert [i.name for i in graphs.lowres.graph.input] == ["image"]
    assert [i.name for i in graphs.refiner.graph.input] == ["crops", "regions", "neighbours",
                                                             "valid"]


@pytest.mark.parametrize("size", [(200, 152), (90, 300)])
def test_other_sizes_match_pytorch(exported, portrait, size):
    """Traced at 128x96, run at other (odd, landscape) sizes: the graphs are size-agnostic."""
    eager = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32")
    matter = lpmatte.load(exported, device="cpu")
    assert matter.backend.name == "onnx" and matter.model is None and matter.untrained
    image = portrait(*size)
    expected, expected_trimap = eager.predict(image, return_trimap=True)
    alpha, trimap = matter.predict(image, return_trimap=True)
    assert np.abs(alpha - expected).max() < 1e-4
    assert np.array_equal(trimap, expected_trimap)


def test_no_cra_refiner_takes_the_crops_only():
    import onnxruntime

    model = lpmatte.load("lpm-s-nocra", device="cpu", backend="eager-fp32").model
    graph = export_refiner(model)
    assert [i.name for i in graph.graph.input] == ["crops"]
    crops = torch.rand(11, 4, 8, 8)
    session = onnxruntime.InferenceSession(graph.SerializeToString())
    (patches,) = session.run(None, {"crops": crops.numpy()})
    with torch.inference_mode():
        expected = model.refiner(crops, None, None, None)
    assert np.abs(patches - expected.numpy()).max() < 1e-5


def test_check_export_reports_float_noise(exported):
    model = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32").model
    assert check_export(model, read_onnx(exported), (80, 64)) < 1e-4


def test_matte_cli_runs_the_export(exported, portrait, tmp_path):
    Image.fromarray(portrait(70, 50)).save(tmp_path / "in.png")
    code = main(["matte", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"),
                 "--model", str(exported), "--backend", "onnx", "--quiet"])
    assert code == 0
    assert Image.open(tmp_path / "out" / "in.png").size == (50, 70)


def test_user_errors(exported, tmp_path, capsys):
    with pytest.raises(LpmatteError, match="only with --backend onnx"):
        lpmatte.load(exported, device="cpu", backend="eager-fp32")
    with pytest.raises(LpmatteError, match="fixed in the exported graph"):
        lpmatte.load(exported, device="cpu", num_neighbors=4)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(LpmatteError, match="bad.onnx"):
        lpmatte.load(bad, device="cpu")
    with pytest.raises(LpmatteError, match="not found"):
        lpmatte.load(tmp_path / "missing.onnx", device="cpu")
    assert main(["export", "onnx", "--model", "lpm-s", "-o", str(tmp_path / "x.bin")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert not (tmp_path / "x.bin").exists()


def test_max_regions_still_applies(exported):
    matter = lpmatte.load(exported, device="cpu", max_regions=3)
    assert matter.options.max_regions == 3
    alpha = matter.predict(np.full((64, 64, 3), 127, np.uint8))
    assert alpha.shape == (64, 64) and np.isfinite(alpha).all()


def test_refiner_graph_takes_any_number_of_regions(exported):
    from lpmatte.inference.backends import OnnxBackend
    from lpmatte.model.nearest_regions import find_neighbours

    backend = OnnxBackend(read_onnx(exported), torch.device("cpu"))
    model = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32").model
    for count in (1, 37):
        regions = torch.stack([torch.zeros(count, dtype=torch.long),
                               torch.arange(count) // 7, torch.arange(count) % 7], 1)
        neighbours, valid = find_neighbours(model.config.refiner, regions, (6, 7))
        crops = torch.rand(count, 4, 8, 8)
        with torch.inference_mode():
            expected = model.refiner(crops, regions, neighbours, valid)
        got = backend.refine(crops, regions, neighbours, valid)
        assert got.shape == (count, 1, 8, 8)
        assert (got - expected).abs().max() < 1e-5
