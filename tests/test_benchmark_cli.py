"""`lpmatte benchmark` end to end with the small untrained model on tiny synthetic datasets."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lpmatte.cli import main
from lpmatte.evaluation.benchmark import default_out_dir, git_commit, resize_policy
from lpmatte.evaluation.folders import evaluate_folders, read_csv
from lpmatte.media.resize import fit_area

H, W = 96, 128


def write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def portrait_pair(seed: int):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:H, 0:W]
    alpha = np.clip((30 - np.hypot(rows - 50, cols - 64)) * 40 + 128, 0, 255).astype(np.uint8)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return image, alpha


def make_layout(root: Path, image_dir: str, alpha_dir: str, count: int, trimap_dir=None):
    for i in range(count):
        image, alpha = portrait_pair(i)
        write(root / image_dir / f"img{i}.jpg", image)
        write(root / alpha_dir / f"img{i}.png", alpha)
        if trimap_dir:
            trimap = np.where(alpha == 0, 0, np.where(alpha == 255, 255, 128)).astype(np.uint8)
            write(root / trimap_dir / f"img{i}.png", trimap)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LPMATTE_CACHE", str(tmp_path / "cache"))


def run(capsys, *args) -> str:
    assert main(["benchmark", "--model", "lpm-s", "--device", "cpu", *args]) == 0
    return capsys.readouterr().out


def test_folder_dataset_end_to_end(tmp_path, capsys):
    make_layout(tmp_path / "data", "images", "alpha", 3)
    out = tmp_path / "out"
    printed = run(capsys, "--dataset", "folder", "--root", str(tmp_path / "data"),
                  "--out", str(out))
    assert "mean GFLOPs/image" in printed and "params:" in printed and "latency" in printed
    header, rows = read_csv(out / "folder-p3m.csv")
    assert header["protocol"] == "p3m" and header["model"] == "lpm-s (untrained)"
    assert header["resize"].startswith("none") and header["commit"] and header["date"]
    assert list(rows) == ["img0", "img1", "img2", "mean"]
    assert all(rows[name]["GFLOPs"] > 0 and rows[name]["regions"] >= 0 for name in rows)
    assert sorted(p.name for p in (out / "folder").iterdir()) == ["img0.png", "img1.png",
                                                                  "img2.png"]
    # the saved mattes reproduce the CSV through `lpmatte evaluate`'s library function
    again = evaluate_folders(out / "folder", tmp_path / "data" / "alpha", protocol="p3m")
    for name, values in again.per_image.items():
        for metric, value in values.items():
            assert rows[name][metric] == pytest.approx(value, rel=1e-9)


def test_p3m_layout_with_trimaps_dim_protocol(tmp_path, capsys):
    root = tmp_path / "P3M-10k"
    make_layout(root / "validation" / "P3M-500-NP", "original_image", "mask", 2, "trimap")
    run(capsys, "--dataset", "p3m", "--root", str(root), "--split", "P3M-500-NP",
        "--protocol", "dim", "--out", str(tmp_path / "out"), "--no-flops")
    header, rows = read_csv(tmp_path / "out" / "p3m-P3M-500-NP-dim.csv")
    assert "P3M-500-NP" in header["dataset"] and header["flops"] == "not counted"
    assert {"SAD-T", "Grad-T", "Conn-T"} <= set(rows["mean"])
    assert len(list((tmp_path / "out" / "p3m-P3M-500-NP").glob("*.png"))) == 2


def test_ppm100_layout_generates_trimaps_and_applies_area_cap(tmp_path, capsys):
    root = tmp_path / "PPM-100"
    make_layout(root, "image", "matte", 2)
    run(capsys, "--dataset", "ppm100", "--root", str(root), "--out", str(tmp_path / "out"),
        "--max-area", "3000", "--no-flops")
    header, rows = read_csv(tmp_path / "out" / "ppm100-p3m.csv")
    assert "3000 px" in header["resize"]
    assert rows["img0"]["pixels"] <= 3000 and "SAD-T" in rows["img0"]
    saved = np.asarray(Image.open(tmp_path / "out" / "ppm100" / "img0.png"))
    assert saved.shape == (H, W)  # scored and saved at the original resolution
    assert not (root / "trimap").exists()  # generated trimaps went to the cache


def test_photomatte85_layout(tmp_path, capsys):
    root = tmp_path / "PhotoMatte85"
    for i in range(2):
        image, alpha = portrait_pair(i)
        write(root / "rgba_image" / f"p{i}.png", np.dstack([image, alpha]))
    write(root / "background" / "b.jpg", np.full((120, 200, 3), 90, np.uint8))
    printed = run(capsys, "--dataset", "photomatte85", "--root", str(root),
                  "--out", str(tmp_path / "out"), "--no-flops")
    assert "not counted" in printed
    header, rows = read_csv(tmp_path / "out" / "photomatte85-p3m.csv")
    assert "2073600 px" in header["resize"] and len(rows) == 3


def test_errors(tmp_path, capsys):
    make_layout(tmp_path / "data", "images", "alpha", 1)
    code = main(["benchmark", "--model", "lpm-s", "--device", "cpu", "--dataset", "folder",
                 "--root", str(tmp_path / "data"), "--out", str(tmp_path / "data"),
                 "--split", "nowhere"])
    assert code == 2 and "no such folder" in capsys.readouterr().err
    code = main(["benchmark", "--model", "no-such-model", "--dataset", "folder",
                 "--root", str(tmp_path / "data")])
    assert code == 2 and "unknown model" in capsys.readouterr().err


def test_refuses_to_write_into_the_dataset(tmp_path, capsys):
    root = tmp_path / "photomatte85"  # portraits directly in the root, named like the tag
    image, alpha = portrait_pair(0)
    write(root / "p0.png", np.dstack([image, alpha]))
    write(root / "background" / "b.jpg", np.full((120, 200, 3), 90, np.uint8))
    code = main(["benchmark", "--model", "lpm-s", "--device", "cpu", "--dataset",
                 "photomatte85", "--root", str(root), "--out", str(tmp_path)])
    assert code == 2 and "is a folder of the dataset" in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir()) == ["background", "p0.png"]


def test_helpers():
    image = np.zeros((1000, 3000, 3), np.float32)
    assert fit_area(image, None) is image
    small = fit_area(image, 30000)
    assert small.shape[0] * small.shape[1] <= 30000 and small.shape[1] / small.shape[0] == 3
    assert "full resolution" in resize_policy(None)
    assert isinstance(git_commit(), str) and git_commit()
    assert default_out_dir("lpm-s") == Path("benchmark") / "lpm-s"


def test_an_onnx_export_benchmarks_without_flops(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    exported = tmp_path / "lpm-s.onnx"
    assert main(["export", "onnx", "--model", "lpm-s", "--size", "96x128", "-o",
                 str(exported)]) == 0
    make_layout(tmp_path / "data", "images", "alpha", 2)
    out = tmp_path / "out"
    assert main(["benchmark", "--model", str(exported), "--backend", "onnx", "--dataset",
                 "folder", "--root", str(tmp_path / "data"), "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "not counted" in printed and "params: n/a" in printed
    header, rows = read_csv(out / "folder-p3m.csv")
    assert header["params"].startswith("n/a") and list(rows) == ["img0", "img1", "mean"]
