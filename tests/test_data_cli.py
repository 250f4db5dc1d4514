"""`lpmatte data soft-alpha` and `lpmatte data solve-fg-bg` end to end on tiny folders."""

import numpy as np
from PIL import Image

from lpmatte.cli import main


def write_masks_set(root, stems=("p1", "p2", "p3")):
    """images/*.jpg with masks/*.png: a bright disc on a ramp; the mask is the disc, shifted."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    y, x = np.mgrid[0:64, 0:48]
    disc = np.hypot(y - 30, x - 24) < 14
    image = np.stack([x / 48, y / 64, 0.3 + 0 * x], -1) * 0.5
    image[disc] = (0.9, 0.8, 0.7)
    for stem in stems:
        Image.fromarray((image * 255).astype(np.uint8)).save(root / "images" / f"{stem}.jpg")
        mask = np.roll(disc, 1, axis=0).astype(np.uint8) * 255
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    return root


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_soft_alpha_command_writes_outputs_sheet_and_resumes(tmp_path, capsys):
    write_masks_set(tmp_path)
    out = tmp_path / "soft"
    argv = ["data", "soft-alpha", "--images", str(tmp_path / "images"),
            "--masks", str(tmp_path / "masks"), "--out", str(out), "--band", "0.05",
            "--hair-band", "0.08", "--workers", "2", "--contact-sheet",
            str(tmp_path / "sheet.png")]
    code, stdout, _ = run(argv, capsys)
    assert code == 0 and "3 done, 0 failed" in stdout
    assert sorted(p.name for p in (out / "alpha").iterdir()) == ["p1.png", "p2.png", "p3.png"]
    assert (out / "source.json").is_file() and (out / "fg" / "p1.png").is_file()
    assert Image.open(tmp_path / "sheet.png").size[0] > 4 * 40
    code, stdout, _ = run(argv[:-2], capsys)
    assert code == 0 and "0 done, 0 failed" in stdout


def test_soft_alpha_limit_and_format(tmp_path, capsys):
    write_masks_set(tmp_path)
    code, _, _ = run(["data", "soft-alpha", "--images", str(tmp_path / "images"),
                      "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "o"),
                      "--limit", "1", "--format", "jpg", "--band", "0.05"], capsys)
    assert code == 0
    assert [p.name for p in (tmp_path / "o" / "fg").iterdir()] == ["p1.jpg"]


def test_soft_alpha_reports_user_mistakes_in_one_line(tmp_path, capsys):
    code, _, err = run(["data", "soft-alpha", "--images", str(tmp_path / "none"),
                        "--masks", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.startswith("lpmatte: error:") and "none" in err
    assert len(err.strip().splitlines()) == 1
    write_masks_set(tmp_path / "set")
    code, _, err = run(["data", "soft-alpha", "--images", str(tmp_path / "set" / "images"),
                        "--masks", str(tmp_path / "set" / "masks"), "--out", str(tmp_path / "o"),
                        "--band", "0.1", "--hair-band", "0.05"], capsys)
    assert code == 2 and "--band" in err


def test_soft_alpha_failures_are_warned_and_exit_one(tmp_path, capsys):
    write_masks_set(tmp_path, stems=("ok", "broken"))
    (tmp_path / "masks" / "broken.png").write_bytes(b"garbage")
    code, stdout, err = run(["data", "soft-alpha", "--images", str(tmp_path / "images"),
                             "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "o"),
                             "--band", "0.05"], capsys)
    assert code == 1 and "1 done, 1 failed" in stdout and "broken.png" in err


def test_solve_fg_bg_command(tmp_path, capsys):
    train = tmp_path / "P3M-10k" / "train"
    (train / "blurred_image").mkdir(parents=True)
    (train / "mask").mkdir()
    Image.fromarray(np.full((40, 30, 3), 99, np.uint8)).save(train / "blurred_image" / "x.jpg")
    alpha = np.zeros((40, 30), np.uint8)
    alpha[10:30, 5:25] = 255
    alpha[10:30, 5] = 128
    Image.fromarray(alpha).save(train / "mask" / "x.png")
    code, stdout, _ = run(["data", "solve-fg-bg", "--root", str(tmp_path / "P3M-10k")], capsys)
    assert code == 0 and "1 done" in stdout
    assert (train / "fg" / "x.jpg").is_file() and (train / "bg" / "x.jpg").is_file()
    code, _, err = run(["data", "solve-fg-bg", "--root", str(tmp_path)], capsys)
    assert code == 2 and "not a P3M-10K folder" in err


def test_data_without_a_step_prints_help(capsys):
    code, stdout, _ = run(["data"], capsys)
    assert code == 2 and "soft-alpha" in stdout and "solve-fg-bg" in stdout
