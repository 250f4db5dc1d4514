import numpy as np
import pytest
from PIL import Image

from lpmatte.cli import main


@pytest.fixture
def folder(tmp_path, portrait):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(portrait(200, 320)).save(src / "wide.jpg")
    Image.fromarray(portrait(333, 517)).save(src / "crop.png")
    Image.fromarray(portrait(100, 60)).save(src / "sub" / "small.png")
    Image.fromarray(portrait(120, 90)).convert("L").save(src / "gray.jpg")
    return src


def _run(args, capsys):
    code = main(["matte", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_folder_writes_alphas_of_input_sizes(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _run([str(folder), "-o", str(out), "--model", "lpm-s", "--quiet"], capsys)
    assert code == 0, err
    expected = {"wide.png": (200, 320), "crop.png": (333, 517), "sub/small.png": (100, 60),
                "gray.png": (120, 90)}
    for name, size in expected.items():
        with Image.open(out / name) as image:
            assert image.mode == "L" and image.size[::-1] == size
    assert "untrained" in err


@pytest.mark.parametrize("fmt,mode", [("rgba", "RGBA"), ("composite", "RGB"), ("trimap", "L")])
def test_formats(fmt, mode, folder, tmp_path, capsys):
    out = tmp_path / fmt
    args = [str(folder / "sub" / "small.png"), "-o", str(out), "--format", fmt, "--model", "lpm-s"]
    code, _, err = _run(args + ["--background", "white"], capsys)
    assert code == 0, err
    with Image.open(out / "small.png") as image:
        assert image.mode == mode and image.size == (60, 100)
        if fmt == "trimap":
            assert set(np.unique(np.asarray(image))) <= {0, 128, 255}


def test_corrupt_file_fails_alone(folder, tmp_path, capsys):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    out = tmp_path / "out"
    code, _, err = _run([str(folder), "-o", str(out), "--model", "lpm-s", "--quiet"], capsys)
    assert code == 1
    assert "broken.jpg" in err and "Traceback" not in err
    assert not (out / "broken.png").exists()
    assert len(list(out.rglob("*.png"))) == 4
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_glob_and_missing_inputs(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _run([str(folder / "*.jpg"), str(folder / "nope.png"), "-o", str(out),
                         "--model", "lpm-s"], capsys)
    assert code == 1 and "nope.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["gray.png", "wide.png"]


def test_never_overwrites_an_input(tmp_path, portrait, capsys):
    Image.fromarray(portrait(40, 40)).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    code, _, err = _run([str(tmp_path / "a.png"), "-o", str(tmp_path), "--model", "lpm-s"], capsys)
    assert code == 1 and "overwrite" in err
    assert (tmp_path / "a.png").read_bytes() == before
    code, _, err = _run([str(tmp_path / "a.png"), "-o", str(tmp_path / "a.png"),
                         "--model", "lpm-s"], capsys)
    assert code == 2 and "must be a folder" in err and "Traceback" not in err
    assert (tmp_path / "a.png").read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["--model", "nonexistent"], "unknown model"),
    (["--model", "missing.safetensors"], "not found"),
    (["--background", "not-a-colour", "--format", "composite"], "neither a colour"),
])
def test_bad_options_are_one_line_errors(args, message, folder, tmp_path, capsys):
    code, _, err = _run([str(folder / "gray.jpg"), "-o", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and "lpmatte" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["matte", "--help"])
    assert "examples:" in capsys.readouterr().out


def test_a_folder_run_reports_its_throughput(folder, tmp_path, capsys):
    code, _, err = _run([str(folder), "-o", str(tmp_path / "out"), "--model", "lpm-s"], capsys)
    assert code == 0, err
    line = next(line for line in err.splitlines() if "images/s" in line)
    count, rate = int(line.split()[1]), float(line.split(", ")[-1].split()[0])
    assert count == 4 and rate > 0
    code, _, err = _run([str(folder), "-o", str(tmp_path / "quiet"), "--model", "lpm-s",
                         "--quiet"], capsys)
    assert code == 0 and "images/s" not in err


def test_png_compression_trades_size_for_time_and_keeps_the_pixels(tmp_path, portrait, capsys):
    photo = tmp_path / "photo.png"
    Image.fromarray(portrait(240, 180)).save(photo)
    sizes, pixels = {}, {}
    for level in ("0", "9"):
        out = tmp_path / f"level{level}"
        args = [str(photo), "-o", str(out), "--format", "rgba", "--model", "lpm-s",
                "--png-compression", level]
        code, _, err = _run(args, capsys)
        assert code == 0, err
        sizes[level] = (out / "photo.png").stat().st_size
        with Image.open(out / "photo.png") as image:
            pixels[level] = np.asarray(image)
    assert sizes["0"] > 2 * sizes["9"]  # level 0 stores the pixels uncompressed
    assert np.array_equal(pixels["0"], pixels["9"])


@pytest.mark.parametrize("level", ["10", "-1", "fast"])
def test_a_bad_png_compression_is_refused_before_any_work(level, folder, tmp_path, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exit_info:
        main(["matte", str(folder / "gray.jpg"), "-o", str(out), "--png-compression", level])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "0 to 9" in err and "Traceback" not in err
    assert not out.exists()


def test_matte_files_refuses_a_bad_png_compression_before_writing(folder, tmp_path):
    from lpmatte.apps.images import matte_files
    from lpmatte.errors import LpmatteError

    out = tmp_path / "o"
    with pytest.raises(LpmatteError, match="0 to 9"):
        matte_files(None, [str(folder)], out, png_compression=12, progress=False)
    assert not out.exists() or not any(out.iterdir())
