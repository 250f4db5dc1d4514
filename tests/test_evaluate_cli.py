"""`lpmatte evaluate` end to end on PNG/JPG folders, via ``lpmatte.cli.main``."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lpmatte.cli import main
from lpmatte.evaluation.folders import evaluate_folders, read_csv
from lpmatte.metrics import compute_metrics


def write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_cases(root: Path, cases):
    for name, pred, gt, trimap in cases:
        write(root / "pred" / f"{name}.png", pred)
        write(root / "gt" / f"{name}.png", gt)
        write(root / "trimap" / f"{name}.png", trimap)
    return [str(root / d) for d in ("pred", "gt", "trimap")]


def run_json(capsys, *args) -> dict:
    assert main(["evaluate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("protocol", ["dim", "p3m"])
def test_acceptance_reference_values_through_the_cli(tmp_path, capsys, protocol, reference):
    cases, expected = reference
    pred, gt, trimap = write_cases(tmp_path, cases)
    report = run_json(capsys, "--pred", pred, "--gt", gt, "--trimap", trimap,
                      "--protocol", protocol)
    assert report["protocol"] == protocol
    checked = 0
    for name, values in expected.items():
        for key, value in values.items():
            if key.startswith("P3M_") != (protocol == "p3m"):
                continue
            metric = key.removeprefix("P3M_").removesuffix("_f32").replace("_T", "-T")
            assert report["per_image"][name][metric] == pytest.approx(value, rel=1e-4, abs=1e-12)
            checked += 1
    assert checked == (40 if protocol == "dim" else 32)
    for metric, mean in report["mean"].items():
        values = [row[metric] for row in report["per_image"].values()]
        assert mean == pytest.approx(np.mean(values))


def synthetic_folders(root: Path, count=3, size=(20, 30)):
    rng = np.random.default_rng(0)
    arrays = {}
    for i in range(count):
        gt = rng.integers(0, 256, size, dtype=np.uint8)
        pred = np.clip(gt.astype(int) + rng.integers(-40, 40, size), 0, 255).astype(np.uint8)
        trimap = np.where(gt < 30, 0, np.where(gt > 220, 255, 128)).astype(np.uint8)
        write(root / "pred" / f"img{i}.png", pred)
        write(root / "gt" / f"img{i}.png", gt)
        write(root / "trimap" / f"img{i}.png", trimap)
        arrays[f"img{i}"] = (pred, gt, trimap)
    return arrays


def test_table_and_csv(tmp_path, capsys):
    arrays = synthetic_folders(tmp_path)
    out = tmp_path / "report" / "scores.csv"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--trimap", str(tmp_path / "trimap"), "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "protocol: dim, 3 images" in printed and "\nmean " in printed and "Conn-T" in printed
    header, rows = read_csv(out)
    assert header["protocol"] == "dim" and header["images"] == "3"
    assert list(rows) == ["img0", "img1", "img2", "mean"]
    pred, gt, trimap = arrays["img1"]
    for metric, value in compute_metrics(pred, gt, trimap, "dim").items():
        assert rows["img1"][metric] == pytest.approx(value, rel=1e-12)
    assert rows["mean"]["SAD"] == pytest.approx(np.mean([rows[f"img{i}"]["SAD"] for i in range(3)]))


@pytest.mark.parametrize("where", ["folder", "file/below"])
def test_csv_onto_a_folder_or_below_a_file_is_a_one_line_error(tmp_path, capsys, where):
    synthetic_folders(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("keep")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--csv", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "file").read_text() == "keep" and not list((tmp_path / "folder").iterdir())


def test_without_trimaps_only_whole_image_metrics(tmp_path, capsys):
    synthetic_folders(tmp_path)
    report = run_json(capsys, "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                      "--protocol", "p3m")
    assert list(report["mean"]) == ["SAD", "MSE", "MAD", "Grad", "Conn"]


def test_formats_rgba_16bit_and_jpg_are_read_as_alpha(tmp_path, capsys):
    arrays = synthetic_folders(tmp_path, count=2)
    pred, gt, _ = arrays["img0"]
    (tmp_path / "pred" / "img0.png").unlink()
    rgba = np.dstack([np.zeros((*pred.shape, 3), np.uint8) + 90, pred])
    write(tmp_path / "pred" / "img0.png", rgba)  # RGBA: its alpha channel is the matte
    (tmp_path / "gt" / "img0.png").unlink()
    Image.fromarray(gt.astype(np.uint16) * 257).save(tmp_path / "gt" / "img0.png")  # 16 bit
    pred1, gt1, _ = arrays["img1"]
    (tmp_path / "gt" / "img1.png").unlink()
    write(tmp_path / "gt" / "img1.jpg", gt1)  # paired by stem across suffixes
    report = run_json(capsys, "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"))
    assert report["per_image"]["img0"] == pytest.approx(compute_metrics(pred, gt))
    assert report["per_image"]["img1"]["SAD"] > 0


def test_missing_predictions_are_listed_and_counted(tmp_path, capsys):
    synthetic_folders(tmp_path, count=4)
    (tmp_path / "pred" / "img1.png").unlink()
    (tmp_path / "pred" / "img3.png").unlink()
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no prediction for 2: img1, img3 of 4 mattes" in err and "Traceback" not in err
    assert main([*args, "--allow-missing", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert sorted(report["per_image"]) == ["img0", "img2"]
    assert report["missing"] == ["img1", "img3"]
    assert "warning" in captured.err and "2: img1, img3" in captured.err


def test_errors_name_the_files(tmp_path, capsys):
    synthetic_folders(tmp_path, count=2)
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")]
    write(tmp_path / "pred" / "img0.png", np.zeros((10, 10), np.uint8))
    assert main(args) == 2
    assert "img0.png: size 10x10 differs from the ground truth" in capsys.readouterr().err
    write(tmp_path / "pred" / "img0.png", np.random.default_rng(0).integers(
        0, 255, (20, 30, 3), dtype=np.uint8))
    assert main(args) == 2
    assert "img0.png: a colour image, not an alpha matte" in capsys.readouterr().err
    write(tmp_path / "pred" / "img0.png", np.zeros((20, 30), np.uint8))
    write(tmp_path / "trimap" / "img1.png", np.full((20, 30), 7, np.uint8))
    assert main([*args, "--trimap", str(tmp_path / "trimap")]) == 2
    assert "img1.png: not a 0/128/255 trimap" in capsys.readouterr().err
    assert main(["evaluate", "--pred", str(tmp_path / "nope"), "--gt", str(tmp_path / "gt")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err


def test_nan_means_become_null_in_json(tmp_path):
    synthetic_folders(tmp_path, count=1)
    write(tmp_path / "trimap" / "img0.png", np.zeros((20, 30), np.uint8))  # no unknown pixel
    result = evaluate_folders(tmp_path / "pred", tmp_path / "gt", tmp_path / "trimap", "p3m")
    assert math.isnan(result.mean["MSE-T"])
    assert result.as_json()["mean"]["MSE-T"] is None
